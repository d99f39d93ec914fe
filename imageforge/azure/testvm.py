"""Throw-away VMs: a test VM from an exact gallery version, and the sandbox's build VM.

Every VM gets its own resource group, tagged ``imageforge.created-by``, ``imageforge.run``,
``imageforge.purpose`` and ``imageforge.expires`` (now + ``site.test_vm_ttl_hours``), holding
a VNet/subnet (or using an existing subnet), an NSG, a public IP, a NIC and the VM. The group
is deleted on every way out of the ``with`` block (success, error, KeyboardInterrupt); a run
killed outright leaves a group that ``lifecycle.cleanup`` deletes once it has expired.

Access:

- Linux: a per-run ed25519 key, generated into a private temporary directory (0700, key file
  0600) that is removed on exit; admin user ``imageforge`` (test VMs) or the image's
  communicator user (build VMs); password authentication disabled. "Reachable" means a TCP
  connection, an SSH banner and a successful public-key login.
- Windows: a per-run random password that exists only in memory (``TestVm.password``, hidden
  from ``repr``); never in argv, logs or tags. The image has no WinRM listener of its own: once
  the VM runs, Run Command gives it one with its own certificate (``winrmcert``), which is
  pinned; "reachable" means a TLS handshake on 5986 verified against that certificate.

Who may connect (the NSG rule's source): ``allowed_source`` when given; on the sandbox
127.0.0.1/32; with an existing ``subnet_id`` (a runner inside the VNet) the VM gets no public
IP and the rule admits ``VirtualNetwork``; otherwise the runner's address must be given
(``allowed_source`` or ``IMAGEFORGE_TEST_ALLOWED_SOURCE``, e.g. ``203.0.113.7/32``, or
``auto``: this machine's public address as an echo service sees it, see ``egress``):
imageforge never opens SSH or WinRM to the whole internet by default.

On the sandbox the public IP's ``ipAddress`` is the VM's loopback address and its tag
``imageforge.sandbox-ssh-port`` the port its sshd listens on.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import re
import secrets
import shutil
import socket
import string
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageforge import owner, tags
from imageforge import regions as region_names
from imageforge.azure import egress
from imageforge.azure.arm import arm_call, as_json, is_not_found, one_line
from imageforge.azure.clients import Session
from imageforge.azure.gallery import CREATED_BY_VALUE, get_version
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError, ConfigError, SandboxError, VersionError

log = logging.getLogger("imageforge.azure")

TEST_ADMIN = "imageforge"
ALLOWED_SOURCE_ENV = "IMAGEFORGE_TEST_ALLOWED_SOURCE"
SANDBOX_SOURCE = "127.0.0.1/32"
SANDBOX_SSH_PORT_TAG = "imageforge.sandbox-ssh-port"
SSH_PORT = 22
WINRM_HTTPS_PORT = 5986
REACH_TIMEOUT = {"sandbox": 120.0, "azure": 900.0}
_UNSAFE = re.compile(r"[^a-z0-9-]+")
_PASSWORD_SPECIALS = "!#%+-=@_~"


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


# credentials ------------------------------------------------------------------------------


def generate_key(directory: Path, comment: str) -> tuple[Path, str]:
    """An ed25519 key pair: the private key file (0600, OpenSSH format) and the public line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    path = directory / "id_ed25519"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    return path, f"{public.decode()} {comment}"


def generate_password(length: int = 24) -> str:
    """A random password that meets Azure's complexity rules (upper, lower, digit, special)."""
    pools = (string.ascii_uppercase, string.ascii_lowercase, string.digits, _PASSWORD_SPECIALS)
    alphabet = "".join(pools)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in pool for c in candidate) for pool in pools):
            return candidate


