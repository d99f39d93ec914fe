"""The contract between the ARM emulator and whatever runs the sandbox's machines.

The emulator (imageforge.sandbox.emulator) owns ARM state: resources, tags, provisioning states,
replication status. It owns no machines. When a VM is PUT, generalized, captured into a gallery
version, replicated or deleted, it calls a ``MachineBackend``:

- ``ChrootBackend`` (imageforge.sandbox.machines) runs real Linux machines-in-a-folder: a
  debootstrapped Debian root filesystem per VM, chrooted in its own PID/mount namespace, with its
  own sshd on its own loopback address.
- ``InertBackend`` (below) keeps ARM bookkeeping only: VMs get an address but no machine. The
  emulator's fidelity tests and the gallery lifecycle tests use it, because they test ARM
  behaviour, not machines; anything that must reach a VM uses ChrootBackend.

A VM booted from a generalized image gets an ``OsProfile`` applied at its first boot; one
booted from a specialized image gets none (``profile=None``) and keeps the source VM's
identity: its users, keys, host keys, hostname and machine id. ``run_command`` is Run
Command's RunShellScript: a script run by bash as root inside a running VM.

Image locations are plain directories chosen by the emulator under its state dir:
``<state>/blobs/<region>/<blob-id>/``. The backend fills them (capture, replicate) and boots
from them; the emulator never looks inside.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from imageforge.errors import SandboxError

#: The port every sandbox VM's sshd listens on, on the VM's own loopback address. Chosen so it
#: cannot collide with a host sshd on port 22 (each VM also has its own address).
SANDBOX_SSH_PORT = 2222


@dataclass(frozen=True)
class BaseImage:
    """A marketplace image the sandbox can boot (publisher/offer/sku as in Azure)."""

    publisher: str
    offer: str
    sku: str
    os_type: str  # "Linux"
    hyper_v_generation: str  # "V1" | "V2"
    suite: str  # the Debian suite that debootstrap builds, e.g. "bookworm"


#: The sandbox marketplace. Anything else is refused with a message naming these.
MARKETPLACE: tuple[BaseImage, ...] = (
    BaseImage("Debian", "debian-12", "12-gen2", "Linux", "V2", "bookworm"),
    BaseImage("Debian", "debian-12", "12", "Linux", "V1", "bookworm"),
)


def find_base_image(publisher: str, offer: str, sku: str) -> BaseImage:
    """Return the sandbox base image for a marketplace reference, or raise SandboxError."""
    for image in MARKETPLACE:
        if (image.publisher.lower(), image.offer.lower(), image.sku.lower()) == (
            publisher.lower(),
            offer.lower(),
            sku.lower(),
        ):
            return image
    supported = ", ".join(f"{i.publisher}:{i.offer}:{i.sku}" for i in MARKETPLACE)
    raise SandboxError(
        f"the sandbox cannot provide base image {publisher}:{offer}:{sku}; "
        f"it supports only {supported}"
    )


@dataclass(frozen=True)
class OsProfile:
    """What a VM PUT's osProfile asks for, applied at first boot like waagent/cloud-init."""

    computer_name: str
    admin_username: str
    ssh_public_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommandOutput:
    """What a script run by ``run_command`` left: its exit status and the tails of its output.

    ``stdout`` and ``stderr`` are each at most the last ``OUTPUT_TAIL_BYTES`` bytes of what
    the script wrote, decoded as UTF-8 (an undecodable byte becomes U+FFFD).
    """

    exit_code: int
    stdout: str
    stderr: str


#: How much of a script's stdout and of its stderr Run Command reports: the last 4096 bytes of
#: each (Azure's Linux Run Command extension keeps the end of long output; the figure is the
#: one its result messages are cut to, from memory).
OUTPUT_TAIL_BYTES = 4096


def output_tail(data: bytes | str) -> str:
    """The last ``OUTPUT_TAIL_BYTES`` bytes of ``data``, decoded (a split character is U+FFFD)."""
    raw = data.encode() if isinstance(data, str) else data
    return raw[-OUTPUT_TAIL_BYTES:].decode(errors="replace")


