"""imageforge tasks: thin wrappers that parse flags, call the library and turn its errors into Exit.

`invoke --list` shows them all; README.md explains each. Settings live in the `imageforge`
namespace declared at the bottom (override with invoke.yaml or INVOKE_IMAGEFORGE_* variables).
"""

from __future__ import annotations

import atexit
import functools
import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Collection, Exit, task

ROOT = Path(__file__).resolve().parent

IMAGE = "Image name (file stem under images/); repeatable"
OS = "linux, windows or all (default: all images)"
VERSION = "Gallery image version, Major.Minor.Patch"
PROFILE = "Packer render profile: builtin (Packer < 1.7) or plugin (>= 1.7); default: detected"
TARGET = "azure or sandbox (default: azure when a subscription is configured, else sandbox)"


def _skip_the_collections_at_exit() -> None:
    """Freeze the heap as the process exits, so that Python's finalization does not walk it.

    Finalization runs full garbage collections over every object still alive; with the Azure
    SDKs, rich and Testinfra loaded that is ~0.4 s spent after the task has ended. Frozen
    objects are still freed when their last reference goes; only cycles are left to the OS,
    and what a task leaves in cycles is rendering and SDK bookkeeping, never an open file or a
    process (those are closed by context managers and atexit handlers, which still run: this
    one was registered when tasks.py loaded, and atexit runs handlers in reverse order).
    """
    gc.freeze()


atexit.register(_skip_the_collections_at_exit)


def _site(c: Any) -> Any:
    from imageforge.site import Site

    return Site.from_config(c.config.imageforge, ROOT)


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Expected failures exit 1 with their one-line message; Ctrl-C exits 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from imageforge.errors import ImageforgeError

        try:
            return fn(*args, **kwargs)
        except ImageforgeError as exc:
            raise Exit(f"error: {exc}", code=1) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper


def _one_image(c: Any, image: str) -> Any:
    from imageforge.config import select_images

    if not image:
        raise Exit("error: --image is required", code=1)
    return select_images(_site(c).images_path, names=[image])[0]


@task(
    iterable=["image"],
    help={"image": IMAGE, "os": OS, "profile": PROFILE},
)
@handles_errors
def render(c, image=None, os="all", profile=None):
    """Render the Packer HCL of the chosen images into build/<image>/."""
    from imageforge.pipeline.validate import render_task

    render_task(_site(c), names=image or [], os_name=os, profile=profile)


@task(iterable=["image"], help={"image": IMAGE, "os": OS, "profile": PROFILE})
@handles_errors
def validate(c, image=None, os="all", profile=None):
    """Render and validate: HCL parse, plugin option lint, packer fmt -check, packer validate."""
    from imageforge.pipeline.validate import validate_task

    validate_task(_site(c), names=image or [], os_name=os, profile=profile)


@task(
    iterable=["image"],
    help={
        "image": IMAGE,
        "os": OS,
        "version": VERSION + " (default: the image's version scheme)",
        "profile": PROFILE,
        "target": TARGET,
        "dry_run": "Print the plan (images, versions, files, Packer argv) and change nothing",
        "promote": "Promote the version at the end when the promotion gate allows it",
        "on_error": "Packer -on-error: cleanup (default), abort, ask, run-cleanup-provisioner",
        "skip_tests": "Stop after publishing (no test VM, no replication)",
        "base_version": "Marketplace version of the base image (default: the image file's, "
        "'latest' resolved to the newest)",
        "parallel": "Build at most N images at once (default: all; the sandbox: one per core)",
        "preview": "Publish a shallow preview (build region only), test it, stop: never "
        "replicated or promoted; prune deletes it after --preview-days",
    },
)
@handles_errors
def build(
    c,
    image=None,
    os="all",
    version=None,
    profile=None,
    target=None,
    dry_run=False,
    promote=False,
    on_error=None,
    skip_tests=False,
    base_version=None,
    parallel=None,
    preview=False,
):
    """Render, validate, packer build, test a VM from the new version, replicate (and promote)."""
    from imageforge.pipeline.build import build_task

    ok = build_task(
        _site(c),
        names=image or [],
        os_name=os,
        version=version,
        profile=profile,
        target=target,
        dry_run=dry_run,
        promote=promote,
        on_error=on_error,
        skip_tests=skip_tests,
        base_version=base_version,
        parallel=parallel,
        preview=preview,
    )
    if not ok:
        raise Exit("error: at least one image failed; see the summary above", code=1)


