"""Microsoft.Resources resource groups: PUT, GET, HEAD, PATCH, list ($filter on tags), DELETE.

PUT/GET/HEAD/PATCH are synchronous as in ARM. DELETE answers 202 with a Location monitor
(``/subscriptions/{s}/operationresults/{id}``) and removes everything inside the group in the
background, virtual machines through the machine backend.
"""

from __future__ import annotations

import re
from typing import Any

from imageforge.sandbox.emulator.armerrors import ArmError, resource_group_not_found
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common, teardown
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

TYPE = common.RG_TYPE
_NAME = re.compile(r"^[-\w._()]{1,90}$")
_TAG_FILTER = re.compile(
    r"^\s*tagname\s+eq\s+'(?P<name>(?:[^']|'')*)'"
    r"(?:\s+and\s+tagvalue\s+eq\s+'(?P<value>(?:[^']|'')*)')?\s*$",
    re.IGNORECASE,
)


def _render(res: Resource) -> dict[str, Any]:
    return res.body


def put(em: Emulator, req: ArmRequest) -> ArmResponse:
    name = req.param("resourceGroupName")
    if not _NAME.match(name) or name.endswith("."):
        raise ArmError(
            400,
            "InvalidResourceGroupName",
            f"The resource group name '{name}' is invalid: use up to 90 letters, digits, "
            "underscores, hyphens, periods and parentheses, not ending in a period.",
        )
    body = common.body_object(req)
    location = common.location_of(body, TYPE)
    tags = common.tags_of(body)
    with em.store.lock:
        existing = em.store.get(common.rg_id(req.subscription, name))
        if existing is not None:
            common.same_location(existing, location, TYPE)
            if existing.properties.get("provisioningState") == "Deleting":
                raise ArmError(
                    409,
                    "ResourceGroupBeingDeleted",
                    f"The resource group '{existing.body['name']}' is in deprovisioning state and "
                    "cannot perform this operation.",
                )
            existing.body["tags"] = tags
            em.store.put(existing)
            return ArmResponse(200, _render(existing))
        res = Resource(common.rg_id(req.subscription, name), TYPE.lower(), {})
        res.body = common.base_body(res.id, TYPE, location, tags)
        res.body["properties"] = {"provisioningState": "Succeeded"}
        managed_by = body.get("managedBy")
        if managed_by:
            res.body["managedBy"] = managed_by
        em.store.put(res)
    return ArmResponse(201, _render(res))


def _require(em: Emulator, req: ArmRequest) -> Resource:
    name = req.param("resourceGroupName")
    found = em.store.get(common.rg_id(req.subscription, name))
    if found is None:
        raise resource_group_not_found(name)
    return found


def get(em: Emulator, req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, _render(_require(em, req)))


def head(em: Emulator, req: ArmRequest) -> ArmResponse:
    found = em.store.get(common.rg_id(req.subscription, req.param("resourceGroupName")))
    return ArmResponse(204 if found is not None else 404)


def patch(em: Emulator, req: ArmRequest) -> ArmResponse:
    body = common.body_object(req)
    with em.store.lock:
        res = _require(em, req)
        if "tags" in body:
            res.body["tags"] = common.tags_of(body)
        if "managedBy" in body:
            res.body["managedBy"] = body["managedBy"]
        em.store.put(res)
    return ArmResponse(200, _render(res))


def list_groups(em: Emulator, req: ArmRequest) -> ArmResponse:
    groups = em.store.resources(TYPE, f"/subscriptions/{req.subscription}")
    wanted = req.query.get("$filter")
    if wanted:
        match = _TAG_FILTER.match(wanted)
        if not match:
            raise ArmError(
                400,
                "InvalidFilterInQueryString",
                f"Invalid $filter '{wanted}'. The sandbox supports \"tagName eq 'n'\" and "
                "\"tagName eq 'n' and tagValue eq 'v'\".",
            )
        tag_name = match.group("name").replace("''", "'")
        tag_value = match.group("value")
        groups = [
            g
            for g in groups
            if any(k.lower() == tag_name.lower() for k in g.body.get("tags", {}))
            and (
                tag_value is None
                or _tag(g.body.get("tags", {}), tag_name) == tag_value.replace("''", "'")
            )
        ]
    return common.paginate(em, req, [_render(g) for g in groups])


def _tag(tags: dict[str, str], name: str) -> str | None:
    for key, value in tags.items():
        if key.lower() == name.lower():
            return value
    return None


def delete(em: Emulator, req: ArmRequest) -> ArmResponse:
    with em.store.lock:
        res = _require(em, req)
        res.properties["provisioningState"] = "Deleting"
        em.store.put(res)

    def work(_op_id: str) -> None:
        teardown.delete_group_contents(em, res.id)
        em.store.delete(res.id)

    def on_failure(_error: dict[str, Any]) -> None:
        common.set_state(em, res.id, "Succeeded")

    return em.ops.start(
        req,
        provider="Microsoft.Resources",
        location=res.body["location"],
        resource_id=res.id,
        work=work,
        on_failure=on_failure,
        status=202,
        style="resources",
    )
