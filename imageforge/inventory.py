"""Package inventories of tested images, and what changed between two versions.

The inventory of a version is collected from its test VM through a Testinfra host (the same
connection the suite used) and written as ``reports/<image>/<version>/inventory.json``
(``imageforge.reports``):

    {"os": "linux", "packages": {"openssh-server": "1:9.2p1-2+deb12u3", ...}, "features": []}

Linux: every installed dpkg package and its version. Windows: installed programs (the registry's
Uninstall keys, 64- and 32-bit) and hotfixes as packages, installed Windows features as
features. The file is deterministic (sorted keys, no timestamps), so two inventories of the same
image are byte-identical and the report digest only changes when the image does.

``diff_inventories(a, b)`` says what was added, removed and changed from a to b; ``render_diff``
prints it for ``invoke diff``.
"""

from __future__ import annotations

import base64
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from imageforge import reports
from imageforge.errors import VerifyError
from imageforge.hostspec import parse_host_spec, redact_host_spec

LINUX_QUERY = "dpkg-query -W -f='${db:Status-Abbrev}\\t${binary:Package}\\t${Version}\\n'"

WINDOWS_SCRIPT = r"""$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'
$keys = @(
  'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\*',
  'HKLM:\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\*'
)
$packages = @(Get-ItemProperty -Path $keys -ErrorAction SilentlyContinue |
  Where-Object { $_.PSObject.Properties['DisplayName'] -and $_.DisplayName } |
  ForEach-Object {
    $version = ''
    if ($_.PSObject.Properties['DisplayVersion']) { $version = [string]$_.DisplayVersion }
    [ordered]@{ Name = [string]$_.DisplayName; Version = $version }
  })
$hotfixes = @(Get-HotFix | ForEach-Object { [string]$_.HotFixID })
$features = @()
if (Get-Command -Name Get-WindowsFeature -ErrorAction SilentlyContinue) {
  $features = @(Get-WindowsFeature | Where-Object { $_.Installed } |
    ForEach-Object { [string]$_.Name })
}
ConvertTo-Json -Compress -Depth 4 -InputObject ([ordered]@{
  Packages = $packages; Hotfixes = $hotfixes; Features = $features })
"""

POWERSHELL = "powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "
FEATURE_PREFIX = "feature:"


class _Result(Protocol):
    rc: int
    stdout: str
    stderr: str


class _Host(Protocol):
    def run(self, command: str, *args: str) -> _Result: ...


@dataclass(frozen=True)
class Inventory:
    os: str
    packages: Mapping[str, str] = field(default_factory=dict)  # name -> version
    features: tuple[str, ...] = ()

    def to_json(self) -> str:
        data = {
            "os": self.os,
            "packages": dict(sorted(self.packages.items())),
            "features": sorted(set(self.features)),
        }
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class InventoryDiff:
    added: tuple[tuple[str, str], ...] = ()  # (name, version in b)
    removed: tuple[tuple[str, str], ...] = ()  # (name, version in a)
    changed: tuple[tuple[str, str, str], ...] = ()  # (name, version in a, version in b)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


# --- collecting ----------------------------------------------------------------------------


def windows_command() -> str:
    """The PowerShell command line that prints the Windows inventory as JSON."""
    encoded = base64.b64encode(WINDOWS_SCRIPT.encode("utf-16-le")).decode("ascii")
    return POWERSHELL + encoded


def parse_dpkg(output: str) -> dict[str, str]:
    """Installed packages from LINUX_QUERY's output (other states are left out)."""
    packages: dict[str, str] = {}
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        status, name, version = parts
        if len(status) >= 2 and status[1] == "i" and name:
            packages[name] = version
    return dict(sorted(packages.items()))


