"""imageforge.process: real child processes for argv handling, streaming, redaction, timeouts
(SIGINT first, SIGKILL after the grace period), Ctrl-C forwarding and typed errors."""

from __future__ import annotations

import io
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from imageforge.errors import ToolError
from imageforge.process import (
    SECRET_ENV,
    Completed,
    SubprocessRunner,
    redact,
    run_checked,
    secret_values,
)

PY = sys.executable

#: A child that records SIGINT in a marker file; "exit" leaves on SIGINT, "ignore" keeps going.
#: It creates the ready file only once its handler is installed, so a test can wait for it.
TRAPPER = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    marker, ready, mode = sys.argv[1:4]
    def on_int(signum, frame):
        with open(marker, "a") as fh:
            fh.write("SIGINT\\n")
        if mode == "exit":
            sys.exit(130)
    signal.signal(signal.SIGINT, on_int)
    if len(sys.argv) > 4:  # also start a grandchild in the same process group
        subprocess.Popen([sys.executable, __file__, *sys.argv[4:7]])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                open(sys.argv[5]).close()
                break
            except FileNotFoundError:
                time.sleep(0.01)
    open(ready, "w").close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.02)
    """
)


@pytest.fixture
def trapper(tmp_path) -> Path:
    path = tmp_path / "trapper.py"
    path.write_text(TRAPPER)
    return path


def wait_for(path: Path, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


def ready_hook(path: Path):
    """on_start hook: wait until the child has installed its SIGINT handler."""
    return lambda proc: wait_for(path)


def py(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


# --- argv, output, environment ---------------------------------------------------------------


def test_argv_items_reach_the_program_verbatim_without_a_shell():
    tricky = ["a b", "$(id)", "; rm -rf /", "*", "'\"", ""]
    result = SubprocessRunner(console=io.StringIO())(
        [*py("import sys; print(repr(sys.argv[1:]))"), *tricky], echo=False
    )
    assert result.output.strip() == repr(tricky)
    assert result.argv[-len(tricky) :] == tuple(tricky)


def test_stdout_and_stderr_stream_to_console_and_log_in_order(tmp_path):
    console = io.StringIO()
    log = tmp_path / "logs" / "run.log"
    code = """
        import sys
        print("one", flush=True)
        print("two", file=sys.stderr, flush=True)
        print("three", flush=True)
    """
    result = SubprocessRunner(console=console)(py(code), log_path=log)
    assert console.getvalue() == "one\ntwo\nthree\n"
    assert log.read_text() == "one\ntwo\nthree\n"
    assert result.output == "one\ntwo\nthree\n"
    assert result.log_path == log


def test_output_is_streamed_while_the_program_runs(tmp_path):
    # The child prints "first", then waits for the test to have seen it on the console before
    # printing "second": with buffered-until-exit output it would give up and exit 3.
    go = tmp_path / "go"

    class Console(io.StringIO):
        def write(self, text: str) -> int:
            if text == "first\n":
                go.touch()
            return super().write(text)

    code = f"""
        import os, sys, time
        print("first", flush=True)
        deadline = time.monotonic() + 10
        while not os.path.exists({str(go)!r}):
            if time.monotonic() > deadline:
                sys.exit(3)
            time.sleep(0.01)
        print("second", flush=True)
    """
    result = SubprocessRunner(console=Console())(py(code))
    assert result.returncode == 0
    assert result.output == "first\nsecond\n"


def test_echo_false_keeps_the_console_quiet_but_still_logs(tmp_path):
    console = io.StringIO()
    log = tmp_path / "run.log"
    result = SubprocessRunner(console=console)(py("print('hi')"), log_path=log, echo=False)
    assert console.getvalue() == ""
    assert log.read_text() == "hi\n" and result.output == "hi\n"


def test_the_exit_code_is_reported():
    result = SubprocessRunner(console=io.StringIO())(py("import sys; sys.exit(7)"))
    assert result.returncode == 7 and not result.timed_out


def test_the_given_environment_and_cwd_are_used(tmp_path):
    code = "import os; print(os.environ.get('ONLY'), os.environ.get('HOME'), os.getcwd())"
    result = SubprocessRunner(console=io.StringIO())(
        py(code), env={"ONLY": "yes"}, cwd=tmp_path, echo=False
    )
    assert result.output.split() == ["yes", "None", str(tmp_path)]


def test_a_missing_program_is_a_tool_error_naming_it(tmp_path):
    with pytest.raises(ToolError, match=r"^/nonexistent/packer: program not found$"):
        SubprocessRunner()(["/nonexistent/packer", "version"], log_path=tmp_path / "x.log")


# --- secrets ---------------------------------------------------------------------------------


def test_secret_values_from_the_environment_are_redacted_everywhere(tmp_path):
    console = io.StringIO()
    log = tmp_path / "run.log"
    env = {"ARM_CLIENT_SECRET": "IFSECRET-client-0001", "SYSTEM_ACCESSTOKEN": "IFSECRET-tok"}
    code = """
        import os, sys
        print("secret:", os.environ["ARM_CLIENT_SECRET"], flush=True)
        print("token:", os.environ["SYSTEM_ACCESSTOKEN"], file=sys.stderr)
    """
    result = SubprocessRunner(console=console)(py(code), env=env, log_path=log)
    for text in (console.getvalue(), log.read_text(), result.output):
        assert "IFSECRET" not in text
        assert text == "secret: ***\ntoken: ***\n"


def test_every_listed_variable_is_treated_as_secret():
    env = {name: f"IFSECRET-{i:04d}" for i, name in enumerate(SECRET_ENV)}
    assert sorted(secret_values(env)) == sorted(env.values())


@pytest.mark.parametrize(
    "name",
    [
        "ARM_CLIENT_SECRET",
        "ARM_OIDC_TOKEN",
        "AZURE_CLIENT_SECRET",  # azure-identity's EnvironmentCredential reads these three
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_PASSWORD",
        "SYSTEM_ACCESSTOKEN",
        "IMAGEFORGE_WINRM_PASSWORD",
    ],
)
def test_the_credentials_imageforge_and_its_tools_read_are_secret(name):
    assert name in SECRET_ENV


def test_values_shorter_than_four_characters_are_not_treated_as_secrets():
    # Redacting "1" or "" would mangle every line; such values are not real secrets anyway.
    assert secret_values({"ARM_CLIENT_SECRET": "abc", "AZURE_CLIENT_SECRET": ""}) == []


def test_a_secret_containing_another_is_redacted_whole():
    secrets = secret_values({"ARM_CLIENT_SECRET": "IFSECRET", "ARM_OIDC_TOKEN": "IFSECRET-long"})
    assert redact("x IFSECRET-long y IFSECRET", secrets) == "x *** y ***"


def test_secrets_default_to_the_process_environment(monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "IFSECRET-from-os-environ")
    assert "IFSECRET-from-os-environ" in secret_values()


# --- timeouts and interrupts -----------------------------------------------------------------


def test_a_timeout_sends_sigint_first_and_the_program_may_exit_by_itself(tmp_path, trapper):
    marker, ready = tmp_path / "marker", tmp_path / "ready"
    runner = SubprocessRunner(grace=10.0, console=io.StringIO(), on_start=ready_hook(ready))
    result = runner([PY, str(trapper), str(marker), str(ready), "exit"], timeout=0.2)
    assert result.timed_out
    assert marker.read_text() == "SIGINT\n"
    assert result.returncode == 130  # its own exit, well before the 10 s grace ran out
    assert result.duration < 8


def test_a_program_that_ignores_sigint_is_killed_after_the_grace(tmp_path, trapper):
    marker, ready = tmp_path / "marker", tmp_path / "ready"
    runner = SubprocessRunner(grace=0.5, console=io.StringIO(), on_start=ready_hook(ready))
    started = time.monotonic()
    result = runner([PY, str(trapper), str(marker), str(ready), "ignore"], timeout=0.2)
    elapsed = time.monotonic() - started
    assert result.timed_out
    assert marker.read_text() == "SIGINT\n"  # it was asked first
    assert result.returncode == -signal.SIGKILL
    assert 0.7 <= elapsed < 10


def test_the_whole_process_group_gets_sigint(tmp_path, trapper):
    marker, ready = tmp_path / "marker", tmp_path / "ready"
    grand_marker, grand_ready = tmp_path / "grand-marker", tmp_path / "grand-ready"
    runner = SubprocessRunner(grace=10.0, console=io.StringIO(), on_start=ready_hook(ready))
    argv = [PY, str(trapper), str(marker), str(ready), "exit"]
    result = runner([*argv, str(grand_marker), str(grand_ready), "exit"], timeout=0.2)
    assert result.timed_out
    wait_for(grand_marker, 5)
    assert grand_marker.read_text() == "SIGINT\n"


def test_ctrl_c_is_forwarded_as_sigint_and_then_raised(tmp_path, trapper):
    marker, ready = tmp_path / "marker", tmp_path / "ready"
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread().ident == main

    def start(proc) -> None:
        wait_for(ready)
        threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT)).start()

    runner = SubprocessRunner(grace=10.0, console=io.StringIO(), on_start=start)
    with pytest.raises(KeyboardInterrupt):
        runner([PY, str(trapper), str(marker), str(ready), "exit"])
    assert marker.read_text() == "SIGINT\n"


# --- run_checked ---------------------------------------------------------------------------


def test_run_checked_returns_the_result_of_a_success():
    result = run_checked(SubprocessRunner(console=io.StringIO()), py("print(1)"), what="probe")
    assert isinstance(result, Completed) and result.returncode == 0


def test_run_checked_names_what_failed_with_its_exit_code_and_last_line():
    with pytest.raises(ToolError) as err:
        run_checked(
            SubprocessRunner(console=io.StringIO()),
            py("import sys; print('early'); print('the reason'); print(); sys.exit(4)"),
            what="probe",
            echo=False,
        )
    assert str(err.value) == "probe failed (exit 4): the reason"
    assert err.value.log is None


def test_run_checked_names_the_log_file_of_a_failure(tmp_path):
    log = tmp_path / "probe.log"
    with pytest.raises(ToolError) as err:
        run_checked(
            SubprocessRunner(console=io.StringIO()),
            py("import sys; sys.exit(2)"),
            what="probe",
            log_path=log,
        )
    assert str(err.value) == f"probe failed (exit 2) (log: {log})"
    assert err.value.log == str(log)


def test_run_checked_reports_a_timeout_with_the_log(tmp_path):
    log = tmp_path / "slow.log"
    with pytest.raises(ToolError) as err:
        run_checked(
            SubprocessRunner(grace=5.0, console=io.StringIO()),
            py("import time; time.sleep(30)"),
            what="slow",
            timeout=0.3,
            log_path=log,
        )
    assert str(err.value) == f"slow timed out and was stopped (log: {log})"


def test_the_program_gets_sigint_when_imageforge_is_killed(tmp_path, trapper):
    """A SIGKILLed `invoke build` must not leave Packer running with the build VM held."""
    marker, ready = tmp_path / "marker", tmp_path / "ready"
    parent = tmp_path / "parent.py"
    parent.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from imageforge.process import SubprocessRunner
            SubprocessRunner(grace=30)(
                [{PY!r}, {str(trapper)!r}, {str(marker)!r}, {str(ready)!r}, "exit"],
                echo=False,
            )
            """
        )
    )
    import subprocess

    proc = subprocess.Popen([PY, str(parent)])
    try:
        wait_for(ready)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(marker, seconds=10)
        # The kernel sends the parent-death signal once per exiting thread of the parent that
        # the child was handed to, so SIGINT may arrive more than once; Packer acts on the first.
        assert set(marker.read_text().splitlines()) == {"SIGINT"}
    finally:
        if proc.poll() is None:
            proc.kill()


