"""The real `invoke` CLI, run as a subprocess in a private copy of the repository.

Bad input must end in one line on stderr that names the file, key or value at fault, a
non-zero exit, no traceback, and nothing written to build/. `invoke validate` must render and
validate every shipped image in both profiles with the installed Packer; `invoke build
--dry-run` must print the plan and change nothing.
"""

from __future__ import annotations

import json
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import REPO, CliResult, clean_env, edit
from spine_helpers import IMAGE_NAMES, copy_tree, run_invoke

from imageforge.site import Site

GOLDEN = Path(__file__).parent / "golden"


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.returncode != 0, result.output
    assert "Traceback" not in result.output, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy shared by tests that must fail before writing anything (build/ stays absent)."""
    return copy_tree(tmp_path_factory.mktemp("pristine") / "repo")


@pytest.fixture(autouse=True)
def _pristine_stays_pristine(request: pytest.FixtureRequest):
    yield
    if "pristine" in request.fixturenames:
        repo = request.getfixturevalue("pristine")
        assert not (repo / "build").exists(), "a failing task wrote build/"


# --- bad input -------------------------------------------------------------------------------


def test_unknown_os(pristine):
    result = run_invoke(pristine, "validate", "--os", "beos")
    assert_one_line_error(result, "unknown --os 'beos': expected linux, windows or all")


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_os_is_an_error_not_every_image(pristine, empty):
    """`--os ""` (an unset pipeline variable) once built every image."""
    result = run_invoke(pristine, "build", "--os", empty, "--dry-run")
    assert_one_line_error(result, "--os is empty: expected linux, windows or all")
    assert "would build" not in result.stdout


def test_a_version_with_spaces_is_an_error(pristine):
    result = run_invoke(
        pristine, "build", "--image", "debian-12", "--version", " 1.0.0", "--dry-run"
    )
    assert_one_line_error(result, "--version")
    assert "would build" not in result.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--version", "1.0.0", "--regions", "westeurope"],
         ["--regions: westeurope is the build region of image",
          "smoke-tested regions: northeurope, swedencentral"]),
        (["--version", "1.0.0", "--regions", "atlantis"],
         ["region 'atlantis' is not a target region of image"]),
        (["--version", "1.0"], ["--version: invalid version '1.0'"]),
    ],
)  # fmt: skip
def test_smoke_test_refuses_bad_input_before_it_starts_anything(pristine, args, fragments):
    result = run_invoke(pristine, "smoke-test", "--image", "debian-12", *args)
    assert_one_line_error(result, *fragments)


def test_unknown_image(pristine):
    result = run_invoke(pristine, "render", "--image", "debian-13", "--profile", "builtin")
    assert_one_line_error(
        result,
        "unknown --image 'debian-13'",
        "has debian-12, debian-12-hardened, ubuntu-24.04, windows-2022",
    )


def test_unknown_profile(pristine):
    result = run_invoke(pristine, "render", "--profile", "packer2")
    assert_one_line_error(result, "unknown --profile 'packer2': expected one of builtin, plugin")


def test_unknown_target(pristine):
    result = run_invoke(pristine, "build", "--target", "gcp", "--dry-run")
    assert_one_line_error(result, "unknown --target 'gcp'")


@pytest.mark.parametrize(
    ("version", "why"),
    [
        ("1.2", "expected Major.Minor.Patch"),
        ("1.2.3.4", "expected Major.Minor.Patch"),
        ("-1.0.0", "expected Major.Minor.Patch"),
        ("2147483648.0.0", "each part must be at most 2147483647"),
    ],
)
def test_invalid_versions(pristine, version, why):
    result = run_invoke(pristine, "build", f"--version={version}", "--dry-run")
    assert_one_line_error(result, f"--version: invalid version '{version}'", why)


def test_malformed_hcl_in_an_image_file(repo_copy):
    image = repo_copy / "images" / "ubuntu-24.04.pkrvars.hcl"
    edit(image, 'os             = "linux"', 'os = = "linux"')
    result = run_invoke(repo_copy, "validate")
    assert_one_line_error(result, f"{image}: line 3, column 6: malformed HCL")
    assert not (repo_copy / "build").exists()


def test_a_missing_required_key(repo_copy):
    image = repo_copy / "images" / "debian-12.pkrvars.hcl"
    edit(image, 'version_scheme = "semver"\n', "")
    result = run_invoke(repo_copy, "render", "--profile", "plugin")
    assert_one_line_error(result, f"{image}: version_scheme: required key is missing")
    assert not (repo_copy / "build").exists()


@pytest.mark.parametrize("replicas", ["0", "101"])
def test_a_replica_count_out_of_range(repo_copy, replicas):
    image = repo_copy / "images" / "debian-12.pkrvars.hcl"
    edit(image, "replicas = 2", f"replicas = {replicas}")
    result = run_invoke(repo_copy, "build", "--image", "debian-12", "--dry-run")
    assert_one_line_error(
        result, f"{image}: target_regions[1].replicas: {replicas} is out of range 1..100"
    )
    assert not (repo_copy / "build").exists()


def test_a_windows_image_with_ssh(repo_copy):
    image = repo_copy / "images" / "windows-2022.pkrvars.hcl"
    edit(image, 'type     = "winrm"', 'type     = "ssh"')
    result = run_invoke(repo_copy, "validate", "--os", "windows")
    assert_one_line_error(
        result,
        f"{image}: communicator.type: a windows image must use the winrm communicator, not ssh",
    )
    assert not (repo_copy / "build").exists()


def test_a_template_with_an_undefined_variable(repo_copy):
    edit(repo_copy / "templates" / "locals.pkr.hcl.j2", "locals {", "locals {\n  x = {{ nope }}")
    result = run_invoke(repo_copy, "validate")
    assert_one_line_error(
        result, "locals.pkr.hcl.j2:3: undefined variable while rendering debian-12: 'nope'"
    )
    assert not (repo_copy / "build").exists()


def test_promote_refuses_a_reason_holding_a_pipeline_macro(pristine):
    # Refused before anything is read from Azure or the sandbox: the reason would become a tag.
    result = run_invoke(
        pristine, "promote", "--image", "debian-12", "--version", "1.0.0",
        "--reason", "$(System.AccessToken)",
    )  # fmt: skip
    assert_one_line_error(result, "--reason contains '$('", "write it without '$('")
    assert "System.AccessToken" not in result.stdout


@pytest.mark.parametrize("timeout", ["abc", "0", "-5", "1.5"])
def test_replicate_timeout_must_be_whole_seconds(pristine, timeout):
    result = run_invoke(
        pristine, "replicate", "--image", "debian-12", "--version", "1.0.0", "--timeout", timeout
    )
    assert_one_line_error(result, f"--timeout: {timeout!r} is not a positive number of seconds")


@pytest.mark.parametrize("value", ["0", "two"])
def test_build_refuses_a_bad_parallel_before_starting_anything(pristine, value):
    result = run_invoke(pristine, "build", "--os", "linux", "--parallel", value)
    assert_one_line_error(result, f"--parallel: {value!r} is not a positive number of images")


def test_packer_not_installed_by_setting(pristine):
    result = run_invoke(
        pristine, "validate", env={"INVOKE_IMAGEFORGE_PACKER": "/nonexistent/packer"}
    )
    assert_one_line_error(
        result, "Packer is not installed (no '/nonexistent/packer' on PATH): run `invoke setup`"
    )


def test_packer_not_on_path(pristine, tmp_path):
    result = run_invoke(pristine, "build", "--image", "debian-12", "--dry-run",
                        env={"PATH": str(tmp_path)})  # fmt: skip
    assert_one_line_error(result, "Packer is not installed (no 'packer' on PATH)")


def test_an_unknown_setting_names_it(pristine):
    (pristine / "invoke.yaml").write_text("imageforge:\n  colour: blue\n")
    try:
        result = run_invoke(pristine, "render", "--profile", "builtin")
    finally:
        (pristine / "invoke.yaml").unlink()
    assert_one_line_error(result, "imageforge.colour: unknown setting")


def test_windows_on_the_sandbox_says_why(pristine):
    result = run_invoke(pristine, "build", "--image", "windows-2022", "--dry-run")
    assert_one_line_error(result, "windows-2022: Windows cannot run in the sandbox")


# --- what works ------------------------------------------------------------------------------


def test_render_needs_no_packer_when_the_profile_is_given(repo_copy, tmp_path):
    result = run_invoke(repo_copy, "render", "--profile", "plugin", env={"PATH": str(tmp_path)})
    assert result.returncode == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "debian-12: rendered (plugin profile) -> build/debian-12/ [packer.pkr.hcl, "
        "variables.pkr.hcl, locals.pkr.hcl, sources.pkr.hcl, build.pkr.hcl]"
    )


def test_validate_renders_and_validates_every_image_in_both_profiles(packer_path, repo_copy):
    result = run_invoke(repo_copy, "validate")
    assert result.returncode == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 2 * len(IMAGE_NAMES)
    for name in IMAGE_NAMES:
        builtin = next(ln for ln in lines if ln.startswith(f"{name} [builtin]: ok ("))
        assert "hcl2 parse" in builtin and "packer fmt -check" in builtin
        assert "packer validate (1.6." in builtin
        plugin = next(ln for ln in lines if ln.startswith(f"{name} [plugin]: ok ("))
        assert "plugin option lint" in plugin and "packer validate" not in plugin
        for path in (GOLDEN / "builtin" / name).iterdir():
            assert (repo_copy / "build" / name / path.name).read_bytes() == path.read_bytes()


def test_validate_fails_on_an_undocumented_plugin_option(packer_path, repo_copy):
    # A template change that adds an option only to the plugin profile, which Packer 1.6.6
    # cannot validate: the option lint is what catches it.
    edit(
        repo_copy / "builders" / "_azure-arm.j2",
        '  ("vm_size", image.build.vm_size),\n',
        '  ("vm_size", image.build.vm_size),\n'
        '  ("os_disk_encryption", True if profile.name == "plugin" else None),\n',
    )
    result = run_invoke(repo_copy, "validate", "--image", "debian-12")
    assert_one_line_error(
        result,
        "sources.pkr.hcl: azure-arm.debian-12: 'os_disk_encryption' is not a documented "
        "azure-arm option",
    )


def test_validate_does_not_depend_on_credentials_in_the_environment(packer_path, repo_copy):
    result = run_invoke(
        repo_copy, "validate", "--image", "debian-12", env={"ARM_CLIENT_ID": "some-app-id"}
    )
    assert result.returncode == 0, result.output


def test_build_dry_run_prints_the_plan_and_changes_nothing(packer_path, repo_copy):
    result = run_invoke(repo_copy, "build", "--image", "debian-12", "--dry-run")
    assert result.returncode == 0, result.output
    out = result.stdout
    assert "target: sandbox (no Azure subscription is configured)" in out
    assert (
        "debian-12: would build version 1.0.0 "
        "(gallery not reachable: assuming no existing versions)" in out
    )
    assert "files: build/debian-12/packer.pkr.hcl, build/debian-12/variables.pkr.hcl" in out
    packer_line = next(ln for ln in out.splitlines() if ln.startswith("  packer: "))
    argv = shlex.split(packer_line.removeprefix("  packer: "))
    assert argv[1:5] == [
        "build",
        "-color=false",
        "-on-error=cleanup",
        "-only=debian-12.null.debian-12",
    ]
    assert "-var=image_version=1.0.0" in argv and "-var=use_azure_cli_auth=true" in argv
    assert argv[-1] == "build/debian-12"
    assert out.rstrip().endswith("dry run: nothing was built, published or changed")
    plan = json.loads((repo_copy / "build" / "debian-12" / "plan.json").read_text())
    assert plan["version"] == "1.0.0"
    assert plan["packer_argv"] == argv
    # nothing started: no sandbox state, no manifest, no log, no version reserved
    assert not (repo_copy.parent / "sandbox-state").exists()
    assert sorted(p.name for p in (repo_copy / "build" / "debian-12").iterdir()) == sorted(
        [*(p.name for p in (GOLDEN / "builtin" / "debian-12").iterdir()), "plan.json"]
    )


def test_build_dry_run_stops_at_what_only_packer_validate_refuses(packer_path, repo_copy):
    # parses as HCL and is `packer fmt` clean: only `packer validate` refuses it
    edit(
        repo_copy / "templates" / "locals.pkr.hcl.j2",
        "  # Tags on the published version",
        "  refused = var.undeclared\n\n  # Tags on the published version",
    )
    result = run_invoke(repo_copy, "build", "--image", "debian-12", "--dry-run")
    assert_one_line_error(
        result,
        f"packer validate {repo_copy / 'build' / 'debian-12'} failed: ",
        'does not have an attribute named "undeclared"',
    )
    assert "would build" not in result.stdout
    assert not (repo_copy / "build" / "debian-12" / "plan.json").exists()


def test_build_dry_run_for_linux_on_the_sandbox_skips_what_the_sandbox_cannot_boot(
    packer_path, repo_copy
):
    result = run_invoke(repo_copy, "build", "--os", "linux", "--dry-run")
    assert result.returncode == 0, result.output
    assert "note: skipping ubuntu-24.04: the sandbox cannot provide base image" in result.stdout
    assert "debian-12: would build version 1.0.0" in result.stdout
    assert "ubuntu-24.04: would build" not in result.stdout


def test_build_on_the_sandbox_refuses_an_image_named_that_it_cannot_boot(repo_copy):
    result = run_invoke(repo_copy, "build", "--image", "ubuntu-24.04", "--dry-run")
    assert_one_line_error(result, "ubuntu-24.04: the sandbox cannot provide base image")


def test_build_dry_run_takes_the_version_given(packer_path, repo_copy):
    result = run_invoke(
        repo_copy, "build", "--image", "debian-12", "--version", "1.4.0", "--dry-run"
    )
    assert result.returncode == 0, result.output
    assert "debian-12: would build version 1.4.0 (from --version)" in result.stdout


def test_build_dry_run_with_the_date_scheme_uses_the_build_id(packer_path, repo_copy):
    edit(repo_copy / "images" / "debian-12.pkrvars.hcl", '"semver"', '"date"')
    result = run_invoke(
        repo_copy, "build", "--image", "debian-12", "--dry-run", env={"BUILD_BUILDID": "4711"}
    )
    assert result.returncode == 0, result.output
    assert ".4711 (gallery not reachable" in result.stdout
    assert "-var=pipeline_run=4711" in result.stdout


def test_build_dry_run_plans_the_on_error_mode_given(packer_path, repo_copy):
    result = run_invoke(
        repo_copy, "build", "--image", "debian-12", "--dry-run", "--on-error", "abort"
    )
    assert result.returncode == 0, result.output
    assert " -on-error=abort " in result.stdout


def test_build_refuses_an_unknown_on_error_mode_up_front(repo_copy):
    result = run_invoke(
        repo_copy, "build", "--image", "debian-12", "--dry-run", "--on-error", "explode"
    )
    assert_one_line_error(result, "unknown --on-error 'explode'")
    assert not (repo_copy / "build").exists()


# --- the task list and the settings ----------------------------------------------------------


def test_invoke_list_shows_every_task(pristine):
    result = run_invoke(pristine, "--list")
    assert result.returncode == 0, result.output
    names = {ln.split()[0] for ln in result.stdout.splitlines()[2:] if ln.startswith("  ") and
             not ln.startswith("   ")}  # fmt: skip
    assert {"build", "render", "validate", "promote", "sandbox.up", "setup"} <= names


def test_loading_tasks_py_imports_nothing_heavy():
    heavy = ("imageforge", "jinja2", "hcl2", "lark", "azure", "rich", "starlette", "uvicorn")
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "tasks.py")],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    )
    assert proc.stdout.strip() == "[]"


def test_the_heap_is_frozen_after_the_last_exit_handler():
    # Python's finalization would otherwise run full collections over everything a task
    # imported (~0.4 s with the Azure SDKs). The check is registered before tasks.py loads, so
    # it runs after tasks.py's handler, as the interpreter's own finalization would.
    code = (
        "import atexit, gc, runpy, sys; "
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0)); "
        "runpy.run_path(sys.argv[1])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "tasks.py")],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    )
    assert proc.stdout.strip() == "frozen True"


def test_every_declared_setting_is_a_site_field_with_the_same_default():
    declared = runpy.run_path(str(REPO / "tasks.py"))["ns"].configuration()["imageforge"]
    site = Site.from_config(declared, REPO)
    defaults = Site(root=REPO)
    for key, value in declared.items():
        if key not in ("sandbox",):
            assert getattr(site, key) == getattr(defaults, key) == value, key
