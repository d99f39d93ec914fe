"""imageforge.verify runs its suite through imageforge.process: from repo_root, with a timeout
that really stops a hanging suite, and with the WinRM password out of argv, log and console."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from imageforge import process, verify
from imageforge.errors import VerifyError
from imageforge.hostspec import WINRM_PASSWORD_ENV
from imageforge.junit import EXIT_FAILED, SuiteResult

REPO = Path(__file__).resolve().parents[2]
SECRET = "Sup3r-Secret-Passw0rd"

SUITE_CONFTEST = """
def pytest_addoption(parser):
    for name in ("image", "version", "admin-user"):
        parser.addoption(f"--imageforge-{name}")
"""


def make_suite(root: Path, os_name: str, body: str) -> Path:
    """A tiny suite at <root>/tests/image/<os_name>."""
    suite = root / "tests" / "image" / os_name
    suite.mkdir(parents=True)
    (suite / "conftest.py").write_text(SUITE_CONFTEST)
    (suite / "test_tiny.py").write_text(textwrap.dedent(body))
    return root


def run(root: Path, tmp_path: Path, os_name: str, host: str, **kwargs) -> SuiteResult:
    image = "windows-2022" if os_name == "windows" else "debian-12"
    return verify.run_suite(
        host,
        os=os_name,
        image_file=REPO / "images" / f"{image}.pkrvars.hcl",
        version="1.0.0",
        admin_user="admin",
        report_dir=tmp_path / "reports" / image / "1.0.0",
        repo_root=root,
        echo=lambda _line: None,
        **kwargs,
    )


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("ignores_sigint", [False, True])
def test_a_hanging_suite_is_stopped_at_its_timeout(tmp_path, monkeypatch, ignores_sigint):
    """SIGINT stops pytest; a suite deaf to it is killed once the grace period is over."""
    monkeypatch.setattr(verify, "SUITE_GRACE", 1.0)
    pid_file = tmp_path / "pid"
    deaf = "signal.signal(signal.SIGINT, signal.SIG_IGN)" if ignores_sigint else ""
    root = make_suite(
        tmp_path / "repo",
        "linux",
        f"""
        import os, signal, time

        def test_hangs():
            {deaf}
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            time.sleep(300)
        """,
    )
    started = time.monotonic()
    with pytest.raises(VerifyError) as caught:
        run(root, tmp_path, "linux", "local://", timeout=4)
    assert time.monotonic() - started < 60
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the linux suite on local:// timed out after 4s and was stopped")
    assert "pytest.log" in message
    assert _gone(int(pid_file.read_text()), within=15), "the suite still runs"


def test_the_winrm_password_reaches_the_suite_but_no_argv_log_or_console(
    tmp_path, monkeypatch, capfd
):
    monkeypatch.setenv(WINRM_PASSWORD_ENV, SECRET)
    seen = tmp_path / "seen"
    root = make_suite(
        tmp_path / "repo",
        "windows",
        f"""
        import os, sys
        from pathlib import Path

        def test_shows_what_it_has():
            mine = Path("/proc/self/cmdline").read_bytes()
            guard = Path(f"/proc/{{os.getppid()}}/cmdline").read_bytes()
            arrived = os.environ.get({WINRM_PASSWORD_ENV!r}) == {SECRET!r}
            Path({str(seen)!r}).write_text(f"{{arrived}}\\n{{mine!r}}\\n{{guard!r}}\\n")
            print("the password is", os.environ.get({WINRM_PASSWORD_ENV!r}))
            assert False, "fail, so that the captured output is shown"
        """,
    )
    result = run(root, tmp_path, "windows", "winrm://admin@127.0.0.1:9")
    assert result.exit_code == EXIT_FAILED
    arrived, argv, guard_argv = seen.read_text().splitlines()
    assert arrived == "True"
    assert "imageforge.guard" in guard_argv  # the suite ran under the process guard
    assert SECRET not in argv and SECRET not in guard_argv
    log = (result.junit_path.parent / "pytest.log").read_text()
    assert "the password is ***" in log  # printed by the suite, redacted on its way out
    assert SECRET not in log
    out, err = capfd.readouterr()
    assert "the password is ***" in out
    assert SECRET not in out + err


def test_the_suite_runs_from_repo_root(tmp_path, monkeypatch):
    where = tmp_path / "cwd"
    root = make_suite(
        tmp_path / "repo",
        "linux",
        f"""
        import os

        def test_where():
            open({str(where)!r}, "w").write(os.getcwd())
        """,
    )
    monkeypatch.chdir(tmp_path)
    result = run(Path("repo"), tmp_path, "linux", "local://")  # relative: resolved once
    assert result.passed == 1 and result.ok
    assert where.read_text() == str(root.resolve())


def test_a_suite_missing_from_repo_root_is_refused(tmp_path):
    with pytest.raises(VerifyError, match="the linux suite .* does not exist"):
        run(tmp_path, tmp_path, "linux", "local://")


def test_the_winrm_password_is_one_of_the_secrets_process_redacts():
    assert WINRM_PASSWORD_ENV in process.SECRET_ENV
