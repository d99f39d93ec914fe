"""Throw-away build and test VMs against the emulator (inert backend: ARM only, no machine).

What needs a reachable machine (SSH login, a captured image that really boots) is in
test_testvm_sandbox.py, on the chroot backend.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from azure_helpers import REPO, load_image, new_session

from imageforge import tags
from imageforge.azure import gallery, ids, janitor, testvm, vmaccess, vmbodies
from imageforge.azure.clients import Session
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError, ConfigError, SandboxError, VersionError


def _groups_of_run(session: Session, run_id: str) -> list[str]:
    found = session.resource.resource_groups.list(
        filter=f"tagName eq '{tags.RUN}' and tagValue eq '{run_id}'"
    )
    return [g.name for g in found]


def _build_version(session: Session, image: ImageDefinition, version: str) -> str:
    with testvm.sandbox_build_vm(session, image, run_id=f"build-{version}", wait=False) as vm:
        return testvm.capture_version(
            session, image, version, vm, tags={tags.STAGE: "built", "owner": "tests"}
        )


def test_build_vm_then_capture_in_the_build_region_only(arm, session, defined):
    site = session.site
    with testvm.sandbox_build_vm(session, defined, run_id="b-1", wait=False) as vm:
        assert vm.purpose == "build" and vm.username == "packer" and vm.os == "linux"
        assert vm.host.startswith("127.") and vm.port == 2222
        assert vm.region == "westeurope"
        key_dir = vm.ssh_key_path.parent
        assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(vm.ssh_key_path.stat().st_mode) == 0o600
        assert vm.ssh_key_path.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        got = session.compute.virtual_machines.get(vm.resource_group, vm.vm_name).as_dict()
        assert got["id"] == vm.vm_id
        reference = got["properties"]["storageProfile"]["imageReference"]
        assert (reference["publisher"], reference["offer"], reference["sku"]) == (
            "Debian", "debian-12", "12-gen2",
        )  # fmt: skip
        assert got["properties"]["hardwareProfile"]["vmSize"] == "Standard_D2s_v5"
        version_id = testvm.capture_version(
            session, defined, "1.0.0", vm, tags={tags.STAGE: "built", tags.SOURCE_COMMIT: "abc"}
        )
        group = vm.resource_group
    assert version_id == ids.version_id(session, defined, "1.0.0")
    assert not key_dir.exists()
    assert _groups_of_run(session, "b-1") == []
    assert group not in {g.name for g in session.resource.resource_groups.list()}
    info = gallery.get_version(session, defined, "1.0.0")
    assert info.exclude_from_latest and info.target_names == ["westeurope"]
    assert info.tags[tags.IMAGE] == "debian-12" and info.tags[tags.STAGE] == "built"
    assert info.tags[tags.SOURCE_COMMIT] == "abc"
    source = session.compute.gallery_image_versions.get(
        site.resource_group, site.gallery, "debian-12", "1.0.0"
    ).as_dict()["properties"]["storageProfile"]["source"]
    assert source["virtualMachineId"] == vm.vm_id


def test_capture_refuses_an_existing_version_and_a_foreign_region(session, defined):
    _build_version(session, defined, "1.0.0")
    with testvm.sandbox_build_vm(session, defined, run_id="b-2", wait=False) as vm:
        with pytest.raises(VersionError, match="version 1.0.0 of image debian-12 already exists"):
            testvm.capture_version(session, defined, "1.0.0", vm, tags={})
        elsewhere = dataclasses.replace(vm, region="northeurope")
        with pytest.raises(
            ConfigError, match="builds in northeurope but gallery gallery is in westeurope"
        ):
            testvm.capture_version(session, defined, "1.0.1", elsewhere, tags={})


def test_test_vm_boots_the_exact_version_in_its_own_tagged_group(session, defined):
    version_id = _build_version(session, defined, "1.0.0")
    started = dt.datetime.now(dt.UTC)
    with testvm.deploy_test_vm(session, defined, "1.0.0", run_id="t-1", wait=False) as vm:
        assert vm.username == "imageforge" and vm.purpose == "test"
        assert vm.resource_group.startswith("rg-imageforge-test-debian-12-t-1-")
        group = session.resource.resource_groups.get(vm.resource_group)
        assert group.tags[tags.CREATED_BY] == "imageforge"
        assert group.tags[tags.RUN] == "t-1" and group.tags[tags.PURPOSE] == "test"
        expires = dt.datetime.fromisoformat(group.tags[tags.EXPIRES].replace("Z", "+00:00"))
        assert (
            dt.timedelta(hours=5, minutes=59) < expires - started < dt.timedelta(hours=6, minutes=1)
        )
        props = session.compute.virtual_machines.get(vm.resource_group, vm.vm_name).as_dict()[
            "properties"
        ]
        assert props["storageProfile"]["imageReference"]["id"] == version_id
        assert props["storageProfile"]["imageReference"]["exactVersion"] == "1.0.0"
        assert props["hardwareProfile"]["vmSize"] == "Standard_B2s"
        linux = props["osProfile"]["linuxConfiguration"]
        assert linux["disablePasswordAuthentication"] is True
        public = linux["ssh"]["publicKeys"][0]
        assert public["path"] == "/home/imageforge/.ssh/authorized_keys"
        assert public["keyData"].startswith("ssh-ed25519 ")
        assert props["securityProfile"]["securityType"] == "TrustedLaunch"
        nsg = session.network.network_security_groups.get(vm.resource_group, "testvm-nsg")
        rule = nsg.as_dict()["properties"]["securityRules"][0]["properties"]
        assert rule["sourceAddressPrefix"] == "127.0.0.1/32"
        assert rule["destinationPortRange"] == "22" and rule["access"] == "Allow"
        assert "password" not in repr(vm)
        key_dir = vm.ssh_key_path.parent
    assert not key_dir.exists()
    assert _groups_of_run(session, "t-1") == []


def test_a_version_not_replicated_to_the_region_is_refused(session, defined):
    _build_version(session, defined, "1.0.0")
    with pytest.raises(AzureError) as caught:
        with testvm.deploy_test_vm(
            session, defined, "1.0.0", run_id="t-2", region="northeurope", wait=False
        ):
            pass
    assert str(caught.value) == (
        "image debian-12 version 1.0.0 is not available in northeurope (replication: not "
        "replicated there); replicate it first"
    )
    with pytest.raises(ConfigError, match="unknown Azure region 'mars'"):
        with testvm.deploy_test_vm(session, defined, "1.0.0", run_id="t-2", region="mars"):
            pass
    with pytest.raises(ConfigError, match="region 'eastus' is not a target region"):
        with testvm.deploy_test_vm(session, defined, "1.0.0", run_id="t-2", region="eastus"):
            pass
    with pytest.raises(ConfigError, match="VM size 'Standard_M416ms_v2' is not allowed"):
        with testvm.deploy_test_vm(
            session, defined, "1.0.0", run_id="t-2", vm_size="Standard_M416ms_v2"
        ):
            pass
    assert _groups_of_run(session, "t-2") == []


def test_keyboard_interrupt_deletes_the_group_and_the_key(session, defined):
    _build_version(session, defined, "1.0.0")
    with pytest.raises(KeyboardInterrupt):
        with testvm.deploy_test_vm(session, defined, "1.0.0", run_id="t-3", wait=False) as vm:
            key_dir = vm.ssh_key_path.parent
            assert _groups_of_run(session, "t-3") == [vm.resource_group]
            raise KeyboardInterrupt
    assert _groups_of_run(session, "t-3") == []
    assert not key_dir.exists()


def test_a_failure_while_creating_deletes_the_group(arm, defined):
    with new_session(arm, client_options={"retry_total": 1, "retry_status": 1}) as session:
        gallery.ensure_image_definition(session, defined)
        _build_version(session, defined, "1.0.0")
        arm.set_faults([{"kind": "error", "status": 500, "method": "PUT",
                         "path": "/virtualMachines/testvm$", "count": None}])  # fmt: skip
        with pytest.raises(AzureError) as caught:
            with testvm.deploy_test_vm(session, defined, "1.0.0", run_id="t-4", wait=False):
                pytest.fail("the VM cannot have been created")
        arm.clear_faults()
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith("creating virtual machine testvm in rg-imageforge-test-")
        assert "InternalServerError" in message
        assert _groups_of_run(session, "t-4") == []


def test_unreachable_vm_times_out_in_one_line_and_is_deleted(session, defined):
    _build_version(session, defined, "1.0.0")
    with pytest.raises(AzureError) as caught:
        with testvm.deploy_test_vm(
            session, defined, "1.0.0", run_id="t-5", reach_timeout=1.5
        ):  # the inert backend's VMs have an address but nothing listens there
            pytest.fail("an inert VM cannot be reachable")
    message = str(caught.value)
    assert "\n" not in message
    assert "test VM 127." in message and "was not reachable (SSH login) within 2s" in message
    assert _groups_of_run(session, "t-5") == []


def test_windows_cannot_run_in_the_sandbox(session):
    windows = load_image("windows-2022")
    gallery.ensure_image_definition(session, windows)
    with pytest.raises(SandboxError) as caught:
        with testvm.sandbox_build_vm(session, windows, run_id="w-1"):
            pass
    assert str(caught.value) == (
        "image windows-2022 is a Windows image: Windows cannot run in the sandbox; test it "
        "against Azure (--target azure)"
    )


# pieces without ARM -------------------------------------------------------------------------


def test_windows_password_and_body_keep_the_secret_in_one_place():
    windows = load_image("windows-2022")
    password = vmaccess.generate_password()
    assert len(password) == 24
    assert any(c.isupper() for c in password) and any(c.islower() for c in password)
    assert any(c.isdigit() for c in password) and any(not c.isalnum() for c in password)
    assert vmaccess.generate_password() != password
    plan = vmbodies.VmPlan(
        purpose="test", run_id="w", image=windows, region="westeurope", vm_size="Standard_B2s",
        username="imageforge", image_reference={"id": "/x"}, allowed_source=None,
        subnet_id=None, reach_timeout=None, wait=False,
    )  # fmt: skip
    body = vmbodies.vm_body(
        plan, "/nic", {"location": "westeurope", "tags": {"a": "b"}}, None, password
    )
    text = json.dumps(body)
    assert text.count(password) == 1
    assert body["properties"]["osProfile"]["adminPassword"] == password
    assert password not in json.dumps(body["tags"])
    vm = testvm.TestVm("10.0.0.4", 5986, "imageforge", "windows", "rg", "/vm", password=password)
    assert password not in repr(vm) and password not in str(vm)
    assert "password=<redacted>" in repr(vm)


def test_who_may_connect(monkeypatch, arm):
    monkeypatch.delenv(vmaccess.ALLOWED_SOURCE_ENV, raising=False)
    with new_session(arm) as sandbox:
        assert vmaccess.nsg_source(sandbox, None, None) == "127.0.0.1/32"
        azure = dataclasses.replace(sandbox, target="azure")
        with pytest.raises(ConfigError) as caught:
            vmaccess.nsg_source(azure, None, None)
        assert "IMAGEFORGE_TEST_ALLOWED_SOURCE" in str(caught.value)
        assert vmaccess.nsg_source(azure, None, "/subnets/default") == "VirtualNetwork"
        assert vmaccess.nsg_source(azure, "203.0.113.7", None) == "203.0.113.7/32"
        monkeypatch.setenv(vmaccess.ALLOWED_SOURCE_ENV, "198.51.100.0/24")
        assert vmaccess.nsg_source(azure, None, None) == "198.51.100.0/24"
        with pytest.raises(ConfigError, match="not an IP address or CIDR"):
            vmaccess.nsg_source(azure, "my-laptop", None)


# a run killed outright ----------------------------------------------------------------------

_KILLED_RUN = """
import sys, time
sys.path.insert(0, {helpers!r})
from azure_helpers import make_site
from imageforge.azure.clients import session_for_emulator
from imageforge.azure.testvm import deploy_test_vm
from imageforge.config import load_image_file
from imageforge.sandbox.harness import EmulatorHandle

