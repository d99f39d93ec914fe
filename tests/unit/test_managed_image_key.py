"""An image file's ``managed_image = true``: the key, and what both profiles render for it.

The shipped images do not ask for a managed image, so these tests write their own image files
(debian-12 with the key added). The builtin profile is checked by the real Packer 1.6.6's
``packer validate``; the plugin profile by the option lint (the plugin cannot run here).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import REPO

from imageforge import hclio
from imageforge.config import ImageDefinition, load_image_file
from imageforge.errors import ConfigError
from imageforge.lint import lint_plugin_profile
from imageforge.packer import Packer
from imageforge.render import PROFILES, Renderer
from imageforge.site import Site

DEBIAN = (REPO / "images" / "debian-12.pkrvars.hcl").read_text(encoding="utf-8")
MANAGED_KEYS = (
    "managed_image_name",
    "managed_image_resource_group_name",
    "managed_image_storage_account_type",
)


def image_file(tmp_path: Path, extra: str, text: str = DEBIAN) -> Path:
    path = tmp_path / "images" / "debian-12.pkrvars.hcl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + extra, encoding="utf-8")
    return path


def load(tmp_path: Path, extra: str, text: str = DEBIAN) -> ImageDefinition:
    return load_image_file(image_file(tmp_path, extra, text), repo_root=REPO)


def azure_source(directory: Path) -> dict:
    sources = hclio.load(directory / "sources.pkr.hcl")["source"]
    found = [s["azure-arm"] for s in sources if "azure-arm" in s]
    assert len(found) == 1, sources
    return found[0]["debian-12"]


def render(tmp_path: Path, image: ImageDefinition, profile: str) -> Path:
    out = tmp_path / "build" / profile
    Renderer(Site(root=REPO, resource_group="rg-images")).render(image, PROFILES[profile], out)
    return out


# --- the key ------------------------------------------------------------------------------


def test_managed_image_defaults_to_false_and_reads_true(tmp_path):
    assert load_image_file(REPO / "images" / "debian-12.pkrvars.hcl").managed_image is False
    assert load(tmp_path, "\nmanaged_image = true\n").managed_image is True
    assert load(tmp_path, "\nmanaged_image = false\n").managed_image is False


@pytest.mark.parametrize("value", ['"true"', "1", '"yes"', "[true]"])
def test_a_managed_image_that_is_not_a_bool_is_a_one_line_error(tmp_path, value):
    path = image_file(tmp_path, f"\nmanaged_image = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_image_file(path, repo_root=REPO)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: managed_image: expected true or false, got "), message


def test_a_managed_image_of_a_trusted_launch_only_definition_is_refused(tmp_path):
    strict = DEBIAN.replace('"TrustedLaunchSupported"', '"TrustedLaunch"', 1)
    path = image_file(tmp_path, "\nmanaged_image = true\n", strict)
    with pytest.raises(ConfigError) as caught:
        load_image_file(path, repo_root=REPO)
    assert str(caught.value).startswith(
        f"{path}: managed_image: a managed image cannot be made for security type TrustedLaunch"
    )
    assert load(tmp_path, "\n", strict).managed_image is False  # without the key it loads


# --- rendering ----------------------------------------------------------------------------


def test_plugin_renders_the_managed_image_beside_the_gallery_only_when_asked(tmp_path):
    plain = azure_source(render(tmp_path / "plain", load(tmp_path / "a", "\n"), "plugin"))
    assert not [k for k in plain if k.startswith("managed_image")]
    assert plain["secure_boot_enabled"] is True  # trusted launch as before

    asked = load(tmp_path / "b", "\nmanaged_image = true\n")
    out = render(tmp_path / "asked", asked, "plugin")
    body = azure_source(out)
    assert body["managed_image_name"] == "${local.managed_image_name}"
    assert body["managed_image_resource_group_name"] == "rg-images"
    assert body["managed_image_storage_account_type"] == "Standard_LRS"
    destination = body["shared_image_gallery_destination"][0]
    assert destination["gallery_name"] == "imageforge"
    assert destination["target_region"][0]["name"] == "westeurope"
    # a managed image cannot come from a trusted launch VM: the build VM is a standard one
    assert not {"security_type", "secure_boot_enabled", "vtpm_enabled"} & set(body)
    locals_ = hclio.load(out / "locals.pkr.hcl")["locals"][0]
    assert locals_["managed_image_name"] == (
        'imageforge-debian-12-${replace(var.image_version, ".", "-")}'
    )
    assert lint_plugin_profile(out) == []
    assert "kept" in (out / "sources.pkr.hcl").read_text()


def test_a_gallery_only_storage_type_becomes_standard_lrs_for_the_managed_image(tmp_path):
    zrs = DEBIAN.replace(
        '{ name = "westeurope", replicas = 1, storage_account_type = "Standard_LRS" }',
        '{ name = "westeurope", replicas = 1, storage_account_type = "Standard_ZRS" }',
    )
    assert zrs != DEBIAN
    body = azure_source(render(tmp_path, load(tmp_path, "\nmanaged_image = true\n", zrs), "plugin"))
    assert body["managed_image_storage_account_type"] == "Standard_LRS"
    destination = body["shared_image_gallery_destination"][0]
    assert destination["storage_account_type"] == "Standard_ZRS"  # the version keeps ZRS


def test_the_lint_repeats_the_plugins_managed_image_refusals(tmp_path):
    out = render(tmp_path, load(tmp_path, "\nmanaged_image = true\n"), "plugin")
    sources = out / "sources.pkr.hcl"
    text = sources.read_text()
    sources.write_text(
        text.replace(
            'managed_image_storage_account_type = "Standard_LRS"',
            'managed_image_storage_account_type = "Standard_ZRS"\n  vtpm_enabled = true',
        ).replace('managed_image_resource_group_name  = "rg-images"\n', "")
    )
    problems = lint_plugin_profile(out)
    where = "sources.pkr.hcl: azure-arm.debian-12: "
    assert problems == [
        where + "managed_image_name and managed_image_resource_group_name must be specified "
        "together",
        where + "A managed image (managed_image_name, managed_image_resource_group_name) can "
        "not set SecureBoot or VTpm, these features are only supported when directly "
        "publishing to a Shared Image Gallery",
        where + 'The managed_image_storage_account_type "Standard_ZRS" is invalid',
    ], problems


def test_builtin_says_it_keeps_the_image_and_packer_validates_it(
    tmp_path, packer_path, throwaway_ssh_key
):
    out = render(tmp_path, load(tmp_path, "\nmanaged_image = true\n"), "builtin")
    body = azure_source(out)
    assert {k: body[k] for k in MANAGED_KEYS} == {
        "managed_image_name": "${local.managed_image_name}",
        "managed_image_resource_group_name": "rg-images",
        "managed_image_storage_account_type": "Standard_LRS",
    }
    text = (out / "sources.pkr.hcl").read_text()
    assert "kept" in text and "imageforge deletes it" not in text
    plain = render(tmp_path / "plain", load(tmp_path / "p", "\n"), "builtin")
    assert "imageforge deletes it" in (plain / "sources.pkr.hcl").read_text()
    packer = Packer(binary=packer_path, cwd=REPO)
    packer.validate(
        out, {"image_version": "0.0.1", "sandbox_private_key_file": str(throwaway_ssh_key)}
    )