def parse_windows(output: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """(packages, features) from WINDOWS_SCRIPT's JSON."""
    try:
        data = json.loads(output)
    except ValueError:
        raise VerifyError(f"the Windows inventory is not JSON: {output[:200]!r}") from None
    packages: dict[str, str] = {}
    for item in _as_list(data.get("Packages")):
        if isinstance(item, dict) and item.get("Name"):
            packages[str(item["Name"]).strip()] = str(item.get("Version") or "").strip()
    for hotfix in _as_list(data.get("Hotfixes")):
        if hotfix:
            packages[str(hotfix)] = "hotfix"
    features = tuple(sorted({str(f) for f in _as_list(data.get("Features")) if f}))
    return dict(sorted(packages.items())), features


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def collect_inventory(host: _Host, *, os: str) -> Inventory:
    """Collect the inventory through a Testinfra host (anything with ``run``)."""
    if os == "linux":
        result = host.run(LINUX_QUERY)
        if result.rc != 0:
            raise VerifyError(f"dpkg-query failed (exit {result.rc}): {result.stderr.strip()}")
        return Inventory("linux", parse_dpkg(result.stdout))
    if os == "windows":
        result = host.run(windows_command())
        if result.rc != 0:
            raise VerifyError(
                f"the Windows inventory script failed (exit {result.rc}): "
                f"{result.stderr.strip()[:300]}"
            )
        packages, features = parse_windows(result.stdout)
        return Inventory("windows", packages, features)
    raise VerifyError(f"unknown os {os!r} (expected linux or windows)")


def collect_from_spec(
    host_spec: str,
    *,
    os: str,
    ssh_config: Path | None = None,
    ssh_identity: Path | None = None,
    winrm_password: str | None = None,
    winrm_ca: str | None = None,
) -> Inventory:
    """Connect to a Testinfra host spec and collect its inventory.

    The WinRM password is handed to the backend directly, never through the spec; ``winrm_ca``
    (a PEM file) is the one certificate the host's TLS is verified against.
    """
    import testinfra  # heavy: loaded when an inventory is collected, not at import

    spec = parse_host_spec(host_spec)
    shown = redact_host_spec(host_spec)
    kwargs: dict[str, str] = {}
    if ssh_config is not None:
        kwargs["ssh_config"] = str(ssh_config)
    if ssh_identity is not None:
        kwargs["ssh_identity_file"] = str(ssh_identity)
    try:
        with warnings.catch_warnings():
            # Paramiko warns about a host key it has not seen; test VMs are new every time.
            warnings.filterwarnings("ignore", message="Unknown .* host key", category=UserWarning)
            host = testinfra.get_host(host_spec, **kwargs)
            if spec.scheme == "winrm":
                if not winrm_password:
                    raise VerifyError(f"{shown}: no WinRM password for the inventory")
                host.backend.conn_args["password"] = winrm_password
                if winrm_ca:
                    host.backend.conn_args["server_cert_validation"] = "validate"
                    host.backend.conn_args["ca_trust_path"] = winrm_ca
            return collect_inventory(host, os=os)
    except VerifyError as err:
        raise VerifyError(f"cannot collect the inventory from {shown}: {err}") from None
    except Exception as err:  # noqa: BLE001 - any backend failure means: no inventory
        raise VerifyError(
            f"cannot collect the inventory from {shown}: {type(err).__name__}: {err}"
        ) from None


# --- files ---------------------------------------------------------------------------------


def inventory_path_for(reports_root: Path, image: str, version: str) -> Path:
    """reports/<image>/<version>/inventory.json"""
    return reports.report_dir(reports_root, image, version) / reports.INVENTORY


def write_inventory(inventory: Inventory, path: Path) -> Path:
    """Write the inventory atomically; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(inventory.to_json(), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_inventory(path: Path) -> Inventory:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VerifyError(f"no inventory at {path}: was this version tested?") from None
    except (OSError, ValueError) as err:
        raise VerifyError(f"cannot read inventory {path}: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("packages"), dict):
        raise VerifyError(f"{path}: not an imageforge inventory (no 'packages' object)")
    return Inventory(
        str(data.get("os", "")),
        {str(k): str(v) for k, v in data["packages"].items()},
        tuple(str(f) for f in data.get("features", [])),
    )


# --- diff ----------------------------------------------------------------------------------


def _entries(inventory: Inventory) -> dict[str, str]:
    entries = dict(inventory.packages)
    for feature in inventory.features:
        entries[FEATURE_PREFIX + feature] = "installed"
    return entries


def diff_inventories(a: Inventory, b: Inventory) -> InventoryDiff:
    """What changed from a to b (packages and, on Windows, features as ``feature:<Name>``)."""
    old, new = _entries(a), _entries(b)
    return InventoryDiff(
        added=tuple((name, new[name]) for name in sorted(new.keys() - old.keys())),
        removed=tuple((name, old[name]) for name in sorted(old.keys() - new.keys())),
        changed=tuple(
            (name, old[name], new[name])
            for name in sorted(old.keys() & new.keys())
            if old[name] != new[name]
        ),
    )


def render_diff(diff: InventoryDiff, a_label: str = "a", b_label: str = "b") -> str:
    """A plain-text report: a summary line, then + added, - removed, ~ changed."""
    header = (
        f"{a_label} -> {b_label}: {len(diff.added)} added, {len(diff.removed)} removed, "
        f"{len(diff.changed)} changed"
    )
    if diff.empty:
        return header + " (no package changes)\n"
    lines = [header]
    lines += [f"  + {name} {version}".rstrip() for name, version in diff.added]
    lines += [f"  - {name} {version}".rstrip() for name, version in diff.removed]
    lines += [f"  ~ {name} {old} -> {new}" for name, old, new in diff.changed]
    return "\n".join(lines) + "\n"


def diff_versions(reports_root: Path, image: str, a: str, b: str) -> str:
    """The rendered diff of two tested versions' inventories (for ``invoke diff``)."""
    old = read_inventory(inventory_path_for(reports_root, image, a))
    new = read_inventory(inventory_path_for(reports_root, image, b))
    return render_diff(diff_inventories(old, new), f"{image} {a}", f"{image} {b}")
