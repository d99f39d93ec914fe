"""The image marker (HKLM:\\SOFTWARE\\imageforge) names the image and version under test."""

from __future__ import annotations

import pytest
from winchecks import check_marker_image, check_marker_present, check_marker_version


@pytest.mark.smoke
def test_marker_key_exists(marker):
    verdict = check_marker_present(marker)
    assert verdict.ok, verdict.detail


@pytest.mark.smoke
def test_marker_names_the_image_under_test(marker, image_definition):
    verdict = check_marker_image(marker, image_definition.name)
    assert verdict.ok, verdict.detail


@pytest.mark.smoke
def test_marker_names_the_version_under_test(marker, expected_version):
    verdict = check_marker_version(marker, expected_version)
    assert verdict.ok, verdict.detail
