"""Microsoft.Resources Tags API at a scope: ``{scope}/providers/Microsoft.Resources/tags/default``.

Works on any resource the emulator stores (resource groups, galleries, image definitions,
versions, VMs, network resources), as ARM's Tags API does on any taggable resource:

- ``GET``    the scope's tags;
- ``PUT``    replace the whole set (``{"properties": {"tags": {...}}}``);
- ``PATCH``  ``{"operation": "Replace"|"Merge"|"Delete", "properties": {"tags": {...}}}``:
  Merge adds new names and updates existing ones and leaves every other tag alone; Delete
  removes the given names, or given name/value pairs (a given non-empty value must match);
- ``DELETE`` remove every tag.

Each answers 200 synchronously with the TagsResource (``id``, ``name: default``,
``type: Microsoft.Resources/tags``, ``properties.tags``); DELETE answers 200 without a body.
Every change is one read-modify-write under the store lock, so concurrent Merge/Delete calls
on different names never lose each other's tags. Names are case-insensitive; the result must
respect ARM's tag limits (50 tags, name and value lengths, forbidden characters).
"""

from __future__ import annotations

from typing import Any

from imageforge.sandbox.emulator.armerrors import ArmError, bad_request_body
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

SUFFIX = "/providers/Microsoft.Resources/tags/default"
TYPE = "Microsoft.Resources/tags"
OPERATIONS = ("Replace", "Merge", "Delete")


def _scope(req: ArmRequest) -> str:
    return f"/subscriptions/{req.subscription}{req.params.get('scope', '')}"


def _target(em: Emulator, req: ArmRequest) -> Resource:
    """The resource at the request's scope, or ARM's not-found error for it."""
    scope = _scope(req)
    found = em.store.get(scope)
    if found is not None:
        return found
    parts = scope.strip("/").split("/")
    if len(parts) < 4 or parts[2].lower() != "resourcegroups":
        raise ArmError(
            400,
            "InvalidScope",
            f"The sandbox keeps tags on resource groups and resources only, not on '{scope}'.",
        )
    group = common.require_group(em, req.subscription, parts[3])
    provider_path = scope.split("/providers/", 1)[1] if "/providers/" in scope else ""
    raise ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{provider_path}' under resource group '{group.body['name']}' was not "
        "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def _render(res: Resource) -> dict[str, Any]:
    return {
        "id": res.id + SUFFIX,
        "name": "default",
        "type": TYPE,
        "properties": {"tags": dict(res.body.get("tags") or {})},
    }


def _given_tags(body: Any) -> dict[str, str]:
    """``properties.tags`` of a request body (names and values checked like any tags)."""
    if not isinstance(body, dict):
        raise bad_request_body("The request content was invalid and could not be deserialized.")
    props = body.get("properties")
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise bad_request_body("'properties' must be a JSON object.")
    return common.tags_of({"tags": props.get("tags")})


def _find(tags: dict[str, str], name: str) -> str | None:
    """The stored spelling of tag ``name`` (tag names are case-insensitive)."""
    return next((key for key in tags if key.lower() == name.lower()), None)


def _store(em: Emulator, res: Resource, tags: dict[str, str]) -> ArmResponse:
    res.body["tags"] = common.tags_of({"tags": tags})
    em.store.put(res)
    return ArmResponse(200, _render(res))


def get_tags(em: Emulator, req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, _render(_target(em, req)))


def put_tags(em: Emulator, req: ArmRequest) -> ArmResponse:
    given = _given_tags(req.body)
    with em.store.lock:
        return _store(em, _target(em, req), given)


def patch_tags(em: Emulator, req: ArmRequest) -> ArmResponse:
    body = req.body
    given = _given_tags(body)
    operation = str(body.get("operation") or "")
    wanted = next((op for op in OPERATIONS if op.lower() == operation.lower()), None)
    if wanted is None:
        raise ArmError(
            400,
            "InvalidTagPatchOperation",
            f"The tag patch operation '{operation}' is invalid; use one of "
            f"{', '.join(OPERATIONS)}.",
        )
    with em.store.lock:
        res = _target(em, req)
        current = dict(res.body.get("tags") or {})
        if wanted == "Replace":
            current = given
        elif wanted == "Merge":
            for name, value in given.items():
                current[_find(current, name) or name] = value
        else:
            for name, value in given.items():
                stored = _find(current, name)
                if stored is not None and (value == "" or current[stored] == value):
                    del current[stored]
        return _store(em, res, current)


def delete_tags(em: Emulator, req: ArmRequest) -> ArmResponse:
    with em.store.lock:
        res = _target(em, req)
        res.body["tags"] = {}
        em.store.put(res)
    return ArmResponse(200)
