"""`invoke share` and `invoke versions` through the real CLI, on a sandbox of their own.

The sandbox runs the inert machine backend (sharing is ARM bookkeeping: no VM boots), in a tmp
state dir on a free port, and is reset at the end. Refused input ends in one line on stderr.
"""

from __future__ import annotations

from pathlib import Path

from helpers.cli import cli_env, copy_tree, run_invoke
from sandbox_build_helpers import (
    assert_one_line_error,
    nothing_of_the_sandboxes_left_after_the_session,  # noqa: F401 - autouse, session end
    own_sandbox,
    site_for,
)

from imageforge.azure import gallery
from imageforge.config import load_image_file
from imageforge.pipeline.session import open_session
from imageforge.sandbox.emulator.handlers.subscriptions import SANDBOX_TENANT_ID

SUB = "34a4ab42-0d72-47d9-bd1a-aed207386dac"
TENANT = "c24c76aa-8897-4027-9b03-8f7928b54ff6"
PRINCIPAL = "ce2ce14e-85d7-4629-bdbc-454d0519d987"


def test_share_then_versions_through_the_cli(tmp_path: Path) -> None:
    repo = copy_tree(tmp_path / "repo")
    with own_sandbox(tmp_path / "sandbox", backend="inert") as settings:
        env = cli_env(
            tmp_path / "home",
            settings.state_dir,
            settings.port,
            {"INVOKE_IMAGEFORGE_SANDBOX_BACKEND": "inert"},
        )
        refused = run_invoke(repo, "share", "--add-subscription", SUB, env=env)
        assert_one_line_error(
            refused, "gallery imageforge (resource group rg-imageforge) does not exist in the "
            "sandbox at ", "build an image first (invoke build)",
        )  # fmt: skip

        image = load_image_file(repo / "images" / "debian-12.pkrvars.hcl", repo_root=repo)
        with open_session(site_for(settings, tmp_path, root=repo), "sandbox") as session:
            gallery.ensure_gallery(session)
            gallery.ensure_image_definition(session, image)

        shared = run_invoke(
            repo,
            "share", "--add-subscription", SUB, "--add-tenant", TENANT, "--reader", PRINCIPAL,
            env=env,
        )  # fmt: skip
        assert shared.returncode == 0, shared
        line = f"shared with: subscriptions {SUB}; tenants {TENANT}"
        assert line in shared.stdout, shared
        assert f"principal {PRINCIPAL}: Reader on gallery imageforge" in shared.stdout, shared

        versions = run_invoke(repo, "versions", "--image", "debian-12", env=env)
        assert versions.returncode == 0, versions
        assert f"gallery imageforge (resource group rg-imageforge) {line}" in versions.stdout

        not_guid = run_invoke(repo, "share", "--add-subscription", "not-a-guid", env=env)
        assert_one_line_error(not_guid, "--add-subscription 'not-a-guid' is not a GUID")
        tenant = run_invoke(repo, "share", "--add-subscription", SANDBOX_TENANT_ID, env=env)
        assert_one_line_error(tenant, "is a tenant id", "not a subscription: use --add-tenant")
        nothing = run_invoke(repo, "share", env=env)
        assert_one_line_error(nothing, "nothing to do")

        removed = run_invoke(repo, "share", "--remove-subscription", SUB, env=env)
        assert removed.returncode == 0, removed
        assert f"shared with: tenants {TENANT}" in removed.stdout, removed
