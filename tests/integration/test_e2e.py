"""End to end through the real CLI on the sandbox: what a release engineer sees.

In a private copy of the repository with its own sandbox:

1. `invoke build --os linux --promote` picks the sandbox (no subscription), skips ubuntu-24.04
   with a note (the sandbox marketplace has only Debian) and ends with debian-12 built, tested
   on a VM booted from the new version, replicated to its three regions and promoted; it
   prints the phase timings and the evidence, and leaves JUnit, inventory and summary under
   reports/debian-12/<version>/. `invoke versions` shows the version with its test summary.
2. A second image definition whose extra provisioner re-enables password and root logins after
   the SSH hardening is built: it fails exactly the sshd setting tests for those two keywords
   (by name, in the JUnit), is tagged failed, and `invoke promote` refuses it in one line.
3. debian-12 built again with one more package: `invoke diff` between the two tested versions
   names the added package.

The sandbox is reset at the end, whatever happened.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import (
    E2eSandbox,
    built_version,
    junit_outcomes,
    module_sandbox,
    not_passed,
    of_image,
    phase_table,
    versions_rows,
)
from helpers.cli import CliResult, edit

from imageforge import tags
from imageforge.azure import gallery
from imageforge.pipeline.timings import PHASES
from imageforge.tags import TESTS_ERRORS

pytestmark = pytest.mark.sandbox

IMAGE = "debian-12"
WEAK = "debian-12-weak-ssh"
HARDENED = "debian-12-hardened"
REGIONS = {"westeurope": "Completed", "northeurope": "Completed", "swedencentral": "Completed"}
EXTRA_PACKAGE = "tree"

WEAK_SSH_SCRIPT = """\
#!/usr/bin/env bash
# enable-weak-ssh.sh - a deliberately bad change for the end-to-end tests: after
# configure-ssh-hardening.sh, turn password and root logins back on in its drop-in.
set -euo pipefail
dropin=/etc/ssh/sshd_config.d/01-imageforge-hardening.conf
sed -i -e 's/^PasswordAuthentication no$/PasswordAuthentication yes/' \\
  -e 's/^PermitRootLogin no$/PermitRootLogin yes/' "$dropin"
grep -qx 'PasswordAuthentication yes' "$dropin"
grep -qx 'PermitRootLogin yes' "$dropin"
echo "enable-weak-ssh: password and root logins are allowed again"
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def passed_count(junit: Path) -> int:
    outcomes = junit_outcomes(junit)
    assert outcomes, f"{junit} holds no test cases"
    return sum(1 for outcome in outcomes.values() if outcome == "passed")


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2eSandbox]:
    with module_sandbox(tmp_path_factory.mktemp("e2e")) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def first_raw(box: E2eSandbox) -> CliResult:
    """`invoke build --os linux --promote` on a fresh sandbox: debian-12 and debian-12-hardened,
    built at once (the sandbox machine has at least two cores)."""
    return box.invoke("build", "--os", "linux", "--promote", timeout=900)


@pytest.fixture(scope="module")
def first(first_raw: CliResult) -> CliResult:
    """The first build's output for debian-12 (its "[debian-12] " lines, unprefixed)."""
    return dataclasses.replace(first_raw, stdout=of_image(first_raw.stdout, IMAGE))


@pytest.fixture(scope="module")
def first_version(first: CliResult) -> str:
    assert first.returncode == 0, first.tail()
    return built_version(first.stdout, IMAGE)


