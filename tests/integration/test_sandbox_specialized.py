"""A Specialized image, built, tested, smoke-tested and promoted through the real CLI.

debian-12-specialized is debian-12 with ``os_state = "Specialized"`` and two regions. On the
sandbox its build VM is deallocated but not generalized and captured as it is; every test VM
(the build region's suite, northeurope's smoke test) is made without osProfile, as Azure
requires for a specialized version, and reached with the run's key that Run Command added to
that VM only. The suite's checks that hold only for generalized images are not collected; the
one that holds only for specialized ones (the build user keeps no credential) passes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_helpers import E2eSandbox, built_version, junit_outcomes, module_sandbox, not_passed
from helpers.cli import CliResult, edit
from sandbox_build_helpers import ssh_run

from imageforge import tags
from imageforge.azure import gallery, testvm

pytestmark = pytest.mark.sandbox

IMAGE = "debian-12-specialized"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2eSandbox]:
    with module_sandbox(tmp_path_factory.mktemp("specialized")) as sandbox:
        source = sandbox.repo / "images" / "debian-12.pkrvars.hcl"
        definition = sandbox.repo / "images" / f"{IMAGE}.pkrvars.hcl"
        definition.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        edit(definition, 'name           = "debian-12"', f'name           = "{IMAGE}"')
        edit(definition, '  name               = "debian-12"', f'  name               = "{IMAGE}"')
        edit(definition, 'sku                = "12-gen2"', 'sku                = "12-gen2-spec"')
        edit(definition, '"Generalized"', '"Specialized"')
        edit(
            definition,
            '  { name = "swedencentral", replicas = 1, storage_account_type = "Standard_LRS" },\n',
            "",
        )
        yield sandbox


@pytest.fixture(scope="module")
def built(box: E2eSandbox) -> CliResult:
    return box.invoke("build", "--image", IMAGE, "--promote", timeout=900)


@pytest.fixture(scope="module")
def version(built: CliResult) -> str:
    assert built.returncode == 0, built.tail()
    return built_version(built.stdout, IMAGE)


def test_a_specialized_version_is_tested_smoke_tested_and_promoted(box, built, version):
    assert "smoke test in northeurope: passed" in built.stdout, built.tail()
    with box.session() as session:
        image = box.image(IMAGE)
        definition = session.compute.gallery_images.get(
            session.site.resource_group, session.site.gallery, IMAGE
        )
        assert definition.os_state == "Specialized"
        info = gallery.get_version(session, image, version)
        assert info.stage == "promoted", info
        assert set(info.regions) == {"westeurope", "northeurope"}
    version_tags = box.version_tags(IMAGE, version)
    assert (version_tags[tags.TESTS_FAILED], version_tags[tags.TESTS_ERRORS]) == ("0", "0")
    assert version_tags[f"{tags.SMOKE_PREFIX}northeurope"].startswith("passed")

    outcomes = junit_outcomes(box.repo / "reports" / IMAGE / version / "junit.xml")
    assert not_passed(outcomes) == {}
    assert outcomes["test_build_user_has_no_credential_left"] == "passed"
    # the generalized-only checks are not collected for a specialized image
    assert "test_build_user_does_not_exist" not in outcomes
    assert "test_ssh_host_keys_were_regenerated_after_the_build" not in outcomes
    assert outcomes["test_admin_user_exists"] == "passed"
    assert box.throwaway_groups() == []


def test_its_vms_have_no_os_profile_keep_the_image_and_get_only_the_runs_key(box, version):
    with box.session() as session:
        image = box.image(IMAGE)
        with testvm.deploy_test_vm(
            session, image, version, run_id="it-specialized", region="northeurope"
        ) as vm:
            made = session.compute.virtual_machines.get(vm.resource_group, vm.vm_name)
            assert made.os_profile is None
            # the run's key, added by Run Command, logs in as the test's admin user
            status, out = ssh_run(vm, "id -un; sudo -n true && echo sudo-ok")
            assert (status, out.split()) == (0, [testvm.TEST_ADMIN, "sudo-ok"]), out
            # the image kept the build VM's identity: its hostname and the build user's
            # account, but not the build user's key
            status, out = ssh_run(
                vm,
                "hostname; getent passwd packer | cut -d: -f1; "
                "sudo -n test -e /home/packer/.ssh/authorized_keys && echo key-left || true",
            )
            assert status == 0, out
            hostname, user, *rest = out.split()
            assert hostname.startswith("build-") and user == "packer" and rest == [], out
        assert box.throwaway_groups() == []