@task(
    help={
        "image": "Image name",
        "version": VERSION,
        "target": TARGET,
        "region": "Test VM region, one of the image's target regions (default: build region)",
        "vm_size": "Test VM size (default: the image's test.vm_size)",
    }
)
@handles_errors
def test_image(c, image="", version="", target=None, region=None, vm_size=None):
    """Deploy a VM from that exact version, run the image's Testinfra suite, record the evidence."""
    from imageforge.pipeline.test import test_image_task

    ok = test_image_task(
        _site(c), _one_image(c, image), version, target=target, region=region, vm_size=vm_size
    )
    if not ok:
        raise Exit(f"error: {image} {version} failed its tests", code=1)


@task(
    name="smoke-test",
    help={
        "image": "Image name",
        "version": VERSION,
        "regions": "Comma-separated regions (default: every target region but the build region)",
        "target": TARGET,
    },
)
@handles_errors
def smoke_test(c, image="", version="", regions="", target=None):
    """Smoke-test the version's replica in each region at once; record a verdict per region."""
    from imageforge.pipeline.smoke import smoke_test_task

    ok = smoke_test_task(
        _site(c),
        _one_image(c, image),
        version,
        regions=[r.strip() for r in regions.split(",") if r.strip()],
        target=target,
    )
    if not ok:
        raise Exit(f"error: the smoke test of {image} {version} failed in a region", code=1)


@task(
    help={
        "host": "Testinfra host spec: ssh://user@host:port, paramiko://..., winrm://user@host:5986",
        "os": "linux or windows",
        "image": "Image name whose definition the suite checks against",
        "version": "Version the image marker must show",
        "admin_user": "The admin user that must exist with sudo (Linux)",
        "ssh_identity": "SSH private key file",
    }
)
@handles_errors
def verify(c, host="", os="linux", image="", version="", admin_user="", ssh_identity=None):
    """Run an image's Testinfra suite against any host (WinRM password: env only)."""
    from imageforge.pipeline.test import verify_task

    code = verify_task(
        _site(c),
        host=host,
        os_name=os,
        image=_one_image(c, image),
        version=version,
        admin_user=admin_user,
        ssh_identity=ssh_identity,
    )
    if code:
        raise Exit(code=code)


@task(help={"image": "Image name", "old": "The older version", "new": "The newer version"})
@handles_errors
def diff(c, image="", old="", new=""):
    """Compare two tested versions' package inventories: added, removed, changed."""
    from imageforge.pipeline.test import diff_task

    diff_task(_site(c), _one_image(c, image), old, new)


@task(help={"image": "Image name", "target": TARGET})
@handles_errors
def versions(c, image="", target=None):
    """Table of an image's versions: stage, tests, regions, latest, published date."""
    from imageforge.pipeline.release import versions_task

    versions_task(_site(c), _one_image(c, image), target=target)


@task(
    iterable=["add_subscription", "add_tenant", "remove_subscription", "remove_tenant", "reader"],
    help={
        "add_subscription": "Share the gallery with this subscription id; repeatable",
        "add_tenant": "Share the gallery with this Entra tenant id; repeatable",
        "remove_subscription": "Stop sharing with this subscription id; repeatable",
        "remove_tenant": "Stop sharing with this tenant id; repeatable",
        "reset": "Stop sharing with everyone (with --add-*: share with exactly those)",
        "reader": "Grant this principal (object id) the Reader role on the gallery; repeatable",
        "target": TARGET,
    },
)
@handles_errors
def share(
    c, add_subscription=None, add_tenant=None, remove_subscription=None, remove_tenant=None,
    reset=False, reader=None, target=None,
):  # fmt: skip
    """Share the gallery with subscriptions and tenants, or grant a principal Reader on it."""
    from imageforge.pipeline.sharing import share_task

    share_task(
        _site(c), add_subscriptions=add_subscription or [], add_tenants=add_tenant or [],
        remove_subscriptions=remove_subscription or [], remove_tenants=remove_tenant or [],
        readers=reader or [], reset=reset, target=target,
    )  # fmt: skip


