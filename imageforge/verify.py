"""Run an image's Testinfra suite against a host and keep the evidence.

``run_suite`` runs ``tests/image/<os>`` with pytest in a child process of the current
interpreter, passes the host spec with ``--hosts`` (the suites never name hosts) and the run's
context with the ``--imageforge-*`` options of tests/image/conftest.py, and writes under the
report directory (``reports/<image>/<version>/``):

    junit.xml       pytest's --junit-xml, published as is
    pytest.log      the suite's console output
    summary.json    counts, exit code, sha256 digest of junit.xml, the (redacted) host, timings
    inventory.json  the package inventory (imageforge.inventory), when collected

Exit codes: 0 every test passed, 1 tests failed, 2 the suite could not run (pytest usage or
internal error, nothing collected, no JUnit file, or every test errored without one pass or
failure, which is what an unreachable host looks like).

Host specs are Testinfra's: ``local://``, ``ssh://user@host:port``, ``paramiko://...``,
``winrm://user@host:5986?no_verify_ssl=true``. For SSH a per-run ssh_config is generated with
``StrictHostKeyChecking accept-new`` and a per-run known_hosts file, because sandbox and test VMs
have new host keys every time. Secrets never travel in a spec: a WinRM password is handed to
the child in the environment variable IMAGEFORGE_WINRM_PASSWORD (tests/image/conftest.py gives
it to Testinfra's WinRM backend); a spec that carries a password is refused, and specs are
shown only through ``redact_host_spec``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from imageforge.errors import ImageforgeError, VerifyError

#: The environment variable that carries the WinRM password to the suite.
WINRM_PASSWORD_ENV = "IMAGEFORGE_WINRM_PASSWORD"
#: The PEM file of the one certificate a WinRM host's TLS is verified against (tests/image/
#: conftest.py hands it to pywinrm as ca_trust_path). Unset: the system's CAs.
WINRM_CA_ENV = "IMAGEFORGE_WINRM_CA"

OS_SUITES = {"linux": "tests/image/linux", "windows": "tests/image/windows"}
SSH_SCHEMES = ("ssh", "safe-ssh", "paramiko")
SUPPORTED_SCHEMES = ("local", "winrm", *SSH_SCHEMES)

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_NOT_RUN = 2

REPO_ROOT = Path(__file__).resolve().parent.parent

#: (argv, env, log_path) -> return code. The default runs the process, streaming its output
#: to the console and to log_path.
Runner = Callable[[Sequence[str], Mapping[str, str], Path], int]


@dataclass(frozen=True)
class JUnitCounts:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    failures: tuple[str, ...] = ()  # ids of failed and errored tests, in file order

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped


@dataclass(frozen=True)
class SuiteResult:
    passed: int
    failed: int
    errors: int
    skipped: int
    junit_path: Path
    exit_code: int
    digest: str  # sha256 hex of junit.xml ("" when there is none)
    summary_path: Path | None = None
    inventory_path: Path | None = None
    failures: tuple[str, ...] = ()
    reason: str = ""  # why the suite could not run (exit code 2)
    host: str = ""  # the redacted host spec

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_PASSED

    def summary_line(self, image: str, version: str) -> str:
        counts = (
            f"{self.passed} passed, {self.failed} failed, {self.errors} errors, "
            f"{self.skipped} skipped"
        )
        verdict = {EXIT_PASSED: "PASSED", EXIT_FAILED: "FAILED"}.get(self.exit_code, "NOT RUN")
        line = f"verify {image} {version} on {self.host}: {verdict}: {counts}"
        if self.reason:
            line += f" ({self.reason})"
        return line + f"; junit: {self.junit_path}"


@dataclass(frozen=True)
class HostSpec:
    """A parsed Testinfra host spec (never holds a password)."""

    scheme: str
    user: str | None
    host: str
    port: int | None
    query: dict[str, str] = field(default_factory=dict)


# --- host specs ----------------------------------------------------------------------------


def redact_host_spec(spec: str) -> str:
    """The spec with any password in it replaced by ``***`` (safe to log)."""
    scheme, sep, rest = spec.partition("://")
    if not sep:
        scheme, rest = "", spec
    netloc, slash, tail = _split_netloc(rest)
    userinfo, at, hostpart = netloc.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostpart}"
    return (f"{scheme}://" if sep else "") + netloc + slash + tail


def _split_netloc(rest: str) -> tuple[str, str, str]:
    for i, ch in enumerate(rest):
        if ch in "/?#":
            return rest[:i], ch, rest[i + 1 :]
    return rest, "", ""


def parse_host_spec(spec: str) -> HostSpec:
    """Parse and check a host spec; raise VerifyError (with the spec redacted) if it is unusable.

    A spec that carries a password is refused: passwords belong in the environment.
    """
    shown = redact_host_spec(spec)
    if "://" not in spec:
        raise VerifyError(
            f"host spec {shown!r} has no scheme; use one of "
            + ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
        )
    url = urllib.parse.urlsplit(spec)
    scheme = url.scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise VerifyError(
            f"host spec {shown!r}: unsupported scheme {scheme!r} "
            f"(supported: {', '.join(SUPPORTED_SCHEMES)})"
        )
    if url.password is not None:
        hint = f" set {WINRM_PASSWORD_ENV} instead" if scheme == "winrm" else " use a key"
        raise VerifyError(
            f"host spec {shown!r} contains a password; never put one in a host spec:{hint}"
        )
    if scheme != "local" and not url.hostname:
        raise VerifyError(f"host spec {shown!r} names no host")
    try:
        port = url.port
    except ValueError:
        raise VerifyError(f"host spec {shown!r} has an invalid port") from None
    query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
    return HostSpec(scheme, url.username, url.hostname or "", port, query)


def ssh_config_text(
    identity: Path | None, known_hosts: Path, control_dir: Path | None = None
) -> str:
    """A per-run ssh_config: accept a new VM's host key once, remember it only for this run.

    With ``control_dir`` (private to the run), every check's ssh rides one connection: Testinfra
    passes ``ControlMaster=auto`` but no ControlPath, and without one OpenSSH does not
    multiplex, so each of the suite's commands paid a full handshake and login (~0.3 s each on
    a local sandbox VM, ~15 ms multiplexed). ``stop_ssh_master`` ends the connection after the run.
    """
    lines = [
        "# Generated by imageforge.verify for one suite run.",
        "Host *",
        "  StrictHostKeyChecking accept-new",
        f"  UserKnownHostsFile {known_hosts}",
        "  GlobalKnownHostsFile /dev/null",
        "  BatchMode yes",
        "  PasswordAuthentication no",
        "  KbdInteractiveAuthentication no",
        "  ConnectTimeout 20",
        "  ServerAliveInterval 15",
        "  ServerAliveCountMax 4",
        "  LogLevel ERROR",
    ]
    if identity is not None:
        lines += ["  IdentitiesOnly yes", f"  IdentityFile {identity}"]
    if control_dir is not None:
        lines += [
            "  ControlMaster auto",
            f"  ControlPath {control_dir}/cm-%C",
            "  ControlPersist 60s",
        ]
    return "\n".join(lines) + "\n"


def stop_ssh_master(config_path: Path, spec: HostSpec) -> None:
    """End the shared connection of a run (``ssh -O exit``); quietly, it may be gone already."""
    argv = ["ssh", "-F", str(config_path), "-O", "exit"]
    if spec.port:
        argv += ["-p", str(spec.port)]
    if spec.user:
        argv += ["-l", spec.user]
    argv.append(spec.host)
    try:
        subprocess.run(argv, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        pass


# --- pytest command line -------------------------------------------------------------------


def pytest_argv(
    *,
    suite_dir: Path,
    host_spec: str,
    junit_path: Path,
    image_file: Path,
    version: str,
    admin_user: str,
    ssh_config: Path | None = None,
    ssh_identity: Path | None = None,
    paramiko: bool = False,
    python: str = sys.executable,
) -> list[str]:
    """The argv that runs one suite. It never contains a password (specs with one are refused)."""
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
    if ssh_config is not None:
        argv.append(f"--ssh-config={ssh_config}")
    if ssh_identity is not None:
        argv.append(f"--ssh-identity-file={ssh_identity}")
    if paramiko:
        # Paramiko reports a host key it has not seen as a UserWarning, which the project's
        # filterwarnings=error would turn into a failed connection; accept-new is intended.
        argv += ["-W", "ignore:Unknown:UserWarning:paramiko.client"]
    return argv


# --- JUnit ---------------------------------------------------------------------------------


def parse_junit(path: Path) -> JUnitCounts:
    """Count outcomes per <testcase> (error > failure > skipped > passed); raise VerifyError."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as err:
        raise VerifyError(f"cannot read JUnit report {path}: {err}") from None
    passed = failed = errors = skipped = 0
    failures: list[str] = []
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        classname = case.get("classname", "")
        test_id = f"{classname}::{name}" if classname else name
        if case.find("error") is not None:
            errors += 1
            failures.append(test_id)
        elif case.find("failure") is not None:
            failed += 1
            failures.append(test_id)
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return JUnitCounts(passed, failed, errors, skipped, tuple(failures))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def exit_code_for(pytest_rc: int, counts: JUnitCounts | None) -> tuple[int, str]:
    """Map pytest's return code and the JUnit counts to (exit code, reason if not run)."""
    if counts is None:
        return EXIT_NOT_RUN, f"pytest exited {pytest_rc} without a JUnit report"
    if pytest_rc in (2, 3, 4):
        what = {2: "interrupted", 3: "internal error", 4: "usage error"}[pytest_rc]
        return EXIT_NOT_RUN, f"pytest {what} (exit {pytest_rc}), see pytest.log"
    if pytest_rc == 5 or counts.total == 0:
        return EXIT_NOT_RUN, "no tests were collected"
    if counts.errors and not counts.passed and not counts.failed:
        return EXIT_NOT_RUN, "every test errored: the host could not be reached or set up"
    if counts.failed or counts.errors or pytest_rc != 0:
        return EXIT_FAILED, ""
    return EXIT_PASSED, ""


