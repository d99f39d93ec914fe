"""imageforge.packer: argv construction with a recording runner; version, validate, build and
the manifest with the real Packer."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import REPO, clean_env

from imageforge.config import load_image_file
from imageforge.errors import PackerError
from imageforge.packer import (
    Artifact,
    Packer,
    read_manifest,
    redacted_argv,
    variables_for,
)
from imageforge.process import Completed, SubprocessRunner
from imageforge.render import PROFILES, Renderer
from imageforge.site import Site

MANIFEST = {
    "builds": [
        {
            "name": "old",
            "builder_type": "azure-arm",
            "artifact_id": "/subscriptions/x/images/old",
            "packer_run_uuid": "run-1",
            "custom_data": {"version": "1.0.0"},
        },
        {
            "name": "new",
            "builder_type": "azure-arm",
            "artifact_id": "/subscriptions/x/images/new",
            "packer_run_uuid": "run-2",
            "custom_data": {"version": "1.0.1"},
        },
    ],
    "last_run_uuid": "run-2",
}


@dataclass
class Recorder:
    """A ProcessRunner that records each call and answers with a canned result."""

    returncode: int = 0
    output: str = ""
    timed_out: bool = False
    effect: Callable[[dict[str, Any]], None] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, argv, *, cwd=None, env=None, log_path=None, timeout=None, echo=True):
        call = {
            "argv": list(argv),
            "cwd": cwd,
            "env": dict(env or {}),
            "log_path": log_path,
            "timeout": timeout,
            "echo": echo,
        }
        self.calls.append(call)
        if self.effect:
            self.effect(call)
        return Completed(tuple(argv), self.returncode, self.output, log_path, self.timed_out)


@pytest.fixture
def fake_binary(tmp_path) -> str:
    path = tmp_path / "bin" / "packer"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\nexit 99\n")
    path.chmod(0o755)
    return str(path)


def packer_with(binary: str, recorder: Recorder, cwd: Path = REPO) -> Packer:
    return Packer(binary=binary, cwd=cwd, runner=recorder)


# --- finding Packer and its version ----------------------------------------------------------


def test_a_missing_binary_is_a_packer_error_saying_what_to_do():
    with pytest.raises(PackerError) as err:
        Packer(binary="/nonexistent/packer", runner=Recorder()).path()
    assert str(err.value) == (
        "Packer is not installed (no '/nonexistent/packer' on PATH): run `invoke setup` "
        "or set imageforge.packer to its path"
    )


def test_version_is_parsed_from_packer_version_and_asked_once(fake_binary):
    recorder = Recorder(output="Packer v1.6.6\n")
    packer = packer_with(fake_binary, recorder)
    assert packer.version() == (1, 6, 6)
    assert packer.version() == (1, 6, 6)
    assert [c["argv"] for c in recorder.calls] == [[fake_binary, "version"]]
    assert recorder.calls[0]["echo"] is False


def test_version_soon_asks_in_the_background_and_version_waits_for_the_answer(fake_binary):
    gate = threading.Event()

    def wait_for_the_test(call):
        assert gate.wait(timeout=30), "version_soon() waited for `packer version`"

    recorder = Recorder(output="Packer v1.6.6\n", effect=wait_for_the_test)
    packer = packer_with(fake_binary, recorder)
    packer.version_soon()
    gate.set()  # reached only because version_soon() did not wait
    packer.version_soon()  # asking again while it asks changes nothing
    assert packer.version() == (1, 6, 6)
    assert [c["argv"] for c in recorder.calls] == [[fake_binary, "version"]]


def test_version_soon_leaves_a_missing_packer_to_path_and_version():
    recorder = Recorder(output="Packer v1.6.6\n")
    packer = Packer(binary="/nonexistent/packer", runner=recorder)
    packer.version_soon()
    with pytest.raises(PackerError, match="Packer is not installed"):
        packer.version()
    assert recorder.calls == []


def test_a_version_that_failed_in_the_background_is_asked_again_and_raised(fake_binary):
    recorder = Recorder(returncode=139, output="segfault")
    packer = packer_with(fake_binary, recorder)
    packer.version_soon()
    with pytest.raises(PackerError, match="cannot tell the version of .*: segfault"):
        packer.version()
    assert len(recorder.calls) == 2


def test_an_unreadable_version_is_a_packer_error(fake_binary):
    with pytest.raises(PackerError, match="cannot tell the version of .*: segfault"):
        packer_with(fake_binary, Recorder(returncode=139, output="segfault")).version()


def test_packer_env_disables_checkpoint_and_drops_packer_log(monkeypatch, fake_binary):
    monkeypatch.setenv("PACKER_LOG", "1")
    monkeypatch.delenv("CHECKPOINT_DISABLE", raising=False)
    env = packer_with(fake_binary, Recorder()).env({"EXTRA": "x"})
    assert env["CHECKPOINT_DISABLE"] == "1" and env["EXTRA"] == "x"
    assert "PACKER_LOG" not in env


# --- fmt and validate ------------------------------------------------------------------------


def test_fmt_check_argv_and_a_clean_folder(fake_binary, tmp_path):
    recorder = Recorder()
    assert packer_with(fake_binary, recorder).fmt_check(tmp_path) == []
    assert recorder.calls[0]["argv"] == [fake_binary, "fmt", "-check", str(tmp_path)]


def test_fmt_check_lists_the_files_packer_would_change(fake_binary, tmp_path):
    recorder = Recorder(returncode=3, output="a.pkr.hcl\nb.pkr.hcl\n")
    assert packer_with(fake_binary, recorder).fmt_check(tmp_path) == ["a.pkr.hcl", "b.pkr.hcl"]


def test_validate_argv_has_sorted_vars_and_the_folder_last(fake_binary, tmp_path):
    recorder = Recorder()
    packer_with(fake_binary, recorder).validate(tmp_path, {"b": "2", "a": "1"}, only="null.x")
    assert recorder.calls[0]["argv"] == [
        fake_binary,
        "validate",
        "-var=a=1",
        "-var=b=2",
        "-only=null.x",
        str(tmp_path),
    ]


def test_a_failed_validate_is_a_packer_error_with_packers_message(fake_binary, tmp_path):
    output = "Error: bad thing\n\n  on x.pkr.hcl line 1:\n  (source code not available)\n"
    with pytest.raises(PackerError) as err:
        packer_with(fake_binary, Recorder(returncode=1, output=output)).validate(tmp_path, {})
    assert str(err.value) == (
        f"packer validate {tmp_path} failed: Error: bad thing on x.pkr.hcl line 1:"
    )


def test_init_installs_the_folders_plugins(fake_binary, tmp_path):
    recorder = Recorder()
    packer_with(fake_binary, recorder).init(tmp_path)
    assert recorder.calls[0]["argv"] == [fake_binary, "init", str(tmp_path)]


def test_a_failed_init_is_a_packer_error_saying_what_is_needed(fake_binary, tmp_path):
    output = 'Failed getting the "github.com/hashicorp/azure" plugin:\n  no network\n'
    with pytest.raises(PackerError) as err:
        packer_with(fake_binary, Recorder(returncode=1, output=output)).init(tmp_path)
    assert str(err.value).startswith(f"packer init {tmp_path} failed (the azure plugin must be")
    assert str(err.value).endswith("plugin: no network")


# --- build argv ----------------------------------------------------------------------------


def test_build_argv(fake_binary, tmp_path):
    argv = packer_with(fake_binary, Recorder()).build_argv(
        tmp_path, {"image_version": "1.0.0", "b": "x=y"}, only="azure-arm.debian-12"
    )
    assert argv == [
        fake_binary,
        "build",
        "-color=false",
        "-on-error=cleanup",
        "-only=azure-arm.debian-12",
        "-var=b=x=y",
        "-var=image_version=1.0.0",
        str(tmp_path),
    ]


def test_build_never_gets_force(fake_binary, tmp_path):
    # -force on azure-arm deletes an existing gallery version of the same name.
    argv = packer_with(fake_binary, Recorder()).build_argv(tmp_path, {}, only="x")
    assert not [a for a in argv if a.startswith("-force")]


@pytest.mark.parametrize("mode", ["cleanup", "abort", "ask", "run-cleanup-provisioner"])
def test_on_error_is_configurable(fake_binary, tmp_path, mode):
    argv = packer_with(fake_binary, Recorder()).build_argv(tmp_path, {}, only="x", on_error=mode)
    assert f"-on-error={mode}" in argv


def test_an_unknown_on_error_mode_is_refused(fake_binary, tmp_path):
    with pytest.raises(PackerError, match="unknown -on-error mode 'explode': expected cleanup"):
        packer_with(fake_binary, Recorder()).build_argv(tmp_path, {}, only="x", on_error="explode")


# --- build and the manifest (recorded) -------------------------------------------------------


def write_manifest(path: Path, data: dict[str, Any] = MANIFEST) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def test_build_removes_a_stale_manifest_before_packer_runs(fake_binary, tmp_path):
    manifest = tmp_path / "manifest.json"
    write_manifest(manifest, {"builds": [{"artifact_id": "stale"}]})
    seen = []

    def packer_writes_manifest(call):
        seen.append(manifest.exists())
        write_manifest(manifest)

    recorder = Recorder(effect=packer_writes_manifest)
    artifact = packer_with(fake_binary, recorder).build(
        tmp_path, {}, only="x", manifest=manifest, log_path=tmp_path / "packer.log"
    )
    assert seen == [False]
    assert artifact.artifact_id == "/subscriptions/x/images/new"


def test_a_build_that_writes_no_manifest_is_an_error_even_with_a_stale_one(fake_binary, tmp_path):
    manifest, log = tmp_path / "manifest.json", tmp_path / "packer.log"
    write_manifest(manifest)
    with pytest.raises(PackerError) as err:
        packer_with(fake_binary, Recorder()).build(
            tmp_path, {}, only="x", manifest=manifest, log_path=log
        )
    assert str(err.value) == f"Packer wrote no manifest at {manifest} (log: {log})"


def test_build_passes_cwd_log_timeout_and_environment(fake_binary, tmp_path):
    manifest, log = tmp_path / "manifest.json", tmp_path / "packer.log"
    recorder = Recorder(effect=lambda call: write_manifest(manifest))
    packer_with(fake_binary, recorder, cwd=tmp_path).build(
        tmp_path,
        {"image_version": "1.0.1"},
        only="x",
        manifest=manifest,
        log_path=log,
        timeout=60.0,
        env={"ARM_CLIENT_ID": "id"},
    )
    call = recorder.calls[0]
    assert (call["cwd"], call["log_path"], call["timeout"]) == (tmp_path, log, 60.0)
    assert call["env"]["ARM_CLIENT_ID"] == "id" and call["env"]["CHECKPOINT_DISABLE"] == "1"
    assert call["echo"] is True


def test_a_failed_build_is_a_packer_error_naming_the_log_once(fake_binary, tmp_path):
    log = tmp_path / "packer.log"
    with pytest.raises(PackerError) as err:
        packer_with(fake_binary, Recorder(returncode=1, output="boom\n")).build(
            tmp_path, {}, only="x", manifest=tmp_path / "m.json", log_path=log
        )
    assert str(err.value) == f"packer build of {tmp_path.name} failed (exit 1) (log: {log})"
    assert err.value.log == str(log)


def test_a_timed_out_build_is_a_packer_error_naming_the_log(fake_binary, tmp_path):
    log = tmp_path / "packer.log"
    with pytest.raises(PackerError) as err:
        packer_with(fake_binary, Recorder(returncode=-9, timed_out=True)).build(
            tmp_path, {}, only="x", manifest=tmp_path / "m.json", log_path=log, timeout=1
        )
    assert (
        str(err.value) == f"packer build of {tmp_path.name} timed out and was stopped (log: {log})"
    )


def test_read_manifest_takes_the_build_of_the_last_run(tmp_path):
    path = tmp_path / "manifest.json"
    data = dict(MANIFEST, builds=list(reversed(MANIFEST["builds"])))
    write_manifest(path, data)
    assert read_manifest(path) == Artifact(
        "azure-arm", "/subscriptions/x/images/new", {"version": "1.0.1"}
    )


def test_read_manifest_without_a_run_id_takes_the_last_build(tmp_path):
    path = tmp_path / "manifest.json"
    write_manifest(path, {"builds": MANIFEST["builds"]})
    assert read_manifest(path).artifact_id == "/subscriptions/x/images/new"


def test_an_invalid_manifest_is_a_packer_error(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text("{not json")
    with pytest.raises(PackerError, match=f"cannot read the manifest {path}: "):
        read_manifest(path, log_path=tmp_path / "packer.log")


def test_a_manifest_without_builds_is_a_packer_error(tmp_path):
    path = tmp_path / "manifest.json"
    write_manifest(path, {"builds": []})
    with pytest.raises(PackerError, match="records no build"):
        read_manifest(path)


# --- variables and printing ------------------------------------------------------------------


def test_build_variables_carry_nothing_secret():
    assert variables_for(
        version="1.2.3", source_commit="abc", pipeline_run="42", use_azure_cli_auth=True
    ) == {
        "image_version": "1.2.3",
        "source_commit": "abc",
        "pipeline_run": "42",
        "use_azure_cli_auth": "true",
    }


def test_redacted_argv_masks_secret_looking_vars_only():
    argv = [
        "packer",
        "-var=client_secret=IFSECRET-1",
        "-var=winrm_password=IFSECRET-2",
        "-var=access_token=IFSECRET-3",
        "-var=ssh_private_key=IFSECRET-4",
        "-var=image_version=1.0.0",
        "-var=sandbox_private_key_file=/tmp/key",
        "build/x",
    ]
    assert redacted_argv(argv) == [
        "packer",
        "-var=client_secret=***",
        "-var=winrm_password=***",
        "-var=access_token=***",
        "-var=ssh_private_key=***",
        "-var=image_version=1.0.0",
        "-var=sandbox_private_key_file=/tmp/key",
        "build/x",
    ]


# --- the real Packer -------------------------------------------------------------------------

TINY = """
variable "image_version" {
  type = string
}