@pytest.fixture(scope="module")
def weak(box: E2eSandbox, first_version: str) -> CliResult:
    """debian-12-weak-ssh, added after the first build (so --os linux did not pick it up)."""
    script = box.repo / "provisioners" / "linux" / "enable-weak-ssh.sh"
    script.write_text(WEAK_SSH_SCRIPT, encoding="utf-8")
    script.chmod(0o755)
    definition = box.repo / "images" / f"{WEAK}.pkrvars.hcl"
    definition.write_text(
        (box.repo / "images" / f"{IMAGE}.pkrvars.hcl").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    edit(definition, f'name           = "{IMAGE}"', f'name           = "{WEAK}"')
    edit(definition, f'  name               = "{IMAGE}"', f'  name               = "{WEAK}"')
    edit(definition, 'sku                = "12-gen2"', 'sku                = "12-gen2-weak-ssh"')
    edit(
        definition,
        '  "configure-ssh-hardening.sh",\n',
        '  "configure-ssh-hardening.sh",\n  "enable-weak-ssh.sh",\n',
    )
    return box.invoke("build", "--image", WEAK, timeout=900)


@pytest.fixture(scope="module")
def second(box: E2eSandbox, first_version: str) -> CliResult:
    """debian-12 again, with one more package in its definition."""
    edit(
        box.repo / "images" / f"{IMAGE}.pkrvars.hcl",
        'packages = ["curl", "jq", "ca-certificates"]',
        f'packages = ["curl", "jq", "ca-certificates", "{EXTRA_PACKAGE}"]',
    )
    return box.invoke("build", "--image", IMAGE, timeout=900)


@pytest.fixture(scope="module")
def second_version(second: CliResult) -> str:
    assert second.returncode == 0, second.tail()
    return built_version(second.stdout, IMAGE)


# -- 1. build --os linux --promote -----------------------------------------------------------


def test_build_os_linux_ends_with_a_promoted_tested_replicated_debian_12(box, first, first_version):
    lines = first.stdout.splitlines()
    assert lines[0] == "target: sandbox (no Azure subscription is configured)", first.tail()
    assert (
        "note: skipping ubuntu-24.04: the sandbox cannot provide base image "
        "Canonical:ubuntu-24_04-lts:server; it supports only Debian"
    ) in first.stdout
    assert "ubuntu-24.04: building" not in first.stdout
    assert "windows-2022" not in first.stdout
    assert first_version == "1.0.0"  # a fresh gallery
    junit = box.repo / "reports" / IMAGE / first_version / "junit.xml"
    passed = passed_count(junit)
    assert not_passed(junit_outcomes(junit)) == {}
    assert (
        f"{IMAGE} {first_version}: stage promoted ({passed} passed, 0 failed, 0 errors) ok" in lines
    ), first.tail()
    assert (
        f"promoted image {IMAGE} version {first_version} to latest in all target regions" in lines
    )
    version_tags = box.version_tags(IMAGE, first_version)
    assert version_tags[tags.STAGE] == "promoted"
    assert version_tags[tags.TESTS_PASSED] == str(passed)
    assert version_tags[tags.TESTS_FAILED] == "0"
    assert version_tags[TESTS_ERRORS] == "0"
    assert version_tags[tags.REPORT_DIGEST] == sha256(junit)
    from imageforge.azure import gallery

    with box.session() as session:
        info = gallery.get_version(session, box.image(IMAGE), first_version)
    assert dict(info.regions) == REGIONS
    assert info.exclude_from_latest is False


def test_linux_images_build_at_once_each_line_naming_its_image(box, first_raw, first_version):
    """Issue 15: --os linux builds both sandbox-capable images concurrently; every line of a
    build names its image, each has its own phase table, and both end promoted."""
    out = first_raw.stdout
    assert "building 2 images, 2 at once (each line names its image)" in out, first_raw.tail()
    for name in (IMAGE, HARDENED):
        assert re.search(rf"^\[{re.escape(name)}\] {re.escape(name)}: building version 1\.0\.0 ",
                         out, re.M), first_raw.tail()  # fmt: skip
        assert re.search(rf"^\[{re.escape(name)}\] .*==> {re.escape(name)}\.null\.", out, re.M)
        assert f"{name} 1.0.0: stage promoted (" in out
        assert re.search(rf"^{re.escape(name)}:\nphase\s+seconds\s+share$", out, re.M)
    hardened = box.repo / "reports" / HARDENED / "1.0.0" / "junit.xml"
    outcomes = junit_outcomes(hardened)
    assert not_passed(outcomes) == {}
    sysctl = [name for name in outcomes if "test_kernel_parameter_is_configured_for_boot" in name]
    assert len(sysctl) == 8, sorted(outcomes)


def test_build_prints_the_phase_timings_and_the_evidence(box, first, first_version):
    table = phase_table(first.stdout)
    assert list(table) == [*PHASES, "total"], table
    assert all(seconds >= 0 for seconds in table.values())
    # each row is rounded to 0.01 s
    assert table["total"] == pytest.approx(sum(table[p] for p in PHASES), abs=0.01 * len(PHASES))
    assert table["packer"] > 0 and table["testinfra"] > 0
    junit = box.repo / "reports" / IMAGE / first_version / "junit.xml"
    passed = passed_count(junit)
    verdict = re.search(
        rf"^verify {IMAGE} {first_version} on ssh://imageforge@[\d.]+:\d+: PASSED: "
        rf"{passed} passed, 0 failed, 0 errors, 0 skipped; junit: (?P<junit>\S+)$",
        first.stdout,
        re.M,
    )
    assert verdict, first.tail()
    assert Path(verdict["junit"]) == junit
    # the build ends with the versions table: the evidence as the gallery holds it
    row = versions_rows(first.stdout)[first_version]
    assert row["stage"] == "promoted"
    assert row["tests"] == f"{passed} passed, 0 failed"
    assert row["regions"] == REGIONS


def test_reports_hold_junit_inventory_and_summary(box, first_version):
    report = box.repo / "reports" / IMAGE / first_version
    junit = report / "junit.xml"
    assert junit.is_file() and (report / "inventory.json").is_file()
    summary = json.loads((report / "summary.json").read_text())
    passed = passed_count(junit)
    assert summary["image"] == IMAGE and summary["version"] == first_version
    assert (summary["passed"], summary["failed"], summary["errors"]) == (passed, 0, 0)
    assert summary["exit_code"] == 0 and summary["failures"] == []
    assert summary["digest"] == sha256(junit)
    assert summary["inventory"] == "inventory.json" and summary["inventory_error"] is None
    inventory = json.loads((report / "inventory.json").read_text())
    assert inventory["os"] == "linux"
    for package in ("openssh-server", "waagent", "sudo", "curl", "jq", "unattended-upgrades"):
        assert package in inventory["packages"], package
    assert EXTRA_PACKAGE not in inventory["packages"]


def test_versions_shows_the_promoted_version_with_its_test_summary(box, first_version):
    result = box.invoke("versions", "--image", IMAGE)
    assert result.returncode == 0, result.tail()
    passed = passed_count(box.repo / "reports" / IMAGE / first_version / "junit.xml")
    rows = versions_rows(result.stdout)
    assert list(rows) == [first_version]
    row = rows[first_version]
    assert row["stage"] == "promoted"
    assert row["tests"] == f"{passed} passed, 0 failed"
    assert row["regions"] == REGIONS
    assert row["latest"] == "yes"


# -- 2. an image that weakens SSH ------------------------------------------------------------


def test_weak_ssh_image_fails_exactly_its_sshd_setting_tests(box, weak):
    assert weak.returncode == 1, weak.tail()
    assert weak.stderr.strip().splitlines()[-1] == (
        "error: at least one image failed; see the summary above"
    )
    assert "Traceback" not in weak.output
    version = built_version(weak.stdout, WEAK)
    junit = box.repo / "reports" / WEAK / version / "junit.xml"
    outcomes = junit_outcomes(junit)
    assert not_passed(outcomes) == {
        "test_sshd_setting[permitrootlogin]": "failed",
        "test_sshd_setting[passwordauthentication]": "failed",
    }
    passed = len(outcomes) - 2
    summary = re.search(
        rf"^{WEAK} {version}: stage failed \({passed} passed, 2 failed, 0 errors\) "
        r"FAILED: Testinfra suite failed: (?P<names>.*)$",
        weak.stdout,
        re.M,
    )
    assert summary, weak.tail()
    named = summary["names"]
    assert re.search(r"test_ssh::test_sshd_setting\[[^\]]*permitrootlogin\]", named), named
    assert re.search(r"test_ssh::test_sshd_setting\[[^\]]*passwordauthentication\]", named), named
    assert "sshd passwordauthentication is 'yes', must be 'no'" in weak.stdout
    assert "sshd permitrootlogin is 'yes', must be 'no'" in weak.stdout
    assert f"replicated image {WEAK}" not in weak.stdout  # a failed version is not replicated


def test_weak_ssh_version_is_tagged_failed(box, weak):
    version = built_version(weak.stdout, WEAK)
    passed = passed_count(box.repo / "reports" / WEAK / version / "junit.xml")
    version_tags = box.version_tags(WEAK, version)
    assert version_tags[tags.STAGE] == "failed"
    assert version_tags[tags.TESTS_FAILED] == "2"
    assert version_tags[tags.TESTS_PASSED] == str(passed)
    result = box.invoke("versions", "--image", WEAK)
    assert result.returncode == 0, result.tail()
    row = versions_rows(result.stdout)[version]
    assert row["stage"] == "failed"
    assert row["tests"] == f"{passed} passed, 2 failed"
    assert row["latest"] == "excluded"
    assert row["regions"] == {"westeurope": "Completed"}


def test_promote_refuses_the_failed_version_in_one_line(box, weak):
    version = built_version(weak.stdout, WEAK)
    result = box.invoke("promote", "--image", WEAK, "--version", version)
    assert result.returncode == 1, result.tail()
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        f"error: promote refused for image {WEAK} version {version}: "
    ), result.stderr
    assert "stage is failed, not tested or replicated" in result.stderr
    assert "2 test(s) failed" in result.stderr
    # nothing changed: still failed, still excluded from latest
    assert box.version_tags(WEAK, version)[tags.STAGE] == "failed"
    after = box.invoke("versions", "--image", WEAK)
    assert versions_rows(after.stdout)[version]["latest"] == "excluded"