arm = EmulatorHandle({url!r}, __import__("pathlib").Path({ca!r}), None, 0)
session = session_for_emulator(arm, make_site(resource_group={rg!r}))
image = load_image_file({image!r})
with deploy_test_vm(session, image, "1.0.0", run_id="killed-run", wait=False) as vm:
    print(vm.resource_group, vm.ssh_key_path, flush=True)
    time.sleep(120)
"""


def test_a_killed_run_leaves_a_group_that_cleanup_removes(arm, session, defined):
    _build_version(session, defined, "1.0.0")
    script = _KILLED_RUN.format(
        helpers=str(Path(__file__).parent), url=arm.base_url, ca=str(arm.ca_path),
        rg=session.site.resource_group, image=str(REPO / "images/debian-12.pkrvars.hcl"),
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        line = child.stdout.readline().decode().split()
        assert line, child.stderr.read().decode()
        group, key_path = line
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdout.close()
        child.stderr.close()
    assert _groups_of_run(session, "killed-run") == [group]
    # not expired yet, but its run was killed on this machine: reclaimed at once (issue 11)
    assert janitor.cleanup(session) == [group]
    assert _groups_of_run(session, "killed-run") == []
    # the private key of a VM that no longer exists stays in the killed run's private temp dir
    Path(key_path).unlink(missing_ok=True)
    Path(key_path).parent.rmdir()
