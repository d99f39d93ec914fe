"""What the sandbox cannot do, said clearly, through the real `invoke` CLI.

Each case ends in one line on stderr (``error: ...``) that says what is wrong and what to do,
a non-zero exit and no traceback: a base image the sandbox cannot provide, a Windows image, a
VM size or region the image does not allow, the sandbox not running, and a user who is not
root. Tests that need a running sandbox start their own (the inert machine backend: these are
ARM answers, no VM has to boot, so none is marked ``sandbox``) in a tmp state dir on a free
port and stop it again. The not-root case switches to ``nobody`` when run as root.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import INVOKE, CliResult, cli_env, copy_tree, edit, free_port, run_invoke
from sandbox_build_helpers import (
    NOBODY,
    STATE_DIRS,
    as_user,
    assert_one_line_error,
    emulator_pids,
    nothing_of_the_sandboxes_left_after_the_session,  # noqa: F401 - autouse, session end
    own_sandbox,
    site_for,
)

from imageforge import tags
from imageforge.azure import gallery, testvm
from imageforge.config import load_image_file
from imageforge.pipeline.session import open_session

NOT_RUNNING = "error: the sandbox is not running: start it with `invoke sandbox.up`"
NOT_ROOT = (
    "error: the sandbox needs root: it runs VMs as chroots with their own namespaces and "
    "mounts; run as root"
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository shared by tests that must fail before writing anything."""
    return copy_tree(tmp_path_factory.mktemp("bad-input") / "repo")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the repository a test may edit."""
    return copy_tree(tmp_path / "repo")


def _nothing_started(repo: Path, state_dir: Path) -> None:
    """No sandbox was started for the refused command and nothing was rendered."""
    assert not state_dir.exists(), f"a refused command created the sandbox state {state_dir}"
    assert emulator_pids(state_dir) == []
    assert not (repo / "build").exists(), "a refused command wrote build/"


def _invoke_without_sandbox(repo: Path, tmp_path: Path, *args: str) -> CliResult:
    """`invoke *args` pointed at a state dir where no sandbox runs (nor may start)."""
    state_dir = tmp_path / "sandbox"
    STATE_DIRS.append(state_dir)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return run_invoke(repo, *args, env=cli_env(home, state_dir, free_port()))


# -- what the sandbox cannot run ----------------------------------------------------------------


def test_a_base_image_the_sandbox_cannot_provide(pristine, tmp_path):
    result = _invoke_without_sandbox(pristine, tmp_path, "build", "--image", "ubuntu-24.04")
    assert_one_line_error(
        result,
        "ubuntu-24.04: the sandbox cannot provide base image Canonical:ubuntu-24_04-lts:server; "
        "it supports only Debian:debian-12:12-gen2, Debian:debian-12:12",
    )
    _nothing_started(pristine, tmp_path / "sandbox")


@pytest.mark.parametrize(
    "selection",
    [
        ("--image", "windows-2022"),
        ("--image", "windows-2022", "--target", "sandbox"),
        ("--os", "windows"),
    ],
    ids=["by-name", "by-name-explicit-target", "by-os"],
)
def test_a_windows_image_on_the_sandbox(pristine, tmp_path, selection):
    result = _invoke_without_sandbox(pristine, tmp_path, "build", *selection)
    assert_one_line_error(
        result,
        "windows-2022: Windows cannot run in the sandbox (its VMs are Linux chroots); build it "
        "with --target azure",
    )
    _nothing_started(pristine, tmp_path / "sandbox")


# -- sizes and regions the image does not allow ---------------------------------------------------


def test_a_build_size_outside_the_allowed_sizes(repo, tmp_path):
    image_file = repo / "images" / "debian-12.pkrvars.hcl"
    edit(image_file, 'vm_size          = "Standard_D2s_v5"', 'vm_size = "Standard_E64s_v5"')
    result = _invoke_without_sandbox(repo, tmp_path, "build", "--image", "debian-12")
    assert_one_line_error(
        result, f"{image_file}: build.vm_size: 'Standard_E64s_v5' is not in build.allowed_vm_sizes"
    )
    _nothing_started(repo, tmp_path / "sandbox")


def test_a_build_region_outside_the_target_regions(repo, tmp_path):
    image_file = repo / "images" / "debian-12.pkrvars.hcl"
    edit(image_file, 'region           = "westeurope"', 'region = "eastus"')
    result = _invoke_without_sandbox(repo, tmp_path, "build", "--image", "debian-12")
    assert_one_line_error(
        result,
        f"{image_file}: target_regions: must include the build region 'eastus' (Azure "
        "publishes there first)",
    )
    _nothing_started(repo, tmp_path / "sandbox")


def _publish_a_version(repo: Path, tmp_path: Path, settings, version: str = "1.0.0") -> None:  # type: ignore[no-untyped-def]
    """A version of debian-12 in the sandbox gallery, captured from a (machine-less) build VM."""
    site = site_for(settings, tmp_path, root=repo)
    image = load_image_file(repo / "images" / "debian-12.pkrvars.hcl", repo_root=repo)
    with open_session(site, "sandbox") as session:
        gallery.ensure_gallery(session)
        gallery.ensure_image_definition(session, image)
        with testvm.sandbox_build_vm(session, image, run_id="bad-input", wait=False) as build:
            testvm.capture_version(session, image, version, build, tags={tags.STAGE: "built"})


def test_a_test_vm_size_that_cannot_boot_the_image(repo, tmp_path):
    """debian-12 is a gen2 image; Azure (and the sandbox) refuse to boot it on an A v2 size."""
    image_file = repo / "images" / "debian-12.pkrvars.hcl"
    with own_sandbox(tmp_path / "sandbox", backend="inert") as settings:
        _publish_a_version(repo, tmp_path, settings)
        edit(image_file, 'vm_size            = "Standard_B2s"', 'vm_size = "Standard_A2_v2"')
        env = cli_env(
            tmp_path / "home",
            settings.state_dir,
            settings.port,
            {"INVOKE_IMAGEFORGE_SANDBOX_BACKEND": "inert"},
        )
        result = run_invoke(
            repo, "test-image", "--image", "debian-12", "--version", "1.0.0", env=env
        )
        line = assert_one_line_error(
            result,
            "creating virtual machine testvm in rg-imageforge-test-debian-12-",
            "BadRequest: The selected VM size 'Standard_A2_v2' cannot boot Hypervisor "
            "Generation '2'",
        )
        group = line.split("creating virtual machine testvm in ", 1)[1].split(":", 1)[0]
        versions = run_invoke(repo, "versions", "--image", "debian-12", env=env)
        assert versions.returncode == 0, versions
        assert "not tested" in versions.stdout, versions
        with open_session(site_for(settings, tmp_path, root=repo), "sandbox") as session:
            groups = [g.name for g in session.resource.resource_groups.list()]
        assert group not in groups, "the refused test VM's resource group was left behind"


def test_a_region_outside_the_target_regions(pristine, tmp_path):
    with own_sandbox(tmp_path / "sandbox", backend="inert") as settings:
        env = cli_env(
            tmp_path / "home",
            settings.state_dir,
            settings.port,
            {"INVOKE_IMAGEFORGE_SANDBOX_BACKEND": "inert"},
        )
        result = run_invoke(
            pristine,
            "promote", "--image", "debian-12", "--version", "1.0.0", "--regions", "eastus",
            env=env,
        )  # fmt: skip
        image_file = pristine / "images" / "debian-12.pkrvars.hcl"
        assert_one_line_error(
            result,
            f"{image_file}: target_regions: region 'eastus' is not a target region of image "
            "debian-12 (westeurope, northeurope, swedencentral)",
        )
        result = run_invoke(
            pristine,
            "promote", "--image", "debian-12", "--version", "1.0.0", "--regions", "atlantis",
            env=env,
        )  # fmt: skip
        assert_one_line_error(
            result,
            "--regions: 'atlantis' is not an Azure region (target regions of image debian-12: "
            "westeurope, northeurope, swedencentral)",
        )


# -- no sandbox, no root ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("versions", "--image", "debian-12"),
        ("test-image", "--image", "debian-12", "--version", "1.0.0"),
        ("replicate", "--image", "debian-12", "--version", "1.0.0"),
        ("promote", "--image", "debian-12", "--version", "1.0.0"),
        ("cleanup",),
    ],
    ids=lambda args: args[0],
)
def test_the_sandbox_not_running(pristine, tmp_path, args):
    result = _invoke_without_sandbox(pristine, tmp_path, *args)
    assert assert_one_line_error(result) == NOT_RUNNING
    _nothing_started(pristine, tmp_path / "sandbox")
    status = _invoke_without_sandbox(pristine, tmp_path, "sandbox.status")
    assert status.returncode == 0, status
    assert status.stdout.startswith("sandbox: not running"), status


@pytest.mark.parametrize(
    "args", [("sandbox.up",), ("build", "--image", "debian-12")], ids=["sandbox.up", "build"]
)
def test_not_root(tmp_path, args):
    """As `nobody` (with a HOME it can write), starting the sandbox says what it needs."""
    repo = copy_tree(tmp_path / "repo")
    own = tmp_path / "nobody"
    own.mkdir()
    (own / "home").mkdir()
    for path in (own, own / "home"):
        os.chown(path, NOBODY, NOBODY)
    state_dir = own / "sandbox"
    STATE_DIRS.append(state_dir)
    env = cli_env(
        own / "home",
        state_dir,
        free_port(),
        {
            "INVOKE_IMAGEFORGE_BUILD_DIR": str(own / "build"),
            "INVOKE_IMAGEFORGE_REPORTS_DIR": str(own / "reports"),
        },
    )
    # root switches to nobody; anyone else is not root already
    with as_user(NOBODY, Path(sys.executable), INVOKE, repo, own) as prefix:
        if os.geteuid() != 0:
            prefix = []
        uid = subprocess.run([*prefix, "id", "-u"], capture_output=True, text=True, check=True)
        assert uid.stdout.strip() == str(NOBODY if os.geteuid() == 0 else os.geteuid())
        result = run_invoke(repo, *args, env=env, prefix=prefix)
    assert assert_one_line_error(result) == NOT_ROOT
    assert not state_dir.exists()
    assert emulator_pids(state_dir) == []
    assert not (own / "build").exists(), "the build rendered before saying what it needs"
