"""Fixtures for the emulator tests: one shared emulator, real SDK clients, a fresh group.

Everything talks HTTPS to a real emulator process started by
imageforge.sandbox.harness.running_emulator. Tests create their own uniquely named resource
groups, so they can share one emulator. Helpers live in emulator_helpers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from emulator_helpers import LOCATION, Clients, make_clients, unique
from helpers.arm import no_leftover_faults  # noqa: F401 - autouse

from imageforge.sandbox.harness import EmulatorHandle, running_emulator


@pytest.fixture(scope="session")
def arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path_factory.mktemp("arm")) as handle:
        yield handle


@pytest.fixture(scope="session")
def clients(arm: EmulatorHandle) -> Clients:
    return make_clients(arm)


@pytest.fixture
def rg(clients: Clients) -> str:
    name = unique("rg-")
    clients.resource.resource_groups.create_or_update(name, {"location": LOCATION})
    return name
