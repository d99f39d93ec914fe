"""imageforge.reports: the one place the report directory of a version is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageforge import inventory, reports
from imageforge.errors import ConfigError


def test_report_dir_is_reports_image_version():
    assert reports.report_dir(Path("/r"), "debian-12", "1.4.0") == Path("/r/debian-12/1.4.0")
    assert inventory.inventory_path_for(Path("/r"), "debian-12", "1.4.0") == Path(
        "/r/debian-12/1.4.0/inventory.json"
    )


@pytest.mark.parametrize(("image", "version"), [("..", "1.0.0"), ("a/b", "1.0.0"), ("x", "")])
def test_a_name_that_is_no_plain_directory_name_is_refused(image, version):
    with pytest.raises(ConfigError, match="cannot name a report directory"):
        reports.report_dir(Path("/r"), image, version)
