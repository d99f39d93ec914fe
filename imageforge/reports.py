"""Where a tested version's evidence lives: ``<reports>/<image>/<version>/``.

    junit.xml       the suite's JUnit report (published as is)
    pytest.log      the suite's console output (secrets redacted)
    summary.json    counts, exit codes, the JUnit digest, the redacted host, timings
    inventory.json  the package inventory (imageforge.inventory), when collected

Every part of imageforge that reads or writes these files finds the directory with
``report_dir``.
"""

from __future__ import annotations

from pathlib import Path

from imageforge.errors import ConfigError

JUNIT = "junit.xml"
PYTEST_LOG = "pytest.log"
SUMMARY = "summary.json"
INVENTORY = "inventory.json"


def report_dir(reports_root: Path, image: str, version: str) -> Path:
    """``<reports_root>/<image>/<version>/``; image and version must be plain names."""
    for what, name in (("image", image), ("version", version)):
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            raise ConfigError(f"{what} {name!r} cannot name a report directory")
    return Path(reports_root) / image / version