@dataclass(frozen=True)
class Endpoint:
    """Where a booted VM's sshd answers."""

    address: str  # a loopback address, 127.x.y.z, unique to the VM
    port: int = SANDBOX_SSH_PORT


ProgressCallback = Callable[[int], None]  # percent 0..100


class MachineBackend(Protocol):
    """What the emulator asks of the machines behind it. All calls are blocking."""

    def boot(
        self,
        vm_key: str,
        *,
        source: BaseImage | Path,
        profile: OsProfile | None,
        address: str,
    ) -> Endpoint:
        """Boot a VM from a base image or a captured image directory; return its endpoint.

        ``vm_key`` is a stable, filesystem-safe key for the VM (the emulator derives it from
        the resource id). ``address`` is the loopback address the emulator allocated.
        ``profile`` is None for a VM from a specialized image: nothing is provisioned, the VM
        keeps the image's users, keys, host keys, hostname and machine id.
        """
        ...

    def run_command(self, vm_key: str, script: str, *, timeout: float) -> CommandOutput:
        """Run ``script`` with bash as root inside the running VM; return how it ended.

        A non-zero exit is a result, not an error. SandboxError when the VM is not running or
        the script did not finish within ``timeout`` seconds (it is then killed).
        """
        ...

    def delete(self, vm_key: str) -> None:
        """Stop every process the VM started, unmount everything, remove its files."""
        ...

    def generalize(self, vm_key: str) -> None:
        """Stop the VM so it can be captured (Azure: deallocate + generalize)."""
        ...

    def capture(self, vm_key: str, dest: Path) -> None:
        """Make the empty directory ``dest`` an image of the VM's (generalized) disk."""
        ...

    def replicate(self, src: Path, dest: Path, progress: ProgressCallback) -> None:
        """Make ``dest`` a replica of a captured image, independent of it, reporting progress."""
        ...

    def remove_image(self, path: Path) -> None:
        """Delete a captured image (a version was deleted)."""
        ...

    def reap(self) -> list[str]:
        """Stop and remove whatever a crashed run left behind; return what was reaped."""
        ...

    def base_snapshot(self, base: BaseImage) -> dt.datetime | None:
        """When the base's tree was made (its marketplace version is named after it), or None
        when it is not made yet."""
        ...


class InertBackend:
    """ARM bookkeeping without machines: VMs get an endpoint that nothing listens on.

    Capture and replicate write a small manifest file so a version's per-region copies exist
    and can be checked. ``run_command`` has no machine to run a script on: it records the
    script and answers exit 0 with no output (bookkeeping only, like ``boot``).
    """

    def __init__(self) -> None:
        self.booted: dict[str, Endpoint] = {}
        self.commands: list[tuple[str, str]] = []  # (vm_key, script) run_command was given

    def boot(
        self, vm_key: str, *, source: BaseImage | Path, profile: OsProfile | None, address: str
    ) -> Endpoint:
        if isinstance(source, Path) and not (source / "IMAGE").exists():
            raise SandboxError(f"image {source} does not exist in this region's store")
        endpoint = Endpoint(address)
        self.booted[vm_key] = endpoint
        return endpoint

    def delete(self, vm_key: str) -> None:
        self.booted.pop(vm_key, None)

    def run_command(self, vm_key: str, script: str, *, timeout: float) -> CommandOutput:
        self.commands.append((vm_key, script))
        return CommandOutput(0, "", "")

    def generalize(self, vm_key: str) -> None:
        return None

    def capture(self, vm_key: str, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "IMAGE").write_text(f"captured from {vm_key}\n")

    def replicate(self, src: Path, dest: Path, progress: ProgressCallback) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / "IMAGE", dest / "IMAGE")
        progress(100)

    def remove_image(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def reap(self) -> list[str]:
        reaped = sorted(self.booted)
        self.booted.clear()
        return reaped

    def base_snapshot(self, base: BaseImage) -> dt.datetime | None:
        return None
