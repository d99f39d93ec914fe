"""``gallery_image.os_state = "Specialized"``: the key, what both profiles render for it, and
the refusals (Windows, a managed image of it, the builtin profile on Azure).

The shipped images are all generalized, so these tests write their own image files (debian-12
made Specialized). The builtin profile is checked by the real Packer 1.6.6's ``packer
validate``; the plugin profile by the option lint (the plugin cannot run here). The build and
test of a Specialized image on the sandbox is tests/integration/test_sandbox_specialized.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import REPO
from spine_helpers import copy_tree, run_invoke

from imageforge import hclio
from imageforge.azure.vmbodies import VmPlan, vm_body
from imageforge.config import ImageDefinition, load_image_file
from imageforge.errors import ConfigError
from imageforge.lint import lint_plugin_profile
from imageforge.packer import Packer
from imageforge.render import PROFILES, Renderer
from imageforge.site import Site

DEBIAN = (REPO / "images" / "debian-12.pkrvars.hcl").read_text(encoding="utf-8")
SPECIALIZED = DEBIAN.replace(
    'os_state           = "Generalized"', 'os_state           = "Specialized"'
)
WINDOWS = (REPO / "images" / "windows-2022.pkrvars.hcl").read_text(encoding="utf-8")


def image_file(tmp_path: Path, text: str = SPECIALIZED, name: str = "debian-12") -> Path:
    path = tmp_path / "images" / f"{name}.pkrvars.hcl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str = SPECIALIZED) -> ImageDefinition:
    return load_image_file(image_file(tmp_path, text), repo_root=REPO)


def render(tmp_path: Path, image: ImageDefinition, profile: str) -> Path:
    out = tmp_path / "build" / profile
    Renderer(Site(root=REPO, resource_group="rg-images")).render(image, PROFILES[profile], out)
    return out


def azure_source(directory: Path) -> dict:
    sources = hclio.load(directory / "sources.pkr.hcl")["source"]
    return next(s["azure-arm"] for s in sources if "azure-arm" in s)["debian-12"]


def last_provisioner(directory: Path) -> dict:
    return hclio.load(directory / "build.pkr.hcl")["build"][0]["provisioner"][-1]["shell"]


# --- the key ------------------------------------------------------------------------------


def test_specialized_loads_and_generalized_stays_the_default(tmp_path):
    assert SPECIALIZED != DEBIAN
    image = load(tmp_path)
    assert (image.gallery_image.os_state, image.specialized) == ("Specialized", True)
    shipped = load_image_file(REPO / "images" / "debian-12.pkrvars.hcl")
    assert (shipped.gallery_image.os_state, shipped.specialized) == ("Generalized", False)


def test_a_specialized_windows_image_is_a_one_line_error(tmp_path):
    text = WINDOWS.replace('"Generalized"', '"Specialized"', 1)
    assert text != WINDOWS
    path = image_file(tmp_path, text, "windows-2022")
    with pytest.raises(ConfigError) as caught:
        load_image_file(path, repo_root=REPO)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"{path}: gallery_image.os_state: Specialized is supported for Linux images only"
    ), message


def test_a_managed_image_of_a_specialized_image_is_refused(tmp_path):
    path = image_file(tmp_path, SPECIALIZED + "\nmanaged_image = true\n")
    with pytest.raises(ConfigError) as caught:
        load_image_file(path, repo_root=REPO)
    assert str(caught.value).startswith(
        f"{path}: managed_image: a managed image cannot be made of a Specialized image"
    )


def test_specialize_sh_cannot_be_listed_as_a_provisioner(tmp_path):
    text = SPECIALIZED.replace(
        '  "cleanup-build.sh",\n', '  "cleanup-build.sh",\n  "specialize.sh",\n'
    )
    assert text != SPECIALIZED
    path = image_file(tmp_path, text)
    with pytest.raises(ConfigError, match="specialize.sh runs last by itself; do not list it"):
        load_image_file(path, repo_root=REPO)


# --- rendering ----------------------------------------------------------------------------


def test_plugin_publishes_specialized_and_ends_with_specialize_sh(tmp_path):
    out = render(tmp_path, load(tmp_path), "plugin")
    destination = azure_source(out)["shared_image_gallery_destination"][0]
    assert destination["specialized"] is True
    last = last_provisioner(out)
    assert (last["script"], last["skip_clean"]) == ("provisioners/linux/specialize.sh", True)
    assert "generalize.sh" not in (out / "build.pkr.hcl").read_text()
    assert lint_plugin_profile(out) == []

    plain = render(tmp_path / "plain", load(tmp_path / "p", DEBIAN), "plugin")
    assert "specialized" not in azure_source(plain)["shared_image_gallery_destination"][0]
    assert last_provisioner(plain)["script"] == "provisioners/linux/generalize.sh"


def test_the_lint_repeats_the_plugins_refusal_of_a_specialized_managed_image(tmp_path):
    standard = SPECIALIZED.replace('"TrustedLaunchSupported"', '"Standard"', 1)
    out = render(tmp_path, load(tmp_path, standard), "plugin")
    sources = out / "sources.pkr.hcl"
    text = sources.read_text()
    assert "  shared_image_gallery_destination {" in text
    sources.write_text(
        text.replace(
            "  shared_image_gallery_destination {",
            '  managed_image_name = "m"\n  managed_image_resource_group_name = "rg"\n'
            "  shared_image_gallery_destination {",
            1,
        )
    )
    assert lint_plugin_profile(out) == [
        "sources.pkr.hcl: azure-arm.debian-12: A managed image (managed_image_name, "
        "managed_image_resource_group_name) can not be Specialized "
        "(shared_image_gallery_destination.specialized can not be set), Specialized images are "
        "only supported when directly publishing to a Shared Image Gallery"
    ]


def test_builtin_ends_with_specialize_sh_says_why_it_cannot_publish_it_and_validates(
    tmp_path, packer_path, throwaway_ssh_key
):
    out = render(tmp_path, load(tmp_path), "builtin")
    assert last_provisioner(out)["script"] == "provisioners/linux/specialize.sh"
    assert "specialized" not in azure_source(out)["shared_image_gallery_destination"][0]
    assert "generalizes every VM it captures, so\n  # `invoke build --target azure` refuses" in (
        (out / "sources.pkr.hcl").read_text()
    )
    Packer(binary=packer_path, cwd=REPO).validate(
        out, {"image_version": "0.0.1", "sandbox_private_key_file": str(throwaway_ssh_key)}
    )


def test_a_specialized_build_on_azure_with_the_builtin_profile_is_one_line_and_starts_nothing(
    tmp_path,
):
    repo = copy_tree(tmp_path / "repo")
    (repo / "images" / "debian-12.pkrvars.hcl").write_text(SPECIALIZED, encoding="utf-8")
    result = run_invoke(
        repo, "build", "--image", "debian-12", "--target", "azure", "--profile", "builtin",
        env={"AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001"},
    )  # fmt: skip
    assert result.returncode == 1, result
    assert "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        "error: debian-12: os_state = Specialized needs the plugin profile: Packer's built-in "
        "azure-arm (builtin profile) generalizes every VM it captures "
        "(shared_image_gallery_destination.specialized is the plugin's)"
    ], result
    assert not (repo / "build").exists()


# --- the test VM ---------------------------------------------------------------------------


def test_a_test_vm_of_a_specialized_image_has_no_os_profile(tmp_path):
    image = load(tmp_path)
    plan = VmPlan(
        purpose="test", run_id="r1", image=image, region="westeurope", vm_size="Standard_B2s",
        username="imageforge", image_reference={"id": "/x"}, allowed_source=None,
        subnet_id=None, reach_timeout=None, wait=False, os_profile=not image.specialized,
    )  # fmt: skip
    body = vm_body(plan, "/nic", {"location": "westeurope"}, "ssh-ed25519 AAAA k", None)
    assert "osProfile" not in body["properties"]
    generalized = vm_body(
        VmPlan(**{**plan.__dict__, "os_profile": True}), "/nic", {"location": "w"}, "k", None
    )
    assert generalized["properties"]["osProfile"]["adminUsername"] == "imageforge"
