"""The image definition as its image file says it should be, and the properties of it that
Azure cannot change after creation (checked before anything is built). Nothing here calls ARM.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imageforge import tags
from imageforge.azure.clients import Session
from imageforge.config import ImageDefinition
from imageforge.errors import ConfigError
from imageforge.site import Site

CREATED_BY_VALUE = "imageforge"
ARCHITECTURE = "x64"


def base_tags(site: Site) -> dict[str, str]:
    """The tags of everything imageforge creates in the site's resource group."""
    return tags.merge(site.tags, {tags.CREATED_BY: CREATED_BY_VALUE})


def definition_body(session: Session, image: ImageDefinition) -> dict[str, Any]:
    """The image definition as the image file says it should be."""
    spec = image.gallery_image
    return {
        "location": session.site.location,
        "tags": tags.merge(base_tags(session.site), {tags.IMAGE: image.name}),
        "properties": {
            "description": image.description,
            "osType": image.os_type,
            "osState": spec.os_state,
            "hyperVGeneration": spec.hyper_v_generation,
            "architecture": ARCHITECTURE,
            "identifier": {"publisher": spec.publisher, "offer": spec.offer, "sku": spec.sku},
            "features": [{"name": "SecurityType", "value": spec.security_type}],
        },
    }


def _immutable(props: Mapping[str, Any]) -> dict[str, str]:
    identifier = props.get("identifier") or {}
    features = {
        str(f.get("name", "")).lower(): str(f.get("value", ""))
        for f in props.get("features") or []
        if isinstance(f, Mapping)
    }
    return {
        "osType": str(props.get("osType", "")),
        "osState": str(props.get("osState", "")),
        "hyperVGeneration": str(props.get("hyperVGeneration") or "V1"),
        "architecture": str(props.get("architecture") or ARCHITECTURE),
        "identifier.publisher": str(identifier.get("publisher", "")),
        "identifier.offer": str(identifier.get("offer", "")),
        "identifier.sku": str(identifier.get("sku", "")),
        "features.SecurityType": features.get("securitytype", "Standard"),
    }


def check_definition(
    image: ImageDefinition, existing: Mapping[str, Any], wanted: Mapping[str, Any]
) -> None:
    """Refuse (ConfigError) when the gallery's definition differs from the file in what
    Azure cannot change after creation."""
    have = _immutable(existing.get("properties") or {})
    want = _immutable(wanted.get("properties") or {})
    for key, value in want.items():
        if have[key].lower() != value.lower():
            raise ConfigError(
                f"refusing to change gallery image {image.gallery_image.name}: {key} is "
                f"{have[key]!r} in the gallery but {value!r} in the image file "
                "(Azure cannot change it; use a new gallery image name)",
                path=str(image.path),
                key="gallery_image",
            )
