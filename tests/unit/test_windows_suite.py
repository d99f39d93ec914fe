"""The Windows suite's PowerShell checks: the commands they send and the verdicts they reach.

A recording fake host stands in for Testinfra's WinRM host: what is under test is each check's
command and verdict, not Testinfra.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_winchecks():
    path = REPO / "tests" / "image" / "windows" / "winchecks.py"
    spec = importlib.util.spec_from_file_location("imageforge_winchecks", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


wc = _load_winchecks()


@dataclass
class Result:
    rc: int = 0
    stdout: str = ""
    stderr: str = ""


@dataclass
class FakeHost:
    """Records every command; answers each with the next canned result."""

    answers: list[Result] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    def run(self, command: str, *args: str) -> Result:
        assert not args, "checks must send one complete command"
        self.commands.append(command)
        return self.answers.pop(0)

    @property
    def script(self) -> str:
        assert len(self.commands) == 1
        return wc.decode(self.commands[0])


def answering(value: object) -> FakeHost:
    return FakeHost([Result(stdout=json.dumps(value))])


def test_commands_are_encoded_noninteractive_powershell():
    host = answering({})
    wc.read_marker(host)
    command = host.commands[0]
    assert command.startswith("powershell -NoProfile -NonInteractive ")
    assert " -EncodedCommand " in command
    # nothing but base64 after the flag: no quoting problems through WinRM and cmd.exe
    assert command.rsplit(" ", 1)[1].replace("+", "").replace("/", "").rstrip("=").isalnum()
    assert "$ErrorActionPreference = 'Stop'" in wc.PRELUDE


def test_encode_round_trips_unicode_and_quotes():
    script = "Write-Output 'it''s \"quoted\" — ünïcode'"
    assert wc.decode(wc.powershell_command(script)) == script


def test_ps_quote_escapes_single_quotes():
    assert wc.ps_quote("a'b") == "'a''b'"


def test_a_failing_script_is_a_check_error():
    host = FakeHost([Result(rc=1, stderr="Get-NetFirewallProfile : Access denied\nmore")])
    with pytest.raises(wc.CheckError, match="exited 1: Get-NetFirewallProfile : Access denied"):
        wc.read_firewall_profiles(host)


def test_output_that_is_not_json_is_a_check_error():
    with pytest.raises(wc.CheckError, match="no JSON"):
        wc.read_winrm(FakeHost([Result(stdout="WARNING: something")]))


# --- marker --------------------------------------------------------------------------------


def test_marker_reads_the_imageforge_registry_key():
    host = answering({"Image": "windows-2022", "Version": "1.2.0", "SourceCommit": "abc1234"})
    marker = wc.read_marker(host)
    assert r"HKLM:\SOFTWARE\imageforge" in host.script
    assert "Select-Object -Property 'Image', 'Version', 'SourceCommit'" in host.script
    assert wc.check_marker_present(marker).ok
    assert wc.check_marker_image(marker, "windows-2022").ok
    assert wc.check_marker_version(marker, "1.2.0").ok


def test_marker_of_another_version_fails_with_both_versions_named():
    marker = wc.read_marker(answering({"Image": "windows-2022", "Version": "1.1.0"}))
    verdict = wc.check_marker_version(marker, "1.2.0")
    assert not verdict.ok
    assert "'1.1.0'" in verdict.detail and "'1.2.0'" in verdict.detail


def test_missing_marker_names_the_provisioner():
    marker = wc.read_marker(answering({}))
    verdict = wc.check_marker_present(marker)
    assert not verdict.ok and "Configure-ImageMarker.ps1" in verdict.detail
    assert not wc.check_marker_image(marker, "windows-2022").ok


# --- WinRM ---------------------------------------------------------------------------------


def test_winrm_https_only_passes():
    host = answering({"Transports": ["HTTPS"], "AllowUnencrypted": "false"})
    winrm = wc.read_winrm(host)
    assert "WSMan:\\localhost\\Listener" in host.script
    assert wc.check_winrm_https_listener(winrm).ok
    assert wc.check_winrm_no_http_listener(winrm).ok
    assert wc.check_winrm_unencrypted_refused(winrm).ok


def test_winrm_http_listener_fails():
    winrm = wc.read_winrm(answering({"Transports": ["HTTP", "HTTPS"], "AllowUnencrypted": "true"}))
    verdict = wc.check_winrm_no_http_listener(winrm)
    assert not verdict.ok and "HTTP, HTTPS" in verdict.detail
    assert not wc.check_winrm_unencrypted_refused(winrm).ok


def test_winrm_single_listener_may_come_as_a_string():
    winrm = wc.read_winrm(answering({"Transports": "HTTP", "AllowUnencrypted": "false"}))
    assert not wc.check_winrm_https_listener(winrm).ok


def test_the_build_winrm_certificate_gone_passes_when_neither_stored_nor_listening():
    answer = {"Transports": "HTTPS", "AllowUnencrypted": "false", "Listening": "AAAA"}
    host = answering({**answer, "Build": "bbbb", "Stored": ["AAAA", "CCCC"]})
    winrm = wc.read_winrm(host)
    assert "BuildWinRMThumbprint" in host.script and "Cert:\\LocalMachine\\My" in host.script
    assert wc.check_build_winrm_certificate_gone(winrm).ok


@pytest.mark.parametrize("where", ["Stored", "Listening"])
def test_the_build_winrm_certificate_left_behind_fails(where):
    answer = {"Transports": ["HTTPS"], "AllowUnencrypted": "false", "Build": ["BBBB"],
              "Listening": ["AAAA"], "Stored": ["AAAA"]}  # fmt: skip
    answer[where] = ["AAAA", "bbbb"]
    verdict = wc.check_build_winrm_certificate_gone(wc.read_winrm(answering(answer)))
    assert not verdict.ok and "BBBB" in verdict.detail and "share its private key" in verdict.detail


def test_no_recorded_build_certificate_fails():
    verdict = wc.check_build_winrm_certificate_gone(
        wc.read_winrm(answering({"Transports": "HTTPS", "AllowUnencrypted": "false"}))
    )
    assert not verdict.ok and "Invoke-Sysprep.ps1 did not record" in verdict.detail


# --- firewall, RDP, Defender ---------------------------------------------------------------


def test_firewall_profiles_are_checked_one_by_one():
    host = answering(
        [
            {"Name": "Domain", "Enabled": "True"},
            {"Name": "Private", "Enabled": "True"},
            {"Name": "Public", "Enabled": "False"},
        ]
    )
    profiles = wc.read_firewall_profiles(host)
    assert "Get-NetFirewallProfile" in host.script
    assert wc.check_firewall_profile(profiles, "Domain").ok
    public = wc.check_firewall_profile(profiles, "Public")
    assert not public.ok and "Public firewall profile is off" in public.detail


def test_unknown_firewall_profile_fails():
    assert not wc.check_firewall_profile({}, "Domain").ok


@pytest.mark.parametrize(("value", "ok"), [(1, True), (0, False), (None, False)])
def test_rdp_requires_nla(value, ok):
    host = answering({"fDenyTSConnections": 0, "UserAuthentication": value, "SecurityLayer": 2})
    rdp = wc.read_rdp(host)
    assert "WinStations\\RDP-Tcp" in host.script
    assert wc.check_rdp_requires_nla(rdp).ok is ok
    assert wc.check_rdp_enabled(rdp).ok


def test_rdp_disabled_fails():
    rdp = wc.read_rdp(answering({"fDenyTSConnections": 1, "UserAuthentication": 1}))
    assert not wc.check_rdp_enabled(rdp).ok


def test_defender_running_with_realtime_protection():
    host = answering({"Service": "Running", "RealTimeProtectionEnabled": True})
    defender = wc.read_defender(host)
    assert "Get-MpComputerStatus" in host.script and "WinDefend" in host.script
    assert wc.check_defender_running(defender).ok
    assert wc.check_defender_realtime(defender).ok


def test_defender_stopped_fails():
    defender = wc.read_defender(
        answering({"Service": "Stopped", "RealTimeProtectionEnabled": False})
    )
    verdict = wc.check_defender_running(defender)
    assert not verdict.ok and "Stopped" in verdict.detail
    assert not wc.check_defender_realtime(defender).ok


# --- leftovers, sysprep, features ----------------------------------------------------------


def test_leftovers_look_for_packer_files_and_histories():
    host = answering([])
    assert wc.check_no_leftovers(wc.read_leftovers(host)).ok
    for pattern in wc.LEFTOVER_PATTERNS:
        assert wc.ps_quote(pattern) in host.script


def test_leftovers_are_named_in_the_verdict():
    found = wc.read_leftovers(answering(r"C:\Windows\Temp\packer-ps-env-vars-1.ps1"))
    verdict = wc.check_no_leftovers(found)
    assert not verdict.ok and r"packer-ps-env-vars-1.ps1" in verdict.detail


@pytest.mark.parametrize(
    ("state", "ok"), [("IMAGE_STATE_COMPLETE", True), ("IMAGE_STATE_UNDEPLOYABLE", False)]
)
def test_sysprep_state(state, ok):
    host = answering(state)
    assert wc.check_sysprep_complete(wc.read_image_state(host)).ok is ok
    assert "Setup\\State" in host.script


def test_feature_check_quotes_the_name_and_reads_installed():
    host = answering({"Name": "Web-Server", "Installed": True})
    feature = wc.read_feature(host, "Web-Server")
    assert "Get-WindowsFeature -Name 'Web-Server'" in host.script
    assert wc.check_feature_installed(feature, "Web-Server").ok


def test_feature_not_installed_or_unknown_fails():
    absent = wc.read_feature(answering({"Name": "Web-Server", "Installed": False}), "Web-Server")
    assert "not installed" in wc.check_feature_installed(absent, "Web-Server").detail
    unknown = wc.read_feature(answering(None), "No-Such")
    verdict = wc.check_feature_installed(unknown, "No-Such")
    assert not verdict.ok and "does not exist" in verdict.detail


def test_no_check_sends_a_password():
    host = FakeHost([Result(stdout="{}") for _ in range(8)] + [Result(stdout="[]")] * 2)
    wc.read_marker(host)
    wc.read_winrm(host)
    wc.read_rdp(host)
    wc.read_defender(host)
    wc.read_image_state(host)
    wc.read_feature(host, "Web-Server")
    wc.read_firewall_profiles(FakeHost([Result(stdout="[]")]))
    for command in host.commands:
        assert "password" not in wc.decode(command).lower()
        assert "password" not in command.lower()


READERS = [
    ("read_marker", ()),
    ("read_winrm", ()),
    ("read_firewall_profiles", ()),
    ("read_rdp", ()),
    ("read_defender", ()),
    ("read_leftovers", ()),
    ("read_image_state", ()),
    ("read_feature", ("Web-Server",)),
]


@pytest.mark.parametrize(("reader", "args"), READERS, ids=[r for r, _ in READERS])
def test_every_script_the_suite_sends_parses(reader, args):
    from test_windows_build import syntax_errors

    host = answering({})
    try:
        getattr(wc, reader)(host, *args)
    except wc.CheckError:
        pass  # an empty answer is not what this test is about
    assert syntax_errors(host.script) == [], reader
