"""Helpers every resource handler uses: ids, lookups, validation, rendering, paging, and the
long-running PUT and DELETE of resources whose work is bookkeeping (``put_with_operation``,
``delete_resource``), answered with the monitors of a ``Provider``."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from imageforge.sandbox.emulator import regions
from imageforge.sandbox.emulator.armerrors import (
    ArmError,
    bad_request_body,
    operation_in_progress,
    parent_not_found,
    resource_group_not_found,
    resource_not_found,
)
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.lro import OnFailure
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

TRANSITIONAL = ("Creating", "Updating", "Deleting")
RG_TYPE = "Microsoft.Resources/resourceGroups"
MAX_TAGS = 50
_TAG_NAME_FORBIDDEN = re.compile(r"[<>%&\\?/]")


@dataclass(frozen=True)
class Provider:
    """A resource provider as its long-running answers show it: its namespace and the style
    of operation monitors it hands out (see ``Operations.start``)."""

    namespace: str
    style: str


COMPUTE = Provider("Microsoft.Compute", "compute")
#: GalleryRP, inside Microsoft.Compute, monitors with capsOperations.
GALLERY = Provider("Microsoft.Compute", "gallery")
NETWORK = Provider("Microsoft.Network", "network")


def rg_id(sub: str, group: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}"


def provider_id(sub: str, group: str, provider: str, *pairs: str) -> str:
    """``/subscriptions/s/resourceGroups/g/providers/P/type/name[/type/name...]``."""
    return f"{rg_id(sub, group)}/providers/{provider}/" + "/".join(pairs)


def id_name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def require_group(em: Emulator, sub: str, group: str) -> Resource:
    found = em.store.get(rg_id(sub, group))
    if found is None:
        raise resource_group_not_found(group)
    return found


def require(em: Emulator, resource_id: str, type_name: str, group: str) -> Resource:
    """The resource or ResourceNotFound (ResourceGroupNotFound when its group is missing)."""
    found = em.store.get(resource_id)
    if found is not None:
        return found
    sub = resource_id.split("/")[2]
    require_group(em, sub, group)
    # ARM names the resource by its path below /providers/: Namespace/type/name[/type/name]
    namespace, _, path = resource_id.split("/providers/", 1)[1].partition("/")
    raise resource_not_found(namespace, path, group)


def require_parent(em: Emulator, parent_id: str, group: str) -> Resource:
    found = em.store.get(parent_id)
    if found is not None:
        return found
    sub = parent_id.split("/")[2]
    require_group(em, sub, group)
    raise parent_not_found(id_name(parent_id))


def body_object(req: ArmRequest) -> dict[str, Any]:
    if not isinstance(req.body, dict):
        raise bad_request_body("The request content was invalid and could not be deserialized.")
    return req.body


def properties_of(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("properties", {})
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise bad_request_body("'properties' must be a JSON object.")
    return props


def location_of(body: dict[str, Any], resource_type: str) -> str:
    """The body's location, normalized, or ARM's LocationRequired / location error."""
    location = body.get("location")
    if not location:
        raise ArmError(
            400, "LocationRequired", "The location property is required for this definition."
        )
    if not regions.is_region(location):
        raise ArmError(
            400,
            "LocationNotAvailableForResourceType",
            f"The provided location '{location}' is not available for resource type "
            f"'{resource_type}'. List of available regions for the resource type is "
            f"'{','.join(sorted(regions.REGIONS))}'.",
        )
    return regions.normalize(location)


def same_location(existing: Resource, location: str, resource_type: str) -> None:
    if existing.body.get("location") != location:
        raise ArmError(
            409 if resource_type == RG_TYPE else 400,
            "InvalidResourceGroupLocation"
            if resource_type == RG_TYPE
            else "InvalidResourceLocation",
            f"The resource '{existing.body.get('name')}' already exists in location "
            f"'{existing.body.get('location')}'. A resource with the same name cannot be created "
            f"in location '{location}'.",
        )


def tags_of(body: dict[str, Any], default: dict[str, str] | None = None) -> dict[str, str]:
    """Validate tags as ARM does (at most 50, name <= 512, value <= 256 characters)."""
    if "tags" not in body or body["tags"] is None:
        return dict(default or {})
    tags = body["tags"]
    if not isinstance(tags, dict):
        raise bad_request_body("'tags' must be a JSON object of strings.")
    if len(tags) > MAX_TAGS:
        raise ArmError(
            400,
            "InvalidTagCount",
            f"The number of tags ({len(tags)}) exceeds the limit of {MAX_TAGS} per resource.",
        )
    for name, value in tags.items():
        if not isinstance(value, str):
            raise bad_request_body(f"The value of tag '{name}' must be a string.")
        if len(name) > 512 or not name:
            raise ArmError(
                400, "InvalidTagNameLength", f"The tag name '{name[:40]}...' is too long."
            )
        if _TAG_NAME_FORBIDDEN.search(name):
            raise ArmError(
                400,
                "InvalidTagNameCharacters",
                f"The tag names '{name}' have reserved characters '<,>,%,&,\\,?,/' or control "
                "characters.",
            )
        if len(value) > 256:
            raise ArmError(
                400, "InvalidTagValueLength", f"The value of tag '{name}' exceeds 256 characters."
            )
    return dict(tags)


def drop(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A deep copy of ``data`` without ``keys`` (read-only fields are ignored on input)."""
    out = copy.deepcopy(data)
    for key in keys:
        out.pop(key, None)
    return out


