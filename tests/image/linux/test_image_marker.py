"""The image marker (/etc/imageforge-release) says this VM runs the image and version under test."""

from __future__ import annotations

import re

import pytest

MARKER = "/etc/imageforge-release"


@pytest.mark.smoke
def test_marker_file_exists(host):
    assert host.file(MARKER).is_file, (
        f"{MARKER} is missing: the image was not built by imageforge's provisioners "
        "(configure-image-marker.sh did not run)"
    )


@pytest.mark.smoke
def test_marker_names_the_image_under_test(marker, image_definition):
    assert marker.get("IMAGEFORGE_IMAGE") == image_definition.name, (
        f"the VM says it is image {marker.get('IMAGEFORGE_IMAGE')!r}, "
        f"but image {image_definition.name!r} is under test"
    )


@pytest.mark.smoke
def test_marker_names_the_version_under_test(marker, expected_version):
    assert marker.get("IMAGEFORGE_VERSION") == expected_version, (
        f"the VM says it is version {marker.get('IMAGEFORGE_VERSION')!r}, "
        f"but version {expected_version!r} is under test: the test VM was not created from it"
    )


def test_marker_records_the_source_commit(marker):
    commit = marker.get("IMAGEFORGE_SOURCE_COMMIT", "")
    assert re.fullmatch(r"[0-9a-f]{7,40}|unknown", commit), (
        f"{MARKER} records no valid source commit ({commit!r}): the image cannot be traced "
        "back to the change that built it"
    )
