"""imageforge.inventory: collecting, the inventory file, and the diff between two versions."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest

from imageforge import inventory
from imageforge.errors import VerifyError
from imageforge.inventory import Inventory, InventoryDiff


@dataclass
class Result:
    rc: int = 0
    stdout: str = ""
    stderr: str = ""


class FakeHost:
    def __init__(self, result: Result) -> None:
        self.result = result
        self.commands: list[str] = []

    def run(self, command: str, *args: str) -> Result:
        self.commands.append(command)
        return self.result


DPKG = (
    "ii \topenssh-server\t1:9.2p1-2+deb12u3\n"
    "ii \tlibc6:amd64\t2.36-9+deb12u7\n"
    "rc \ttelnetd\t0.17-44\n"  # removed, configuration left: not installed
    "hi \tjq\t1.6-2.1\n"  # held, installed
    "garbage line\n"
)


def test_linux_inventory_from_dpkg_query():
    host = FakeHost(Result(stdout=DPKG))
    inv = inventory.collect_inventory(host, os="linux")
    assert host.commands == [inventory.LINUX_QUERY]
    assert inv == Inventory(
        "linux",
        {"jq": "1.6-2.1", "libc6:amd64": "2.36-9+deb12u7", "openssh-server": "1:9.2p1-2+deb12u3"},
    )


def test_linux_inventory_failure_is_a_verify_error():
    with pytest.raises(VerifyError, match="dpkg-query failed"):
        inventory.collect_inventory(FakeHost(Result(rc=2, stderr="boom")), os="linux")


def test_windows_inventory_packages_hotfixes_and_features():
    payload = {
        "Packages": [
            {"Name": "Microsoft Edge", "Version": "124.0"},
            {"Name": "7-Zip 23.01 (x64)", "Version": None},
        ],
        "Hotfixes": "KB5036896",
        "Features": ["Web-Server", "FS-FileServer"],
    }
    host = FakeHost(Result(stdout=json.dumps(payload)))
    inv = inventory.collect_inventory(host, os="windows")
    (command,) = host.commands
    assert command.startswith("powershell -NoProfile -NonInteractive ")
    script = base64.b64decode(command.rsplit(" ", 1)[1]).decode("utf-16-le")
    assert "Get-WindowsFeature" in script and "Uninstall" in script
    assert inv.packages == {
        "7-Zip 23.01 (x64)": "",
        "KB5036896": "hotfix",
        "Microsoft Edge": "124.0",
    }
    assert inv.features == ("FS-FileServer", "Web-Server")


def test_windows_inventory_that_is_not_json_is_a_verify_error():
    with pytest.raises(VerifyError, match="not JSON"):
        inventory.collect_inventory(FakeHost(Result(stdout="oops")), os="windows")


def test_collect_from_this_machine():
    inv = inventory.collect_from_spec("local://", os="linux")
    assert "dpkg" in inv.packages


def test_collect_from_an_unreachable_host_names_it_without_secrets():
    with pytest.raises(VerifyError) as err:
        inventory.collect_from_spec(
            "winrm://u@127.0.0.1:9?no_verify_ssl=true", os="windows", winrm_password="pw-secret-1"
        )
    assert "cannot collect the inventory from winrm://u@127.0.0.1:9" in str(err.value)
    assert "pw-secret-1" not in str(err.value)


def test_inventory_file_is_deterministic(tmp_path):
    a = Inventory("linux", {"b": "2", "a": "1"}, ("y", "x"))
    b = Inventory("linux", {"a": "1", "b": "2"}, ("x", "y"))
    path_a = inventory.write_inventory(a, tmp_path / "a" / "inventory.json")
    path_b = inventory.write_inventory(b, tmp_path / "b" / "inventory.json")
    assert path_a.read_bytes() == path_b.read_bytes()
    assert json.loads(path_a.read_text()) == {
        "features": ["x", "y"],
        "os": "linux",
        "packages": {"a": "1", "b": "2"},
    }
    assert inventory.read_inventory(path_a) == Inventory("linux", {"a": "1", "b": "2"}, ("x", "y"))


def test_reading_a_missing_or_broken_inventory(tmp_path):
    with pytest.raises(VerifyError, match="was this version tested"):
        inventory.read_inventory(tmp_path / "inventory.json")
    (tmp_path / "inventory.json").write_text('{"os": "linux"}')
    with pytest.raises(VerifyError, match="not an imageforge inventory"):
        inventory.read_inventory(tmp_path / "inventory.json")


OLD = Inventory("linux", {"curl": "7.88", "openssl": "3.0.11", "telnet": "0.17"})
NEW = Inventory("linux", {"curl": "7.88", "openssl": "3.0.13", "jq": "1.6"})


def test_diff_inventories():
    assert inventory.diff_inventories(OLD, NEW) == InventoryDiff(
        added=(("jq", "1.6"),),
        removed=(("telnet", "0.17"),),
        changed=(("openssl", "3.0.11", "3.0.13"),),
    )
    assert inventory.diff_inventories(OLD, OLD).empty


def test_diff_includes_windows_features():
    a = Inventory("windows", {}, ("Web-Server",))
    b = Inventory("windows", {}, ("FS-FileServer",))
    diff = inventory.diff_inventories(a, b)
    assert diff.added == (("feature:FS-FileServer", "installed"),)
    assert diff.removed == (("feature:Web-Server", "installed"),)


def test_render_diff():
    text = inventory.render_diff(inventory.diff_inventories(OLD, NEW), "debian-12 1.3.0", "1.4.0")
    assert text == (
        "debian-12 1.3.0 -> 1.4.0: 1 added, 1 removed, 1 changed\n"
        "  + jq 1.6\n"
        "  - telnet 0.17\n"
        "  ~ openssl 3.0.11 -> 3.0.13\n"
    )
    assert inventory.render_diff(InventoryDiff(), "a", "b").endswith("(no package changes)\n")


def test_diff_versions_reads_the_reports(tmp_path):
    inventory.write_inventory(OLD, inventory.inventory_path_for(tmp_path, "debian-12", "1.3.0"))
    inventory.write_inventory(NEW, inventory.inventory_path_for(tmp_path, "debian-12", "1.4.0"))
    text = inventory.diff_versions(tmp_path, "debian-12", "1.3.0", "1.4.0")
    assert text.startswith("debian-12 1.3.0 -> debian-12 1.4.0: 1 added")
    with pytest.raises(VerifyError, match="1.9.9"):
        inventory.diff_versions(tmp_path, "debian-12", "1.3.0", "1.9.9")
