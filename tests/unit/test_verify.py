"""imageforge.verify: host specs and secrets, pytest argv, JUnit parsing, exit codes, real runs."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from imageforge import hostspec, junit, verify
from imageforge.errors import VerifyError

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "images" / "debian-12.pkrvars.hcl"
SECRET = "Sup3r-Secret-Passw0rd"

SUITE_CONFTEST = """
def pytest_addoption(parser):
    for name in ("image", "version", "admin-user"):
        parser.addoption(f"--imageforge-{name}")
"""


@pytest.fixture
def echo_lines():
    return []


def make_suite(root: Path, body: str) -> Path:
    """A tiny suite at <root>/tests/image/linux, run by run_suite(repo_root=root)."""
    suite = root / "tests" / "image" / "linux"
    suite.mkdir(parents=True)
    (suite / "conftest.py").write_text(SUITE_CONFTEST)
    (suite / "test_tiny.py").write_text(textwrap.dedent(body))
    return root


def run_tiny(tmp_path: Path, body: str, lines: list[str], **kwargs) -> junit.SuiteResult:
    root = make_suite(tmp_path / "repo", body)
    return verify.run_suite(
        "local://",
        os="linux",
        image_file=IMAGE,
        version="1.4.0",
        admin_user="azureuser",
        report_dir=tmp_path / "reports" / "debian-12" / "1.4.0",
        repo_root=root,
        echo=lines.append,
        **kwargs,
    )


# --- host specs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        (f"winrm://admin:{SECRET}@10.0.0.4:5986", "winrm://admin:***@10.0.0.4:5986"),
        (
            f"winrm://admin:{SECRET}@host?no_verify_ssl=true",
            "winrm://admin:***@host?no_verify_ssl=true",
        ),
        (f"paramiko://root:{SECRET}@h", "paramiko://root:***@h"),
        (f"admin:{SECRET}@host", "admin:***@host"),
        ("ssh://azureuser@127.0.1.5:2222", "ssh://azureuser@127.0.1.5:2222"),
        ("local://", "local://"),
    ],
)
def test_redact_host_spec(spec, shown):
    assert hostspec.redact_host_spec(spec) == shown


def test_a_password_in_the_spec_is_refused_without_showing_it():
    with pytest.raises(VerifyError) as err:
        hostspec.parse_host_spec(f"winrm://admin:{SECRET}@10.0.0.4:5986")
    assert SECRET not in str(err.value)
    assert "IMAGEFORGE_WINRM_PASSWORD" in str(err.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("10.0.0.4", "has no scheme"),
        ("docker://abc", "unsupported scheme"),
        ("ssh://", "names no host"),
        ("ssh://u@h:notaport", "invalid port"),
    ],
)
def test_unusable_specs_are_refused(spec, message):
    with pytest.raises(VerifyError, match=message):
        hostspec.parse_host_spec(spec)


def test_parse_host_spec():
    spec = hostspec.parse_host_spec("winrm://admin@10.0.0.4:5986?no_verify_ssl=true")
    assert (spec.scheme, spec.user, spec.host, spec.port) == ("winrm", "admin", "10.0.0.4", 5986)
    assert spec.query == {"no_verify_ssl": "true"}


# --- argv and ssh_config -------------------------------------------------------------------


def test_pytest_argv(tmp_path):
    argv = verify.pytest_argv(
        suite_dir=Path("/r/tests/image/linux"),
        host_spec="ssh://azureuser@127.0.1.5:2222",
        junit_path=tmp_path / "junit.xml",
        image_file=IMAGE,
        version="1.4.0",
        admin_user="azureuser",
        ssh_config=tmp_path / "ssh_config",
        ssh_identity=tmp_path / "id",
        python="/usr/bin/python3",
    )
    assert argv[:4] == ["/usr/bin/python3", "-m", "pytest", "/r/tests/image/linux"]
    assert "--hosts=ssh://azureuser@127.0.1.5:2222" in argv
    assert f"--junit-xml={tmp_path / 'junit.xml'}" in argv
    assert argv[argv.index("-p") + 1] == "no:cacheprovider"
    assert f"--imageforge-image={IMAGE}" in argv
    assert "--imageforge-version=1.4.0" in argv
    assert "--imageforge-admin-user=azureuser" in argv
    assert f"--ssh-config={tmp_path / 'ssh_config'}" in argv
    assert f"--ssh-identity-file={tmp_path / 'id'}" in argv
    assert "-W" not in argv


def test_pytest_argv_for_paramiko_accepts_new_host_keys():
    argv = verify.pytest_argv(
        suite_dir=Path("s"),
        host_spec="paramiko://u@h",
        junit_path=Path("j"),
        image_file=IMAGE,
        version="1.0.0",
        admin_user="u",
        paramiko=True,
    )
    assert argv[argv.index("-W") + 1] == "ignore:Unknown:UserWarning:paramiko.client"


def test_ssh_config_accepts_new_host_keys_into_a_per_run_file(tmp_path):
    text = hostspec.ssh_config_text(tmp_path / "id", tmp_path / "known_hosts")
    assert "StrictHostKeyChecking accept-new" in text
    assert f"UserKnownHostsFile {tmp_path / 'known_hosts'}" in text
    assert f"IdentityFile {tmp_path / 'id'}" in text
    assert "BatchMode yes" in text


def test_ssh_config_multiplexes_through_the_runs_own_directory(tmp_path):
    text = hostspec.ssh_config_text(None, tmp_path / "known_hosts", control_dir=tmp_path)
    assert "ControlMaster auto" in text
    assert f"ControlPath {tmp_path}/cm-%C" in text  # %C: a hash, short enough for a socket
    assert "ControlPath" not in hostspec.ssh_config_text(None, tmp_path / "known_hosts")


def recording_runner(calls, junit: str | None = None, rc: int = 0):
    def runner(argv, env, log_path):
        config = next((a.split("=", 1)[1] for a in argv if a.startswith("--ssh-config=")), None)
        calls.append(
            {
                "argv": list(argv),
                "env": dict(env),
                "ssh_config": Path(config).read_text() if config else None,
            }
        )
        log_path.write_text("runner output\n")
        if junit is not None:
            target = next(a.split("=", 1)[1] for a in argv if a.startswith("--junit-xml="))
            Path(target).write_text(junit)
        return rc

    return runner


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
  <testcase classname="t" name="ok"/>
  <testcase classname="t" name="fails"><failure message="no">x</failure></testcase>
  <testcase classname="t" name="errs"><error message="setup">x</error></testcase>
  <testcase classname="t" name="both"><failure/><error/></testcase>
  <testcase classname="t" name="skip"><skipped message="s"/></testcase>
</testsuite></testsuites>
"""