@task(
    iterable=["image"],
    help={
        "image": IMAGE,
        "os": OS,
        "json": "Print JSON (image, promoted, base, newest_base, age_days, reasons, outdated)",
        "check": "Exit 3 when an image needs a rebuild (1 stays an error)",
        "max_age_days": "Rebuild anything older than this (default: setting max_age_days)",
        "target": TARGET,
    },
)
@handles_errors
def outdated(c, image=None, os="all", json=False, check=False, max_age_days=None, target=None):
    """Which images need a rebuild: a newer base than their promoted version's, or too old."""
    from imageforge.outdated import EXIT_OUTDATED
    from imageforge.pipeline.release import outdated_task

    fresh = outdated_task(
        _site(c), names=image or [], os_name=os, as_json=json, target=target,
        max_age_days=max_age_days,
    )  # fmt: skip
    if check and not fresh:
        raise Exit(code=EXIT_OUTDATED)


@task(
    help={
        "image": "Image name",
        "version": VERSION,
        "timeout": "Seconds to wait for every region (default: setting replicate_timeout)",
        "target": TARGET,
    }
)
@handles_errors
def replicate(c, image="", version="", timeout=None, target=None):
    """Replicate a version to the image's target regions and follow it to Completed."""
    from imageforge.pipeline.release import replicate_task

    replicate_task(_site(c), _one_image(c, image), version, timeout=timeout, target=target)


@task(
    help={
        "image": "Image name",
        "version": VERSION,
        "regions": "Comma-separated regions for a staged rollout (default: all)",
        "force": "Promote despite the gate (needs --reason; recorded on the version)",
        "reason": "Why (recorded in the version's tags)",
        "target": TARGET,
    }
)
@handles_errors
def promote(c, image="", version="", regions="", force=False, reason="", target=None):
    """Make a tested, replicated version the one `latest` resolves to."""
    from imageforge.pipeline.release import promote_task

    promote_task(
        _site(c),
        _one_image(c, image),
        version,
        regions=[r.strip() for r in regions.split(",") if r.strip()],
        force=force,
        reason=reason or None,
        target=target,
    )


@task(help={"image": "Image name", "version": VERSION, "reason": "Why", "target": TARGET})
@handles_errors
def rollback(c, image="", version="", reason="", target=None):
    """Exclude a version from latest again (tagged revoked) and print what latest is now."""
    from imageforge.pipeline.release import rollback_task

    rollback_task(_site(c), _one_image(c, image), version, reason=reason or None, target=target)


@task(
    help={
        "image": "Image name",
        "version": VERSION,
        "date": "End-of-life date, YYYY-MM-DD",
        "target": TARGET,
    }
)
@handles_errors
def deprecate(c, image="", version="", date="", target=None):
    """Set a version's end-of-life date."""
    from imageforge.pipeline.release import deprecate_task

    deprecate_task(_site(c), _one_image(c, image), version, date, target=target)


@task(
    help={
        "image": "Image name",
        "keep": "Promoted versions to keep (default 3)",
        "days": "Keep anything younger than this many days (default 30)",
        "yes": "Delete; without it prune only lists",
        "preview_days": "Delete previews (build --preview) older than this many days (default 7)",
        "target": TARGET,
    }
)
@handles_errors
def prune(c, image="", keep=3, days=30, yes=False, preview_days=7, target=None):
    """List (or with --yes delete) versions outside the retention policy; never the latest."""
    from imageforge.pipeline.release import prune_task

    prune_task(
        _site(c), _one_image(c, image), keep=int(keep), days=int(days), yes=yes, target=target,
        preview_days=int(preview_days),
    )  # fmt: skip


@task(help={"target": TARGET})
@handles_errors
def cleanup(c, target=None):
    """Delete expired resource groups imageforge created (test VMs of crashed runs too)."""
    from imageforge.pipeline.release import cleanup_task

    cleanup_task(_site(c), target=target)


@task(help={"target": TARGET})
@handles_errors
def lock(c, target=None):
    """Put imageforge's CanNotDelete lock on the gallery's resource group (idempotent)."""
    from imageforge.pipeline.locking import lock_task

    lock_task(_site(c), target=target)


