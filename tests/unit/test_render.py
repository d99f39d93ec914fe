"""imageforge.render: golden HCL for every image x profile, determinism, `packer fmt` and
`packer validate` on the real Packer, profile differences, render errors, atomic writes.

Golden files live in tests/unit/golden/<profile>/<image>/*.pkr.hcl. After an intended change
to templates/, builders/ or images/, regenerate them and review the diff:

    IMAGEFORGE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_render.py
    git diff tests/unit/golden
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers.cli import REPO, edit
from spine_helpers import IMAGE_NAMES, PROFILE_NAMES

from imageforge import hclio
from imageforge.config import ImageDefinition, load_image_file
from imageforge.errors import ConfigError, RenderError
from imageforge.packer import Packer
from imageforge.render import (
    OUTPUT_FILES,
    PROFILES,
    Renderer,
    get_profile,
    profile_for_packer,
    source_name,
    write_outputs,
)
from imageforge.site import Site

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("IMAGEFORGE_UPDATE_GOLDEN") == "1"
CASES = [(p, i) for p in PROFILE_NAMES for i in IMAGE_NAMES]
IDS = [f"{p}-{i}" for p, i in CASES]


def image(name: str) -> ImageDefinition:
    return load_image_file(REPO / "images" / f"{name}.pkrvars.hcl", repo_root=REPO)


@pytest.fixture
def site(no_azure_env) -> Site:
    """The site as tasks.py declares it by default, with no subscription in the environment."""
    return Site(root=REPO)


def render_texts(site: Site, profile: str, name: str) -> dict[str, str]:
    return Renderer(site).render_text(image(name), PROFILES[profile])


@pytest.fixture(scope="module")
def rendered_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every image x profile rendered once into <tmp>/<profile>/<image>/ (default site)."""
    root = tmp_path_factory.mktemp("rendered")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("ARM_", "AZURE_")):
                mp.delenv(name)
        renderer = Renderer(Site(root=REPO))
        for profile, name in CASES:
            renderer.render(image(name), PROFILES[profile], root / profile / name)
    return root


# --- golden files --------------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "name"), CASES, ids=IDS)
def test_rendered_hcl_matches_golden(site, profile, name):
    texts = render_texts(site, profile, name)
    golden_dir = GOLDEN / profile / name
    if UPDATE:
        shutil.rmtree(golden_dir, ignore_errors=True)
        golden_dir.mkdir(parents=True)
        for file_name, text in texts.items():
            (golden_dir / file_name).write_bytes(text.encode("utf-8"))
    for file_name, text in texts.items():
        golden = golden_dir / file_name
        assert golden.is_file(), f"no golden {golden}: set IMAGEFORGE_UPDATE_GOLDEN=1"
        assert text == golden.read_text(encoding="utf-8"), (
            f"{profile}/{name}/{file_name} differs from its golden file; if intended, "
            "regenerate with IMAGEFORGE_UPDATE_GOLDEN=1 and review `git diff tests/unit/golden`"
        )