def test_packer_cancels_its_build_when_imageforge_is_killed(tmp_path):
    """Packer 1.6 ignores a SIGINT sent to its own pid; the guard interrupts its whole group."""
    import shutil
    import subprocess

    packer = shutil.which("packer")
    assert packer, "Packer is installed by setup.sh"
    (tmp_path / "sleep.pkr.hcl").write_text(
        'source "null" "x" {\n  communicator = "none"\n}\n\n'
        'build {\n  sources = ["source.null.x"]\n\n'
        '  provisioner "shell-local" {\n    inline = ["sleep 120"]\n  }\n}\n'
    )
    log = tmp_path / "packer.log"
    parent = tmp_path / "parent.py"
    parent.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from imageforge.process import SubprocessRunner
            SubprocessRunner()(
                [{packer!r}, "build", "-color=false", "."],
                cwd=Path({str(tmp_path)!r}), log_path=Path({str(log)!r}), echo=False,
            )
            """
        )
    )
    proc = subprocess.Popen([PY, str(parent)])
    try:
        deadline = time.monotonic() + 30
        while "Running local shell script" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the Packer build did not start"
            time.sleep(0.1)
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 60
        while _running(f"{tmp_path}") or _running("sleep 120"):
            assert time.monotonic() < deadline, "Packer went on after imageforge was killed"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()


def _running(fragment: str) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fragment in cmdline and "pytest" not in cmdline:
            return True
    return False
