"""The azure target's build path, ``build.build_one(target="azure")``, on both profiles.

Packer's azure-arm builder cannot run here (no Azure), so ``packer`` is the stand-in in
packer_azure_standin.py: it reads the rendered build/<image>/ folder and the -var values as
Packer does and makes, against the sandbox's ARM emulator, the ARM calls azure-arm makes (a
temporary build VM, a managed image on builtin, the gallery image version in the build region
tagged with azure_tags, the Packer manifest). Everything else is imageforge's own code and the
real SDK clients: reservation, manifest reading, deleting the managed image, reading the version
back. The emulator runs with the inert backend (ARM bookkeeping, no machines); no test VM is
booted (skip_tests), replication is then run on its own.

What a user would notice is asserted: the version exists, stage built, with the tags the
rendered template gives it; on builtin the intermediate managed image is gone (nothing left
behind but what was there before), on plugin there never was one; the manifest of this run is
the one read; Packer's command line; a failing Packer build publishes nothing, names its log,
and releases the reservation.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imageforge import tags
from imageforge.azure import gallery, replication, reservation
from imageforge.azure.clients import Session, session_for_emulator
from imageforge.config import ImageDefinition, load_image_file
from imageforge.errors import PackerError, ValidationError
from imageforge.packer import Packer
from imageforge.pipeline import build as building
from imageforge.pipeline.context import resolve_profile
from imageforge.pipeline.hosts import packer_only
from imageforge.pipeline.timings import Timings
from imageforge.pipeline.validate import render_all
from imageforge.render import PROFILES, profile_for_packer
from imageforge.sandbox.harness import EmulatorHandle, running_emulator
from imageforge.site import Site

REPO = Path(__file__).resolve().parents[2]
STANDIN = Path(__file__).resolve().parent / "packer_azure_standin.py"
REAL_PACKER = shutil.which("packer") or "/usr/bin/packer"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SECRET = "standin-client-secret-Zq9"
GROUP = "rg-imageforge-azure"

pytestmark = pytest.mark.skipif(
    not Path(REAL_PACKER).exists(), reason="the stand-in runs the real packer for fmt/validate"
)


@dataclass
class Build:
    site: Site
    session: Session
    image: ImageDefinition
    packer: Packer
    arm: EmulatorHandle
    record: Path

    @property
    def out_dir(self) -> Path:
        return self.site.build_path / self.image.name

    def run(self, profile: str, validated: Any = None) -> building.ImageOutcome:
        rendered = render_all(self.site, [self.image], PROFILES[profile])[0]
        building.prepare_gallery(self.session, [self.image])
        return building.build_one(
            self.site,
            self.session,
            self.image,
            rendered=rendered,
            target="azure",
            profile=PROFILES[profile],
            packer=self.packer,
            version=None,
            promote=False,
            on_error="cleanup",
            skip_tests=True,
            timings=Timings(),
            validated=validated,
        )

    def invocations(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    def managed_images(self) -> list[str]:
        return sorted(str(i.id) for i in self.session.compute.images.list())

    def groups(self) -> list[str]:
        return sorted(str(g.name) for g in self.session.resource.resource_groups.list())

    def definition_tags(self) -> dict[str, str]:
        definition = self.session.compute.gallery_images.get(
            GROUP, self.site.gallery, self.image.gallery_image.name
        )
        return dict(definition.tags or {})

    def version_source(self, version: str) -> Any:
        found = self.session.compute.gallery_image_versions.get(
            GROUP, self.site.gallery, self.image.gallery_image.name, version
        )
        return found.storage_profile.source


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Build]:
    wrapper = tmp_path / "bin" / "packer"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
    wrapper.chmod(0o755)
    record = tmp_path / "packer-invocations.jsonl"
    with running_emulator(tmp_path / "arm") as arm:
        site = Site(
            root=REPO,
            subscription_id=arm.subscription_id,
            resource_group=GROUP,
            gallery="gallery",
            location="westeurope",
            tags={"owner": "imageforge-tests"},
            packer=str(wrapper),
            build_dir=str(tmp_path / "build"),
            reports_dir=str(tmp_path / "reports"),
        )
        for name in ("BUILD_BUILDID", "IMAGEFORGE_BUILD_ID", "IMAGEFORGE_STANDIN_FAIL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("BUILD_SOURCEVERSION", COMMIT)
        monkeypatch.setenv("ARM_CLIENT_ID", "00000000-0000-0000-0000-00000000c11e")
        monkeypatch.setenv("ARM_CLIENT_SECRET", SECRET)
        monkeypatch.setenv("IMAGEFORGE_STANDIN_ARM_URL", arm.base_url)
        monkeypatch.setenv("IMAGEFORGE_STANDIN_ARM_CA", str(arm.ca_path))
        monkeypatch.setenv("IMAGEFORGE_STANDIN_RECORD", str(record))
        monkeypatch.setenv("IMAGEFORGE_STANDIN_REAL_PACKER", REAL_PACKER)
        image = load_image_file(REPO / "images" / "debian-12.pkrvars.hcl", repo_root=REPO)
        with session_for_emulator(arm, site) as session:
            yield Build(site, session, image, Packer(binary=str(wrapper), cwd=REPO), arm, record)


def _expected_tags(build: Build) -> dict[str, str]:
    from imageforge.azure import marketplace

    return {
        tags.STAGE: "built",
        tags.IMAGE: "debian-12",
        tags.SOURCE_COMMIT: COMMIT,
        tags.PIPELINE_RUN: "local",
        # the concrete base the build resolved "latest" to, not "latest"
        tags.BASE_IMAGE_VERSION: marketplace.newest(build.session, build.image),
        "owner": "imageforge-tests",
    }


def _assert_packer_command_line(build: Build) -> None:
    builds = [i for i in build.invocations() if i["argv"][:1] == ["build"]]
    assert len(builds) == 1, build.invocations()
    argv = builds[0]["argv"]
    assert builds[0]["cwd"] == str(REPO)  # provisioner paths are relative to the repository
    assert "-color=false" in argv and "-on-error=cleanup" in argv
    assert f"-only={packer_only(build.image, 'azure')}" in argv
    assert "-only=debian-12.azure-arm.debian-12" in argv
    assert not [a for a in argv if a.startswith("-force")]
    assert not [a for a in argv if SECRET in a or "client_secret" in a]
    assert "-var=use_azure_cli_auth=false" in argv  # the secret is in Packer's environment
    assert f"-var=source_commit={COMMIT}" in argv and "-var=image_version=1.0.0" in argv
    assert argv[-1] == str(build.out_dir)


def _assert_reservation_released(build: Build) -> None:
    assert [k for k in build.definition_tags() if k.startswith(reservation.PREFIX)] == []


def test_builtin_publishes_through_a_managed_image_and_deletes_it(build: Build) -> None:
    gallery.ensure_gallery(build.session)
    # A managed image that is not this build's, and a stale manifest naming it: the build must
    # neither take it for its artifact nor delete it.
    stale = build.session.compute.images.begin_create_or_update(
        GROUP,
        "stale-image",
        {
            "location": "westeurope",
            "properties": {
                "hyperVGeneration": "V2",
                "storageProfile": {
                    "osDisk": {
                        "osType": "Linux",
                        "osState": "Generalized",
                        "blobUri": "https://example.blob.core.windows.net/vhds/stale.vhd",
                    }
                },
            },
        },
    ).result()
    build.out_dir.mkdir(parents=True)
    stale_run = "11111111-2222-3333-4444-555555555555"
    (build.out_dir / "manifest.json").write_text(
        json.dumps(
            {
                "builds": [
                    {
                        "name": "debian-12",
                        "builder_type": "azure-arm",
                        "artifact_id": stale.id,
                        "packer_run_uuid": stale_run,
                        "custom_data": {"image": "debian-12", "version": "0.9.0"},
                    }
                ],
                "last_run_uuid": stale_run,
            }
        )
    )
    groups_before = build.groups()

    outcome = build.run("builtin")

    assert outcome.ok, outcome.error
    assert (outcome.version, outcome.stage) == ("1.0.0", "built")
    info = gallery.get_version(build.session, build.image, "1.0.0")
    assert outcome.version_id == info.id
    assert info.stage == "built"
    assert {k: info.tags.get(k) for k in _expected_tags(build)} == _expected_tags(build)
    assert info.exclude_from_latest is True
    assert info.target_names == ["westeurope"]
    assert info.provisioning_state == "Succeeded"

    managed_id = (
        f"/subscriptions/{build.arm.subscription_id}/resourceGroups/{GROUP}"
        "/providers/Microsoft.Compute/images/imageforge-debian-12-1-0-0"
    )
    source = build.version_source("1.0.0")
    assert source.id.lower() == managed_id.lower()  # published through the managed image
    assert build.managed_images() == [stale.id]  # this build's image is gone, the other stays
    assert build.groups() == groups_before  # Packer's temporary resource group went too

    manifest = json.loads((build.out_dir / "manifest.json").read_text())
    assert [b["artifact_id"] for b in manifest["builds"]] == [managed_id]
    assert manifest["last_run_uuid"] == manifest["builds"][0]["packer_run_uuid"] != stale_run
    assert manifest["builds"][0]["custom_data"] == {
        "image": "debian-12",
        "version": "1.0.0",
        "source_commit": COMMIT,
    }
    assert (build.out_dir / "version.txt").read_text() == "1.0.0\n"
    assert "Capturing the managed image" in (build.out_dir / "packer.log").read_text()
    _assert_packer_command_line(build)
    _assert_reservation_released(build)

    # The version was captured from the build VM: it replicates like any other version.
    result = replication.replicate(build.session, build.image, "1.0.0", timeout=120)
    assert result.changed
    replicated = gallery.get_version(build.session, build.image, "1.0.0")
    assert replicated.stage == "replicated"
    assert sorted(replicated.target_names) == ["northeurope", "swedencentral", "westeurope"]


def test_plugin_publishes_straight_from_the_vm(build: Build) -> None:
    build.arm.reset_stats()
    outcome = build.run("plugin")

    assert outcome.ok, outcome.error
    info = gallery.get_version(build.session, build.image, "1.0.0")
    assert (info.stage, info.exclude_from_latest, info.target_names) == (
        "built",
        True,
        ["westeurope"],
    )
    assert {k: info.tags.get(k) for k in _expected_tags(build)} == _expected_tags(build)
    source = build.version_source("1.0.0")
    assert "/providers/Microsoft.Compute/virtualMachines/" in source.virtual_machine_id
    routes = build.arm.stats()["by_route"]
    assert not [r for r in routes if "/providers/Microsoft.Compute/images" in r]  # never one
    assert build.managed_images() == []
    assert build.groups() == [GROUP]
    manifest = json.loads((build.out_dir / "manifest.json").read_text())
    assert [b["artifact_id"] for b in manifest["builds"]] == [info.id]
    _assert_packer_command_line(build)
    _assert_reservation_released(build)


def test_a_failing_packer_build_publishes_nothing(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEFORGE_STANDIN_FAIL", "provision")
    outcome = build.run("builtin")

    log = build.out_dir / "packer.log"
    assert not outcome.ok and outcome.stage == "not built"
    assert outcome.error == (f"packer build of debian-12 failed (exit 1) (log: {log})"), (
        outcome.error
    )
    assert "Script exited with non-zero exit status: 100" in log.read_text()
    assert SECRET not in log.read_text()
    assert gallery.list_versions(build.session, build.image) == []
    assert build.managed_images() == []
    assert build.groups() == [GROUP]  # Packer cleaned up its temporary resource group
    assert not (build.out_dir / "manifest.json").exists()
    _assert_reservation_released(build)

    with pytest.raises(PackerError) as caught:
        build.packer.build(
            build.out_dir,
            {"image_version": "1.0.1"},
            only=packer_only(build.image, "azure"),
            manifest=build.out_dir / "manifest.json",
            log_path=log,
        )
    assert caught.value.log == str(log)
    assert str(caught.value).endswith(f"(log: {log})")


def test_a_failed_validation_aborts_the_build_before_packer_and_releases_the_reservation(
    build: Build,
) -> None:
    """`invoke build` validates while the version is reserved and the build host made ready;
    the build waits for it before Packer, and a failure ends the whole build (not just this
    image's outcome) with nothing published and the reservation released."""

    def refused() -> None:
        raise ValidationError("packer validate build/debian-12 failed: Error: Unsupported")

    with pytest.raises(building.BuildAborted) as aborted:
        build.run("builtin", validated=refused)
    assert isinstance(aborted.value.error, ValidationError)
    assert [i for i in build.invocations() if i["argv"][:1] == ["build"]] == []
    assert not (build.out_dir / "packer.log").exists()
    assert gallery.list_versions(build.session, build.image) == []
    assert build.groups() == [GROUP]
    _assert_reservation_released(build)


def test_the_stand_in_answers_like_the_packer_it_stands_for(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Packer(binary=REAL_PACKER, cwd=REPO).version()
    assert build.packer.version() == real  # the real Packer's answer (Debian's: 1.6.6)
    assert resolve_profile(None, build.packer) == profile_for_packer(real)
    monkeypatch.setenv("IMAGEFORGE_STANDIN_PACKER_VERSION", "1.9.5")
    newer = Packer(binary=build.site.packer, cwd=REPO)
    assert newer.version() == (1, 9, 5)
    assert resolve_profile(None, newer).name == "plugin"
    result = render_all(build.site, [build.image], PROFILES["builtin"])[0]
    assert build.packer.fmt_check(result.directory) == []
    # -only naming no source of the folder: Packer builds nothing and says so (exit 0).
    with pytest.raises(PackerError, match="wrote no manifest"):
        build.packer.build(
            result.directory,
            {"image_version": "1.0.0"},
            only="other.azure-arm.other",
            manifest=result.directory / "manifest.json",
            log_path=result.directory / "packer.log",
        )
    assert "no artifacts were created" in (result.directory / "packer.log").read_text()


def test_a_builtin_build_stopped_after_its_managed_image_can_be_retried(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEFORGE_STANDIN_FAIL", "after-capture")
    first = build.run("builtin")
    assert not first.ok and first.version == "1.0.0"
    assert gallery.list_versions(build.session, build.image) == []
    _assert_reservation_released(build)
    monkeypatch.delenv("IMAGEFORGE_STANDIN_FAIL")

    second = build.run("builtin")

    assert second.ok, second.error
    assert second.version == "1.0.0"
    assert build.managed_images() == []
