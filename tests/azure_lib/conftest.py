"""Fixtures of the imageforge.azure tests: one shared inert emulator, a session per test.

The emulator is a real HTTPS server (imageforge.sandbox.harness.running_emulator) with the
inert machine backend: ARM behaviour without machines. Each test gets a session over a site
with its own resource group, so tests cannot see each other's galleries. Tests that need a
reachable VM use the chroot backend and are marked ``sandbox``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure_helpers import load_image, new_session
from helpers.arm import no_leftover_faults  # noqa: F401 - autouse

from imageforge.azure import gallery
from imageforge.azure.clients import Session
from imageforge.config import ImageDefinition
from imageforge.sandbox.harness import EmulatorHandle, running_emulator


@pytest.fixture(scope="session")
def arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path_factory.mktemp("azure-arm")) as handle:
        yield handle


@pytest.fixture
def session(arm: EmulatorHandle) -> Iterator[Session]:
    with new_session(arm) as opened:
        yield opened


@pytest.fixture
def image() -> ImageDefinition:
    return load_image("debian-12")


@pytest.fixture
def defined(session: Session, image: ImageDefinition) -> ImageDefinition:
    """The image with its gallery and definition created."""
    gallery.ensure_gallery(session)
    gallery.ensure_image_definition(session, image)
    return image
