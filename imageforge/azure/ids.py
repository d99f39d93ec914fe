"""ARM ids of what imageforge keeps in a site's gallery, and how messages name the gallery."""

from __future__ import annotations

from imageforge.azure.clients import Session
from imageforge.config import ImageDefinition


def group_id(session: Session, group: str | None = None) -> str:
    name = group or session.site.resource_group
    return f"/subscriptions/{session.subscription_id}/resourceGroups/{name}"


def gallery_id(session: Session) -> str:
    return f"{group_id(session)}/providers/Microsoft.Compute/galleries/{session.site.gallery}"


def definition_id(session: Session, image: ImageDefinition) -> str:
    return f"{gallery_id(session)}/images/{image.gallery_image.name}"


def version_id(session: Session, image: ImageDefinition, version: str) -> str:
    return f"{definition_id(session, image)}/versions/{version}"


def where(session: Session) -> str:
    """``gallery G (resource group R)``, for messages."""
    return f"gallery {session.site.gallery} (resource group {session.site.resource_group})"
