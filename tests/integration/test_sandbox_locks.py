"""`invoke lock` and `invoke unlock` through the real CLI, on a sandbox of their own.

The sandbox runs the inert machine backend (the lock is ARM bookkeeping; no VM boots). What a
user sees is asserted: the one line each prints, that the lock is there (and refuses a delete)
or gone, and the one-line errors for a group that does not exist and a bad ``lock_gallery``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import cli_env, copy_tree, free_port, run_invoke
from sandbox_build_helpers import (
    STATE_DIRS,
    assert_one_line_error,
    emulator_pids,
    nothing_of_the_sandboxes_left_after_the_session,  # noqa: F401 - autouse, session end
    own_sandbox,
    site_for,
)

from imageforge.azure import gallery, locks
from imageforge.config import ImageDefinition, load_image_file
from imageforge.errors import AzureError
from imageforge.pipeline.session import open_session


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_tree(tmp_path_factory.mktemp("locks") / "repo")


def test_lock_and_unlock_through_the_cli(repo, tmp_path):
    with own_sandbox(tmp_path / "sandbox", backend="inert") as settings:
        site = site_for(settings, tmp_path, root=repo)
        env = cli_env(
            tmp_path / "home", settings.state_dir, settings.port,
            {"INVOKE_IMAGEFORGE_SANDBOX_BACKEND": "inert"},
        )  # fmt: skip
        with open_session(site, "sandbox") as session:
            gallery.ensure_gallery(session)
        group = site.resource_group

        first = run_invoke(repo, "lock", env=env)
        assert first.returncode == 0, first
        assert first.stdout.strip() == (
            f"locked resource group {group}: CanNotDelete lock imageforge-gallery"
        )
        again = run_invoke(repo, "lock", env=env)
        assert again.returncode == 0, again
        assert again.stdout.strip() == (
            f"resource group {group} is already locked (CanNotDelete lock imageforge-gallery)"
        )
        with open_session(site, "sandbox") as session:
            lock = locks.read(session)
            assert lock is not None and lock.level == "CanNotDelete" and lock.notes == locks.NOTES
            with pytest.raises(AzureError, match="ScopeLocked"):
                gallery.delete_versions(session, _any_image(repo), ["1.0.0"])

        removed = run_invoke(repo, "unlock", env=env)
        assert removed.returncode == 0, removed
        assert (
            removed.stdout.strip() == f"removed lock imageforge-gallery from resource group {group}"
        )
        none = run_invoke(repo, "unlock", env=env)
        assert none.returncode == 0, none
        assert none.stdout.strip() == (
            f"resource group {group} has no lock imageforge-gallery; nothing to do"
        )
        with open_session(site, "sandbox") as session:
            assert locks.read(session) is None

        missing = run_invoke(
            repo, "lock", env={**env, "INVOKE_IMAGEFORGE_RESOURCE_GROUP": "rg-not-there"}
        )
        assert_one_line_error(
            missing,
            "error: cannot lock resource group rg-not-there: it does not exist (invoke build "
            "creates it with the gallery)",
        )


def _any_image(repo: Path) -> ImageDefinition:
    return load_image_file(repo / "images" / "debian-12.pkrvars.hcl", repo_root=repo)


@pytest.mark.parametrize("task", [["lock"], ["unlock"], ["build", "--image", "debian-12"]])
def test_a_bad_lock_gallery_setting_is_one_line_and_starts_nothing(repo, tmp_path, task):
    state_dir = tmp_path / "sandbox"
    STATE_DIRS.append(state_dir)
    (tmp_path / "home").mkdir()
    env = cli_env(tmp_path / "home", state_dir, free_port(),
                  {"INVOKE_IMAGEFORGE_LOCK_GALLERY": "maybe"})  # fmt: skip
    result = run_invoke(repo, *task, env=env)
    assert_one_line_error(
        result, "error: INVOKE_IMAGEFORGE_LOCK_GALLERY: 'maybe' is not true or false"
    )
    assert not state_dir.exists() and emulator_pids(state_dir) == []
    assert not (repo / "build").exists()
