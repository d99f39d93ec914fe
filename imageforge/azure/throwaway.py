"""Throw-away VMs, each in a resource group of its own, and when they count as reachable.

Every VM gets its own resource group, tagged ``imageforge.created-by``, ``imageforge.run``,
``imageforge.purpose`` and ``imageforge.expires`` (now + ``site.test_vm_ttl_hours``), holding
a VNet/subnet (or using an existing subnet), an NSG, a public IP, a NIC and the VM (the
bodies: ``vmbodies``). The group is deleted on every way out of the ``with`` block (success,
error, KeyboardInterrupt); a run killed outright leaves a group that ``invoke cleanup``
deletes once it has expired (or its run's process is provably gone).

Access (credentials and the NSG rule's source: ``vmaccess``):

- Linux: a per-run ed25519 key, generated into a private temporary directory (0700, key file
  0600) that is removed on exit; password authentication disabled. A VM from a Specialized
  image has no osProfile: Run Command adds the key to it (``runcommand.add_login_key``).
  "Reachable" means a TCP connection, an SSH banner and a successful public-key login.
- Windows: a per-run random password that exists only in memory (``TestVm.password``, hidden
  from ``repr``). The image has no WinRM listener of its own: once the VM runs, Run Command
  gives it one with its own certificate (``winrmcert``), which is pinned; "reachable" means a
  TLS handshake on 5986 verified against that certificate.

``testvm`` (a VM from a gallery version) and ``buildvm`` (the sandbox's build VM) plan the VM;
``throwaway_vm`` makes it.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from imageforge import owner, tags
from imageforge.azure import runcommand, vmbodies, winrmcert
from imageforge.azure.arm import arm_call, as_json, is_not_found, one_line
from imageforge.azure.clients import Session
from imageforge.azure.definition import CREATED_BY_VALUE
from imageforge.azure.vmaccess import generate_key, generate_password, nsg_source
from imageforge.azure.vmbodies import SANDBOX_SSH_PORT_TAG, VmPlan, safe_name
from imageforge.errors import AzureError, SandboxError

log = logging.getLogger("imageforge.azure")

REACH_TIMEOUT = {"sandbox": 120.0, "azure": 900.0}


@dataclass(frozen=True)
class TestVm:
    """A running throw-away VM and how to reach it."""

    __test__ = False  # not a pytest test class

    host: str
    port: int
    username: str
    os: str
    resource_group: str
    vm_id: str
    vm_name: str = ""
    region: str = ""
    purpose: str = "test"
    ssh_key_path: Path | None = None
    password: str | None = field(default=None, repr=False)
    #: Windows: the PEM of the VM's own WinRM certificate, the only one its TLS is checked with.
    winrm_certificate: str | None = None

    def __repr__(self) -> str:
        secret = ", password=<redacted>" if self.password else ""
        return (
            f"TestVm(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"os={self.os!r}, resource_group={self.resource_group!r}, vm_id={self.vm_id!r}, "
            f"ssh_key_path={self.ssh_key_path!r}{secret})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class _Created:
    """What ``_create`` made: the VM's id and where it answers."""

    vm_id: str
    host: str
    port: int


# the throw-away group ---------------------------------------------------------------------


def group_tags(
    session: Session, *, run_id: str, purpose: str, image: str, now: dt.datetime
) -> dict[str, str]:
    """The tags of a throw-away resource group (what ``cleanup`` looks for)."""
    expires = now + dt.timedelta(hours=session.site.test_vm_ttl_hours)
    me = owner.current()
    return tags.merge(
        session.site.tags,
        {
            tags.CREATED_BY: CREATED_BY_VALUE,
            tags.RUN: run_id,
            tags.PURPOSE: purpose,
            tags.IMAGE: image,
            tags.EXPIRES: expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            tags.OWNER: me.tag() if me else None,
        },
    )


