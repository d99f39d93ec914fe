"""The Windows image suite is collected, check by check, as imageforge would run it.

Windows cannot boot in the sandbox, so this is how far the Windows suite runs offline: pytest
(a subprocess, as imageforge.verify runs it) collects tests/image/windows with a Windows image
definition, and every check the suite defines is there, once per feature and firewall profile.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import REPO, copy_tree, edit

from imageforge import verify
from imageforge.config import load_image_file

SUITE = REPO / "tests" / "image" / "windows"
IMAGE_FILE = REPO / "images" / "windows-2022.pkrvars.hcl"
HOST = "winrm://imageforge@10.0.0.4:5986?no_verify_ssl=true"
FIREWALL_PROFILES = ("Domain", "Private", "Public")


def defined_checks() -> set[str]:
    """The test functions tests/image/windows/test_*.py define."""
    names = set()
    for path in SUITE.glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        }
    return names


def collect(*args: str, cwd: Path = REPO) -> tuple[int, list[str], str]:
    """(exit code, collected test ids, output) of `pytest --collect-only -q ARGS`."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    return proc.returncode, ids, proc.stdout + proc.stderr


def function_of(test_id: str) -> str:
    return test_id.split("::", 1)[1].split("[", 1)[0]


def expected_count(features: int) -> int:
    # one test per check, the firewall check once per profile, the feature check per feature
    return len(defined_checks()) - 2 + len(FIREWALL_PROFILES) + features


def test_the_windows_suite_is_collected_with_a_windows_image_definition():
    image = load_image_file(IMAGE_FILE)
    code, ids, output = collect(
        "tests/image/windows",
        f"--imageforge-image={IMAGE_FILE}",
        "--imageforge-version=1.0.0",
        "--imageforge-admin-user=imageforge",
        f"--hosts={HOST}",
    )
    assert code == 0, output
    assert re.search(rf"^{len(ids)} tests collected", output, re.M), output
    assert len(ids) == expected_count(len(image.test.required_features)) > 0
    assert {function_of(i) for i in ids} == defined_checks()
    for check in (
        "test_winrm_has_an_https_listener",
        "test_winrm_has_no_http_listener",
        "test_firewall_profile_is_on",
        "test_remote_desktop_requires_nla",
        "test_defender_realtime_protection_is_on",
        "test_marker_names_the_version_under_test",
        "test_image_was_generalized_with_sysprep",
        "test_required_feature_is_installed",
    ):
        assert check in defined_checks(), check
    assert all(i.startswith("tests/image/windows/test_win_") for i in ids)
    assert all("winrm://10.0.0.4" in i for i in ids), ids  # parametrized by the WinRM host
    for profile in FIREWALL_PROFILES:
        assert any(re.search(rf"test_firewall_profile_is_on\[.*{profile}\]", i) for i in ids)
    for feature in image.test.required_features:
        assert any(f"test_required_feature_is_installed[{feature}-" in i for i in ids), feature


def test_the_runners_own_command_line_collects_the_windows_suite(tmp_path):
    """imageforge.verify's argv for a Windows run, with --collect-only: nothing connects."""
    argv = verify.pytest_argv(
        suite_dir=SUITE,
        host_spec=HOST,
        junit_path=tmp_path / "junit.xml",
        image_file=IMAGE_FILE,
        version="1.0.0",
        admin_user="imageforge",
    )
    code, ids, output = collect(*argv[3:])
    assert code == 0, output
    image = load_image_file(IMAGE_FILE)
    assert len(ids) == expected_count(len(image.test.required_features))
    assert {function_of(i) for i in ids} == defined_checks()


def test_the_image_definitions_features_decide_the_feature_checks(tmp_path):
    repo = copy_tree(tmp_path / "repo")
    definition = repo / "images" / "windows-2022.pkrvars.hcl"
    edit(
        definition,
        'required_features = ["Web-Server"]',
        'required_features = ["Web-Server", "NET-Framework-45-Core", "Telnet-Client"]',
    )
    code, ids, output = collect(
        "tests/image/windows", f"--imageforge-image={definition}", f"--hosts={HOST}", cwd=repo
    )
    assert code == 0, output
    features = sorted(
        re.search(r"test_required_feature_is_installed\[(.+)-winrm://", i).group(1)
        for i in ids
        if "test_required_feature_is_installed" in i
    )
    assert features == ["NET-Framework-45-Core", "Telnet-Client", "Web-Server"]
    assert len(ids) == expected_count(3)


@pytest.mark.parametrize("bad", ["missing.pkrvars.hcl", "malformed"])
def test_a_bad_image_definition_is_a_usage_error_before_anything_connects(tmp_path, bad):
    path = tmp_path / "images" / bad
    if bad == "malformed":
        path.parent.mkdir(parents=True)
        path = path.with_suffix(".pkrvars.hcl")
        path.write_text('os = = "windows"\n', encoding="utf-8")
    code, ids, output = collect("tests/image/windows", f"--imageforge-image={path}")
    assert code == pytest.ExitCode.USAGE_ERROR, output
    assert ids == []
    assert "--imageforge-image: " in output and "Traceback" not in output
