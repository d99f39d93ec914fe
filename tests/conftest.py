"""Hooks for the whole test tree.

tests/live runs against a real Azure subscription: without its opt-in it is left out of the
collection (with one line saying so), so that ``pytest tests -k gallery`` runs the rest
instead of stopping at tests/live's refusal. Named on the command line (``pytest tests/live``)
it is collected, and tests/live/conftest.py says what it needs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

LIVE = Path(__file__).resolve().parent / "live"
OPT_IN = "IMAGEFORGE_AZURE_TESTS"
LEFT_OUT = (
    f"tests/live left out (real Azure): run them with {OPT_IN}=1 and a subscription, "
    "see tests/live/conftest.py"
)
_left_out = pytest.StashKey[bool]()


def _asked_for(config: pytest.Config) -> tuple[bool, bool]:
    """Whether the command line names tests/live (or something in it), and whether it names a
    directory that holds tests/live (``tests``)."""
    named = around = False
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        named = named or path == LIVE or LIVE in path.parents
        around = around or path in LIVE.parents
    return named, around


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name != LIVE.name or os.environ.get(OPT_IN) == "1":
        return None
    if collection_path.resolve() != LIVE:
        return None
    named, around = _asked_for(config)
    if named:
        return None  # collected, and tests/live/conftest.py refuses with what it needs
    if around:  # pytest visits tests/live also when collecting only a sibling: say nothing then
        config.stash[_left_out] = True
    return True


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    return LEFT_OUT if config.stash.get(_left_out, False) else None