def _delete_group(session: Session, name: str) -> None:
    with arm_call(f"deleting resource group {name}", where=session.where):
        try:
            session.resource.resource_groups.begin_delete(name).result()
        except Exception as err:
            if is_not_found(err):
                return
            raise


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextmanager
def throwaway_vm(session: Session, plan: VmPlan) -> Iterator[TestVm]:
    """The VM of ``plan`` in a new group, reachable when ``plan.wait``; the group is deleted
    when the block ends, however it ends."""
    image = plan.image
    if image.os == "windows" and session.target == "sandbox":
        raise SandboxError(
            f"image {image.name} is a Windows image: Windows cannot run in the sandbox; "
            "test it against Azure (--target azure)"
        )
    source = nsg_source(session, plan.allowed_source, plan.subnet_id)
    suffix = uuid.uuid4().hex[:6]
    group = (
        f"rg-imageforge-{plan.purpose}-{safe_name(image.name, 24)}-"
        f"{safe_name(plan.run_id, 24)}-{suffix}"
    )
    key_dir: Path | None = None
    created = False
    try:
        resource_tags = group_tags(
            session, run_id=plan.run_id, purpose=plan.purpose, image=image.name, now=_now()
        )
        with arm_call(f"creating resource group {group}", where=session.where):
            created = True  # set before the call: an interrupted PUT may still have created it
            session.resource.resource_groups.create_or_update(
                group, {"location": plan.region, "tags": resource_tags}
            )
        log.info("created %s in %s for %s", group, plan.region, plan.purpose)
        password = None
        public_key = None
        key_path = None
        if image.os == "linux":
            key_dir = Path(tempfile.mkdtemp(prefix=f"imageforge-{plan.purpose}-key-"))
            comment = f"imageforge-{safe_name(plan.run_id, 40)}"
            key_path, public_key = generate_key(key_dir, comment)
        else:
            password = generate_password()
        made = _create(session, plan, group, source, resource_tags, public_key, password)
        if not plan.os_profile and public_key is not None:
            runcommand.add_login_key(session, group, plan.vm_name, plan.username, public_key)
        certificate = None
        if image.os == "windows":
            certificate = winrmcert.configure_listener(session, group, plan.vm_name, made.host)
        vm = TestVm(
            host=made.host,
            port=made.port,
            username=plan.username,
            os=image.os,
            resource_group=group,
            vm_id=made.vm_id,
            vm_name=plan.vm_name,
            region=plan.region,
            purpose=plan.purpose,
            ssh_key_path=key_path,
            password=password,
            winrm_certificate=certificate,
        )
        if plan.wait:
            timeout = plan.reach_timeout or REACH_TIMEOUT.get(session.target, 900.0)
            wait_reachable(vm, timeout=timeout)
        yield vm
    finally:
        failing = sys.exc_info()[1]
        try:
            if created:
                _delete_group(session, group)
                log.info("deleted %s", group)
        except AzureError as err:
            if failing is None:
                raise AzureError(
                    f"{err}; `invoke cleanup` deletes the group once it has expired"
                ) from None
            log.error("%s; `invoke cleanup` deletes the group once it has expired", err)
        finally:
            if key_dir is not None:
                shutil.rmtree(key_dir, ignore_errors=True)