source "null" "tiny" {
  communicator = "none"
}

build {
  sources = ["source.null.tiny"]

  provisioner "shell-local" {
    inline = ["echo building ${var.image_version}", "%s"]
  }

  post-processor "manifest" {
    output      = "manifest.json"
    custom_data = { version = var.image_version }
  }
}
"""


def tiny_template(directory: Path, last_command: str = "true") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tiny.pkr.hcl").write_text(TINY % last_command)
    return directory


def real_packer(packer_path: str, cwd: Path, console: io.StringIO | None = None) -> Packer:
    return Packer(binary=packer_path, cwd=cwd, runner=SubprocessRunner(console=console))


def test_real_packer_version(packer_path):
    assert real_packer(packer_path, REPO).version() >= (1, 6, 6)


def test_real_build_returns_the_artifact_of_this_run_and_logs_the_output(packer_path, tmp_path):
    directory = tiny_template(tmp_path / "tiny")
    manifest, log = directory / "manifest.json", tmp_path / "logs" / "packer.log"
    write_manifest(manifest)  # stale, from "an earlier build"
    console = io.StringIO()
    artifact = real_packer(packer_path, directory, console).build(
        directory,
        {"image_version": "1.0.7"},
        only="null.tiny",
        manifest=manifest,
        log_path=log,
        env=clean_env(),
    )
    assert artifact == Artifact("null", "Null", {"version": "1.0.7"})
    assert "building 1.0.7" in log.read_text()
    assert console.getvalue() == log.read_text()
    assert "\x1b[" not in log.read_text()  # -color=false


def test_real_build_failure_is_a_packer_error_naming_the_log(packer_path, tmp_path):
    directory = tiny_template(tmp_path / "tiny", last_command="exit 3")
    log = tmp_path / "packer.log"
    with pytest.raises(PackerError) as err:
        real_packer(packer_path, directory, io.StringIO()).build(
            directory,
            {"image_version": "1.0.7"},
            only="null.tiny",
            manifest=directory / "manifest.json",
            log_path=log,
            env=clean_env(),
        )
    assert str(err.value) == f"packer build of tiny failed (exit 1) (log: {log})"
    assert "non-zero exit status: 3" in log.read_text()


def test_real_validate_refuses_the_plugin_profile_on_packer_1_6(packer_path, tmp_path):
    # Why the plugin profile needs its own lint: Packer < 1.7 cannot validate it at all.
    packer = real_packer(packer_path, REPO)
    if packer.version() >= (1, 7, 0):
        pytest.skip("this Packer can validate the plugin profile")
    image = load_image_file(REPO / "images" / "windows-2022.pkrvars.hcl", repo_root=REPO)
    Renderer(Site(root=REPO)).render(image, PROFILES["plugin"], tmp_path)
    with pytest.raises(PackerError, match='Blocks of type "required_plugins" are not expected'):
        packer.validate(tmp_path, {"image_version": "0.0.1"})


def test_the_manifest_path_of_a_rendered_build_is_relative_to_the_repository(no_azure_env):
    # Packer runs with cwd = the repository, so build/<image>/manifest.json lands where
    # the pipeline reads it.
    image = load_image_file(REPO / "images" / "debian-12.pkrvars.hcl", repo_root=REPO)
    text = Renderer(Site(root=REPO)).render_text(image, PROFILES["builtin"])["build.pkr.hcl"]
    assert 'output     = "build/debian-12/manifest.json"' in text


def test_validating_the_plugin_profile_on_packer_1_7_inits_its_plugins_first(
    fake_binary, tmp_path, no_azure_env
):
    from imageforge.pipeline import validate

    image = load_image_file(REPO / "images" / "debian-12.pkrvars.hcl", repo_root=REPO)
    result = Renderer(Site(root=REPO)).render(image, PROFILES["plugin"], tmp_path)
    recorder = Recorder(output="Packer v1.9.4\n")
    report = validate.validate_rendered(
        Site(root=REPO), image, result, packer_with(fake_binary, recorder)
    )
    assert [call["argv"][1] for call in recorder.calls] == ["fmt", "version", "init", "validate"]
    assert recorder.calls[2]["argv"][2:] == [str(tmp_path)]
    assert "packer validate (1.9.4)" in report.checks
