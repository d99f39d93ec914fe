"""No secret in any rendered file, log or console output.

Credentials reach Packer only through its environment (variables.pkr.hcl reads them with
env(...) and marks the secret `sensitive`); Packer masks sensitive values and
imageforge.process redacts the values of known secret variables. Every test feeds
recognisable fake secrets (IFSECRET-...) and looks for them everywhere they could leak.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from helpers.cli import REPO, clean_env
from spine_helpers import IMAGE_NAMES, PROFILE_NAMES, run_invoke

from imageforge import hclio
from imageforge.config import load_image_file
from imageforge.packer import Packer
from imageforge.process import SECRET_ENV, SubprocessRunner
from imageforge.render import PROFILES, Renderer
from imageforge.site import Site

MARK = "IFSECRET"
SECRETS = {name: f"{MARK}-{name.lower()}-7f3a" for name in SECRET_ENV}
SERVICE_PRINCIPAL = {
    "ARM_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
    "ARM_TENANT_ID": "00000000-0000-0000-0000-000000000002",
    "ARM_CLIENT_ID": "00000000-0000-0000-0000-000000000003",
    **SECRETS,
}


def leaks(root: Path) -> list[str]:
    """Files under ``root`` that contain the fake secrets' mark."""
    return [str(p) for p in root.rglob("*") if p.is_file() and MARK.encode() in p.read_bytes()]


@pytest.fixture
def secret_env(monkeypatch):
    for name, value in SERVICE_PRINCIPAL.items():
        monkeypatch.setenv(name, value)


# --- rendered files ------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_no_secret_in_any_rendered_file(secret_env, tmp_path, profile):
    renderer = Renderer(Site(root=REPO, tags={"owner": "platform"}))
    for name in IMAGE_NAMES:
        image = load_image_file(REPO / "images" / f"{name}.pkrvars.hcl", repo_root=REPO)
        renderer.render(image, PROFILES[profile], tmp_path / name)
    assert len(list(tmp_path.rglob("*.pkr.hcl"))) == 5 * len(IMAGE_NAMES)
    assert leaks(tmp_path) == []


def test_the_client_secret_is_read_from_the_environment_and_sensitive(secret_env):
    image = load_image_file(REPO / "images" / "debian-12.pkrvars.hcl", repo_root=REPO)
    text = Renderer(Site(root=REPO)).render_text(image, PROFILES["builtin"])["variables.pkr.hcl"]
    variables = {
        name: body for block in hclio.loads(text)["variable"] for name, body in block.items()
    }
    assert variables["client_secret"]["default"] == '${env("ARM_CLIENT_SECRET")}'
    assert variables["client_secret"]["sensitive"] is True
    # the subscription id is a setting, not a credential: it may be written
    assert variables["subscription_id"]["default"] == SERVICE_PRINCIPAL["ARM_SUBSCRIPTION_ID"]


# --- the real CLI ------------------------------------------------------------------------------


def test_validate_writes_and_prints_no_secret(packer_path, repo_copy):
    result = run_invoke(repo_copy, "validate", env=SERVICE_PRINCIPAL)
    assert result.returncode == 0, result.output
    assert MARK not in result.output
    assert len(list((repo_copy / "build").rglob("*.pkr.hcl"))) == 5 * len(IMAGE_NAMES)
    assert leaks(repo_copy / "build") == []


def test_build_dry_run_writes_and_prints_no_secret(packer_path, repo_copy):
    result = run_invoke(
        repo_copy,
        "build",
        "--image",
        "debian-12",
        "--target",
        "sandbox",
        "--dry-run",
        env=SERVICE_PRINCIPAL,
    )
    assert result.returncode == 0, result.output
    assert "-var=use_azure_cli_auth=false" in result.stdout  # the secret is in use, via env
    assert MARK not in result.output
    assert (repo_copy / "build" / "debian-12" / "plan.json").is_file()
    assert leaks(repo_copy / "build") == []


# --- a real packer build -----------------------------------------------------------------------

ECHO_TEMPLATE = """
variable "client_secret" {
  type      = string
  default   = env("ARM_CLIENT_SECRET")
  sensitive = true
}

source "null" "leak" {
  communicator = "none"
}

build {
  sources = ["source.null.leak"]

  provisioner "shell-local" {
    inline = [
      "echo var-secret=${var.client_secret}",
      "echo env-secret=$ARM_CLIENT_SECRET",
      "echo token=$SYSTEM_ACCESSTOKEN",
      "echo password=$IMAGEFORGE_WINRM_PASSWORD",
    ]
  }

  post-processor "manifest" {
    output      = "manifest.json"
    custom_data = { note = "done" }
  }
}
"""


def test_a_real_packer_build_that_echoes_secrets_leaks_none(packer_path, tmp_path):
    directory = tmp_path / "leak"
    directory.mkdir()
    (directory / "leak.pkr.hcl").write_text(ECHO_TEMPLATE)
    log = directory / "packer.log"
    console = io.StringIO()
    packer = Packer(binary=packer_path, cwd=directory, runner=SubprocessRunner(console=console))
    artifact = packer.build(
        directory,
        {},
        only="null.leak",
        manifest=directory / "manifest.json",
        log_path=log,
        env=clean_env(SERVICE_PRINCIPAL),
    )
    assert artifact.custom_data == {"note": "done"}
    for text in (console.getvalue(), log.read_text()):
        # the echoes ran (so the test can fail) and every secret in them was masked
        for label in ("var-secret=", "env-secret=", "token=", "password="):
            line = next(ln for ln in text.splitlines() if label in ln)
            assert line.rstrip().endswith((f"{label}<sensitive>", f"{label}***")), line
        assert MARK not in text
    assert leaks(tmp_path) == []
