"""Option lint of rendered azure-arm sources against the azure plugin's documented options.

Packer 1.6.6 cannot validate the `plugin` profile (it has no external plugins), so that
profile is checked by parsing the rendered HCL with python-hcl2 and comparing every
azure-arm attribute and nested block with the option list of packer-plugin-azure 2.x
(imageforge/data/packer-plugin-azure-arm-options.json, taken from the plugin's docs).
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
            problems += _check_block(body, top, blocks, f"sources.pkr.hcl: azure-arm.{name}")
    if not found:
        problems.append("sources.pkr.hcl: no azure-arm source")
    return problems


def check_plugin_profile(directory: Path) -> None:
    problems = lint_plugin_profile(directory)
    if problems:
        raise ValidationError(
            problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )
