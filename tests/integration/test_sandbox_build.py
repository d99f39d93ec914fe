"""A sandbox build through the library, piece by piece, and a build killed outright.

The first test walks what `invoke build` does on the sandbox with the real SDK clients against
the emulator: a build VM from the sandbox marketplace, reachable over SSH with its own key;
Packer's null builder provisions it with the rendered debian-12 build; the VM is generalized
and captured into the gallery; the version replicates to a second region and a VM booted
there from that version carries the provisioners' image marker. A region the version was not
replicated to cannot boot it.

The second kills `invoke build` with SIGKILL while Packer provisions; `invoke sandbox.reset`
must then leave no sandbox process and nothing mounted, and the half-built version must not be
promotable.

Both need root, debootstrap (cached) and sshd; each runs its own sandbox (tmp state dir, free
port) and stops it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from helpers.cli import INVOKE, REPO, cli_env, copy_tree, edit, run_invoke, wait_for
from sandbox_build_helpers import (
    STATE_DIRS,
    assert_one_line_error,
    image_with_regions,
    key_values,
    leftovers,
    nothing_of_the_sandboxes_left_after_the_session,  # noqa: F401 - autouse, session end
    own_sandbox,
    processes_mentioning,
    settings_for,
    site_for,
    ssh_run,
)

from imageforge import tags
from imageforge.azure import gallery, replication, reservation, testvm
from imageforge.azure.clients import Session
from imageforge.config import load_image_file
from imageforge.errors import AzureError, ConfigError
from imageforge.packer import Packer, variables_for
from imageforge.pipeline.context import new_run_id, source_commit
from imageforge.pipeline.hosts import packer_only
from imageforge.pipeline.session import open_session
from imageforge.render import Renderer, profile_for_packer
from imageforge.sandbox import control

pytestmark = pytest.mark.sandbox

VERSION = "1.0.0"


def _throwaway_groups(session: Session) -> list[str]:
    """Resource groups imageforge created for a build or test VM."""
    return sorted(
        str(g.name)
        for g in session.resource.resource_groups.list()
        if tags.PURPOSE in (g.tags or {})
    )


def _boot_with_the_sdk(session: Session, version_id: str, region: str) -> HttpResponseError:
    """PUT a VM from ``version_id`` in ``region`` with the SDK directly (no imageforge check in
    between); returns ARM's refusal. The group is deleted again."""
    group = f"rg-imageforge-it-boot-{region}"
    where = {"location": region}
    session.resource.resource_groups.create_or_update(group, where)
    try:
        net = session.network
        vnet = net.virtual_networks.begin_create_or_update(
            group,
            "vnet",
            {
                **where,
                "properties": {
                    "addressSpace": {"addressPrefixes": ["10.9.0.0/16"]},
                    "subnets": [
                        {"name": "default", "properties": {"addressPrefix": "10.9.0.0/24"}}
                    ],
                },
            },
        ).result()
        nic = net.network_interfaces.begin_create_or_update(
            group,
            "nic",
            {
                **where,
                "properties": {
                    "ipConfigurations": [
                        {"name": "ip", "properties": {"subnet": {"id": vnet.subnets[0].id}}}
                    ]
                },
            },
        ).result()
        body = {
            **where,
            "properties": {
                "hardwareProfile": {"vmSize": "Standard_B2s"},
                "storageProfile": {"imageReference": {"id": version_id}},
                "osProfile": {"computerName": "elsewhere", "adminUsername": "imageforge"},
                "networkProfile": {"networkInterfaces": [{"id": nic.id}]},
            },
        }
        with pytest.raises(HttpResponseError) as refused:
            session.compute.virtual_machines.begin_create_or_update(group, "vm", body).result()
        return refused.value
    finally:
        session.resource.resource_groups.begin_delete(group).result()


def test_a_version_built_on_the_sandbox_boots_in_its_second_region(tmp_path: Path) -> None:
    image = image_with_regions(tmp_path, "debian-12", ["westeurope", "northeurope"])
    assert [r.name for r in image.target_regions] == ["westeurope", "northeurope"]
    with own_sandbox(tmp_path / "sandbox") as settings:
        site = site_for(settings, tmp_path)
        with open_session(site, "sandbox") as session:
            gallery.ensure_gallery(session)
            gallery.ensure_image_definition(session, image)
            packer = Packer(binary=site.packer, cwd=REPO)
            out_dir = site.build_path / image.name
            Renderer(site).render(image, profile_for_packer(packer.version()), out_dir)
            commit = source_commit(REPO)

            with testvm.sandbox_build_vm(session, image, run_id=new_run_id()) as build:
                # reachable with the run's own key, as the image's build user, not built yet
                status, out = ssh_run(build, "id -un; test -e /etc/imageforge-release || echo none")
                assert (status, out.split()) == (0, ["packer", "none"])
                variables = variables_for(
                    version=VERSION,
                    source_commit=commit,
                    pipeline_run="integration",
                    use_azure_cli_auth=True,
                    extra={
                        "sandbox_host": build.host,
                        "sandbox_port": str(build.port),
                        "sandbox_username": build.username,
                        "sandbox_private_key_file": str(build.ssh_key_path),
                    },
                )
                artifact = packer.build(
                    out_dir,
                    variables,
                    only=packer_only(image, "sandbox"),
                    manifest=out_dir / "manifest.json",
                    log_path=out_dir / "packer.log",
                    timeout=600,
                )
                assert artifact.builder_type == "null"
                assert artifact.custom_data["version"] == VERSION
                packer_log = (out_dir / "packer.log").read_text()
                for script in image.provisioners:
                    assert f"Provisioning with shell script: provisioners/linux/{script}" in (
                        packer_log
                    )
                version_id = testvm.capture_version(
                    session,
                    image,
                    VERSION,
                    build,
                    tags={tags.STAGE: "built", tags.SOURCE_COMMIT: commit},
                )
            assert _throwaway_groups(session) == [], "the build VM's group outlived the build"
            info = gallery.get_version(session, image, VERSION)
            assert (info.id, info.stage) == (version_id, "built")
            assert info.regions == {"westeurope": "Completed"}

            # before replication the second region cannot boot it
            with pytest.raises(AzureError, match="not available in northeurope"):
                with testvm.deploy_test_vm(
                    session, image, VERSION, run_id="it-early", region="northeurope"
                ):
                    pass

            result = replication.replicate(session, image, VERSION, timeout=300)
            assert dict(result.regions) == {"westeurope": "Completed", "northeurope": "Completed"}
            assert result.stage == "replicated"

            with testvm.deploy_test_vm(
                session, image, VERSION, run_id="it-second", region="northeurope"
            ) as vm:
                made = session.compute.virtual_machines.get(vm.resource_group, vm.vm_name)
                assert made.location == "northeurope"
                assert made.storage_profile.image_reference.id == version_id
                status, marker = ssh_run(vm, "cat /etc/imageforge-release")
                assert status == 0, marker
                values = key_values(marker)
                assert values["IMAGEFORGE_IMAGE"] == "debian-12"
                assert values["IMAGEFORGE_VERSION"] == VERSION
                assert values["IMAGEFORGE_SOURCE_COMMIT"] == commit
                # generalized: the build user went with waagent -deprovision+user
                assert ssh_run(vm, "getent passwd packer")[0] == 2

            # a region outside the image's target regions, a size the image does not allow:
            # refused before anything is created ...
            with pytest.raises(ConfigError) as refused:
                with testvm.deploy_test_vm(
                    session, image, VERSION, run_id="it-third", region="swedencentral"
                ):
                    pass
            assert str(refused.value) == (
                f"{image.path}: target_regions: region 'swedencentral' is not a target region "
                "of image debian-12 (westeurope, northeurope)"
            )
            with pytest.raises(ConfigError) as refused:
                with testvm.deploy_test_vm(
                    session, image, VERSION, run_id="it-size", vm_size="Standard_E64s_v5"
                ):
                    pass
            assert str(refused.value) == (
                f"{image.path}: build.allowed_vm_sizes: VM size 'Standard_E64s_v5' is not allowed "
                "for image debian-12 (test.vm_size, build.vm_size or build.allowed_vm_sizes: "
                "Standard_B2s, Standard_D2s_v5, Standard_D4s_v5)"
            )
            # ... and ARM itself refuses to boot the version where it is not replicated
            error = _boot_with_the_sdk(session, version_id, "swedencentral")
            assert error.error is not None and error.error.code == "GalleryImageNotFound"
            assert "is not available in Sweden Central region" in str(error.error.message)
            assert _throwaway_groups(session) == []


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def test_a_template_only_packer_validate_refuses_ends_the_build_in_one_line(
    tmp_path: Path,
) -> None:
    """`packer validate` runs while the sandbox starts and the build VM boots; its refusal still
    ends the build before Packer builds, in one line, with the build VM's group deleted, the
    reservation released and no version published."""
    repo = copy_tree(tmp_path / "repo")
    # parses as HCL and is `packer fmt` clean: only `packer validate` refuses it
    edit(
        repo / "templates" / "locals.pkr.hcl.j2",
        "  # Tags on the published version",
        "  refused = var.undeclared\n\n  # Tags on the published version",
    )
    settings = settings_for(tmp_path / "sandbox")
    STATE_DIRS.append(settings.state_dir)
    (tmp_path / "home").mkdir()
    env = cli_env(tmp_path / "home", settings.state_dir, settings.port)
    try:
        result = run_invoke(repo, "build", "--image", "debian-12", env=env)
        line = assert_one_line_error(result)
        assert line.startswith(f"error: packer validate {repo / 'build' / 'debian-12'} failed: ")
        assert 'does not have an attribute named "undeclared"' in line
        assert "==> debian-12" not in result.stdout  # Packer never built
        assert not (repo / "build" / "debian-12" / "packer.log").exists()
        site = site_for(settings, tmp_path, root=repo)
        image = load_image_file(repo / "images" / "debian-12.pkrvars.hcl", repo_root=repo)
        with open_session(site, "sandbox") as session:
            assert _throwaway_groups(session) == []
            assert gallery.list_versions(session, image) == []
            definition = session.compute.gallery_images.get(
                site.resource_group, site.gallery, image.gallery_image.name
            )
            reserved = [k for k in (definition.tags or {}) if k.startswith(reservation.PREFIX)]
            assert reserved == []
        assert not leftovers(settings.state_dir).vm_processes
    finally:
        control.reset(settings)
    assert not leftovers(settings.state_dir), leftovers(settings.state_dir)