def test_ssh_run_gets_a_generated_config_and_identity(tmp_path, echo_lines):
    identity = tmp_path / "id_ed25519"
    identity.write_text("not a real key")
    calls = []
    result = verify.run_suite(
        "ssh://azureuser@127.0.1.5:2222",
        os="linux",
        image_file=IMAGE,
        version="1.4.0",
        admin_user="azureuser",
        report_dir=tmp_path / "r",
        ssh_identity=identity,
        runner=recording_runner(calls, JUNIT, rc=1),
        echo=echo_lines.append,
    )
    (call,) = calls
    assert "StrictHostKeyChecking accept-new" in call["ssh_config"]
    assert f"IdentityFile {identity}" in call["ssh_config"]
    assert f"--ssh-identity-file={identity}" in call["argv"]
    assert "IMAGEFORGE_WINRM_PASSWORD" not in call["env"]
    assert (result.passed, result.failed, result.errors, result.skipped) == (1, 1, 2, 1)
    assert result.exit_code == junit.EXIT_FAILED
    assert result.failures == ("t::fails", "t::errs", "t::both")


def test_winrm_password_travels_only_in_the_environment(tmp_path, monkeypatch, echo_lines):
    monkeypatch.setenv("IMAGEFORGE_WINRM_PASSWORD", SECRET)
    calls = []
    result = verify.run_suite(
        "winrm://admin@10.0.0.4:5986?no_verify_ssl=true",
        os="windows",
        image_file=REPO / "images" / "windows-2022.pkrvars.hcl",
        version="1.0.0",
        admin_user="admin",
        report_dir=tmp_path / "r",
        runner=recording_runner(calls, JUNIT),
        echo=echo_lines.append,
    )
    (call,) = calls
    assert call["env"]["IMAGEFORGE_WINRM_PASSWORD"] == SECRET
    assert not any(SECRET in arg for arg in call["argv"])
    assert call["ssh_config"] is None
    for path in (tmp_path / "r").iterdir():
        assert SECRET not in path.read_text(), path.name
    assert not any(SECRET in line for line in echo_lines)
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["host"] == (
        "winrm://admin@10.0.0.4:5986?no_verify_ssl=true"
    )
    assert result.exit_code == junit.EXIT_FAILED


