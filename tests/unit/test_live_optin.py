"""tests/live without its opt-in: left out of a collection of tests/, with one line saying how
to run it; with the opt-in, or named on the command line, collected as before.

The real tests/conftest.py and tests/live/conftest.py run in a small copy of the tree, so the
check takes a second rather than collecting the whole suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OPT_IN = "IMAGEFORGE_AZURE_TESTS"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tests/ with both conftests and a 'gallery' test in tests/live and in tests/unit."""
    tests = tmp_path / "tests"
    (tests / "live").mkdir(parents=True)
    (tests / "unit").mkdir()
    shutil.copy(REPO / "tests/conftest.py", tests / "conftest.py")
    shutil.copy(REPO / "tests/live/conftest.py", tests / "live/conftest.py")
    (tests / "live/test_live.py").write_text("def test_live_gallery():\n    pass\n")
    (tests / "unit/test_unit.py").write_text(
        "def test_unit_gallery():\n    pass\n\n\ndef test_other():\n    pass\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return tmp_path


def collect(tree: Path, *args: str, opt_in: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (OPT_IN, "PYTEST_ADDOPTS")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if opt_in:
        env[OPT_IN] = "1"
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q"]
    return subprocess.run(
        [*argv, *args], cwd=tree, env=env, capture_output=True, text=True, timeout=60
    )


def how_to_run(output: str) -> list[str]:
    return [line for line in output.splitlines() if f"{OPT_IN}=1" in line]


def test_without_the_opt_in_live_tests_are_left_out_and_the_rest_is_collected(tree):
    result = collect(tree, "-k", "gallery", "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tests/unit/test_unit.py::test_unit_gallery" in result.stdout
    assert "test_live_gallery" not in result.stdout
    assert how_to_run(result.stdout) == [
        "tests/live left out (real Azure): run them with IMAGEFORGE_AZURE_TESTS=1 and a "
        "subscription, see tests/live/conftest.py"
    ]


def test_with_the_opt_in_live_tests_are_collected(tree):
    result = collect(tree, "-k", "gallery", "tests", opt_in=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tests/live/test_live.py::test_live_gallery" in result.stdout
    assert "tests/unit/test_unit.py::test_unit_gallery" in result.stdout
    assert how_to_run(result.stdout) == []


@pytest.mark.parametrize("named", ["tests/live", "tests/live/test_live.py::test_live_gallery"])
def test_named_without_the_opt_in_live_tests_refuse_as_before(tree, named):
    result = collect(tree, named)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "tests/live runs against a real Azure subscription: set IMAGEFORGE_AZURE_TESTS=1" in (
        result.stderr
    )


def test_a_collection_without_tests_live_says_nothing_of_it(tree):
    result = collect(tree, "tests/unit")
    assert result.returncode == 0, result.stdout + result.stderr
    assert how_to_run(result.stdout) == []
