"""imageforge.sandbox.control (invoke sandbox.*) and the harness's process hygiene."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from emulator_helpers import LOCATION, make_clients

from imageforge.errors import SandboxError
from imageforge.sandbox import control
from imageforge.sandbox.harness import EmulatorHandle, running_emulator


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_settings_defaults_and_validation():
    settings = control.SandboxSettings()
    assert settings.state_dir == Path("~/.cache/imageforge/sandbox").expanduser()
    assert (settings.host, settings.port, settings.backend) == ("127.0.0.1", 8443, "chroot")
    with pytest.raises(SandboxError, match="backend"):
        control.SandboxSettings(backend="qemu")
    with pytest.raises(SandboxError, match="port"):
        control.SandboxSettings(port=70000)


def test_up_status_down_reset(tmp_path: Path):
    settings = control.SandboxSettings(state_dir=tmp_path / "sb", port=0, backend="inert")
    assert control.status(settings).running is False
    with pytest.raises(SandboxError, match=r"not running: start it with `invoke sandbox.up`"):
        control.connection(settings)

    info = control.up(settings)
    try:
        assert info.url.startswith("https://127.0.0.1:") and not info.already_running
        assert info.ca_path == settings.state_dir / "tls" / "ca.pem"
        again = control.up(settings)
        assert again.already_running and again.pid == info.pid
        handle = EmulatorHandle(info.url, info.ca_path, settings.state_dir, info.pid)
        make_clients(handle).resource.resource_groups.create_or_update("g", {"location": LOCATION})
        status = control.status(settings)
        assert status.running and status.info is not None and status.info.pid == info.pid
        assert status.resources == {"microsoft.resources/resourcegroups": 1}
        assert status.vms == 0
    finally:
        stopped = control.down(settings)
    assert stopped == info.pid and _gone(info.pid)
    assert control.down(settings) is None
    assert control.status(settings).running is False

    report = control.reset(settings)
    assert report.stopped_pid is None and report.reaped == []
    assert not settings.state_dir.exists()


def test_reset_refuses_a_directory_that_is_not_a_sandbox(tmp_path: Path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(SandboxError, match="refusing to wipe"):
        control.reset(control.SandboxSettings(state_dir=tmp_path, backend="inert"))
    assert (tmp_path / "precious.txt").exists()


def test_up_reports_a_port_in_use(tmp_path: Path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = control.SandboxSettings(state_dir=tmp_path / "sb", port=port, backend="inert")
        with pytest.raises(SandboxError, match="exited with code"):
            control.up(settings)
    assert control.status(settings).running is False


def test_harness_leaves_no_process_behind(tmp_path: Path):
    with running_emulator(tmp_path / "h") as handle:
        pid = handle.pid
        assert handle.stats()["total"] == 0
    assert _gone(pid)
    assert not (tmp_path / "h" / "emulator.json").exists()
