"""The Windows build as far as it can be checked without Windows (issue 12, items 2-4).

PowerShell is parsed with tree-sitter's PowerShell grammar (no PowerShell runs on this Debian
machine): every script under provisioners/windows/ and every PowerShell command line in the
rendered build. The grammar is not PowerShell's own parser, so it catches broken syntax
(unbalanced braces, quotes, here-strings) but not everything PowerShell would refuse; the order
and arguments of what the scripts run are checked as text below.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from helpers.cli import REPO

from imageforge import hclio
from imageforge.config import load_image_file
from imageforge.render import PROFILES, Renderer
from imageforge.site import Site

WINDOWS = sorted((REPO / "provisioners" / "windows").glob("*.ps1"))
SYSPREP = REPO / "provisioners" / "windows" / "Invoke-Sysprep.ps1"
LEFTOVERS = REPO / "provisioners" / "windows" / "Remove-BuildLeftovers.ps1"


def _parser():  # type: ignore[no-untyped-def]
    import tree_sitter_powershell
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_powershell.language()))


def syntax_errors(source: str) -> list[str]:
    """Where tree-sitter's PowerShell grammar finds an error or a missing token."""
    tree = _parser().parse(source.encode())
    found: list[str] = []

    def walk(node) -> None:  # type: ignore[no-untyped-def]
        if node.type == "ERROR" or node.is_missing:
            row, col = node.start_point
            text = source.encode()[node.start_byte : node.end_byte][:60].decode(errors="replace")
            found.append(f"line {row + 1} col {col + 1}: {text!r}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return found


def test_the_parser_finds_broken_powershell():
    assert syntax_errors("if ($x -eq 1 { Write-Output 'a' }")
    assert syntax_errors('$text = @"\nunterminated')
    assert not syntax_errors('& wevtutil.exe cl "$name" 2>&1 | Out-Null')


@pytest.mark.parametrize("script", WINDOWS, ids=[p.name for p in WINDOWS])
def test_windows_script_parses(script: Path):
    assert syntax_errors(script.read_text()) == [], script.name


@pytest.fixture(scope="module", params=sorted(PROFILES))
def provisioners(request: pytest.FixtureRequest, tmp_path_factory) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def, type-arg]
    image = load_image_file(REPO / "images" / "windows-2022.pkrvars.hcl", repo_root=REPO)
    texts = Renderer(Site(root=REPO)).render_text(image, PROFILES[request.param])
    build = hclio.loads(texts["build.pkr.hcl"], path="build.pkr.hcl")["build"][0]
    return [next(iter(p.items())) for p in build["provisioner"]]


def test_every_rendered_powershell_command_parses(provisioners):
    commands = [body["restart_check_command"] for kind, body in provisioners if
                kind == "windows-restart" and "restart_check_command" in body]  # fmt: skip
    assert commands
    for command in commands:
        argv = shlex.split(command)
        assert argv[:2] == ["powershell", "-NoProfile"] and argv[2] == "-Command", argv
        assert syntax_errors(argv[3]) == [], argv[3]


def test_windows_update_runs_elevated_in_two_passes_each_followed_by_a_restart(provisioners):
    kinds = [kind for kind, _ in provisioners]
    updates = [
        i for i, (kind, body) in enumerate(provisioners)
        if kind == "powershell"
        and any(s.endswith("Install-WindowsUpdates.ps1") for s in body.get("scripts", []))
    ]  # fmt: skip
    assert len(updates) == 2
    for index in updates:
        body = provisioners[index][1]
        assert body["scripts"] == ["provisioners/windows/Install-WindowsUpdates.ps1"]
        # Packer's documented way to reuse the communicator's generated password on Azure.
        assert body["elevated_user"] == "${build.User}"
        assert body["elevated_password"] == "${build.Password}"
        restart = provisioners[index + 1]
        assert restart[0] == "windows-restart" and restart[1]["check_registry"] is True
        assert "Get-Process TiWorker" in restart[1]["restart_check_command"]
    assert kinds[-1] == "powershell"
    others = [b for k, b in provisioners[:-1] if k == "powershell" and "elevated_user" not in b]
    assert all("Install-WindowsUpdates.ps1" not in " ".join(b["scripts"]) for b in others)


def test_sysprep_is_the_last_provisioner_and_a_script(provisioners):
    kind, body = provisioners[-1]
    assert kind == "powershell"
    assert body["script"] == "provisioners/windows/Invoke-Sysprep.ps1"
    assert body["environment_vars"] == ["IMAGEFORGE_SYSPREP_TIMEOUT=1800"]
    assert provisioners[-2][0] == "windows-restart"


def _position(text: str, pattern: str) -> int:
    match = re.search(pattern, text)
    assert match, f"Invoke-Sysprep.ps1 lacks {pattern!r}"
    return match.start()


def test_sysprep_waits_for_servicing_and_the_agent_then_seals_then_drops_the_build_winrm():
    text = SYSPREP.read_text()
    body = text.split("#>", 1)[1]
    steps = [
        _position(body, r"Get-Process -Name TiWorker"),
        _position(
            body,
            r"Get-Service -Name 'RdAgent', 'WindowsAzureTelemetryService', "
            r"'WindowsAzureGuestAgent'",
        ),  # fmt: skip
        _position(body, r"Remove-Item -Path \$unattend -Force"),
        _position(body, r"Sysprep\.exe'\) /oobe /generalize /quiet /quit /mode:vm\n"),
        _position(body, r"IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE'\n"),
        _position(body, r"Register-ScheduledTask -TaskName 'imageforge-remove-build-winrm'"),
    ]
    assert steps == sorted(steps), "Invoke-Sysprep.ps1 runs its steps out of order"
    assert "System32\\Sysprep\\unattend.xml" in body
    # every wait is bounded by the same deadline
    assert body.count("Wait-Until ") >= 3 and "(Get-Date) -gt $deadline" in body
    assert "-DeleteKey" in body and "New-ScheduledTaskTrigger -AtStartup" in body
    assert "BuildWinRMThumbprint" in body


def test_event_logs_are_cleared_by_exit_code_and_only_where_they_can_be():
    body = LEFTOVERS.read_text().split("#>", 1)[1]
    assert "2>$null" not in body, "a native command's stderr redirect terminates under 'Stop'"
    assert "$LogType -in @('Administrative', 'Operational')" in body.replace("$_.", "$")
    assert re.search(r"\$code = \$LASTEXITCODE\n", body)
    assert "$ErrorActionPreference = 'Continue'" in body
