"""Fixtures around the one emulator a test session shares (the ``arm`` fixture that
tests/azure_lib/conftest.py and tests/emulator/conftest.py each define).

A conftest imports a fixture from here to make it apply in its directory.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_leftover_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that used the shared emulator, the fault rules it added are gone."""
    yield
    if "arm" in request.fixturenames:
        request.getfixturevalue("arm").clear_faults()