def base_body(
    resource_id: str, type_name: str, location: str | None, tags: dict[str, str]
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": resource_id, "name": id_name(resource_id), "type": type_name}
    if location is not None:
        body["location"] = location
    body["tags"] = tags
    return body


def set_state(em: Emulator, resource_id: str, state: str) -> Resource | None:
    """Set provisioningState of a stored resource (if it still exists)."""
    with em.store.lock:
        found = em.store.get(resource_id)
        if found is None:
            return None
        found.properties["provisioningState"] = state
        return em.store.put(found)


def failure_handler(em: Emulator, resource_id: str) -> OnFailure:
    """An LRO on_failure callback that marks the resource Failed."""

    def on_failure(_error: dict[str, Any]) -> None:
        set_state(em, resource_id, "Failed")

    return on_failure


def paginate(em: Emulator, req: ArmRequest, items: list[dict[str, Any]]) -> ArmResponse:
    """One page of ``items`` with a ``nextLink`` when more remain ($skiptoken = offset)."""
    size = em.config.page_size
    top = req.query.get("$top")
    if top is not None:
        try:
            size = max(1, min(size, int(top)))
        except ValueError:
            raise ArmError(400, "InvalidParameter", f"$top '{top}' is not an integer.") from None
    token = req.query.get("$skiptoken", "0")
    try:
        start = int(token)
    except ValueError:
        raise ArmError(400, "InvalidSkipToken", f"The skip token '{token}' is invalid.") from None
    page = items[start : start + size]
    body: dict[str, Any] = {"value": page}
    if start + size < len(items):
        extra = "".join(
            f"&{quote(key, safe='$')}={quote(value, safe='')}"
            for key, value in req.query.items()
            if key not in ("api-version", "$skiptoken")
        )
        body["nextLink"] = (
            f"{req.base_url}{req.path}?api-version={req.api_version}{extra}"
            f"&$skiptoken={start + size}"
        )
    return ArmResponse(200, body)


def put_with_operation(
    em: Emulator,
    req: ArmRequest,
    res: Resource,
    rp: Provider,
    *,
    created: bool,
    render: Callable[[Resource], dict[str, Any]] | None = None,
) -> ArmResponse:
    """Store ``res`` as Creating/Updating and finish it (Succeeded) as an LRO.

    The work of such resources is bookkeeping only, so the operation is done by the first
    poll (unless the emulator's LRO pace says otherwise).
    """
    res.properties["provisioningState"] = "Creating" if created else "Updating"
    em.store.put(res)
    shown = (render or (lambda r: r.body))(res)

    def work(_op_id: str) -> None:
        set_state(em, res.id, "Succeeded")

    return em.ops.start(
        req,
        provider=rp.namespace,
        location=res.body.get("location", ""),
        resource_id=res.id,
        work=work,
        on_failure=failure_handler(em, res.id),
        status=201 if created else 200,
        body=shown,
        style=rp.style,
    )


def delete_resource(
    em: Emulator,
    req: ArmRequest,
    resource_id: str,
    what: str,
    rp: Provider,
    *,
    refuse: Callable[[Emulator, Resource], None] | None = None,
    cleanup: Callable[[Emulator, Resource], None] | None = None,
) -> ArmResponse:
    """ARM's DELETE of one resource, ``what`` naming its kind in errors.

    A missing resource answers 204 (its resource group must exist); one with an operation
    running is refused, as is one ``refuse`` says something still uses. Otherwise it is marked
    Deleting and removed, after ``cleanup``, by an operation answering 202; if that fails, it
    gets its previous state back (Failed if that was transitional).
    """
    with em.store.lock:
        res = em.store.get(resource_id)
        if res is None:
            require_group(em, req.subscription, req.param("resourceGroupName"))
            return ArmResponse(204)
        reject_if_busy(res, f"{what} '{res.body['name']}'")
        if refuse is not None:
            refuse(em, res)
        previous = res.properties.get("provisioningState", "Succeeded")
        res.properties["provisioningState"] = "Deleting"
        em.store.put(res)

        def run(_op_id: str) -> None:
            if cleanup is not None:
                cleanup(em, res)
            em.store.delete(res.id)

        def on_failure(_error: dict[str, Any]) -> None:
            set_state(em, res.id, previous if previous not in TRANSITIONAL else "Failed")

        return em.ops.start(
            req,
            provider=rp.namespace,
            location=res.body.get("location", ""),
            resource_id=res.id,
            work=run,
            on_failure=on_failure,
            status=202,
            style=rp.style,
        )


def reject_if_busy(res: Resource, what: str) -> None:
    """409 OperationNotAllowed while another operation on ``res`` runs."""
    if res.properties.get("provisioningState") in TRANSITIONAL:
        raise operation_in_progress(what)