def _create(
    session: Session,
    plan: VmPlan,
    group: str,
    source: str,
    resource_tags: Mapping[str, str],
    public_key: str | None,
    password: str | None,
) -> _Created:
    """NSG, network, public IP, NIC and VM in ``group``; where the VM answers."""
    net = session.network
    name = plan.vm_name
    base = {"location": plan.region, "tags": dict(resource_tags)}
    port = plan.port
    sandbox = session.target == "sandbox"
    use_public_ip = sandbox or not plan.subnet_id
    with arm_call(f"creating the network of {name} in {group}", where=session.where):
        nsg_op = net.network_security_groups.begin_create_or_update(
            group, f"{name}-nsg", vmbodies.nsg_body(base, port=port, source=source)
        )
        vnet_op = None
        if not plan.subnet_id or sandbox:
            vnet_op = net.virtual_networks.begin_create_or_update(
                group, f"{name}-vnet", vmbodies.vnet_body(base)
            )
        pip_op = None
        if use_public_ip:
            pip_op = net.public_ip_addresses.begin_create_or_update(
                group, f"{name}-ip", vmbodies.public_ip_body(base)
            )
        nsg = as_json(nsg_op.result())
        subnet_id = plan.subnet_id
        if vnet_op is not None:
            subnet_id = as_json(vnet_op.result())["properties"]["subnets"][0]["id"]
        pip_id = as_json(pip_op.result())["id"] if pip_op is not None else None
        nic_body = vmbodies.nic_body(
            base, nsg_id=nsg["id"], subnet_id=subnet_id, public_ip_id=pip_id
        )
        nic = as_json(
            net.network_interfaces.begin_create_or_update(group, f"{name}-nic", nic_body).result()
        )
    with arm_call(f"creating virtual machine {name} in {group}", where=session.where):
        body = vmbodies.vm_body(plan, nic["id"], base, public_key, password)
        created = as_json(
            session.compute.virtual_machines.begin_create_or_update(group, name, body).result()
        )
    with arm_call(f"reading the address of {name} in {group}", where=session.where):
        if pip_id is not None:
            pip = as_json(net.public_ip_addresses.get(group, f"{name}-ip"))
            host = (pip.get("properties") or {}).get("ipAddress")
            if sandbox:
                port = int((pip.get("tags") or {}).get(SANDBOX_SSH_PORT_TAG, port))
        else:
            nic = as_json(net.network_interfaces.get(group, f"{name}-nic"))
            host = nic["properties"]["ipConfigurations"][0]["properties"].get("privateIPAddress")
    if not host:
        raise AzureError(f"virtual machine {name} in {group} has no IP address")
    return _Created(vm_id=str(created["id"]), host=str(host), port=port)


# reachability -----------------------------------------------------------------------------


def _ssh_login(vm: TestVm, timeout: float) -> None:
    """One attempt: TCP, SSH banner, public-key login as the VM's admin user."""
    import paramiko  # heavy: loaded when a VM is first checked, not at import

    with socket.create_connection((vm.host, vm.port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        banner = sock.recv(256)
        if not banner.startswith(b"SSH-"):
            raise OSError(f"no SSH banner (got {banner[:40]!r})")
    if vm.ssh_key_path is None:  # a programming error, not worth waiting for: not an OSError
        raise AzureError(f"{vm.purpose} VM {vm.host}:{vm.port} has no SSH key to log in with")
    key = paramiko.Ed25519Key.from_private_key_file(str(vm.ssh_key_path))
    sock = socket.create_connection((vm.host, vm.port), timeout=timeout)
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        transport.auth_publickey(vm.username, key)
        if not transport.is_authenticated():
            raise OSError("public-key login was not accepted")
    finally:
        transport.close()
        sock.close()


def _tls(vm: TestVm, timeout: float) -> None:
    if not vm.winrm_certificate:
        raise OSError("no WinRM certificate to check the VM's TLS with")
    winrmcert.check_tls(vm.host, vm.port, vm.winrm_certificate, timeout=timeout)


def wait_reachable(
    vm: TestVm, *, timeout: float, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Wait until the VM really answers (see the module docstring), at most ``timeout``."""
    import paramiko  # heavy: loaded when a VM is first checked, not at import

    deadline = time.monotonic() + timeout
    delay = 0.5
    last = "no attempt yet"
    attempt = _ssh_login if vm.os == "linux" else _tls
    while True:
        try:
            attempt(vm, min(15.0, max(1.0, deadline - time.monotonic())))
            return
        except (OSError, EOFError, paramiko.SSHException) as err:
            last = one_line(err, 120) or type(err).__name__
        if time.monotonic() + delay > deadline:
            what = "SSH login" if vm.os == "linux" else f"WinRM HTTPS, pinned (TCP {vm.port})"
            raise AzureError(
                f"{vm.purpose} VM {vm.host}:{vm.port} in {vm.resource_group} was not reachable "
                f"({what}) within {timeout:.0f}s: {last}"
            )
        sleep(delay)
        delay = min(delay * 1.5, 10.0)