# --- runner --------------------------------------------------------------------------------


def subprocess_runner(argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> int:
    """Run argv from the repository root, streaming its output to the console and log_path."""
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
    except OSError as err:
        raise VerifyError(f"cannot start pytest: {err}") from None
    with proc, log_path.open("w", encoding="utf-8") as log:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()  # a CI log shows the suite's progress as it happens
            log.write(line)
        return proc.wait()


def report_dir_for(reports_root: Path, image: str, version: str) -> Path:
    """reports/<image>/<version>/"""
    return reports_root / image / version


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
) -> SuiteResult:
    """Run the ``os`` suite against ``host_spec``; write the evidence under ``report_dir``.

    ``winrm_password`` (or IMAGEFORGE_WINRM_PASSWORD in this process's environment) is passed to
    the suite in the environment only. ``winrm_certificate`` (PEM) is the only certificate the
    host's TLS is then verified against (else IMAGEFORGE_WINRM_CA, a PEM file, else the system's
    CAs); certificate validation is never turned off. Raises VerifyError for arguments that
    cannot work (bad spec, unknown os, missing image file or identity); a suite that ran but
    could not test the image is a result with exit_code 2.
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
    suite_dir = repo_root / OS_SUITES[os]
    if not suite_dir.is_dir():
        raise VerifyError(f"the {os} suite {suite_dir} does not exist")

    # `os` is the suite's OS here, hence _environ() for the process environment.
    env = dict(_environ())
    env.pop(WINRM_PASSWORD_ENV, None)  # only a WinRM run gets the password
    if spec.scheme == "winrm":
        password = winrm_password or _environ().get(WINRM_PASSWORD_ENV)
        if not password:
            raise VerifyError(
                f"{shown}: WinRM needs a password; set {WINRM_PASSWORD_ENV} "
                "(it is never taken from the host spec or the command line)"
            )
        env[WINRM_PASSWORD_ENV] = password
    env["PYTHONDONTWRITEBYTECODE"] = "1"

    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    junit_path = report_dir / "junit.xml"
    log_path = report_dir / "pytest.log"
    junit_path.unlink(missing_ok=True)
    run = runner or subprocess_runner
    started = datetime.now(UTC)
    t0 = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="imageforge-verify-") as tmp:
        if spec.scheme == "winrm" and winrm_certificate:
            pinned = Path(tmp) / "winrm-ca.pem"
            pinned.write_text(winrm_certificate)
            env[WINRM_CA_ENV] = str(pinned)
        config_path = None
        identity = Path(ssh_identity).resolve() if ssh_identity else None
        if spec.scheme in SSH_SCHEMES:
            if ssh_config is not None:
                config_path = Path(ssh_config).resolve()
            else:
                config_path = Path(tmp) / "ssh_config"
                config_path.write_text(
                    ssh_config_text(identity, Path(tmp) / "known_hosts", control_dir=Path(tmp))
                )
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
        )
        inventory_path = None
        inventory_error = ""
        try:
            pytest_rc = run(argv, env, log_path)
            if collect_inventory:
                inventory_path, inventory_error = _collect_inventory(
                    host_spec, os, report_dir, config_path, identity, env
                )
        finally:
            if spec.scheme == "ssh" and config_path is not None and ssh_config is None:
                stop_ssh_master(config_path, spec)

    duration = time.monotonic() - t0
    counts = parse_junit(junit_path) if junit_path.is_file() else None
    exit_code, reason = exit_code_for(pytest_rc, counts)
    counts = counts or JUnitCounts()
    digest = sha256_file(junit_path) if junit_path.is_file() else ""
    result = SuiteResult(
        passed=counts.passed,
        failed=counts.failed,
        errors=counts.errors,
        skipped=counts.skipped,
        junit_path=junit_path,
        exit_code=exit_code,
        digest=digest,
        summary_path=report_dir / "summary.json",
        inventory_path=inventory_path,
        failures=counts.failures,
        reason=reason,
        host=shown,
    )
    image_name = image_file.name.removesuffix(".pkrvars.hcl")
    summary = {
        "image": image_name,
        "version": version,
        "os": os,
        "host": shown,
        "admin_user": admin_user,
        "passed": result.passed,
        "failed": result.failed,
        "errors": result.errors,
        "skipped": result.skipped,
        "exit_code": exit_code,
        "pytest_exit_code": pytest_rc,
        "reason": reason,
        "failures": list(result.failures),
        "junit": junit_path.name,
        "digest": digest,
        "inventory": inventory_path.name if inventory_path else None,
        "inventory_error": inventory_error or None,
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_seconds": round(duration, 3),
    }
    assert result.summary_path is not None
    result.summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    echo(result.summary_line(image_name, version))
    return result


def _environ() -> Mapping[str, str]:
    return os.environ


def _collect_inventory(
    host_spec: str,
    os_name: str,
    report_dir: Path,
    ssh_config: Path | None,
    identity: Path | None,
    env: Mapping[str, str],
) -> tuple[Path | None, str]:
    from imageforge import inventory

    try:
        inv = inventory.collect_from_spec(
            host_spec,
            os=os_name,
            ssh_config=ssh_config,
            ssh_identity=identity,
            winrm_password=env.get(WINRM_PASSWORD_ENV),
            winrm_ca=env.get(WINRM_CA_ENV),
        )
        return inventory.write_inventory(inv, report_dir / "inventory.json"), ""
    except ImageforgeError as err:
        return None, str(err)


def summary_dict(result: SuiteResult) -> dict[str, object]:
    """The result as plain JSON-able data (paths as strings)."""
    data = asdict(result)
    for key in ("junit_path", "summary_path", "inventory_path"):
        data[key] = str(data[key]) if data[key] is not None else None
    data["failures"] = list(result.failures)
    return data
