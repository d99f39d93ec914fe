"""Option lint of rendered azure-arm sources against the azure plugin's documented options.

Packer 1.6.6 cannot validate the `plugin` profile (it has no external plugins), so that
profile is checked by parsing the rendered HCL with python-hcl2 and comparing every
azure-arm attribute and nested block with the option list of packer-plugin-azure 2.x
(imageforge/data/packer-plugin-azure-arm-options.json, taken from the plugin's docs), and
with the option combinations the plugin's own Config.Prepare refuses (``_refusals``).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from imageforge import hclio
from imageforge.errors import ValidationError

OPTIONS_FILE = Path(__file__).parent / "data" / "packer-plugin-azure-arm-options.json"


@cache
def documented_options() -> dict[str, Any]:
    return json.loads(OPTIONS_FILE.read_text(encoding="utf-8"))


def _check_block(
    body: dict[str, Any], allowed: set[str], blocks: dict[str, list[str]], where: str
) -> list[str]:
    problems = []
    for key, value in body.items():
        if key not in allowed:  # a block is allowed only where it is documented
            problems.append(f"{where}: {key!r} is not a documented azure-arm option")
            continue
        if key in blocks:
            items = value if isinstance(value, list) else [value]
            for index, item in enumerate(items):
                if isinstance(item, dict):
                    problems += _check_block(
                        item, set(blocks[key]), blocks, f"{where}.{key}[{index}]"
                    )
    return problems


#: What packer-plugin-azure's Config.Prepare refuses among the options the templates use, with the
#: plugin's own messages (builder/azure/arm/config.go at v2.6.3: the shared_image_gallery_
#: destination checks, the managed image checks (trusted launch, Specialized, storage) and the
#: public_ip_sku checks). The real plugin's `packer validate` is the authority; this repeats
#: its refusals where it cannot run.
_REPLICATED_REGIONS = (
    "`replicated_regions` can not be defined alongside `target_region`; you can define a "
    "target_region for each destination region you wish to replicate to."
)
_REPLICA_COUNT = (
    "`shared_image_gallery_replica_count` can not be defined alongside `target_region`; you can "
    "define `replicas` inside each target_region block to set the number replicas for each region"
)
_MANAGED_TOGETHER = (
    "managed_image_name and managed_image_resource_group_name must be specified together"
)
_MANAGED_TRUSTED = (
    "A managed image (managed_image_name, managed_image_resource_group_name) can not set "
    "SecureBoot or VTpm, these features are only supported when directly publishing to a Shared "
    "Image Gallery"
)
_MANAGED_SPECIALIZED = (
    "A managed image (managed_image_name, managed_image_resource_group_name) can not be "
    "Specialized (shared_image_gallery_destination.specialized can not be set), Specialized "
    "images are only supported when directly publishing to a Shared Image Gallery"
)
_MANAGED_STORAGE = ("Standard_LRS", "StandardSSD_LRS", "Premium_LRS")
_SKU_WITH_VNET = (
    "If virtual_network_name is specified, public_ip_sku cannot be specified, since a new "
    "network will not be created"
)


def _refusals(body: dict[str, Any], where: str) -> list[str]:
    destinations = body.get("shared_image_gallery_destination") or []
    if isinstance(destinations, dict):
        destinations = [destinations]
    targets = any(isinstance(d, dict) and d.get("target_region") for d in destinations)
    problems = []
    if targets and any(isinstance(d, dict) and d.get("replication_regions") for d in destinations):
        problems.append(f"{where}: {_REPLICATED_REGIONS}")
    if targets and body.get("shared_image_gallery_replica_count"):
        problems.append(f"{where}: {_REPLICA_COUNT}")
    problems += _managed_image_refusals(body, where)
    sku = body.get("public_ip_sku")
    if sku and body.get("virtual_network_name"):
        problems.append(f"{where}: {_SKU_WITH_VNET}")
    if sku and str(sku).lower() not in ("basic", "standard"):
        problems.append(
            f'{where}: The provided value of "{sku}" for public_ip_sku does not match the '
            'allowed values of "Basic" or "Standard"'
        )
    return problems


def _managed_image_refusals(body: dict[str, Any], where: str) -> list[str]:
    """config.go's refusals of a managed image output (beside the gallery destination)."""
    name, group = body.get("managed_image_name"), body.get("managed_image_resource_group_name")
    if not name and not group:
        return []
    problems = [] if name and group else [f"{where}: {_MANAGED_TOGETHER}"]
    if body.get("secure_boot_enabled") or body.get("vtpm_enabled"):
        problems.append(f"{where}: {_MANAGED_TRUSTED}")
    destinations = body.get("shared_image_gallery_destination") or []
    if isinstance(destinations, dict):
        destinations = [destinations]
    if any(isinstance(d, dict) and d.get("specialized") is True for d in destinations):
        problems.append(f"{where}: {_MANAGED_SPECIALIZED}")
    storage = body.get("managed_image_storage_account_type")
    if storage and storage not in _MANAGED_STORAGE:
        problems.append(f'{where}: The managed_image_storage_account_type "{storage}" is invalid')
    return problems


def lint_plugin_profile(directory: Path) -> list[str]:
    """Problems found in a rendered `plugin` profile folder (an empty list when clean)."""
    options = documented_options()
    top = set(options["top_level"])
    blocks = options["blocks"]
    problems: list[str] = []
    packer = hclio.load(directory / "packer.pkr.hcl").get("packer", [{}])
    plugins = packer[0].get("required_plugins", []) if packer else []
    azure = plugins[0].get("azure") if plugins else None
    if not azure or "github.com/hashicorp/azure" not in str(azure.get("source", "")):
        problems.append(
            "packer.pkr.hcl: the plugin profile must require github.com/hashicorp/azure"
        )
    sources = hclio.load(directory / "sources.pkr.hcl").get("source", [])
    found = False
    for source in sources:
        for name, body in source.get("azure-arm", {}).items():
            found = True
            where = f"sources.pkr.hcl: azure-arm.{name}"
            problems += _check_block(body, top, blocks, where)
            problems += _refusals(body, where)
    if not found:
        problems.append("sources.pkr.hcl: no azure-arm source")
    return problems


def check_plugin_profile(directory: Path) -> None:
    problems = lint_plugin_profile(directory)
    if problems:
        raise ValidationError(
            problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )
