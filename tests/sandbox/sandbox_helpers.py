"""Helpers of the sandbox machine tests: base image, addresses, keys, SSH, leftovers."""

from __future__ import annotations

import io
import itertools
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from imageforge.sandbox.backend import MARKETPLACE, Endpoint
from imageforge.sandbox.machines import vm as vm_module

REPO = Path(__file__).resolve().parents[2]
BASE = MARKETPLACE[0]

_addresses = itertools.count(2)


def next_address() -> str:
    """A loopback address no other VM of this session uses (distinct per test process)."""
    n = next(_addresses)
    return f"127.{100 + os.getpid() % 100}.{n // 250}.{n % 250 + 2}"


@dataclass(frozen=True)
class KeyPair:
    """A per-VM ed25519 key: the paramiko key and its authorized_keys line."""

    private: paramiko.Ed25519Key
    public: str


def new_key() -> KeyPair:
    """Generate an ed25519 key pair for one VM."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return KeyPair(paramiko.Ed25519Key.from_private_key(io.StringIO(pem)), public.decode())


def connect(endpoint: Endpoint, user: str, key: KeyPair) -> paramiko.SSHClient:
    """An SSH connection to a VM as ``user`` with ``key`` (the VM's host key is new)."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        endpoint.address,
        port=endpoint.port,
        username=user,
        pkey=key.private,
        allow_agent=False,
        look_for_keys=False,
        timeout=15,
    )
    return client


def run(client: paramiko.SSHClient, *argv: str, timeout: float = 120) -> tuple[int, str, str]:
    """Run ``argv`` (quoted for the remote shell) and return (status, stdout, stderr)."""
    _, stdout, stderr = client.exec_command(shlex.join(argv), timeout=timeout)
    out = stdout.read().decode()
    err = stderr.read().decode()
    return stdout.channel.recv_exit_status(), out, err


def sandbox_leftovers(state_dir: Path) -> tuple[list[int], list[str]]:
    """Processes marked with a VM under ``state_dir`` and host mounts mentioning it."""
    processes = sorted(vm_module.marked_processes(str(state_dir)))
    mounts = [
        line for line in Path("/proc/mounts").read_text().splitlines() if str(state_dir) in line
    ]
    return processes, mounts
