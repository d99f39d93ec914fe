"""Tests against a real Azure subscription: opt-in only, never part of the default run.

    IMAGEFORGE_AZURE_TESTS=1 INVOKE_IMAGEFORGE_SUBSCRIPTION_ID=<id> \
        .venv/bin/python -m pytest tests/live            # read-only checks
    IMAGEFORGE_AZURE_BUILD=1 ...                          # plus a real build of debian-12

Credentials come from the usual places (ARM_*/AZURE_* variables or `az login`). These tests
create a gallery and image definitions if missing, and with IMAGEFORGE_AZURE_BUILD=1 a real
image version (billed); test resource groups are deleted by the build itself.

Without IMAGEFORGE_AZURE_TESTS=1, a collection of tests/ leaves this directory out with one
line saying so (tests/conftest.py); named on the command line, it refuses to run (below).
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("IMAGEFORGE_AZURE_TESTS") != "1":
        raise pytest.UsageError(
            "tests/live runs against a real Azure subscription: set IMAGEFORGE_AZURE_TESTS=1 "
            "and a subscription (INVOKE_IMAGEFORGE_SUBSCRIPTION_ID or ARM_SUBSCRIPTION_ID)"
        )
