"""The sandbox marketplace's image versions (``VirtualMachineImages`` of ComputeRP).

``GET .../locations/{l}/publishers/{p}/artifacttypes/vmimage/offers/{o}/skus/{s}/versions``
lists a sandbox base image's versions as ``VirtualMachineImageResource`` items (``name``,
``location``, ``id``; a bare JSON array, as Azure answers, honouring ``$orderby=name desc`` and
``$top``); ``.../versions/{v}`` gets one as ``VirtualMachineImage`` (``properties`` with
``osDiskImage.operatingSystem``, ``hyperVGeneration``, ``architecture``). Every region serves
the same versions.

A base starts with one version named after its debootstrap snapshot, ``0.YYYYMMDD.HHMM`` of
the time the backend built the base tree (the emulator's start when it is not built yet), as
Azure's Debian images are named ``0.<date>.<build>``. The admin API publishes a newer one
(``POST /_sandbox/marketplace``), so "a newer base exists" can be rehearsed; a VM asking for
``latest`` boots the newest, one asking for a version that does not exist is refused with
PlatformImageNotFound. Unknown publishers, offers and skus are answered 404 (their messages
are from memory of Azure's answers, not from the spec).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from imageforge.sandbox.backend import MARKETPLACE, BaseImage
from imageforge.sandbox.emulator import regions
from imageforge.sandbox.emulator.armerrors import ArmError, invalid_parameter
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

TYPE = "imageforge.sandbox/marketplaceVersions"


def _key(base: BaseImage) -> str:
    return f"/sandbox/marketplace/{base.publisher}/{base.offer}/{base.sku}".lower()


def version_key(name: str) -> tuple[int, ...]:
    """Azure marketplace versions are dotted integers; sort them as numbers."""
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return ()


def _name_for(moment: dt.datetime) -> str:
    return f"0.{moment:%Y%m%d}.{moment:%H%M}"


def find(publisher: str, offer: str, sku: str) -> BaseImage | None:
    wanted = (publisher.lower(), offer.lower(), sku.lower())
    return next(
        (b for b in MARKETPLACE if (b.publisher.lower(), b.offer.lower(), b.sku.lower()) == wanted),
        None,
    )


def versions_of(em: Emulator, base: BaseImage) -> list[str]:
    """The base's versions, oldest first (the first one made from its snapshot when asked)."""
    with em.store.lock:
        found = [r.body["name"] for r in em.store.resources(TYPE, _key(base))]
        if not found:
            snapshot = em.backend.base_snapshot(base) or dt.datetime.now(dt.UTC)
            _store(em, base, _name_for(snapshot))
            found = [_name_for(snapshot)]
    return sorted(found, key=version_key)


def _store(em: Emulator, base: BaseImage, name: str) -> None:
    rid = f"{_key(base)}/{name}"
    em.store.put(
        Resource(rid, TYPE, {"name": name, "published": dt.datetime.now(dt.UTC).isoformat()})
    )


def publish(em: Emulator, body: Any) -> dict[str, Any]:
    """Admin API: a new version of a sandbox base (``{publisher, offer, sku, version?}``)."""
    if not isinstance(body, dict):
        raise invalid_parameter("Send {publisher, offer, sku} and optionally version.")
    base = find(*(str(body.get(k, "")) for k in ("publisher", "offer", "sku")))
    if base is None:
        raise _not_found("VMImage")
    existing = versions_of(em, base)
    name = str(body.get("version") or _name_for(dt.datetime.now(dt.UTC)))
    if not version_key(name):
        raise invalid_parameter(f"'{name}' is not a version (dotted integers).", target="version")
    if name in existing or version_key(name) <= version_key(existing[-1]):
        raise ArmError(409, "Conflict", f"Version '{name}' is not newer than '{existing[-1]}'.")
    with em.store.lock:
        _store(em, base, name)
    return {"publisher": base.publisher, "offer": base.offer, "sku": base.sku, "version": name}


def resolve(em: Emulator, base: BaseImage, version: str) -> str | None:
    """The exact version a reference to ``version`` (or ``latest``) names, or None."""
    available = versions_of(em, base)
    if version.lower() == "latest":
        return available[-1]
    return version if version in available else None


def _not_found(what: str) -> ArmError:
    return ArmError(404, "NotFound", f"Artifact: {what} was not found.")


def _base(req: ArmRequest) -> BaseImage:
    base = find(req.param("publisherName"), req.param("offer"), req.param("skus"))
    if base is None:
        raise _not_found("VMImage")
    return base


def _image_id(req: ArmRequest, base: BaseImage, location: str, name: str) -> str:
    return (
        f"/Subscriptions/{req.subscription}/Providers/Microsoft.Compute/Locations/{location}"
        f"/Publishers/{base.publisher}/ArtifactTypes/VMImage/Offers/{base.offer}"
        f"/Skus/{base.sku}/Versions/{name}"
    )


def _location(req: ArmRequest) -> str:
    location = regions.normalize(req.param("location"))
    if not regions.is_region(location):
        raise ArmError(
            404,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location '{req.param('location')}'.",
        )
    return location


def list_versions(em: Emulator, req: ArmRequest) -> ArmResponse:
    location = _location(req)
    base = _base(req)
    names = versions_of(em, base)
    orderby = req.query.get("$orderby", "").lower().replace(" ", "")
    if orderby == "namedesc":
        names = list(reversed(names))
    top = req.query.get("$top")
    if top is not None:
        if not top.isdigit():
            raise invalid_parameter(f"'{top}' is not a valid value for $top.", target="$top")
        names = names[: int(top)]
    items = [
        {"location": location, "name": n, "id": _image_id(req, base, location, n)} for n in names
    ]
    return ArmResponse(200, items)


def get_version(em: Emulator, req: ArmRequest) -> ArmResponse:
    location = _location(req)
    base = _base(req)
    name = req.param("version")
    if name not in versions_of(em, base):
        raise _not_found("VMImage")
    return ArmResponse(
        200,
        {
            "location": location,
            "name": name,
            "id": _image_id(req, base, location, name),
            "properties": {
                "osDiskImage": {"operatingSystem": base.os_type},
                "hyperVGeneration": base.hyper_v_generation,
                "architecture": "x64",
                "dataDiskImages": [],
            },
        },
    )
