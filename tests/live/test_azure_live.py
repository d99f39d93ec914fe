"""Real-Azure checks of the gallery side and, opt-in, of a whole build (see conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imageforge.azure import gallery
from imageforge.config import select_images
from imageforge.pipeline.session import open_session
from imageforge.site import Site

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site() -> Site:
    return Site(
        root=REPO,
        subscription_id=os.environ.get("INVOKE_IMAGEFORGE_SUBSCRIPTION_ID", ""),
        resource_group=os.environ.get("INVOKE_IMAGEFORGE_RESOURCE_GROUP", "rg-imageforge"),
        gallery=os.environ.get("INVOKE_IMAGEFORGE_GALLERY", "imageforge"),
        location=os.environ.get("INVOKE_IMAGEFORGE_LOCATION", "westeurope"),
    )


@pytest.fixture(scope="module")
def session(site: Site):
    return open_session(site, "azure")


def test_the_gallery_and_every_image_definition_exist_or_are_created(site, session):
    gallery.ensure_gallery(session)
    for image in select_images(site.images_path):
        definition = gallery.ensure_image_definition(session, image)
        assert definition.endswith(f"/images/{image.gallery_image.name}")


def test_versions_are_listed_with_their_stage(site, session):
    for image in select_images(site.images_path):
        for info in gallery.list_versions(session, image):
            assert info.stage, f"{image.name} {info.name} carries no imageforge.stage tag"


@pytest.mark.skipif(
    os.environ.get("IMAGEFORGE_AZURE_BUILD") != "1",
    reason="a real build is billed: set IMAGEFORGE_AZURE_BUILD=1",
)
def test_a_real_build_of_debian_12_publishes_tests_and_replicates():
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "build", "--image", "debian-12", "--target", "azure"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=3 * 3600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "stage replicated" in result.stdout
