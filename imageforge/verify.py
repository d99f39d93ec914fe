"""Run an image's Testinfra suite against a host and keep the evidence.

``run_suite`` runs ``<repo_root>/tests/image/<os>`` with pytest in a child process of the
current interpreter, from ``repo_root``, through ``imageforge.process`` (the guard that stops
the suite if imageforge dies, a timeout, output teed to the console and pytest.log with secrets
redacted). It passes the host spec with ``--hosts`` (the suites never name hosts) and the run's
context with the ``--imageforge-*`` options of tests/image/conftest.py, and writes the evidence
under the report directory (``imageforge.reports``): junit.xml, pytest.log, summary.json and,
when collected, inventory.json (``imageforge.inventory``).

Exit codes and results: ``imageforge.junit``. Host specs, their redaction and the per-run
ssh_config: ``imageforge.hostspec``. A WinRM password travels to the suite in the environment
(``WINRM_PASSWORD_ENV``) only: never in a spec, argv, log or report.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from imageforge import inventory, reports
from imageforge.errors import ImageforgeError, ToolError, VerifyError
from imageforge.hostspec import (
    SSH_SCHEMES,
    WINRM_CA_ENV,
    WINRM_PASSWORD_ENV,
    HostSpec,
    SharedConnections,
    parse_host_spec,
    redact_host_spec,
    ssh_config_text,
    stop_ssh_master,
)
from imageforge.junit import JUnitCounts, SuiteResult, counts_by_host, suite_result
from imageforge.process import ProcessRunner, SubprocessRunner

OS_SUITES = {"linux": "tests/image/linux", "windows": "tests/image/windows"}

REPO_ROOT = Path(__file__).resolve().parent.parent

#: How long one suite run may take before it is stopped (seconds; ``run_suite(timeout=...)``).
SUITE_TIMEOUT = 3600.0
#: How long pytest gets after the SIGINT of a timeout (it writes its report) before SIGKILL.
SUITE_GRACE = 15.0

#: (argv, env, log_path) -> return code: runs pytest, its output going to log_path. The
#: default (``process_runner``) runs it through imageforge.process; tests inject their own.
Runner = Callable[[Sequence[str], Mapping[str, str], Path], int]


def process_runner(
    *, cwd: Path, timeout: float, what: str, programs: ProcessRunner | None = None
) -> Runner:
    """A Runner on ``programs`` (default: a guarded ``SubprocessRunner``) from ``cwd``: a run
    longer than ``timeout`` is stopped and is a VerifyError naming ``what``."""
    run = programs or SubprocessRunner(grace=SUITE_GRACE)

    def runner(argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> int:
        try:
            done = run(argv, cwd=cwd, env=env, log_path=log_path, timeout=timeout)
        except ToolError as err:
            raise VerifyError(f"cannot start pytest: {err}") from None
        if done.timed_out:
            raise VerifyError(
                f"{what} timed out after {timeout:g}s and was stopped (its output: {log_path})"
            )
        return done.returncode

    return runner


def pytest_argv(
    *,
    python: str = sys.executable,
    suite_dir: Path,
    junit_path: Path,
    host_spec: str,
    ssh_config: Path | None = None,
    ssh_identity: Path | None = None,
    paramiko: bool = False,
    image_file: Path,
    version: str,
    admin_user: str,
    marker: str | None = None,
) -> list[str]:
    """The argv that runs one suite: which suite, where its report goes, the host and how to
    connect, the run's context (tests/image/conftest.py's options); ``marker`` runs only the
    checks so marked (``smoke``). It never contains a password (specs with one are refused)."""
    argv = [
        python,
        "-m",
        "pytest",
        str(suite_dir),
        f"--hosts={host_spec}",
        f"--junit-xml={junit_path}",
        "-p",
        "no:cacheprovider",
        "-o",
        "junit_family=xunit2",
        "-o",
        "junit_logging=no",
        f"--imageforge-image={image_file}",
        f"--imageforge-version={version}",
        f"--imageforge-admin-user={admin_user}",
        "--color=no",
        "-rfE",
    ]
    if marker:
        argv += ["-m", marker]
    if ssh_config is not None:
        argv.append(f"--ssh-config={ssh_config}")
    if ssh_identity is not None:
        argv.append(f"--ssh-identity-file={ssh_identity}")
    if paramiko:
        # Paramiko reports a host key it has not seen as a UserWarning, which the project's
        # filterwarnings=error would turn into a failed connection; accept-new is intended.
        argv += ["-W", "ignore:Unknown:UserWarning:paramiko.client"]
    return argv


def run_suite(
    host_spec: str,
    *,
    os: str,
    image_file: Path,
    version: str,
    admin_user: str,
    report_dir: Path,
    ssh_identity: Path | None = None,
    ssh_config: Path | None = None,
    winrm_password: str | None = None,
    winrm_certificate: str | None = None,
    collect_inventory: bool = False,
    runner: Runner | None = None,
    echo: Callable[[str], None] = print,
    repo_root: Path = REPO_ROOT,
    timeout: float = SUITE_TIMEOUT,
    marker: str | None = None,
) -> SuiteResult:
    """Run the ``os`` suite of ``repo_root`` against ``host_spec``; write the evidence under
    ``report_dir`` (``reports.report_dir``).

    ``winrm_password`` (or IMAGEFORGE_WINRM_PASSWORD in this process's environment) is passed to
    the suite in the environment only. ``winrm_certificate`` (PEM) is the only certificate the
    host's TLS is then verified against (else IMAGEFORGE_WINRM_CA, a PEM file, else the system's
    CAs); certificate validation is never turned off. Raises VerifyError for arguments that
    cannot work (bad spec, unknown os, missing image file, identity or suite) and for a suite
    that ran longer than ``timeout`` seconds (it is stopped); a suite that ran but could not
    test the image is a result with exit_code 2.
    """
    if os not in OS_SUITES:
        raise VerifyError(f"unknown os {os!r} (expected one of {', '.join(OS_SUITES)})")
    spec = parse_host_spec(host_spec)
    shown = redact_host_spec(host_spec)
    image_file = Path(image_file).resolve()
    if not image_file.is_file():
        raise VerifyError(f"image definition {image_file} does not exist")
    if ssh_identity is not None and not Path(ssh_identity).is_file():
        raise VerifyError(f"SSH identity {ssh_identity} does not exist")
    root = Path(repo_root).resolve()
    suite_dir = root / OS_SUITES[os]
    if not suite_dir.is_dir():
        raise VerifyError(f"the {os} suite {suite_dir} does not exist")
    env = _suite_env(spec, shown, winrm_password)

    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    junit_path = report_dir / reports.JUNIT
    summary_path = report_dir / reports.SUMMARY
    for stale in (junit_path, summary_path):  # the evidence is this run's or none
        stale.unlink(missing_ok=True)
    run = runner or process_runner(cwd=root, timeout=timeout, what=f"the {os} suite on {shown}")
    t0 = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="imageforge-verify-") as tmp:
        if spec.scheme == "winrm" and winrm_certificate:
            pinned = Path(tmp) / "winrm-ca.pem"
            pinned.write_text(winrm_certificate)
            env[WINRM_CA_ENV] = str(pinned)
        identity = Path(ssh_identity).resolve() if ssh_identity else None
        config_path = _ssh_config(spec, ssh_config, identity, Path(tmp))
        argv = pytest_argv(
            suite_dir=suite_dir,
            host_spec=host_spec,
            junit_path=junit_path.resolve(),
            image_file=image_file,
            version=version,
            admin_user=admin_user,
            ssh_config=config_path,
            ssh_identity=identity if spec.scheme in SSH_SCHEMES else None,
            paramiko=spec.scheme == "paramiko",
            marker=marker,
        )
        inventory_path = None
        inventory_error = ""
        try:
            pytest_rc = run(argv, env, report_dir / reports.PYTEST_LOG)
            if collect_inventory:
                inventory_path, inventory_error = _collect_inventory(
                    host_spec, os, report_dir, config_path, identity, env
                )
        finally:
            if spec.scheme == "ssh" and config_path is not None and ssh_config is None:
                stop_ssh_master(config_path, spec)

    result = suite_result(
        pytest_rc, junit_path, summary_path=summary_path, inventory_path=inventory_path, host=shown
    )
    _write_summary(result, os, image_file, version, admin_user, pytest_rc, inventory_error, t0)
    echo(result.summary_line(image_file.name.removesuffix(".pkrvars.hcl"), version))
    return result


def run_suite_on_hosts(
    connections: SharedConnections,
    *,
    image_file: Path,
    version: str,
    admin_user: str,
    report_dir: Path,
    marker: str | None = None,
    runner: Runner | None = None,
    echo: Callable[[str], None] = print,
    repo_root: Path = REPO_ROOT,
    timeout: float = SUITE_TIMEOUT,
) -> tuple[SuiteResult, dict[str, JUnitCounts]]:
    """The Linux suite (or its ``marker`` checks) on the hosts of ``connections`` in one pytest
    session, each with its own key (a ``Host <alias>`` block each in the run's ssh_config):
    one start-up of pytest and Testinfra instead of one per host. The result of the whole run,
    and the counts of each host by alias (from the test ids, ``ssh://<alias>``)."""
    hosts = connections.hosts
    if not hosts:
        raise VerifyError("no hosts to run the suite on")
    image_file = Path(image_file).resolve()
    root = Path(repo_root).resolve()
    suite_dir = root / OS_SUITES["linux"]
    for needed, what in ((image_file, "image definition"), (suite_dir, "the linux suite")):
        if not needed.exists():
            raise VerifyError(f"{what} {needed} does not exist")
    ids = [f"ssh://{h.alias}" for h in hosts]
    shown = ",".join(ids)
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    junit_path = report_dir / reports.JUNIT
    summary_path = report_dir / reports.SUMMARY
    for stale in (junit_path, summary_path):
        stale.unlink(missing_ok=True)
    run = runner or process_runner(cwd=root, timeout=timeout, what=f"the linux suite on {shown}")
    t0 = time.monotonic()
    argv = pytest_argv(
        suite_dir=suite_dir, host_spec=shown, junit_path=junit_path.resolve(),
        image_file=image_file, version=version, admin_user=admin_user,
        ssh_config=connections.config_path, marker=marker,
    )  # fmt: skip
    env = _suite_env(parse_host_spec(ids[0]), ids[0], None)
    pytest_rc = run(argv, env, report_dir / reports.PYTEST_LOG)
    result = suite_result(
        pytest_rc, junit_path, summary_path=summary_path, inventory_path=None, host=shown
    )
    per_host = counts_by_host(junit_path, ids) if junit_path.is_file() else {}
    _write_summary(result, "linux", image_file, version, admin_user, pytest_rc, "", t0)
    echo(result.summary_line(image_file.name.removesuffix(".pkrvars.hcl"), version))
    counts = {h.alias: per_host.get(i, JUnitCounts()) for h, i in zip(hosts, ids, strict=True)}
    return result, counts


def _write_summary(
    result: SuiteResult,
    os: str,
    image_file: Path,
    version: str,
    admin_user: str,
    pytest_rc: int,
    inventory_error: str,
    t0: float,
) -> None:
    """summary.json beside the JUnit file: what ran where, the counts, the verdict."""
    inventory_path = result.inventory_path
    started = datetime.now(UTC) - timedelta(seconds=time.monotonic() - t0)
    summary = {
        "image": image_file.name.removesuffix(".pkrvars.hcl"),
        "version": version,
        "os": os,
        "host": result.host,
        "admin_user": admin_user,
        "passed": result.passed,
        "failed": result.failed,
        "errors": result.errors,
        "skipped": result.skipped,
        "exit_code": result.exit_code,
        "pytest_exit_code": pytest_rc,
        "reason": result.reason,
        "failures": list(result.failures),
        "junit": result.junit_path.name,
        "digest": result.digest,
        "inventory": inventory_path.name if inventory_path else None,
        "inventory_error": inventory_error or None,
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_seconds": round(time.monotonic() - t0, 3),
    }
    assert result.summary_path is not None
    result.summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


def _environ() -> Mapping[str, str]:
    # `os` is the suite's OS inside run_suite, hence this for the process environment.
    return os.environ


def _suite_env(spec: HostSpec, shown: str, winrm_password: str | None) -> dict[str, str]:
    """The suite's environment: this process's, the WinRM password only for a WinRM run."""
    env = dict(_environ())
    env.pop(WINRM_PASSWORD_ENV, None)
    if spec.scheme == "winrm":
        password = winrm_password or _environ().get(WINRM_PASSWORD_ENV)
        if not password:
            raise VerifyError(
                f"{shown}: WinRM needs a password; set {WINRM_PASSWORD_ENV} "
                "(it is never taken from the host spec or the command line)"
            )
        env[WINRM_PASSWORD_ENV] = password
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _ssh_config(
    spec: HostSpec, given: Path | None, identity: Path | None, tmp: Path
) -> Path | None:
    """The ssh_config of an SSH run: the one given, else a per-run one in ``tmp``."""
    if spec.scheme not in SSH_SCHEMES:
        return None
    if given is not None:
        return Path(given).resolve()
    path = tmp / "ssh_config"
    path.write_text(ssh_config_text(identity, tmp / "known_hosts", control_dir=tmp))
    return path


def _collect_inventory(
    host_spec: str,
    os_name: str,
    report_dir: Path,
    ssh_config: Path | None,
    identity: Path | None,
    env: Mapping[str, str],
) -> tuple[Path | None, str]:
    try:
        inv = inventory.collect_from_spec(
            host_spec,
            os=os_name,
            ssh_config=ssh_config,
            ssh_identity=identity,
            winrm_password=env.get(WINRM_PASSWORD_ENV),
            winrm_ca=env.get(WINRM_CA_ENV),
        )
        return inventory.write_inventory(inv, report_dir / reports.INVENTORY), ""
    except ImageforgeError as err:
        return None, str(err)