# -- 3. diff of two tested versions ----------------------------------------------------------


def test_a_second_build_with_an_extra_package_is_tested_and_replicated(
    box, first_version, second, second_version
):
    assert second_version == "1.0.1"
    report = box.repo / "reports" / IMAGE / second_version
    passed = passed_count(report / "junit.xml")
    assert (
        f"{IMAGE} {second_version}: stage replicated ({passed} passed, 0 failed, 0 errors) ok"
        in second.stdout.splitlines()
    ), second.tail()
    assert EXTRA_PACKAGE in json.loads((report / "inventory.json").read_text())["packages"]
    rows = versions_rows(box.invoke("versions", "--image", IMAGE).stdout)
    assert list(rows) == [second_version, first_version]
    assert rows[second_version]["stage"] == "replicated"
    assert rows[second_version]["latest"] == "excluded"  # not promoted: latest stays 1.0.0
    assert rows[second_version]["regions"] == REGIONS
    assert rows[first_version]["latest"] == "yes"


def _diff(box: E2eSandbox, a: str, b: str) -> CliResult:
    # `-a/-b`: Invoke gives one-letter parameters only a short flag (see the test below).
    return box.invoke("diff", "--image", IMAGE, "--old", a, "--new", b)


def test_diff_names_the_added_package(box, first_version, second_version):
    inventory = json.loads(
        (box.repo / "reports" / IMAGE / second_version / "inventory.json").read_text()
    )
    tree_version = inventory["packages"][EXTRA_PACKAGE]
    result = _diff(box, first_version, second_version)
    assert result.returncode == 0, result.tail()
    lines = result.stdout.splitlines()
    assert re.fullmatch(
        rf"{IMAGE} {first_version} -> {IMAGE} {second_version}: "
        r"1 added, 0 removed, \d+ changed",
        lines[0],
    ), result.stdout
    assert f"  + {EXTRA_PACKAGE} {tree_version}" in lines
    backwards = _diff(box, second_version, first_version)
    assert backwards.returncode == 0, backwards.tail()
    assert re.match(
        rf"{IMAGE} {second_version} -> {IMAGE} {first_version}: 0 added, 1 removed",
        backwards.stdout,
    )
    assert f"  - {EXTRA_PACKAGE} {tree_version}" in backwards.stdout.splitlines()