def test_a_build_killed_mid_provisioning_leaves_nothing_after_reset(tmp_path: Path) -> None:
    repo = copy_tree(tmp_path / "repo")
    settings = settings_for(tmp_path / "sandbox")
    STATE_DIRS.append(settings.state_dir)
    (tmp_path / "home").mkdir()
    env = cli_env(tmp_path / "home", settings.state_dir, settings.port)
    out_dir = repo / "build" / "debian-12"
    output = tmp_path / "build-output.txt"
    with output.open("wb") as sink:
        build = subprocess.Popen(
            [str(INVOKE), "build", "--image", "debian-12", "--skip-tests"],
            cwd=repo,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        # mid-provisioning: apt is upgrading the build VM
        wait_for(
            lambda: (
                "install-updates: upgrading" in _text(out_dir / "packer.log")
                or build.poll() is not None
            ),
            timeout=300,
            what="Packer to start provisioning",
        )
        assert build.poll() is None, _text(output)
        os.killpg(build.pid, signal.SIGKILL)
        build.wait(30)
        version = (out_dir / "version.txt").read_text().strip()
        assert "published" not in _text(output)

        # the sandbox (a daemon) outlives the build; the half-built version is not promotable
        promote = run_invoke(repo, "promote", "--image", "debian-12", "--version", version, env=env)
        assert_one_line_error(promote, f"image debian-12 has no version {version}")
        assert leftovers(settings.state_dir).vm_processes, "the build VM should still run"

        reset = run_invoke(repo, "sandbox.reset", env=env)
        assert reset.returncode == 0, reset
        assert "stopped emulator pid" in reset.stdout, reset
        assert "reaped vm rg-imageforge-build-debian-12-" in reset.stdout, reset
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)
            build.wait(30)
        if control.running(settings) is not None or settings.state_dir.exists():
            control.reset(settings)
    assert not leftovers(settings.state_dir), leftovers(settings.state_dir)
    assert not settings.state_dir.exists()
    # Packer runs in a session of its own, out of reach of the SIGKILL: it ends when it next
    # writes to the killed build's pipe (SIGPIPE) or finds its VM gone
    try:
        wait_for(
            lambda: not processes_mentioning(str(repo)),
            timeout=60,
            what="the killed build's Packer to end",
        )
    finally:
        for pid in processes_mentioning(str(repo)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