def test_golden_tree_holds_exactly_the_rendered_files():
    found = {p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*.pkr.hcl")}
    expected = {f"{p}/{i}/{f}" for p, i in CASES for f in OUTPUT_FILES}
    assert found == expected


# --- determinism and format ----------------------------------------------------------------


@pytest.mark.parametrize(("profile", "name"), CASES, ids=IDS)
def test_rendering_twice_is_byte_identical(site, tmp_path, profile, name):
    first = Renderer(site).render(image(name), PROFILES[profile], tmp_path / "a")
    second = Renderer(site).render(image(name), PROFILES[profile], tmp_path / "b")
    for a, b in zip(first.files, second.files, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_rendering_again_into_the_same_folder_changes_nothing(site, tmp_path):
    renderer = Renderer(site)
    first = renderer.render(image("debian-12"), PROFILES["builtin"], tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in first.files}
    second = renderer.render(image("debian-12"), PROFILES["builtin"], tmp_path)
    assert first.changed and not second.changed
    assert {p: p.stat().st_mtime_ns for p in second.files} == stamps


def test_rendered_files_come_in_packers_reading_order(site, tmp_path):
    result = Renderer(site).render(image("debian-12"), PROFILES["builtin"], tmp_path)
    assert [p.name for p in result.files] == list(OUTPUT_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(OUTPUT_FILES)


def test_output_ends_with_one_newline_and_has_no_trailing_spaces(rendered_tree):
    for path in rendered_tree.rglob("*.pkr.hcl"):
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n") and not text.endswith("\n\n"), path
        assert not [ln for ln in text.splitlines() if ln != ln.rstrip()], path


@pytest.mark.parametrize(("profile", "name"), CASES, ids=IDS)
def test_rendered_hcl_is_packer_fmt_clean(packer_path, rendered_tree, profile, name):
    assert Packer(binary=packer_path, cwd=REPO).fmt_check(rendered_tree / profile / name) == []


@pytest.mark.parametrize(("profile", "name"), CASES, ids=IDS)
def test_rendered_hcl_parses_with_python_hcl2(rendered_tree, profile, name):
    for path in sorted((rendered_tree / profile / name).iterdir()):
        assert isinstance(hclio.load(path), dict)


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_builtin_profile_passes_packer_validate(
    packer_path, rendered_tree, throwaway_ssh_key, name
):
    packer = Packer(binary=packer_path, cwd=REPO)
    assert packer.version() < (1, 7, 0), "this test is about the builtin profile's Packer"
    variables = {"image_version": "0.0.1"}
    if image(name).os == "linux":
        variables["sandbox_private_key_file"] = str(throwaway_ssh_key)
    packer.validate(rendered_tree / "builtin" / name, variables)


# --- profiles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "profile"),
    [
        ((1, 6, 6), "builtin"),
        ((1, 6, 99), "builtin"),
        ((1, 7, 0), "plugin"),
        ((1, 11, 2), "plugin"),
    ],
)
def test_profile_for_packer_version(version, profile):
    assert profile_for_packer(version).name == profile


def test_an_unknown_profile_is_a_render_error():
    with pytest.raises(
        RenderError, match=r"^unknown --profile 'x': expected one of builtin, plugin$"
    ):
        get_profile("x")


def source_body(directory: Path, kind: str = "azure-arm") -> dict:
    sources = hclio.load(directory / "sources.pkr.hcl")["source"]
    return next(iter(next(s[kind] for s in sources if kind in s).values()))


def test_builtin_profile_publishes_through_a_managed_image(rendered_tree):
    body = source_body(rendered_tree / "builtin" / "debian-12")
    assert body["managed_image_name"] == "${local.managed_image_name}"
    destination = body["shared_image_gallery_destination"][0]
    assert destination["replication_regions"] == ["westeurope"]
    assert "target_region" not in destination and "security_type" not in body
    assert (
        "required_plugins" not in (rendered_tree / "builtin/debian-12/packer.pkr.hcl").read_text()
    )


def test_plugin_profile_requires_the_azure_plugin_and_uses_target_region(rendered_tree):
    directory = rendered_tree / "plugin" / "debian-12"
    packer_block = hclio.load(directory / "packer.pkr.hcl")["packer"][0]
    azure = packer_block["required_plugins"][0]["azure"]
    # 2.2.0: the first plugin release with public_ip_sku (Azure refuses new Basic IPs)
    assert azure == {"source": "github.com/hashicorp/azure", "version": ">= 2.2.0"}
    # 1.9.x is the last MPL-2.0 Packer: the constraint must not demand a BSL release
    assert packer_block["required_version"] == ">= 1.9.0"
    body = source_body(directory)
    assert "managed_image_name" not in body
    assert body["public_ip_sku"] == "Standard"
    # config.go refuses shared_image_gallery_replica_count alongside target_region
    assert "shared_image_gallery_replica_count" not in body
    destination = body["shared_image_gallery_destination"][0]
    assert destination["target_region"] == [{"name": "westeurope", "replicas": 1}]
    assert destination["storage_account_type"] == "Standard_LRS"
    assert (body["security_type"], body["secure_boot_enabled"]) == ("TrustedLaunch", True)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_publishes_only_to_the_build_region_excluded_from_latest(rendered_tree, profile):
    body = source_body(rendered_tree / profile / "windows-2022")
    assert body["shared_gallery_image_version_exclude_from_latest"] is True
    assert body["location"] == "westeurope"
    assert body["communicator"] == "winrm" and body["winrm_use_ssl"] is True


def test_linux_images_also_get_a_null_source_for_the_sandbox(rendered_tree):
    body = source_body(rendered_tree / "builtin" / "ubuntu-24.04", kind="null")
    assert body["ssh_private_key_file"] == "${var.sandbox_private_key_file}"
    assert (
        "source.null.ubuntu-24-04"
        in (rendered_tree / "builtin/ubuntu-24.04/build.pkr.hcl").read_text()
    )


def test_windows_images_have_no_sandbox_source(rendered_tree):
    text = (rendered_tree / "builtin" / "windows-2022" / "sources.pkr.hcl").read_text()
    assert 'source "null"' not in text and "sandbox_" not in text


def test_source_names_cannot_contain_dots():
    assert source_name("ubuntu-24.04") == "ubuntu-24-04"


def test_provisioners_run_in_the_definitions_order_and_generalize_last(rendered_tree):
    build = hclio.load(rendered_tree / "builtin" / "debian-12" / "build.pkr.hcl")["build"][0]
    shells = build["provisioner"]
    scripts = shells[0]["shell"]["scripts"]
    assert scripts == [f"provisioners/linux/{s}" for s in image("debian-12").provisioners]
    assert shells[-1]["shell"]["script"] == "provisioners/linux/generalize.sh"


def test_the_manifest_goes_to_the_build_dir_of_the_site(site, tmp_path):
    site = Site(root=REPO, build_dir="out")
    texts = Renderer(site).render_text(image("debian-12"), PROFILES["builtin"])
    assert 'output     = "out/debian-12/manifest.json"' in texts["build.pkr.hcl"]


def test_site_tags_are_rendered_sorted_with_the_version_tags(tmp_path, no_azure_env):
    site = Site(root=REPO, tags={"team": "platform", "cost-center": "42"})
    texts = Renderer(site).render_text(image("debian-12"), PROFILES["plugin"])
    tags = hclio.loads(texts["locals.pkr.hcl"])["locals"][0]["version_tags"]
    assert tags["team"] == "platform" and tags["cost-center"] == "42"
    assert tags["imageforge.stage"] == "built"
    assert list(tags) == sorted(tags)


def test_a_site_tag_azure_forbids_is_a_config_error_naming_the_setting():
    site = Site(root=REPO, tags={"a/b": "x"})
    with pytest.raises(ConfigError, match=r"^imageforge\.tags: tag name 'a/b' is not allowed"):
        Renderer(site).render_text(image("debian-12"), PROFILES["plugin"])


# --- render errors and writing -------------------------------------------------------------


@pytest.fixture
def template_copy(tmp_path) -> Path:
    """templates/ and builders/ copied so a test can break them."""
    for folder in ("templates", "builders"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    return tmp_path


def test_templates_are_read_from_the_site_root(template_copy, no_azure_env):
    edit(template_copy / "templates" / "packer.pkr.hcl.j2", "Do not edit:", "Hands off:")
    texts = Renderer(Site(root=template_copy)).render_text(image("debian-12"), PROFILES["plugin"])
    assert "Hands off:" in texts["packer.pkr.hcl"]


def test_an_undefined_template_variable_names_template_line_and_variable(template_copy):
    edit(
        template_copy / "templates" / "locals.pkr.hcl.j2", "locals {", "locals {\n  x = {{ nope }}"
    )
    renderer = Renderer(Site(root=template_copy))
    with pytest.raises(RenderError) as err:
        renderer.render_text(image("debian-12"), PROFILES["builtin"])
    assert str(err.value) == (
        "locals.pkr.hcl.j2:3: undefined variable while rendering debian-12: 'nope' is undefined"
    )


def test_an_undefined_attribute_in_an_included_template_names_that_template(template_copy):
    # Jinja reports the line where the statement starts: `{{ attrs([` is line 10.
    edit(template_copy / "builders" / "azure-arm-windows.pkr.hcl.j2", "image.communicator.username",
         "image.communicator.password")  # fmt: skip
    with pytest.raises(RenderError) as err:
        Renderer(Site(root=template_copy)).render_text(image("windows-2022"), PROFILES["builtin"])
    assert str(err.value) == (
        "azure-arm-windows.pkr.hcl.j2:10: undefined variable while rendering windows-2022: "
        "'imageforge.config.Communicator object' has no attribute 'password'"
    )


def test_an_undefined_variable_in_a_macro_names_the_macro_file(template_copy):
    edit(template_copy / "builders" / "_azure-arm.j2", "site.gallery", "site.galery")
    with pytest.raises(RenderError, match=r"^_azure-arm\.j2:\d+: undefined variable while "):
        Renderer(Site(root=template_copy)).render_text(image("debian-12"), PROFILES["plugin"])


def test_a_template_syntax_error_names_file_and_line(template_copy):
    edit(template_copy / "templates" / "build.pkr.hcl.j2", "{% endif %}", "{% endfi %}")
    with pytest.raises(RenderError, match=r"build\.pkr\.hcl\.j2:\d+: template syntax error: "):
        Renderer(Site(root=template_copy)).render_text(image("debian-12"), PROFILES["builtin"])


def test_a_missing_template_is_named(template_copy):
    (template_copy / "templates" / "variables.pkr.hcl.j2").unlink()
    with pytest.raises(RenderError, match=r"^template not found: variables\.pkr\.hcl\.j2$"):
        Renderer(Site(root=template_copy)).render_text(image("debian-12"), PROFILES["builtin"])


def test_a_failed_render_writes_nothing(template_copy, tmp_path):
    edit(template_copy / "templates" / "build.pkr.hcl.j2", "build {", "build {{ nope }} {")
    out = tmp_path / "out"
    with pytest.raises(RenderError):
        Renderer(Site(root=template_copy)).render(image("debian-12"), PROFILES["builtin"], out)
    assert not out.exists()


def test_write_outputs_removes_stale_pkr_hcl_files(tmp_path):
    (tmp_path / "old.pkr.hcl").write_text("locals {}\n")
    (tmp_path / "packer.log").write_text("kept\n")
    result = write_outputs("x", "builtin", {"a.pkr.hcl": "locals {}\n"}, tmp_path)
    assert result.changed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pkr.hcl", "packer.log"]


def test_write_outputs_leaves_no_temporary_files(tmp_path):
    write_outputs("x", "builtin", {"a.pkr.hcl": "1\n", "b.pkr.hcl": "2\n"}, tmp_path)
    write_outputs("x", "builtin", {"a.pkr.hcl": "3\n", "b.pkr.hcl": "2\n"}, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pkr.hcl", "b.pkr.hcl"]
    assert (tmp_path / "a.pkr.hcl").read_text() == "3\n"
