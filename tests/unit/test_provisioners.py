"""Provisioner scripts: syntax, shellcheck, headers, strict mode, and what the testable ones do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from imageforge.config import load_image_file

REPO = Path(__file__).resolve().parents[2]
LINUX = sorted((REPO / "provisioners" / "linux").glob("*.sh"))
WINDOWS = sorted((REPO / "provisioners" / "windows").glob("*.ps1"))
LINUX_NAME = re.compile(r"^((install|configure|cleanup)-[a-z0-9-]+|generalize|specialize)\.sh$")
WINDOWS_NAME = re.compile(r"^(Install|Configure|Remove|Invoke)-[A-Z][A-Za-z]+\.ps1$")
SECRET_ECHO = re.compile(
    r"(?i)\b(echo|printf|Write-(Output|Host|Verbose|Warning))\b.*\$\{?(env:)?\w*(PASSWORD|SECRET|TOKEN)"
)


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=60)


def test_there_are_scripts_for_both_systems():
    assert LINUX and WINDOWS


@pytest.mark.parametrize("script", LINUX, ids=ids(LINUX))
def test_linux_script_is_valid_bash(script):
    result = run(["bash", "-n", str(script)])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", LINUX, ids=ids(LINUX))
def test_linux_script_passes_shellcheck(script):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = run(["shellcheck", "--severity=info", str(script)])
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", LINUX, ids=ids(LINUX))
def test_linux_script_has_header_and_strict_mode(script):
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash", f"{script.name}: first line must be the shebang"
    assert lines[1].startswith(f"# {script.name} — "), (
        f"{script.name}: the second line must say what the script does"
    )
    first_command = next(line for line in lines[1:] if line and not line.startswith("#"))
    assert first_command == "set -euo pipefail", (
        f"{script.name}: `set -euo pipefail` must come before any command"
    )


@pytest.mark.parametrize("script", LINUX, ids=ids(LINUX))
def test_linux_script_is_named_by_what_it_does(script):
    assert LINUX_NAME.match(script.name), script.name
    assert os.access(script, os.X_OK), f"{script.name} is not executable"


@pytest.mark.parametrize("script", WINDOWS, ids=ids(WINDOWS))
def test_windows_script_has_header_and_stops_on_errors(script):
    text = script.read_text()
    assert text.startswith("<#\n.SYNOPSIS\n"), f"{script.name}: must start with a help header"
    assert f"    {script.name} - " in text.split("#>")[0], (
        f"{script.name}: the synopsis must name the script and say what it does"
    )
    assert "\n$ErrorActionPreference = 'Stop'\n" in text, (
        f"{script.name}: $ErrorActionPreference = 'Stop' is missing"
    )


@pytest.mark.parametrize("script", WINDOWS, ids=ids(WINDOWS))
def test_windows_script_is_named_by_what_it_does(script):
    assert WINDOWS_NAME.match(script.name), script.name


@pytest.mark.parametrize("script", LINUX + WINDOWS, ids=ids(LINUX + WINDOWS))
def test_script_never_prints_a_secret(script):
    offending = [line for line in script.read_text().splitlines() if SECRET_ECHO.search(line)]
    assert not offending, f"{script.name} prints a secret: {offending}"


def test_generalize_is_the_only_script_that_deprovisions():
    users = [p.name for p in LINUX if "-deprovision" in p.read_text()]
    assert users == ["generalize.sh"]


# --- behaviour -----------------------------------------------------------------------------

MARKER = REPO / "provisioners" / "linux" / "configure-image-marker.sh"
SSH = REPO / "provisioners" / "linux" / "configure-ssh-hardening.sh"
PACKAGES = REPO / "provisioners" / "linux" / "install-packages.sh"
GENERALIZE = REPO / "provisioners" / "linux" / "generalize.sh"


def marker_env(root: Path, **overrides: str) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "IMAGEFORGE_ROOT": str(root),
        "IMAGEFORGE_IMAGE": "debian-12",
        "IMAGEFORGE_VERSION": "1.4.0",
        "IMAGEFORGE_SOURCE_COMMIT": "0123456789abcdef0123456789abcdef01234567",
        "IMAGEFORGE_BUILD_DATE": "2024-05-01T12:00:00Z",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v}


def test_marker_script_writes_the_release_file(tmp_path):
    result = run(["bash", str(MARKER)], marker_env(tmp_path))
    assert result.returncode == 0, result.stderr
    marker = tmp_path / "etc" / "imageforge-release"
    assert marker.read_text() == (
        "IMAGEFORGE_IMAGE=debian-12\n"
        "IMAGEFORGE_VERSION=1.4.0\n"
        "IMAGEFORGE_SOURCE_COMMIT=0123456789abcdef0123456789abcdef01234567\n"
        "IMAGEFORGE_BUILD_DATE=2024-05-01T12:00:00Z\n"
    )
    assert marker.stat().st_mode & 0o777 == 0o644
    assert list((tmp_path / "etc").iterdir()) == [marker], "temporary file left behind"


def test_marker_script_defaults_the_build_date_to_now_in_utc(tmp_path):
    result = run(["bash", str(MARKER)], marker_env(tmp_path, IMAGEFORGE_BUILD_DATE=""))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "etc" / "imageforge-release").read_text()
    assert re.search(r"^IMAGEFORGE_BUILD_DATE=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", text, re.M)


@pytest.mark.parametrize(
    "variable", ["IMAGEFORGE_IMAGE", "IMAGEFORGE_VERSION", "IMAGEFORGE_SOURCE_COMMIT"]
)
def test_marker_script_fails_clearly_when_a_variable_is_missing(tmp_path, variable):
    result = run(["bash", str(MARKER)], marker_env(tmp_path, **{variable: ""}))
    assert result.returncode != 0
    assert f"{variable} is not set" in result.stderr
    assert not (tmp_path / "etc" / "imageforge-release").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IMAGEFORGE_VERSION", "1.4"),
        ("IMAGEFORGE_IMAGE", "debian 12\nIMAGEFORGE_VERSION=9.9.9"),
        ("IMAGEFORGE_SOURCE_COMMIT", "main"),
    ],
)
def test_marker_script_refuses_malformed_values(tmp_path, variable, value):
    result = run(["bash", str(MARKER)], marker_env(tmp_path, **{variable: value}))
    assert result.returncode != 0
    assert f"{variable}=" in result.stderr and "is not valid" in result.stderr


def ssh_root(tmp_path: Path, main_config: str) -> Path:
    (tmp_path / "etc" / "ssh").mkdir(parents=True)
    (tmp_path / "etc" / "ssh" / "sshd_config").write_text(main_config)
    return tmp_path


def run_ssh_hardening(root: Path) -> subprocess.CompletedProcess[str]:
    return run(["bash", str(SSH)], {"PATH": os.environ["PATH"], "IMAGEFORGE_ROOT": str(root)})


def test_ssh_hardening_writes_the_drop_in(tmp_path):
    root = ssh_root(tmp_path, "Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n")
    result = run_ssh_hardening(root)
    assert result.returncode == 0, result.stderr
    dropin = root / "etc" / "ssh" / "sshd_config.d" / "01-imageforge-hardening.conf"
    settings = dict(
        line.split(" ", 1) for line in dropin.read_text().splitlines() if not line.startswith("#")
    )
    assert settings["PermitRootLogin"] == "no"
    assert settings["PasswordAuthentication"] == "no"
    assert settings["KbdInteractiveAuthentication"] == "no"
    assert settings["PermitEmptyPasswords"] == "no"
    assert settings["X11Forwarding"] == "no"


def test_ssh_hardening_puts_the_include_first(tmp_path):
    main = "# Debian\nPort 22\nPermitRootLogin yes\nInclude /etc/ssh/sshd_config.d/*.conf\n"
    root = ssh_root(tmp_path, main)
    assert run_ssh_hardening(root).returncode == 0
    lines = (root / "etc" / "ssh" / "sshd_config").read_text().splitlines()
    assert lines[0] == "Include /etc/ssh/sshd_config.d/*.conf"
    assert lines.count("Include /etc/ssh/sshd_config.d/*.conf") == 1
    assert lines[1:] == ["# Debian", "Port 22", "PermitRootLogin yes"]


def test_ssh_hardening_is_idempotent(tmp_path):
    root = ssh_root(tmp_path, "Port 22\n")
    assert run_ssh_hardening(root).returncode == 0
    first = {p: p.read_bytes() for p in (root / "etc" / "ssh").rglob("*") if p.is_file()}
    result = run_ssh_hardening(root)
    assert result.returncode == 0
    assert "include the drop-in directory first" not in result.stdout
    second = {p: p.read_bytes() for p in (root / "etc" / "ssh").rglob("*") if p.is_file()}
    assert first == second


def test_ssh_hardening_drop_in_is_what_sshd_enforces(tmp_path):
    """sshd itself reads the drop-in: `sshd -T` shows the effective values."""
    if not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()):
        pytest.skip("openssh-server is not installed")
    if not Path("/run/sshd").is_dir():
        if os.geteuid() != 0:
            pytest.skip("sshd -T needs /run/sshd (exists wherever sshd runs; root can create it)")
        Path("/run/sshd").mkdir(mode=0o755)  # sshd's privilege-separation dir, as its unit makes

    root = ssh_root(tmp_path, "Port 22\n")
    assert run_ssh_hardening(root).returncode == 0
    key = tmp_path / "hostkey"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    dropin = root / "etc" / "ssh" / "sshd_config.d" / "01-imageforge-hardening.conf"
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    result = run([sshd, "-T", "-f", str(dropin), "-h", str(key)])
    assert result.returncode == 0, result.stderr
    effective = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert effective["permitrootlogin"] == "no"
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"


def test_install_packages_accepts_an_empty_list():
    result = run(["bash", str(PACKAGES)], {"PATH": os.environ["PATH"], "IMAGEFORGE_PACKAGES": ""})
    assert result.returncode == 0, result.stderr
    assert "nothing to install" in result.stdout


def test_install_packages_refuses_what_is_not_a_package_name():
    env = {"PATH": os.environ["PATH"], "IMAGEFORGE_PACKAGES": "curl jq;reboot"}
    result = run(["bash", str(PACKAGES)], env)
    assert result.returncode == 1
    assert "'jq;reboot' in IMAGEFORGE_PACKAGES is not a Debian package name" in result.stderr


def test_generalize_deprovisions_with_waagent(tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "waagent"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:{os.environ['PATH']}"}
    result = run(["bash", str(GENERALIZE)], env)
    assert result.returncode == 0, result.stderr
    assert calls.read_text() == "-force -deprovision+user\n"


def test_kernel_hardening_writes_every_setting_the_hardened_image_checks(tmp_path):
    script = REPO / "provisioners" / "linux" / "configure-kernel-hardening.sh"
    result = run(
        ["bash", str(script)], {"PATH": os.environ["PATH"], "IMAGEFORGE_ROOT": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr
    conf = (tmp_path / "etc/sysctl.d/60-imageforge-hardening.conf").read_text()
    written = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition("=") for line in conf.splitlines())
        if k.strip() and not k.startswith("#")
    )
    image = load_image_file(REPO / "images" / "debian-12-hardened.pkrvars.hcl", repo_root=REPO)
    assert image.test.sysctl and all(written.get(k) == v for k, v in image.test.sysctl)
    assert "configure-kernel-hardening.sh" in image.provisioners


def test_generalize_removes_the_copy_packer_uploaded(tmp_path):
    """Packer runs it with skip_clean (its user is gone afterwards): the uploaded copy in /tmp
    must not end up in the image (the image suite's leftover check looks for it)."""
    fake = tmp_path / "bin" / "waagent"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    uploaded = Path("/tmp") / f"script_{os.getpid()}{tmp_path.name}.sh"  # Packer's upload path
    uploaded.write_text(GENERALIZE.read_text())
    try:
        env = {"PATH": f"{fake.parent}:{os.environ['PATH']}"}
        result = run(["bash", str(uploaded)], env)
        assert result.returncode == 0, result.stderr
        assert not uploaded.exists()
        # anywhere else (a checkout under /tmp included) the script stays where it is
        elsewhere = tmp_path / "generalize.sh"
        elsewhere.write_text(GENERALIZE.read_text())
        assert run(["bash", str(elsewhere)], env).returncode == 0
        assert elsewhere.exists() and GENERALIZE.exists()
    finally:
        uploaded.unlink(missing_ok=True)


def test_generalize_fails_clearly_without_waagent(tmp_path):
    result = run(["/bin/bash", str(GENERALIZE)], {"PATH": str(tmp_path)})
    assert result.returncode == 1
    assert "waagent is not installed" in result.stderr


SPECIALIZE = REPO / "provisioners" / "linux" / "specialize.sh"


@pytest.mark.parametrize("sudo_user", ["", "root"])
def test_specialize_refuses_to_run_except_through_sudo_as_the_build_user(sudo_user):
    """What it does to the build user runs for real in the sandbox build of a Specialized
    image (the image suite's test_build_user_has_no_credential_left); here, only that it
    changes nothing when it cannot tell who the build user is."""
    env = {"PATH": os.environ["PATH"], "SUDO_USER": sudo_user}
    result = run(["bash", str(SPECIALIZE)], env)
    assert result.returncode == 1
    assert result.stderr.startswith("specialize: run through sudo as the build user")


def test_every_provisioner_an_image_names_exists():
    from imageforge.config import load_image_file

    missing = []
    for path in sorted((REPO / "images").glob("*.pkrvars.hcl")):
        definition = load_image_file(path)
        folder = REPO / "provisioners" / definition.os
        missing += [
            f"{path.name}: {s}" for s in definition.provisioners if not (folder / s).is_file()
        ]
    assert not missing, f"image definitions name provisioners that do not exist: {missing}"