@task(help={"target": TARGET})
@handles_errors
def unlock(c, target=None):
    """Remove imageforge's lock from the gallery's resource group."""
    from imageforge.pipeline.locking import unlock_task

    unlock_task(_site(c), target=target)


@task(help={"check": "Only report whether Packer is installed"})
@handles_errors
def setup(c, check=False):
    """Install Packer from Debian's packages when it is missing (run as root)."""
    from imageforge import tooling

    tooling.ensure_packer(_site(c), check_only=check)


# -- sandbox ---------------------------------------------------------------------------------


def _sandbox_settings(c: Any) -> Any:
    from imageforge.pipeline.sandbox import sandbox_settings

    return sandbox_settings(_site(c))


@task(name="up")
@handles_errors
def sandbox_up(c):
    """Start the sandbox (local ARM emulator + VM runtime); idempotent."""
    from imageforge.sandbox import control

    info = control.up(_sandbox_settings(c))
    state = "already running" if info.already_running else "started"
    print(f"sandbox {state}: {info.url} (pid {info.pid}, CA {info.ca_path})")


@task(name="down")
@handles_errors
def sandbox_down(c):
    """Stop the sandbox's emulator (its VMs stop with it; state is kept)."""
    from imageforge.sandbox import control

    pid = control.down(_sandbox_settings(c))
    print(f"sandbox stopped (pid {pid})" if pid else "sandbox was not running")


@task(name="status")
@handles_errors
def sandbox_status(c):
    """Is the sandbox running; where; how many resources and VMs."""
    from imageforge.pipeline.sandbox import describe_sandbox
    from imageforge.sandbox import control

    print(describe_sandbox(control.status(_sandbox_settings(c))))


@task(name="reset")
@handles_errors
def sandbox_reset(c):
    """Stop the sandbox, reap leftover VMs, processes and mounts, and wipe its state."""
    from imageforge.pipeline.sandbox import describe_reset
    from imageforge.sandbox import control

    print(describe_reset(control.reset(_sandbox_settings(c))))


@task(
    name="publish-base",
    help={
        "image": "Image whose base (publisher, offer, sku) gets a new marketplace version",
        "version": "The new version's name (default: 0.YYYYMMDD.HHMM of now)",
    },
)
@handles_errors
def sandbox_publish_base(c, image="", version=None):
    """Publish a newer version of an image's base in the sandbox marketplace (rehearse a patch)."""
    from imageforge.sandbox import control

    base = _one_image(c, image).base_image
    got = control.publish_base(_sandbox_settings(c), base.publisher, base.offer, base.sku, version)
    print(f"published {got['publisher']}:{got['offer']}:{got['sku']} version {got['version']}")


sandbox = Collection(
    "sandbox", sandbox_up, sandbox_down, sandbox_status, sandbox_reset, sandbox_publish_base
)

ns = Collection(
    render,
    validate,
    build,
    test_image,
    smoke_test,
    verify,
    diff,
    versions,
    share,
    outdated,
    replicate,
    promote,
    rollback,
    deprecate,
    prune,
    cleanup,
    lock,
    unlock,
    setup,
    sandbox,
)
ns.configure(
    {
        "imageforge": {
            "subscription_id": "",
            "resource_group": "rg-imageforge",
            "gallery": "imageforge",
            "location": "westeurope",
            "tags": {},
            "packer": "packer",
            "packer_timeout": 4 * 3600,
            "on_error": "cleanup",
            "target": "auto",
            "images_dir": "images",
            "build_dir": "build",
            "reports_dir": "reports",
            "test_vm_ttl_hours": 6,
            "replicate_timeout": 3600,
            "max_age_days": 30,
            "test_allowed_source": "",
            "egress_ip_url": "https://api.ipify.org",
            "test_subnet_id": "",
            "lock_gallery": True,
            "sandbox": {
                "state_dir": "~/.cache/imageforge/sandbox",
                "host": "127.0.0.1",
                "port": 8443,
                "backend": "chroot",
                "replication_seconds": 2.0,
                "lro_seconds": 0.0,
                "cache_dir": "~/.cache/imageforge/rootfs",
            },
        }
    }
)
