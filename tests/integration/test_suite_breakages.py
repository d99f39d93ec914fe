"""The Linux image suite against deliberately broken hosts: each breakage fails exactly the
checks that name it, and nothing else.

One good debian-12 version is built on a sandbox of this module (`invoke build --skip-tests`),
ONE test VM is deployed from it with the library (imageforge.azure.testvm.deploy_test_vm), and
each breakage is applied over SSH with sudo, the suite is run with imageforge.verify.run_suite,
and the breakage is reverted (and the revert checked) before the next one. The baseline run is
all green.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
from e2e_helpers import E2eSandbox, built_version, junit_outcomes, module_sandbox, not_passed

from imageforge import junit, verify
from imageforge.azure import testvm
from imageforge.azure.testvm import TestVm

pytestmark = pytest.mark.sandbox

IMAGE = "debian-12"
MARKER = "/etc/imageforge-release"
MARKER_TESTS = (
    "test_marker_file_exists",
    "test_marker_names_the_image_under_test",
    "test_marker_names_the_version_under_test",
    "test_marker_records_the_source_commit",
    # the host keys must be younger than the marker: with no marker, it cannot tell
    "test_ssh_host_keys_were_regenerated_after_the_build",
)


@dataclass(frozen=True)
class Breakage:
    """What to do to the host (as root), how to undo it, what must fail."""

    apply: str
    revert: str
    check_reverted: str  # exits 0 once the host is as good as before
    expected: tuple[str, ...]
    version: str | None = None  # run the suite claiming this version instead of the built one


BREAKAGES = {
    "password-login-on": Breakage(
        apply="printf 'PasswordAuthentication yes\\n' > /etc/ssh/sshd_config.d/00-breakage.conf",
        revert="rm -f /etc/ssh/sshd_config.d/00-breakage.conf",
        check_reverted="/usr/sbin/sshd -T | grep -qx 'passwordauthentication no'",
        expected=("test_sshd_setting[passwordauthentication]",),
    ),
    "leftover-shell-history": Breakage(
        apply="printf 'curl -u admin:hunter2 https://example.invalid\\n' > /root/.bash_history",
        revert="rm -f /root/.bash_history",
        check_reverted="test ! -e /root/.bash_history",
        expected=("test_no_shell_histories",),
    ),
    "missing-marker": Breakage(
        apply=f"mv {MARKER} {MARKER}.moved",  # mv keeps the file's mtime for the revert
        revert=f"mv {MARKER}.moved {MARKER}",
        check_reverted=f"test -f {MARKER} && test ! -e {MARKER}.moved",
        expected=MARKER_TESTS,
    ),
    "suite-asked-for-another-version": Breakage(
        apply="true",
        revert="true",
        check_reverted="true",
        expected=("test_marker_names_the_version_under_test",),
        version="9.9.9",
    ),
    "marker-names-another-version": Breakage(
        # keep the marker's mtime: only what it says changes
        apply=(
            f"cp -p {MARKER} {MARKER}.orig && "
            f"sed -i 's/^IMAGEFORGE_VERSION=.*/IMAGEFORGE_VERSION=9.9.9/' {MARKER} && "
            f"touch -r {MARKER}.orig {MARKER}"
        ),
        revert=f"mv {MARKER}.orig {MARKER}",
        check_reverted=f"test ! -e {MARKER}.orig && ! grep -q 9.9.9 {MARKER}",
        expected=("test_marker_names_the_version_under_test",),
    ),
}


class Shell:
    """One SSH connection to the test VM as its admin user; commands run as root via sudo."""

    def __init__(self, vm: TestVm) -> None:
        assert vm.ssh_key_path is not None
        key = paramiko.Ed25519Key.from_private_key_file(str(vm.ssh_key_path))
        self.client = paramiko.SSHClient()
        self.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        self.client.connect(
            vm.host, port=vm.port, username=vm.username, pkey=key,
            allow_agent=False, look_for_keys=False, timeout=15,
        )  # fmt: skip

    def root(self, command: str) -> tuple[int, str]:
        _, stdout, stderr = self.client.exec_command(
            "sudo -n sh -c " + shlex.quote(command), timeout=60
        )
        out = stdout.read().decode() + stderr.read().decode()
        return stdout.channel.recv_exit_status(), out

    def close(self) -> None:
        self.client.close()


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2eSandbox]:
    with module_sandbox(tmp_path_factory.mktemp("breakages")) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def version(box: E2eSandbox) -> str:
    """A good debian-12 version (built and published; the suite below is its test)."""
    result = box.invoke("build", "--image", IMAGE, "--skip-tests", timeout=900)
    assert result.returncode == 0, result.tail()
    return built_version(result.stdout, IMAGE)


@pytest.fixture(scope="module")
def vm(box: E2eSandbox, version: str) -> Iterator[TestVm]:
    with box.session() as session:
        with testvm.deploy_test_vm(
            session, box.image(IMAGE), version, run_id="suite-breakages"
        ) as machine:
            yield machine
    assert box.throwaway_groups() == [], "the test VM's resource group outlived the module"


@pytest.fixture(scope="module")
def shell(vm: TestVm) -> Iterator[Shell]:
    connection = Shell(vm)
    yield connection
    connection.close()


def run_suite(box: E2eSandbox, vm: TestVm, version: str, report_dir: Path) -> junit.SuiteResult:
    return verify.run_suite(
        f"ssh://{vm.username}@{vm.host}:{vm.port}",
        os="linux",
        image_file=box.repo / "images" / f"{IMAGE}.pkrvars.hcl",
        version=version,
        admin_user=vm.username,
        report_dir=report_dir,
        ssh_identity=vm.ssh_key_path,
        repo_root=box.repo,
        echo=lambda line: None,
    )


# -- tests -----------------------------------------------------------------------------------


def test_the_suite_shares_one_ssh_connection_and_closes_it(box, vm, version, tmp_path):
    """The checks ride one multiplexed connection (the per-run ssh_config's ControlPath), and
    the shared connection is gone when the run returns."""
    import subprocess

    result = run_suite(box, vm, version, tmp_path)
    assert result.exit_code == junit.EXIT_PASSED
    masters = subprocess.run(
        ["pgrep", "-af", f"ssh.*{vm.host}"], capture_output=True, text=True
    ).stdout.splitlines()
    assert [m for m in masters if "imageforge-verify-" in m] == []


def test_the_good_version_passes_every_check(box, vm, version, tmp_path):
    result = run_suite(box, vm, version, tmp_path)
    outcomes = junit_outcomes(result.junit_path)
    assert not_passed(outcomes) == {}
    assert result.exit_code == junit.EXIT_PASSED
    assert (result.passed, result.failed, result.errors) == (len(outcomes), 0, 0)
    assert result.passed > 0


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_a_breakage_fails_exactly_its_checks(box, vm, shell, version, tmp_path, name):
    breakage = BREAKAGES[name]
    status, out = shell.root(breakage.apply)
    assert status == 0, f"could not apply {name}: {out}"
    try:
        result = run_suite(box, vm, breakage.version or version, tmp_path)
    finally:
        status, out = shell.root(breakage.revert)
        assert status == 0, f"could not revert {name}: {out}"
    status, out = shell.root(breakage.check_reverted)
    assert status == 0, f"{name} is still in effect after its revert: {out}"
    outcomes = junit_outcomes(result.junit_path)
    for expected in breakage.expected:
        assert expected in outcomes, f"{expected} was not run (ran: {sorted(outcomes)})"
    assert not_passed(outcomes) == dict.fromkeys(breakage.expected, "failed")
    assert result.exit_code == junit.EXIT_FAILED
    assert (result.passed, result.failed, result.errors) == (
        len(outcomes) - len(breakage.expected),
        len(breakage.expected),
        0,
    )