def _source(session: Session, allowed_source: str | None, subnet_id: str | None) -> str:
    """The NSG rule's source address prefix (see the module docstring)."""
    value = allowed_source or (
        None if session.target == "sandbox" else os.environ.get(ALLOWED_SOURCE_ENV)
    )
    if value:
        value = value.strip()
        if value.lower() == egress.AUTO:
            if session.target == "sandbox":
                return SANDBOX_SOURCE
            if subnet_id:  # a runner inside the VNet connects from there, not from its egress
                return "VirtualNetwork"
            return egress.own_address(session.site.egress_ip_url)
        if value in ("*", "VirtualNetwork", "Internet", "AzureCloud"):
            return value
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ConfigError(
                f"allowed source {value!r} is not an IP address or CIDR range (e.g. 203.0.113.7/32)"
            ) from None
    if session.target == "sandbox":
        return SANDBOX_SOURCE
    if subnet_id:
        return "VirtualNetwork"
    raise ConfigError(
        f"the test VM would be reachable from anywhere: set {ALLOWED_SOURCE_ENV} to this "
        "runner's public address (e.g. 203.0.113.7/32) or give an existing subnet to test in"
    )


# the throw-away group ---------------------------------------------------------------------


def _safe(text: str, limit: int) -> str:
    return _UNSAFE.sub("-", text.lower()).strip("-")[:limit].strip("-") or "x"


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


@dataclass
class _Plan:
    purpose: str
    run_id: str
    image: ImageDefinition
    region: str
    vm_size: str
    username: str
    image_reference: dict[str, Any]
    allowed_source: str | None
    subnet_id: str | None
    reach_timeout: float | None
    wait: bool