def test_diff_of_an_untested_version_says_its_inventory_is_missing(box, first_version):
    result = box.invoke("diff", "--image", IMAGE, "--old", first_version, "--new", "7.7.7")
    assert result.returncode == 1, result.tail()
    assert "7.7.7" in result.stderr and "Traceback" not in result.stderr


# -- 5. pinned bases and `invoke outdated` ---------------------------------------------------


def _outdated(box: E2eSandbox) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = box.invoke("outdated", "--image", IMAGE, "--json", "--check")
    assert result.returncode in (0, 3), result.tail()
    (row,) = json.loads(result.stdout)
    return result.returncode, row


def test_a_new_base_makes_the_image_outdated_and_a_rebuild_takes_it(box, first_version):
    """The whole loop through the CLI: the promoted version records its concrete base; a newer
    base is published; `outdated` names the image; a build takes the new base; clean again."""
    rc, row = _outdated(box)
    assert rc == 0 and row["outdated"] is False, row
    assert re.fullmatch(r"0\.\d{8}\.\d{4}", row["base"]) and row["base"] == row["newest_base"]
    published = box.invoke("sandbox.publish-base", "--image", IMAGE, "--version", "0.29990101.1")
    assert published.returncode == 0, published.tail()
    rc, row = _outdated(box)
    assert rc == 3 and row["outdated"] is True
    assert row["newest_base"] == "0.29990101.1"
    assert row["reasons"] == [
        f"{row['promoted']} is built from base {row['base']}; 0.29990101.1 is out"
    ]
    rebuilt = box.invoke("build", "--image", IMAGE, "--promote", timeout=900)
    assert rebuilt.returncode == 0, rebuilt.tail()
    assert f"{IMAGE}: base image Debian:debian-12:12-gen2 version 0.29990101.1" in rebuilt.stdout
    version = built_version(rebuilt.stdout, IMAGE)
    rc, row = _outdated(box)
    assert rc == 0 and row == {
        **row,
        "promoted": version,
        "base": "0.29990101.1",
        "outdated": False,
    }


