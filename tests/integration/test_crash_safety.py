"""A build killed while its test VM is being deployed or while Testinfra runs leaves nothing
behind, and the version it built cannot be promoted.

`invoke build --image debian-12` runs in its own process group on a sandbox of this module and
is killed like Ctrl-C (SIGINT) or like a CI agent cancelling a job (SIGKILL) to the whole group:

- during test-VM deployment: the emulator delays the PUT of the test VM (a latency fault), and
  the signal goes out as soon as that request has arrived;
- during Testinfra: the signal goes out once the suite has reported its first checks.

SIGINT: the build's own cleanup deletes the test resource group and exits 130. SIGKILL: the
group stays (it carries `imageforge.expires`; the builds here run with a TTL of 0 hours so it has
expired at once) and `invoke cleanup` deletes it. Either way afterwards: no throw-away resource
group (listed with the SDK), no VM in the emulator, no VM process, nothing of the sandbox in
/proc/mounts, and `invoke promote` refuses the version because it was never tested. The module
ends with `invoke sandbox.reset`, checked the same way.

The image definition in this module's copy runs one provisioner (the marker; generalization
always runs): what is under test is the wrapper's cleanup, not the provisioning.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import E2eSandbox, built_version, group_alive, kill_group, module_sandbox
from helpers.cli import edit, wait_for

from imageforge import tags

pytestmark = pytest.mark.sandbox

IMAGE = "debian-12"
DEPLOY_DELAY = 6.0
#: The PUT that creates the test VM (not the build VM: that group is rg-imageforge-build-...).
TEST_VM_PUT = (
    r"/resourceGroups/rg-imageforge-test-[^/]+/providers/Microsoft\.Compute/virtualMachines/"
)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2eSandbox]:
    root = tmp_path_factory.mktemp("crash")
    with module_sandbox(root, extra_env={"INVOKE_IMAGEFORGE_TEST_VM_TTL_HOURS": "0"}) as sandbox:
        definition = sandbox.repo / "images" / f"{IMAGE}.pkrvars.hcl"
        text = definition.read_text(encoding="utf-8")
        listed = re.search(r"(?ms)^provisioners = \[\n.*?^\]\n", text)
        assert listed, "no provisioners list in the image definition"
        edit(definition, listed.group(0), 'provisioners = ["configure-image-marker.sh"]\n')
        up = sandbox.invoke("sandbox.up", timeout=120)
        assert up.returncode == 0, up.tail()
        yield sandbox


def _log_text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _deploying(box: E2eSandbox, log: Path, proc) -> bool:
    assert proc.poll() is None, (
        f"the build ended before its test VM was deployed:\n{_log_text(log)}"
    )
    return any(rule["hits"] for rule in box.faults())


def _testing(log: Path, proc) -> bool:
    text = _log_text(log)
    assert proc.poll() is None, f"the build ended before Testinfra ran:\n{text[-3000:]}"
    return bool(re.search(r"test_admin_user\.py \.", text))


@pytest.mark.parametrize("phase", ["deploy", "testinfra"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_killed_build_leaves_nothing_behind(box, tmp_path, sig, phase):
    box.clear_faults()
    if phase == "deploy":
        box.add_faults(
            [{"kind": "latency", "method": "PUT", "path": TEST_VM_PUT, "seconds": DEPLOY_DELAY}]
        )
    log = tmp_path / "build.log"
    proc = box.start("build", "--image", IMAGE, log_path=log)
    try:
        if phase == "deploy":
            wait_for(lambda: _deploying(box, log, proc), timeout=300, what="the test VM's PUT")
            hit = time.monotonic()
            assert " test VM " not in _log_text(log), "the test VM was deployed already"
        else:
            wait_for(lambda: _testing(log, proc), timeout=300, what="Testinfra's first checks")
        kill_group(proc, sig)
        returncode = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            kill_group(proc, signal.SIGKILL)
            proc.wait(timeout=30)
    output = _log_text(log)
    version = built_version(output, IMAGE)
    assert f"{IMAGE}: published {version}" in output
    wait_for(lambda: not group_alive(proc.pid), timeout=30, what="the build's processes to end")
    if phase == "deploy":
        # let the delayed PUT reach the emulator's handler before judging what it left
        time.sleep(max(0.0, hit + DEPLOY_DELAY + 1.0 - time.monotonic()))
    admin = box.admin()
    assert admin is not None
    wait_for(
        lambda: admin.call("GET", "/_sandbox/status")["operationsInProgress"] == 0,
        timeout=60,
        what="the sandbox's operations to finish",
    )

    if sig == signal.SIGINT:
        assert returncode == 130, output[-3000:]
        assert output.rstrip().splitlines()[-1] == "interrupted", output[-3000:]
        assert "Traceback" not in output
        assert box.throwaway_groups() == [], "Ctrl-C left the test VM's resource group"
    else:
        assert returncode == -signal.SIGKILL
        assert len(box.throwaway_groups("test")) == 1, "SIGKILL should have left the test group"
    left_by_kill = box.throwaway_groups()

    cleanup = box.invoke("cleanup")
    assert cleanup.returncode == 0, cleanup.tail()
    deleted = ", ".join(left_by_kill)
    assert cleanup.stdout.strip() == (
        f"cleanup: deleted {len(left_by_kill)} expired resource group(s)"
        + (f": {deleted}" if deleted else "")
    )
    left = box.settled_leftovers(timeout=60)
    assert left.empty, f"after `invoke cleanup` the sandbox still holds {left}"

    version_tags = box.version_tags(IMAGE, version)
    assert version_tags[tags.STAGE] == "built"
    assert tags.TESTS_PASSED not in version_tags
    promote = box.invoke("promote", "--image", IMAGE, "--version", version)
    assert promote.returncode == 1, promote.tail()
    assert promote.stderr.count("\n") == 1 and "Traceback" not in promote.output
    assert promote.stderr.startswith(
        f"error: promote refused for image {IMAGE} version {version}: "
        "stage is built, not tested or replicated; no passing test result is recorded"
    ), promote.stderr
    assert box.version_tags(IMAGE, version)[tags.STAGE] == "built"