@contextmanager
def _throwaway_vm(session: Session, plan: _Plan) -> Iterator[TestVm]:
    image = plan.image
    if image.os == "windows" and session.target == "sandbox":
        raise SandboxError(
            f"image {image.name} is a Windows image: Windows cannot run in the sandbox; "
            "test it against Azure (--target azure)"
        )
    source = _source(session, plan.allowed_source, plan.subnet_id)
    suffix = uuid.uuid4().hex[:6]
    group = (
        f"rg-imageforge-{plan.purpose}-{_safe(image.name, 24)}-{_safe(plan.run_id, 24)}-{suffix}"
    )
    key_dir: Path | None = None
    created = False
    try:
        body = {
            "location": plan.region,
            "tags": group_tags(
                session, run_id=plan.run_id, purpose=plan.purpose, image=image.name, now=_now()
            ),
        }
        with arm_call(f"creating resource group {group}", where=session.where):
            created = True  # set before the call: an interrupted PUT may still have created it
            session.resource.resource_groups.create_or_update(group, body)
        log.info("created %s in %s for %s", group, plan.region, plan.purpose)
        password = None
        public_key = None
        key_path = None
        if image.os == "linux":
            key_dir = Path(tempfile.mkdtemp(prefix=f"imageforge-{plan.purpose}-key-"))
            key_path, public_key = generate_key(key_dir, f"imageforge-{_safe(plan.run_id, 40)}")
        else:
            password = generate_password()
        vm = _create(session, plan, group, source, body["tags"], public_key, password)
        certificate = None
        if image.os == "windows":
            from imageforge.azure import winrmcert

            certificate = winrmcert.configure_listener(session, group, vm["name"], vm["host"])
        vm = TestVm(
            host=vm["host"],
            port=vm["port"],
            username=plan.username,
            os=image.os,
            resource_group=group,
            vm_id=vm["id"],
            vm_name=vm["name"],
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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _create(
    session: Session,
    plan: _Plan,
    group: str,
    source: str,
    resource_tags: Mapping[str, str],
    public_key: str | None,
    password: str | None,
) -> dict[str, Any]:
    """NSG, network, public IP, NIC and VM in ``group``; where the VM answers."""
    net = session.network
    region = plan.region
    name = f"{plan.purpose}vm"
    base = {"location": region, "tags": dict(resource_tags)}
    port = SSH_PORT if plan.image.os == "linux" else WINRM_HTTPS_PORT
    use_public_ip = session.target == "sandbox" or not plan.subnet_id
    with arm_call(f"creating the network of {name} in {group}", where=session.where):
        nsg_op = net.network_security_groups.begin_create_or_update(
            group,
            f"{name}-nsg",
            {
                **base,
                "properties": {
                    "securityRules": [
                        {
                            "name": "ssh" if port == SSH_PORT else "winrm-https",
                            "properties": {
                                "protocol": "Tcp",
                                "sourcePortRange": "*",
                                "destinationPortRange": str(port),
                                "sourceAddressPrefix": source,
                                "destinationAddressPrefix": "*",
                                "access": "Allow",
                                "priority": 1000,
                                "direction": "Inbound",
                            },
                        }
                    ]
                },
            },
        )
        vnet_op = None
        if not plan.subnet_id or session.target == "sandbox":
            vnet_op = net.virtual_networks.begin_create_or_update(
                group,
                f"{name}-vnet",
                {
                    **base,
                    "properties": {
                        "addressSpace": {"addressPrefixes": ["10.42.0.0/16"]},
                        "subnets": [
                            {"name": "default", "properties": {"addressPrefix": "10.42.0.0/24"}}
                        ],
                    },
                },
            )
        pip_op = None
        if use_public_ip:
            pip_op = net.public_ip_addresses.begin_create_or_update(
                group,
                f"{name}-ip",
                {
                    **base,
                    "sku": {"name": "Standard"},
                    "properties": {"publicIPAllocationMethod": "Static"},
                },
            )
        nsg = as_json(nsg_op.result())
        subnet_id = plan.subnet_id
        if vnet_op is not None:
            vnet = as_json(vnet_op.result())
            subnet_id = vnet["properties"]["subnets"][0]["id"]
        ip_config: dict[str, Any] = {"subnet": {"id": subnet_id}}
        pip_id = None
        if pip_op is not None:
            pip_id = as_json(pip_op.result())["id"]
            ip_config["publicIPAddress"] = {"id": pip_id}
        nic = as_json(
            net.network_interfaces.begin_create_or_update(
                group,
                f"{name}-nic",
                {
                    **base,
                    "properties": {
                        "networkSecurityGroup": {"id": nsg["id"]},
                        "ipConfigurations": [{"name": "ipconfig1", "properties": ip_config}],
                    },
                },
            ).result()
        )
    with arm_call(f"creating virtual machine {name} in {group}", where=session.where):
        created = as_json(
            session.compute.virtual_machines.begin_create_or_update(
                group, name, vm_body(plan, nic["id"], base, public_key, password)
            ).result()
        )
    with arm_call(f"reading the address of {name} in {group}", where=session.where):
        if pip_id is not None:
            pip = as_json(net.public_ip_addresses.get(group, f"{name}-ip"))
            host = (pip.get("properties") or {}).get("ipAddress")
            if session.target == "sandbox":
                port = int((pip.get("tags") or {}).get(SANDBOX_SSH_PORT_TAG, port))
        else:
            nic = as_json(net.network_interfaces.get(group, f"{name}-nic"))
            host = nic["properties"]["ipConfigurations"][0]["properties"].get("privateIPAddress")
    if not host:
        raise AzureError(f"virtual machine {name} in {group} has no IP address")
    return {"id": created["id"], "name": name, "host": str(host), "port": port}


def vm_body(
    plan: _Plan,
    nic_id: str,
    base: Mapping[str, Any],
    public_key: str | None,
    password: str | None,
) -> dict[str, Any]:
    """The VM's PUT body (the password, on Windows, goes only here)."""
    image = plan.image
    computer = _safe(f"{plan.purpose}-{plan.run_id}", 15)
    if image.os == "linux":
        os_profile: dict[str, Any] = {
            "computerName": computer,
            "adminUsername": plan.username,
            "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "ssh": {
                    "publicKeys": [
                        {
                            "path": f"/home/{plan.username}/.ssh/authorized_keys",
                            "keyData": public_key,
                        }
                    ]
                },
            },
        }
    else:
        os_profile = {
            "computerName": computer,
            "adminUsername": plan.username,
            "adminPassword": password,
            "windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": False},
        }
    props: dict[str, Any] = {
        "hardwareProfile": {"vmSize": plan.vm_size},
        "storageProfile": {
            "imageReference": plan.image_reference,
            "osDisk": {
                "createOption": "FromImage",
                "deleteOption": "Delete",
                "managedDisk": {"storageAccountType": "Standard_LRS"},
            },
        },
        "osProfile": os_profile,
        "networkProfile": {
            "networkInterfaces": [
                {"id": nic_id, "properties": {"primary": True, "deleteOption": "Delete"}}
            ]
        },
    }
    spec = image.gallery_image
    if spec.hyper_v_generation == "V2" and spec.security_type.startswith("TrustedLaunch"):
        props["securityProfile"] = {
            "securityType": "TrustedLaunch",
            "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
        }
    return {**base, "properties": props}