def test_a_base_version_that_does_not_exist_is_refused_before_anything_is_built(box, first_version):
    result = box.invoke("build", "--image", IMAGE, "--base-version", "0.1.2")
    assert result.returncode == 1
    assert "--base-version '0.1.2': Debian:debian-12:12-gen2 has no such version in westeurope" in (
        result.stdout + result.stderr
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_the_dry_run_plans_exactly_what_the_build_then_does(box, first_version):
    """The dry run (sandbox running: version and base resolved now) and the build that follows
    derive their plan from the same step data: the build records what it ran (build.json) and
    it equals the dry run's plan.json; the version it published carries that plan's version,
    base and commit."""
    planned = box.invoke("build", "--image", IMAGE, "--dry-run")
    assert planned.returncode == 0, planned.tail()
    out_dir = box.repo / "build" / IMAGE
    plan = json.loads((out_dir / "plan.json").read_text())
    assert plan["notes"]["base_version"] == "resolved now"  # not "not reachable": real values
    assert "existing version(s)" in plan["notes"]["version"]
    built = box.invoke("build", "--image", IMAGE, "--skip-tests", timeout=900)
    assert built.returncode == 0, built.tail()
    record = json.loads((out_dir / "build.json").read_text())
    plan.pop("notes"), record.pop("notes")
    assert record == plan
    assert built_version(built.stdout, IMAGE) == plan["version"]
    assert (out_dir / "version.txt").read_text().strip() == plan["version"]
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["builds"][-1]["custom_data"]["version"] == plan["version"]
    version_tags = box.version_tags(IMAGE, plan["version"])
    assert version_tags[tags.BASE_IMAGE_VERSION] == plan["base_version"]
    assert f"-var=base_image_version={plan['base_version']}" in plan["packer_argv"]


def test_a_preview_is_shallow_tested_never_replicated_or_promoted_and_pruned(box, first_version):
    """`invoke build --preview`: a shallow version in the build region, tested there, and no
    further: promote refuses it even with --force, replicate refuses it, prune lets it go."""
    together = box.invoke("build", "--image", IMAGE, "--preview", "--promote")
    assert together.returncode == 1
    assert "error: --preview with --promote: a preview is never promoted" in together.stderr
    built = box.invoke("build", "--image", IMAGE, "--preview", timeout=900)
    assert built.returncode == 0, built.tail()
    version = built_version(built.stdout, IMAGE)
    assert f"{IMAGE}: {version} is a preview: tested in westeurope, not replicated" in built.stdout
    with box.session() as session:
        info = gallery.get_version(session, box.image(IMAGE), version)
    assert info.is_preview and info.stage == "tested" and info.tags[tags.PREVIEW] == "true"
    assert info.target_names == ["westeurope"] and (info.tests_passed or 0) > 0
    forced = box.invoke(
        "promote", "--image", IMAGE, "--version", version, "--force", "--reason", "ship it"
    )
    assert forced.returncode == 1 and "Traceback" not in forced.stderr
    assert f"promote refused for image {IMAGE} version {version}: it is a preview" in forced.stderr
    replicated = box.invoke("replicate", "--image", IMAGE, "--version", version)
    assert replicated.returncode == 1 and "is a preview" in replicated.stderr
    pruned = box.invoke("prune", "--image", IMAGE, "--preview-days", "0", "--yes")
    assert pruned.returncode == 0, pruned.tail()
    assert f"deleted 1 version(s) of image {IMAGE}: {version}" in pruned.stdout
    with box.session() as session:
        names = [v.name for v in gallery.list_versions(session, box.image(IMAGE))]
    assert version not in names and first_version in names


def _replicas(box: E2eSandbox, region: str) -> list[Path]:
    """The image manifests of every version's replica in one region's sandbox store."""
    return sorted((box.state_dir / "blobs" / region).glob("*/image.json"))


def test_a_corrupted_replica_fails_its_smoke_test_and_only_that_region_is_refused(
    box, first, first_version
):
    """The build smoke-tested each replica (one VM per region, at once); then northeurope's
    copy loses its top layer (what the build provisioned): `invoke smoke-test` boots a VM from
    each region's own copy, so northeurope fails and swedencentral passes, each recorded on
    the version; promote refuses northeurope by name and lets swedencentral go."""
    assert "smoke" in phase_table(first.stdout)
    for region in ("northeurope", "swedencentral"):
        assert f"smoke test in {region}: passed" in first.stdout
    manifests = _replicas(box, "northeurope")
    assert manifests, "no replica in northeurope's store"
    saved = {m: m.read_text() for m in manifests}
    try:
        for manifest in manifests:
            data = json.loads(saved[manifest])
            manifest.write_text(json.dumps({**data, "layers": data["layers"][1:]}))
        smoke = box.invoke("smoke-test", "--image", IMAGE, "--version", first_version)
        assert smoke.returncode == 1, smoke.tail()
        assert "smoke test in swedencentral: passed" in smoke.stdout
        assert re.search(r"smoke test in northeurope: failed \d+ of \d+: .*marker", smoke.stdout)
        assert "promote the others with --regions swedencentral" in smoke.stdout
        version_tags = box.version_tags(IMAGE, first_version)
        assert version_tags["imageforge.smoke.northeurope"].startswith("failed")
        assert version_tags["imageforge.smoke.swedencentral"].startswith("passed")
        refused = box.invoke(
            "promote", "--image", IMAGE, "--version", first_version, "--regions", "northeurope"
        )
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert "smoke test failed in northeurope" in refused.stderr
        went = box.invoke(
            "promote", "--image", IMAGE, "--version", first_version, "--regions", "swedencentral"
        )
        assert went.returncode == 0, went.tail()
    finally:
        for manifest, text in saved.items():
            manifest.write_text(text)
    healed = box.invoke("smoke-test", "--image", IMAGE, "--version", first_version)
    assert healed.returncode == 0, healed.tail()
    assert box.version_tags(IMAGE, first_version)["imageforge.smoke.northeurope"].startswith(
        "passed"
    )