def test_winrm_without_a_password_cannot_run(tmp_path, monkeypatch):
    monkeypatch.delenv("IMAGEFORGE_WINRM_PASSWORD", raising=False)
    with pytest.raises(VerifyError, match="set IMAGEFORGE_WINRM_PASSWORD"):
        verify.run_suite(
            "winrm://admin@10.0.0.4",
            os="windows",
            image_file=IMAGE,
            version="1.0.0",
            admin_user="admin",
            report_dir=tmp_path / "r",
            runner=recording_runner([]),
        )


def test_real_winrm_run_never_shows_the_password(tmp_path, monkeypatch, echo_lines, capfd):
    """The real Windows suite against a closed port: it cannot run, and says nothing secret."""
    monkeypatch.setenv("IMAGEFORGE_WINRM_PASSWORD", SECRET)
    result = verify.run_suite(
        "winrm://admin@127.0.0.1:9?no_verify_ssl=true&read_timeout_sec=5&operation_timeout_sec=3",
        os="windows",
        image_file=REPO / "images" / "windows-2022.pkrvars.hcl",
        version="1.0.0",
        admin_user="admin",
        report_dir=tmp_path / "r",
        echo=echo_lines.append,
    )
    assert result.exit_code == junit.EXIT_NOT_RUN
    assert result.errors > 0 and result.passed == 0
    out, err = capfd.readouterr()
    assert SECRET not in out + err
    for path in (tmp_path / "r").iterdir():
        assert SECRET not in path.read_text(), path.name
    assert not any(SECRET in line for line in echo_lines)


# --- JUnit and exit codes ------------------------------------------------------------------