# reachability -----------------------------------------------------------------------------


def _ssh_login(vm: TestVm, timeout: float) -> None:
    """One attempt: TCP, SSH banner, public-key login as the VM's admin user."""
    import paramiko

    with socket.create_connection((vm.host, vm.port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        banner = sock.recv(256)
        if not banner.startswith(b"SSH-"):
            raise OSError(f"no SSH banner (got {banner[:40]!r})")
    assert vm.ssh_key_path is not None
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
    from imageforge.azure import winrmcert

    if not vm.winrm_certificate:
        raise OSError("no WinRM certificate to check the VM's TLS with")
    winrmcert.check_tls(vm.host, vm.port, vm.winrm_certificate, timeout=timeout)


def wait_reachable(vm: TestVm, *, timeout: float, sleep: Any = time.sleep) -> None:
    """Wait until the VM really answers (see the module docstring), at most ``timeout``."""
    import paramiko

    deadline = time.monotonic() + timeout
    delay = 0.5
    last = "no attempt yet"
    while True:
        try:
            if vm.os == "linux":
                _ssh_login(vm, timeout=min(15.0, max(1.0, deadline - time.monotonic())))
            else:
                _tls(vm, timeout=min(15.0, max(1.0, deadline - time.monotonic())))
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


# test VMs ---------------------------------------------------------------------------------


def allowed_vm_sizes(image: ImageDefinition) -> tuple[str, ...]:
    """The sizes a VM of ``image`` may have: its test size, its build size and the build's
    allowed sizes."""
    return tuple(
        dict.fromkeys((image.test.vm_size, image.build.vm_size, *image.build.allowed_vm_sizes))
    )


@contextmanager
def deploy_test_vm(
    session: Session,
    image: ImageDefinition,
    version: str,
    *,
    run_id: str,
    region: str | None = None,
    vm_size: str | None = None,
    allowed_source: str | None = None,
    subnet_id: str | None = None,
    purpose: str = "test",
    reach_timeout: float | None = None,
    wait: bool = True,
) -> Iterator[TestVm]:
    """A VM from the exact version id of ``image``/``version`` in ``region`` (default: the build
    region), reachable when the block starts, deleted with its group when it ends.

    ``region`` must be one of the image's target regions and ``vm_size`` (default: the image's
    test size) one of ``allowed_vm_sizes(image)``: anything else is a ConfigError naming the
    image file, before anything is created."""
    where = region_names.normalize(region or image.build.region)
    if not region_names.is_region(where):
        raise ConfigError(f"unknown Azure region {region!r} for the test VM")
    image.region(where)
    size = vm_size or image.test.vm_size
    allowed = allowed_vm_sizes(image)
    if size.lower() not in {s.lower() for s in allowed}:
        raise ConfigError(
            f"VM size {size!r} is not allowed for image {image.name} "
            f"(test.vm_size, build.vm_size or build.allowed_vm_sizes: {', '.join(allowed)})",
            path=str(image.path),
            key="build.allowed_vm_sizes",
        )
    info = get_version(session, image, version)
    state = info.regions.get(where)
    if state != "Completed":
        raise AzureError(
            f"image {image.name} version {info.name} is not available in {where} "
            f"(replication: {state or 'not replicated there'}); replicate it first"
        )
    plan = _Plan(
        purpose=purpose,
        run_id=run_id,
        image=image,
        region=where,
        vm_size=size,
        username=TEST_ADMIN,
        image_reference={"id": info.id},
        allowed_source=allowed_source,
        subnet_id=subnet_id,
        reach_timeout=reach_timeout,
        wait=wait,
    )
    with _throwaway_vm(session, plan) as vm:
        yield vm


# the sandbox build ------------------------------------------------------------------------


@contextmanager
def sandbox_build_vm(
    session: Session,
    image: ImageDefinition,
    *,
    run_id: str,
    base_version: str | None = None,
    reach_timeout: float | None = None,
    wait: bool = True,
) -> Iterator[TestVm]:
    """The sandbox's build VM: the image's base image (marketplace reference, at
    ``base_version`` when given) in the build region, the communicator's user with a per-run
    key; Packer's null builder provisions it."""
    base = image.base_image
    plan = _Plan(
        purpose="build",
        run_id=run_id,
        image=image,
        region=image.build.region,
        vm_size=image.build.vm_size,
        username=image.communicator.username,
        image_reference={
            "publisher": base.publisher,
            "offer": base.offer,
            "sku": base.sku,
            "version": base_version or base.version,
        },
        allowed_source=None,
        subnet_id=None,
        reach_timeout=reach_timeout,
        wait=wait,
    )
    with _throwaway_vm(session, plan) as vm:
        yield vm


def capture_version(
    session: Session,
    image: ImageDefinition,
    version: str,
    vm: TestVm,
    *,
    tags: Mapping[str, object],
) -> str:
    """Deallocate and generalize the build VM, then create the gallery version from it in the
    build region only, excluded from latest, with ``tags``; returns the version id."""
    from imageforge import tags as tag_names

    site = session.site
    name = image.gallery_image.name
    gallery_region = region_names.normalize(site.location)
    if region_names.normalize(vm.region) != gallery_region:
        raise ConfigError(
            f"image {image.name} builds in {vm.region} but gallery {site.gallery} is in "
            f"{gallery_region}: a version is created in the gallery's region from a VM there",
            path=str(image.path),
            key="build.region",
        )
    with arm_call(f"version {version} of image {image.name}", where=session.where):
        try:
            session.compute.gallery_image_versions.get(
                site.resource_group, site.gallery, name, version
            )
            exists = True
        except Exception as err:
            if not is_not_found(err):
                raise
            exists = False
    if exists:
        raise VersionError(
            f"version {version} of image {image.name} already exists in gallery {site.gallery}"
        )
    vms = session.compute.virtual_machines
    with arm_call(
        f"generalizing build VM {vm.vm_name} in {vm.resource_group}", where=session.where
    ):
        vms.begin_deallocate(vm.resource_group, vm.vm_name).result()
        vms.generalize(vm.resource_group, vm.vm_name)
    target = next((r for r in image.target_regions if r.name == gallery_region), None)
    body = {
        "location": gallery_region,
        "tags": tag_names.merge({tag_names.IMAGE: image.name}, tags),
        "properties": {
            "publishingProfile": {
                "excludeFromLatest": True,
                "targetRegions": [
                    {
                        "name": gallery_region,
                        "regionalReplicaCount": target.replicas if target else 1,
                        "storageAccountType": target.storage_account_type
                        if target
                        else "Standard_LRS",
                    }
                ],
            },
            "storageProfile": {"source": {"virtualMachineId": vm.vm_id}},
        },
    }
    with arm_call(f"publishing version {version} of image {image.name}", where=session.where):
        created = session.compute.gallery_image_versions.begin_create_or_update(
            site.resource_group, site.gallery, name, version, body
        ).result()
    return str(as_json(created).get("id"))
