"""imageforge.lint: the plugin profile checked against the azure plugin's documented options.

Packer 1.6.6 cannot validate the plugin profile, so this lint is that profile's check. It must
pass on what the shipped templates render, and catch an undocumented option wherever it comes
from: a hand-edited rendered file, a nested block, or a template change.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers.cli import REPO, edit
from spine_helpers import IMAGE_NAMES

from imageforge.config import load_image_file
from imageforge.errors import ValidationError
from imageforge.lint import check_plugin_profile, documented_options, lint_plugin_profile
from imageforge.render import PROFILES, Renderer
from imageforge.site import Site


def render(directory: Path, name: str, profile: str = "plugin", root: Path = REPO) -> Path:
    image = load_image_file(REPO / "images" / f"{name}.pkrvars.hcl", repo_root=REPO)
    Renderer(Site(root=root)).render(image, PROFILES[profile], directory)
    return directory


@pytest.fixture
def debian(tmp_path) -> Path:
    return render(tmp_path / "debian-12", "debian-12")


def test_documented_options_are_the_plugins_2x_list():
    options = documented_options()
    assert "shared_image_gallery_destination" in options["blocks"]
    assert {"client_id", "image_publisher", "azure_tags"} <= set(options["top_level"])
    assert "target_region" in options["blocks"]["shared_image_gallery_destination"]


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_rendered_plugin_profile_is_clean(tmp_path, name):
    assert lint_plugin_profile(render(tmp_path / name, name)) == []


def test_an_undocumented_top_level_option_is_named_with_file_and_source(debian):
    edit(
        debian / "sources.pkr.hcl",
        'source "azure-arm" "debian-12" {\n',
        'source "azure-arm" "debian-12" {\n  os_disk_encryption = true\n',
    )
    assert lint_plugin_profile(debian) == [
        "sources.pkr.hcl: azure-arm.debian-12: 'os_disk_encryption' is not a documented "
        "azure-arm option"
    ]


def test_an_undocumented_option_in_a_nested_block_is_named_with_its_path(debian):
    edit(
        debian / "sources.pkr.hcl",
        "    target_region {\n",
        '    target_region {\n      storage_account_type = "Standard_LRS"\n',
    )
    assert lint_plugin_profile(debian) == [
        "sources.pkr.hcl: azure-arm.debian-12.shared_image_gallery_destination[0]"
        ".target_region[0]: 'storage_account_type' is not a documented azure-arm option"
    ]


def test_an_undocumented_option_from_a_template_change_is_caught(tmp_path):
    # client_cert_token_timeout was in plugin 1.x and is gone from the 2.x docs.
    for folder in ("templates", "builders"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    edit(
        tmp_path / "builders" / "_azure-arm.j2",
        '  ("tenant_id", Expr("var.tenant_id")),\n',
        '  ("tenant_id", Expr("var.tenant_id")),\n  ("client_cert_token_timeout", "5m"),\n',
    )
    out = render(tmp_path / "out" / "windows-2022", "windows-2022", root=tmp_path)
    problems = lint_plugin_profile(out)
    assert problems == [
        "sources.pkr.hcl: azure-arm.windows-2022: 'client_cert_token_timeout' is not a "
        "documented azure-arm option"
    ]


def test_a_plugin_profile_without_required_plugins_is_refused(debian):
    (debian / "packer.pkr.hcl").write_text('packer {\n  required_version = ">= 1.10.0"\n}\n')
    assert lint_plugin_profile(debian) == [
        "packer.pkr.hcl: the plugin profile must require github.com/hashicorp/azure"
    ]


def test_the_builtin_profile_output_is_not_a_plugin_profile(tmp_path):
    problems = lint_plugin_profile(render(tmp_path / "d", "debian-12", profile="builtin"))
    assert problems == [
        "packer.pkr.hcl: the plugin profile must require github.com/hashicorp/azure"
    ]


def test_a_folder_without_an_azure_arm_source_is_refused(debian):
    (debian / "sources.pkr.hcl").write_text('source "null" "x" {\n  communicator = "none"\n}\n')
    assert lint_plugin_profile(debian) == ["sources.pkr.hcl: no azure-arm source"]


def test_check_raises_the_first_problem_and_counts_the_rest(debian):
    edit(
        debian / "sources.pkr.hcl",
        'source "azure-arm" "debian-12" {\n',
        'source "azure-arm" "debian-12" {\n  bogus_a = 1\n  bogus_b = 2\n',
    )
    with pytest.raises(ValidationError) as err:
        check_plugin_profile(debian)
    assert str(err.value) == (
        "sources.pkr.hcl: azure-arm.debian-12: 'bogus_a' is not a documented azure-arm option "
        "(and 1 more)"
    )


def test_check_passes_a_clean_folder(debian):
    check_plugin_profile(debian)


def test_a_nested_block_at_the_top_level_is_refused(debian):
    # target_region exists only inside shared_image_gallery_destination.
    edit(
        debian / "sources.pkr.hcl",
        'source "azure-arm" "debian-12" {\n',
        'source "azure-arm" "debian-12" {\n  target_region {\n    name = "westeurope"\n  }\n',
    )
    assert lint_plugin_profile(debian) == [
        "sources.pkr.hcl: azure-arm.debian-12: 'target_region' is not a documented azure-arm option"
    ]


def test_a_top_level_block_inside_another_block_is_refused(debian):
    edit(
        debian / "sources.pkr.hcl",
        "    target_region {\n",
        '    spot {\n      eviction_policy = "Delete"\n    }\n\n    target_region {\n',
    )
    assert lint_plugin_profile(debian) == [
        "sources.pkr.hcl: azure-arm.debian-12.shared_image_gallery_destination[0]: 'spot' is "
        "not a documented azure-arm option"
    ]


def test_options_the_plugin_refuses_together_fail_with_the_plugins_message(debian):
    """The names are all documented; the plugin's config.go refuses the pair (issue 10)."""
    edit(
        debian / "sources.pkr.hcl",
        "  shared_image_gallery_timeout ",
        "  shared_image_gallery_replica_count = 1\n  shared_image_gallery_timeout ",
    )
    assert lint_plugin_profile(debian) == [
        "sources.pkr.hcl: azure-arm.debian-12: `shared_image_gallery_replica_count` can not be "
        "defined alongside `target_region`; you can define `replicas` inside each target_region "
        "block to set the number replicas for each region"
    ]


def test_an_unknown_public_ip_sku_fails_as_the_plugin_says(debian):
    edit(debian / "sources.pkr.hcl", 'public_ip_sku   = "Standard"', 'public_ip_sku = "Premium"')
    (problem,) = lint_plugin_profile(debian)
    assert 'The provided value of "Premium" for public_ip_sku does not match' in problem