def test_parse_junit_counts_each_testcase_once(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    counts = junit.parse_junit(path)
    assert (counts.passed, counts.failed, counts.errors, counts.skipped) == (1, 1, 2, 1)


def test_parse_junit_of_a_broken_file_is_a_verify_error(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text("<testsuites>")
    with pytest.raises(VerifyError, match="cannot read JUnit report"):
        junit.parse_junit(path)


C = junit.JUnitCounts


@pytest.mark.parametrize(
    ("rc", "counts", "expected"),
    [
        (0, C(passed=3), 0),
        (0, C(passed=3, skipped=2), 0),
        (1, C(passed=3, failed=1), 1),
        (1, C(passed=3, errors=1), 1),
        (1, C(failed=2, errors=1), 1),
        (1, C(errors=4), 2),
        (2, C(passed=1), 2),
        (3, C(), 2),
        (4, C(), 2),
        (5, C(), 2),
        (0, C(), 2),
        (1, None, 2),
    ],
)
def test_exit_code_mapping(rc, counts, expected):
    code, reason = junit.exit_code_for(rc, counts)
    assert code == expected
    assert bool(reason) == (expected == junit.EXIT_NOT_RUN)


# --- real runs of tiny suites against local:// ---------------------------------------------


def test_all_passed_is_exit_0_with_evidence(tmp_path, echo_lines):
    result = run_tiny(
        tmp_path,
        """
        def test_one(host):
            assert host.run("true").rc == 0

        def test_two(host):
            assert host.file("/").is_directory
        """,
        echo_lines,
    )
    assert (result.passed, result.failed, result.errors, result.exit_code) == (2, 0, 0, 0)
    reports = tmp_path / "reports" / "debian-12" / "1.4.0"
    assert result.junit_path == reports / "junit.xml"
    assert result.digest == hashlib.sha256(result.junit_path.read_bytes()).hexdigest()
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["passed"] == 2 and summary["exit_code"] == 0
    assert summary["digest"] == result.digest
    assert summary["image"] == "debian-12" and summary["version"] == "1.4.0"
    assert echo_lines == [result.summary_line("debian-12", "1.4.0")]
    assert "PASSED: 2 passed, 0 failed, 0 errors, 0 skipped" in echo_lines[0]


def test_failures_are_exit_1_and_named(tmp_path, echo_lines):
    result = run_tiny(
        tmp_path,
        """
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("setup broke")

        def test_passes(host):
            assert True

        def test_fails(host):
            assert host.run("false").rc == 0, "false is not true"

        def test_errors(host, broken):
            pass

        def test_skips(host):
            pytest.skip("not here")
        """,
        echo_lines,
    )
    assert (result.passed, result.failed, result.errors, result.skipped) == (1, 1, 1, 1)
    assert result.exit_code == junit.EXIT_FAILED
    assert any("test_fails" in name for name in result.failures)
    assert "FAILED" in echo_lines[0]


def test_every_test_erroring_is_exit_2(tmp_path, echo_lines):
    result = run_tiny(
        tmp_path,
        """
        import pytest

        @pytest.fixture
        def unreachable():
            raise ConnectionError("no route to host")

        def test_a(unreachable):
            pass

        def test_b(unreachable):
            pass
        """,
        echo_lines,
    )
    assert result.exit_code == junit.EXIT_NOT_RUN
    assert "every test errored" in result.reason


def test_an_empty_suite_is_exit_2(tmp_path, echo_lines):
    result = run_tiny(tmp_path, "X = 1\n", echo_lines)
    assert result.exit_code == junit.EXIT_NOT_RUN
    assert result.reason == "no tests were collected"
    assert "NOT RUN" in echo_lines[0]


def test_a_runner_that_writes_no_junit_is_exit_2(tmp_path):
    result = verify.run_suite(
        "local://",
        os="linux",
        image_file=IMAGE,
        version="1.4.0",
        admin_user="u",
        report_dir=tmp_path / "r",
        runner=recording_runner([], junit=None, rc=4),
        echo=lambda line: None,
    )
    assert result.exit_code == junit.EXIT_NOT_RUN and result.digest == ""
    assert "without a JUnit report" in result.reason


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"os": "macos"}, "unknown os"),
        ({"image_file": Path("/nonexistent.pkrvars.hcl")}, "does not exist"),
        ({"ssh_identity": Path("/nonexistent/id")}, "SSH identity"),
    ],
)
def test_arguments_that_cannot_work_are_verify_errors(tmp_path, kwargs, message):
    args = {
        "os": "linux",
        "image_file": IMAGE,
        "version": "1.0.0",
        "admin_user": "u",
        "report_dir": tmp_path / "r",
        "runner": recording_runner([]),
    } | kwargs
    with pytest.raises(VerifyError, match=message):
        verify.run_suite("local://", **args)


def test_the_real_linux_suite_runs_against_this_machine(tmp_path, echo_lines):
    """Smoke: this machine is no image, so checks fail, but the suite itself must not error."""
    result = verify.run_suite(
        "local://",
        os="linux",
        image_file=IMAGE,
        version="1.4.0",
        admin_user="root",
        report_dir=tmp_path / "r",
        collect_inventory=True,
        echo=echo_lines.append,
    )
    assert result.errors == 0, result.failures
    assert result.exit_code in (junit.EXIT_PASSED, junit.EXIT_FAILED)
    assert result.passed + result.failed + result.skipped > 20
    assert result.inventory_path is not None and result.inventory_path.is_file()
