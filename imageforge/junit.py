"""What a suite run produced: the JUnit counts, the exit code they mean, and the result.

Exit codes: 0 every test passed, 1 tests failed, 2 the suite could not run (pytest usage or
internal error, nothing collected, no JUnit file, or every test errored without one pass or
failure, which is what an unreachable host looks like).
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from imageforge.errors import VerifyError

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_NOT_RUN = 2


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


def parse_junit(path: Path) -> JUnitCounts:
    """Count outcomes per <testcase> (error > failure > skipped > passed); raise VerifyError."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as err:
        raise VerifyError(f"cannot read JUnit report {path}: {err}") from None
    return _count(root.iter("testcase"))


def _count(cases: Iterable[ET.Element]) -> JUnitCounts:
    passed = failed = errors = skipped = 0
    failures: list[str] = []
    for case in cases:
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


def counts_by_host(path: Path, host_ids: Sequence[str]) -> dict[str, JUnitCounts]:
    """``parse_junit`` per host of a run on several hosts: a test case belongs to the host
    whose Testinfra id (``ssh://<alias>``) is its parameter, alone or first. Hosts without a
    test case get empty counts."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as err:
        raise VerifyError(f"cannot read JUnit report {path}: {err}") from None
    found: dict[str, list[ET.Element]] = {h: [] for h in host_ids}
    for case in root.iter("testcase"):
        name = case.get("name", "")
        for host in host_ids:
            if f"[{host}]" in name or f"[{host}-" in name:
                found[host].append(case)
                break
    return {host: _count(cases) for host, cases in found.items()}


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


def suite_result(
    pytest_rc: int,
    junit_path: Path,
    *,
    summary_path: Path,
    inventory_path: Path | None,
    host: str,
) -> SuiteResult:
    """The result of a run from pytest's return code and the JUnit file it left (if any)."""
    found = parse_junit(junit_path) if junit_path.is_file() else None
    exit_code, reason = exit_code_for(pytest_rc, found)
    counts = found or JUnitCounts()
    return SuiteResult(
        passed=counts.passed,
        failed=counts.failed,
        errors=counts.errors,
        skipped=counts.skipped,
        junit_path=junit_path,
        exit_code=exit_code,
        digest=sha256_file(junit_path) if found is not None else "",
        summary_path=summary_path,
        inventory_path=inventory_path,
        failures=counts.failures,
        reason=reason,
        host=host,
    )
