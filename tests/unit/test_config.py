"""imageforge.config: every validation rule, each failure naming the file and the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers.cli import REPO
from spine_helpers import IMAGE_NAMES

from imageforge.config import ImageDefinition, load_image_file, select_images
from imageforge.errors import ConfigError
from imageforge.site import Site

DEBIAN = (REPO / "images" / "debian-12.pkrvars.hcl").read_text(encoding="utf-8")
WINDOWS = (REPO / "images" / "windows-2022.pkrvars.hcl").read_text(encoding="utf-8")


def replaced(text: str, old: str, new: str) -> str:
    """``text`` with the first ``old`` replaced; fails loudly when ``old`` is absent."""
    assert old in text, f"{old!r} not in the image definition"
    return text.replace(old, new, 1)


def replaced_block(text: str, key: str, new: str) -> str:
    """``text`` with the top-level ``key = { ... }`` / ``key = [ ... ]`` replaced by ``new``."""
    pattern = re.compile(rf"^{key}\s*=\s*[{{\[].*?^[}}\]]\n", re.M | re.S)
    assert pattern.search(text), f"no {key} block"
    return pattern.sub(new.replace("\\", "\\\\") + "\n", text, count=1)


def write(tmp_path: Path, text: str, name: str = "debian-12") -> Path:
    path = tmp_path / f"{name}.pkrvars.hcl"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str, name: str = "debian-12") -> tuple[Path, str]:
    path = write(tmp_path, text, name)
    with pytest.raises(ConfigError) as err:
        load_image_file(path, repo_root=REPO)
    message = str(err.value)
    assert "\n" not in message
    return path, message


def assert_names(path: Path, key: str, message: str, fragment: str) -> None:
    assert message.startswith(f"{path}: {key}: "), message
    assert fragment in message, message


# --- the shipped images ------------------------------------------------------------------


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_shipped_image_definitions_load(name):
    image = load_image_file(REPO / "images" / f"{name}.pkrvars.hcl", repo_root=REPO)
    assert isinstance(image, ImageDefinition)
    assert image.name == name
    assert image.build.region in {r.name for r in image.target_regions}


def test_image_definition_values_are_read_into_the_dataclasses(tmp_path):
    image = load_image_file(write(tmp_path, DEBIAN), repo_root=REPO)
    assert image.os_type == "Linux"
    assert image.base_image.urn() == "Debian:debian-12:12-gen2:latest"
    assert image.gallery_image.hyper_v_generation == "V2"
    assert image.communicator.type == "ssh"
    assert [(r.name, r.replicas) for r in image.target_regions] == [
        ("westeurope", 1),
        ("northeurope", 2),
        ("swedencentral", 1),
    ]
    assert image.provisioners[0] == "install-updates.sh"
    assert image.packages == ("curl", "jq", "ca-certificates")
    assert "telnetd" in image.test.forbidden_packages


def test_region_names_are_normalised_as_arm_compares_them(tmp_path):
    text = replaced(DEBIAN, 'region           = "westeurope"', 'region = "West Europe"')
    text = replaced(text, '{ name = "westeurope"', '{ name = "WestEurope"')
    image = load_image_file(write(tmp_path, text), repo_root=REPO)
    assert image.build.region == "westeurope"
    assert image.target_regions[0].name == "westeurope"
    assert image.region("West Europe").replicas == 1


def test_description_is_optional(tmp_path):
    text = replaced(DEBIAN, 'description    = "Debian 12 (bookworm) golden image, gen2"\n', "")
    assert load_image_file(write(tmp_path, text), repo_root=REPO).description == ""


def test_block_syntax_is_read_like_an_object(tmp_path):
    text = replaced(DEBIAN, "communicator = {", "communicator {")
    assert load_image_file(write(tmp_path, text), repo_root=REPO).communicator.username == "packer"


# --- reading the file --------------------------------------------------------------------


def test_malformed_hcl_names_file_and_line(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, 'os             = "linux"', "os = = 1"))
    assert message.startswith(f"{path}: line 3, column "), message
    assert message.endswith("malformed HCL")


def test_unterminated_string_names_the_file(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, '"linux"', '"linux'))
    assert message.startswith(f"{path}: ") and "malformed HCL" in message


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "debian-12.pkrvars.hcl"
    with pytest.raises(ConfigError, match=re.escape(f"{path}: file not found")):
        load_image_file(path, repo_root=REPO)


def test_unreadable_file_names_it(tmp_path):
    path = tmp_path / "debian-12.pkrvars.hcl"
    path.write_bytes(b'name = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match=re.escape(f"{path}: cannot read: ")):
        load_image_file(path, repo_root=REPO)


# --- top-level keys ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["name", "os", "version_scheme", "base_image", "gallery_image", "build", "test"]
)
def test_a_missing_required_key_is_named(tmp_path, key):
    text = "\n".join(ln for ln in DEBIAN.splitlines() if not ln.startswith(f"{key} "))
    if key in ("base_image", "gallery_image", "build", "test"):
        text = replaced_block(DEBIAN, key, "")
    path, message = config_error(tmp_path, text)
    assert_names(path, key, message, "required key is missing")


def test_a_missing_nested_key_is_named_with_its_path(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, '  publisher = "Debian"\n', ""))
    assert_names(path, "base_image.publisher", message, "required key is missing")


def test_an_unknown_top_level_key_is_named(tmp_path):
    path, message = config_error(tmp_path, DEBIAN + 'colour = "blue"\n')
    assert_names(path, "colour", message, "unknown key")


def test_an_unknown_nested_key_is_named(tmp_path):
    text = replaced(DEBIAN, '  sku       = "12-gen2"\n', '  sku       = "12-gen2"\n  skew = "x"\n')
    path, message = config_error(tmp_path, text)
    assert_names(path, "base_image.skew", message, "unknown key")


def test_an_empty_string_is_refused(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, '"Debian"', '""'))
    assert_names(path, "base_image.publisher", message, "expected a non-empty string, got ''")


def test_a_number_where_a_string_belongs_is_refused(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, 'username = "packer"', "username = 7"))
    assert_names(path, "communicator.username", message, "expected a non-empty string, got 7")


def test_a_packer_template_action_in_a_value_is_refused(tmp_path):
    # Packer runs its Go template engine over most builder and provisioner options, so
    # "{{ .Path }}" would reach Azure as "<no value>" (see test_hcl_filter).
    text = replaced(DEBIAN, '  version   = "latest"', '  version   = "{{ timestamp }}"')
    path, message = config_error(tmp_path, text)
    assert_names(path, "base_image.version", message, "Packer template action")


def test_a_packer_template_action_in_a_list_is_refused(tmp_path):
    text = replaced(DEBIAN, '"jq", "ca-certificates"]', '"jq", "{{ uuid }}"]')
    path, message = config_error(tmp_path, text)
    assert_names(path, "packages[2]", message, "Packer template action")


# --- name, os, scheme --------------------------------------------------------------------


def test_an_invalid_image_name_is_refused(tmp_path):
    text = replaced(DEBIAN, 'name           = "debian-12"', 'name = "-debian-12"')
    path, message = config_error(tmp_path, text, name="-debian-12")
    assert_names(path, "name", message, "'-debian-12' is not a valid image name")


def test_the_name_must_match_the_file_name(tmp_path):
    text = replaced(DEBIAN, 'name           = "debian-12"', 'name = "debian-11"')
    path, message = config_error(tmp_path, text)
    assert_names(path, "name", message, "'debian-11' does not match the file name")


def test_an_unknown_os_is_refused(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, '"linux"', '"bsd"'))
    assert_names(path, "os", message, "'bsd' is not one of linux, windows")


def test_an_unknown_version_scheme_is_refused(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, '"semver"', '"calver"'))
    assert_names(path, "version_scheme", message, "'calver' is not one of semver, date")


# --- base_image and gallery_image --------------------------------------------------------


def test_an_object_key_given_a_string_is_refused(tmp_path):
    path, message = config_error(tmp_path, replaced_block(DEBIAN, "base_image", 'base_image = "x"'))
    assert_names(path, "base_image", message, "expected an object { ... }, got 'x'")


@pytest.mark.parametrize(
    ("old", "new", "key", "fragment"),
    [
        ('"V2"', '"V3"', "hyper_v_generation", "'V3' is not one of V1, V2"),
        ('"TrustedLaunchSupported"', '"Bogus"', "security_type", "'Bogus' is not one of Standard"),
        (
            '"Generalized"',
            '"specialized"',
            "os_state",
            "'specialized' is not one of Generalized, Specialized",
        ),
        (
            '  name               = "debian-12"',
            '  name = "debian 12"',
            "name",
            "'debian 12' is not a valid gallery image name",
        ),
    ],
)
def test_gallery_image_values_are_checked(tmp_path, old, new, key, fragment):
    path, message = config_error(tmp_path, replaced(DEBIAN, old, new))
    assert_names(path, f"gallery_image.{key}", message, fragment)


# --- build ---------------------------------------------------------------------------------


def test_an_unknown_build_region_is_refused(tmp_path):
    text = replaced(DEBIAN, 'region           = "westeurope"', 'region = "moon-1"')
    path, message = config_error(tmp_path, text)
    assert_names(path, "build.region", message, "unknown Azure region 'moon-1'")


def test_a_build_vm_size_must_look_like_an_azure_size(tmp_path):
    text = replaced(DEBIAN, 'vm_size          = "Standard_D2s_v5"', 'vm_size = "D2s_v5"')
    path, message = config_error(tmp_path, text)
    assert_names(path, "build.vm_size", message, "'D2s_v5' is not an Azure VM size")


def test_every_allowed_vm_size_is_checked(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, '"Standard_D4s_v5"', '"D4s"'))
    assert_names(path, "build.allowed_vm_sizes[1]", message, "'D4s' is not an Azure VM size")


def test_the_build_vm_size_must_be_an_allowed_one(tmp_path):
    text = replaced(DEBIAN, 'vm_size          = "Standard_D2s_v5"', 'vm_size = "Standard_D8s_v5"')
    path, message = config_error(tmp_path, text)
    assert_names(path, "build.vm_size", message, "'Standard_D8s_v5' is not in build.allowed")


def test_allowed_vm_sizes_must_be_a_list_of_strings(tmp_path):
    text = replaced(DEBIAN, '["Standard_D2s_v5", "Standard_D4s_v5", "Standard_B2s"]', "[1, 2]")
    path, message = config_error(tmp_path, text)
    assert_names(path, "build.allowed_vm_sizes", message, "expected a list of non-empty strings")


# --- communicator ------------------------------------------------------------------------


def test_an_unknown_communicator_is_refused(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, 'type     = "ssh"', 'type = "rdp"'))
    assert_names(path, "communicator.type", message, "'rdp' is not one of ssh, winrm")


def test_a_linux_image_with_winrm_is_refused(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, 'type     = "ssh"', 'type = "winrm"'))
    assert_names(
        path, "communicator.type", message, "a linux image must use the ssh communicator, not winrm"
    )


def test_a_windows_image_with_ssh_is_refused(tmp_path):
    text = replaced(WINDOWS, 'type     = "winrm"', 'type = "ssh"')
    path, message = config_error(tmp_path, text, name="windows-2022")
    assert_names(
        path, "communicator.type", message, "a windows image must use the winrm communicator"
    )


# --- target_regions ----------------------------------------------------------------------


@pytest.mark.parametrize("replicas", ["0", "101", "-1"])
def test_replica_counts_outside_1_to_100_are_refused(tmp_path, replicas):
    text = replaced(DEBIAN, "replicas = 2", f"replicas = {replicas}")
    path, message = config_error(tmp_path, text)
    assert_names(path, "target_regions[1].replicas", message, f"{replicas} is out of range 1..100")


@pytest.mark.parametrize(("replicas", "shown"), [('"2"', "'2'"), ("true", "True"), ("1.5", "1.5")])
def test_replica_counts_must_be_integers(tmp_path, replicas, shown):
    text = replaced(DEBIAN, "replicas = 2", f"replicas = {replicas}")
    path, message = config_error(tmp_path, text)
    assert_names(path, "target_regions[1].replicas", message, f"expected an integer, got {shown}")


def test_replica_counts_1_and_100_are_accepted(tmp_path):
    text = replaced(DEBIAN, "replicas = 2", "replicas = 100")
    image = load_image_file(write(tmp_path, text), repo_root=REPO)
    assert [r.replicas for r in image.target_regions] == [1, 100, 1]


def test_target_regions_must_not_be_empty(tmp_path):
    path, message = config_error(
        tmp_path, replaced_block(DEBIAN, "target_regions", "target_regions = []")
    )
    assert_names(path, "target_regions", message, "expected a non-empty list of objects")


def test_target_regions_must_be_objects(tmp_path):
    text = replaced_block(DEBIAN, "target_regions", 'target_regions = ["westeurope"]')
    path, message = config_error(tmp_path, text)
    assert_names(path, "target_regions[0]", message, "expected an object, got 'westeurope'")


def test_an_unknown_target_region_is_refused(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, '"northeurope"', '"northpole"'))
    assert_names(path, "target_regions[1].name", message, "unknown Azure region 'northpole'")


def test_an_unknown_storage_account_type_is_refused(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, '"Standard_ZRS"', '"Floppy_LRS"'))
    assert_names(
        path,
        "target_regions[1].storage_account_type",
        message,
        "'Floppy_LRS' is not one of Standard_LRS",
    )


def test_a_region_listed_twice_is_refused(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, '"northeurope"', '"West Europe"'))
    assert_names(path, "target_regions[1].name", message, "region 'westeurope' is listed twice")


def test_an_unknown_key_in_a_target_region_is_named(tmp_path):
    text = replaced(DEBIAN, "replicas = 2,", "replicas = 2, zone = 1,")
    path, message = config_error(tmp_path, text)
    assert_names(path, "target_regions[1].zone", message, "unknown key")


def test_the_build_region_must_be_a_target_region(tmp_path):
    text = replaced(DEBIAN, 'region           = "westeurope"', 'region = "eastus"')
    path, message = config_error(tmp_path, text)
    assert_names(path, "target_regions", message, "must include the build region 'eastus'")


# --- provisioners, packages, features ----------------------------------------------------


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        ("install updates.sh", "'install updates.sh' is not a script file name"),
        ("../etc/passwd.sh", "is not a script file name"),
        ("install-updates", "is not a script file name (*.sh or *.ps1)"),
        ("Install-WindowsUpdates.ps1", "a linux image runs .sh scripts"),
        ("generalize.sh", "generalize.sh runs last by itself"),
        ("install-nothing.sh", "provisioners/linux/install-nothing.sh does not exist"),
    ],
)
def test_provisioner_scripts_are_checked(tmp_path, script, fragment):
    text = replaced(DEBIAN, '"install-packages.sh"', f'"{script}"')
    path, message = config_error(tmp_path, text)
    assert_names(path, "provisioners[1]", message, fragment)


def test_a_windows_image_runs_ps1_scripts(tmp_path):
    text = replaced(WINDOWS, '"Configure-WinRM.ps1"', '"install-updates.sh"')
    path, message = config_error(tmp_path, text, name="windows-2022")
    assert_names(path, "provisioners[2]", message, "a windows image runs .ps1 scripts")


def test_packages_on_a_windows_image_are_refused(tmp_path):
    text = replaced(
        WINDOWS, 'features = ["Web-Server"]', 'features = ["Web-Server"]\npackages = ["jq"]'
    )
    path, message = config_error(tmp_path, text, name="windows-2022")
    assert_names(path, "packages", message, "packages are installed on Linux images")


def test_features_on_a_linux_image_are_refused(tmp_path):
    path, message = config_error(tmp_path, DEBIAN + 'features = ["Web-Server"]\n')
    assert_names(path, "features", message, "features exist only on Windows images")


# --- test ---------------------------------------------------------------------------------


def test_required_features_on_a_linux_image_are_refused(tmp_path):
    text = replaced(DEBIAN, '  vm_size            = "Standard_B2s"', '  vm_size = "Standard_B2s"\n'
                    '  required_features = ["Web-Server"]')  # fmt: skip
    path, message = config_error(tmp_path, text)
    assert_names(path, "test.required_features", message, "features exist only on Windows")


def test_the_test_suite_must_be_a_directory(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, '"tests/image/linux"', '"tests/nope"'))
    assert_names(path, "test.suite", message, "tests/nope is not a directory")


def test_the_test_vm_size_must_look_like_an_azure_size(tmp_path):
    text = replaced(DEBIAN, 'vm_size            = "Standard_B2s"', 'vm_size = "B2s"')
    path, message = config_error(tmp_path, text)
    assert_names(path, "test.vm_size", message, "'B2s' is not an Azure VM size")


def test_a_package_cannot_be_both_required_and_forbidden(tmp_path):
    path, message = config_error(tmp_path, replaced(DEBIAN, '["telnetd",', '["curl", "telnetd",'))
    assert_names(path, "test.forbidden_packages", message, "also required: curl")


def test_an_unknown_key_in_test_is_named(tmp_path):
    text = replaced(DEBIAN, '  suite              = "tests/image/linux"',
                    '  suite = "tests/image/linux"\n  timeout = 5')  # fmt: skip
    path, message = config_error(tmp_path, text)
    assert_names(path, "test.timeout", message, "unknown key")


def test_asking_for_a_region_that_is_not_a_target_names_file_and_key(tmp_path):
    path = write(tmp_path, DEBIAN)
    image = load_image_file(path, repo_root=REPO)
    with pytest.raises(ConfigError) as err:
        image.region("eastus")
    assert str(err.value).startswith(f"{path}: target_regions: region 'eastus' is not a target")


# --- selecting images --------------------------------------------------------------------


def test_select_images_by_os():
    linux = select_images(REPO / "images", os_name="linux")
    assert [i.name for i in linux] == ["debian-12", "debian-12-hardened", "ubuntu-24.04"]


def test_select_images_all_by_default_in_name_order():
    assert [i.name for i in select_images(REPO / "images")] == list(IMAGE_NAMES)
    assert [i.name for i in select_images(REPO / "images", os_name="all")] == list(IMAGE_NAMES)


def test_select_images_by_name_keeps_order_and_drops_repeats():
    chosen = select_images(REPO / "images", names=["windows-2022", "debian-12", "windows-2022"])
    assert [i.name for i in chosen] == ["windows-2022", "debian-12"]


def test_select_images_refuses_an_unknown_os():
    with pytest.raises(ConfigError, match=r"^unknown --os 'beos': expected linux, windows or all$"):
        select_images(REPO / "images", os_name="beos")


def test_select_images_refuses_an_unknown_image_and_lists_the_known_ones():
    with pytest.raises(ConfigError) as err:
        select_images(REPO / "images", names=["debian-13"])
    assert str(err.value) == (
        f"unknown --image 'debian-13': {REPO / 'images'} has debian-12, debian-12-hardened, "
        "ubuntu-24.04, windows-2022"
    )


def test_select_images_refuses_an_empty_images_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"no image definitions \(\*\.pkrvars\.hcl\) in "):
        select_images(tmp_path)


def test_select_images_refuses_names_that_do_not_match_the_os():
    with pytest.raises(ConfigError, match="none of the images asked for is a windows image"):
        select_images(REPO / "images", names=["debian-12"], os_name="windows")


# --- site settings -----------------------------------------------------------------------


def test_site_from_config_takes_the_declared_settings():
    site = Site.from_config({"gallery": "g1", "tags": {"team": "platform"}}, REPO)
    assert (site.gallery, dict(site.tags), site.root) == ("g1", {"team": "platform"}, REPO)


def test_site_from_config_refuses_an_unknown_setting_naming_it():
    with pytest.raises(ConfigError, match=r"^imageforge\.colour: unknown setting$"):
        Site.from_config({"colour": "blue"}, REPO)


def test_site_from_config_refuses_an_unknown_on_error_mode_naming_the_setting():
    with pytest.raises(ConfigError, match=r"^imageforge\.on_error: 'explode' is not a Packer"):
        Site.from_config({"on_error": "explode"}, REPO)


def test_site_paths_are_under_the_root():
    site = Site.from_config({"build_dir": "out"}, REPO)
    assert site.build_path == REPO / "out"
    assert site.images_path == REPO / "images"


def test_target_auto_is_azure_when_a_subscription_is_configured(monkeypatch):
    monkeypatch.delenv("ARM_SUBSCRIPTION_ID", raising=False)
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    site = Site(root=REPO, subscription_id="00000000-0000-0000-0000-000000000001")
    assert site.resolve_target() == ("azure", "an Azure subscription is configured")


def test_target_auto_uses_the_subscription_from_the_environment(monkeypatch):
    monkeypatch.delenv("ARM_SUBSCRIPTION_ID", raising=False)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000002")
    assert Site(root=REPO).resolve_target()[0] == "azure"


def test_target_auto_is_the_sandbox_without_a_subscription(monkeypatch):
    monkeypatch.delenv("ARM_SUBSCRIPTION_ID", raising=False)
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    assert Site(root=REPO).resolve_target() == ("sandbox", "no Azure subscription is configured")


def test_an_explicit_target_wins():
    site = Site(root=REPO, subscription_id="00000000-0000-0000-0000-000000000001")
    assert site.resolve_target("sandbox") == ("sandbox", "--target sandbox")


def test_an_unknown_target_is_refused():
    with pytest.raises(ConfigError, match=r"^unknown --target 'gcp': expected azure, sandbox"):
        Site(root=REPO).resolve_target("gcp")
