"""Microsoft.Authorization/locks: management locks on resource groups, and their enforcement.

Served as azure-rest-api-specs' ``Microsoft.Authorization/stable/2020-05-01/locks.json``
describes them (ManagementLocks_CreateOrUpdateAtResourceGroupLevel, _GetAtResourceGroupLevel,
_DeleteAtResourceGroupLevel, _ListAtResourceGroupLevel, _ListAtSubscriptionLevel, and the
examples of each):

- ``PUT``    ``{properties: {level, notes?, owners?}}``: 201 with the lock when it is new, 200
  when it replaces one; ``level`` is one of NotSpecified, CanNotDelete, ReadOnly; ``notes`` at
  most 512 characters; the name at most 260 characters, without ``< > % & : \\ ? /`` or
  control characters (the spec's words). The error codes for such bad input are the
  emulator's own: the spec names none.
- ``GET``    the lock (``id``, ``name``, ``type: Microsoft.Authorization/locks``,
  ``properties``), else 404 LockNotFound;
- ``DELETE`` 200, or 204 when there is no such lock (the spec documents both answers);
- list at a resource group (the group's locks and those of resources in it) and at the
  subscription, paged, with ``$filter=atScope()`` (only locks at the scope or above it).

Enforcement (``enforced``) wraps every route of the table: a DELETE of a locked scope, of
anything inside one, or of a scope holding a locked resource is refused with 409 ScopeLocked
in ARM's words ("The scope '...' cannot perform delete operation because following scope(s)
are locked: '...'. Please remove the lock and try again."); a ReadOnly lock refuses PUT,
PATCH and POST the same way ("write operation"). CanNotDelete lets writes through: the spec
says its users "are able to read and modify the resources, but not delete". Lock routes
themselves are never refused (removing a lock is how one unlocks); the Tags API is a write
on the resource it tags, not a delete, so only ReadOnly refuses it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from imageforge.sandbox.emulator.armerrors import ArmError, bad_request_body, invalid_parameter
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.routing import Route
from imageforge.sandbox.emulator.store import Resource

TYPE = "Microsoft.Authorization/locks"
SUFFIX = "/providers/Microsoft.Authorization/locks"
LEVELS = ("NotSpecified", "CanNotDelete", "ReadOnly")
MAX_NAME = 260
MAX_NOTES = 512
_BAD_NAME = re.compile(r"[<>%&:\\?/\x00-\x1f\x7f]")
_WRITES = ("PUT", "PATCH", "POST")


def _group_scope(req: ArmRequest) -> str:
    return common.rg_id(req.subscription, req.param("resourceGroupName"))


def lock_scope(lock_id: str) -> str:
    """The scope a lock id locks (its id up to ``/providers/Microsoft.Authorization/locks``)."""
    at = lock_id.lower().rfind(SUFFIX.lower() + "/")
    return lock_id[:at]


def _render(res: Resource) -> dict[str, Any]:
    return res.body


def _name(req: ArmRequest) -> str:
    name = req.param("lockName")
    if len(name) > MAX_NAME or _BAD_NAME.search(name):
        raise ArmError(
            400,
            "InvalidLockName",
            f"The lock name '{name[:40]}' is invalid: at most {MAX_NAME} characters, without "
            "<, >, %, &, :, \\, ?, / or control characters.",
        )
    return name


def _properties(req: ArmRequest) -> dict[str, Any]:
    """The lock's ``properties`` from a PUT body, checked against ManagementLockProperties."""
    body = common.body_object(req)
    props = body.get("properties")
    if not isinstance(props, dict):
        raise bad_request_body("The lock's 'properties' (with 'level') are required.")
    level = props.get("level")
    wanted = next((lv for lv in LEVELS if isinstance(level, str) and lv.lower() == level.lower()),
                  None)  # fmt: skip
    if wanted is None:
        raise invalid_parameter(
            f"The lock level '{level}' is invalid; use one of {', '.join(LEVELS)}.",
            target="properties.level",
        )
    out: dict[str, Any] = {"level": wanted}
    notes = props.get("notes")
    if notes is not None:
        if not isinstance(notes, str) or len(notes) > MAX_NOTES:
            raise invalid_parameter(
                f"The lock notes must be a string of at most {MAX_NOTES} characters.",
                target="properties.notes",
            )
        out["notes"] = notes
    owners = props.get("owners")
    if owners is not None:
        if not isinstance(owners, list) or not all(
            isinstance(o, dict) and isinstance(o.get("applicationId", ""), str) for o in owners
        ):
            raise invalid_parameter(
                "The lock owners must be a list of {'applicationId': '...'} objects.",
                target="properties.owners",
            )
        out["owners"] = [{"applicationId": o["applicationId"]} for o in owners if o]
    return out


def put_at_group(em: Emulator, req: ArmRequest) -> ArmResponse:
    name = _name(req)
    props = _properties(req)
    with em.store.lock:
        group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
        lock_id = f"{group.id}{SUFFIX}/{name}"
        existing = em.store.get(lock_id)
        res = existing or Resource(lock_id, TYPE.lower(), {})
        res.body = {"properties": props, "id": res.id, "type": TYPE, "name": common.id_name(res.id)}
        em.store.put(res)
    return ArmResponse(201 if existing is None else 200, _render(res))


def _require(em: Emulator, req: ArmRequest) -> Resource:
    group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
    name = req.param("lockName")
    found = em.store.get(f"{group.id}{SUFFIX}/{name}")
    if found is None:
        raise ArmError(404, "LockNotFound", f"The lock '{name}' could not be found.")
    return found


def get_at_group(em: Emulator, req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, _render(_require(em, req)))


def delete_at_group(em: Emulator, req: ArmRequest) -> ArmResponse:
    with em.store.lock:
        group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
        lock_id = f"{group.id}{SUFFIX}/{req.param('lockName')}"
        if em.store.get(lock_id) is None:
            return ArmResponse(204)
        em.store.delete(lock_id)
    return ArmResponse(200)


def _at_scope_only(req: ArmRequest) -> bool:
    wanted = (req.query.get("$filter") or "").strip()
    if not wanted:
        return False
    if wanted.replace(" ", "").lower() == "atscope()":
        return True
    raise ArmError(
        400,
        "InvalidFilterInQueryString",
        f"Invalid $filter '{wanted}'. The sandbox supports 'atScope()' for locks.",
    )


def _listed(em: Emulator, req: ArmRequest, scope: str) -> ArmResponse:
    at_scope = _at_scope_only(req)
    sub = f"/subscriptions/{req.subscription}"
    found = []
    for res in em.store.resources(TYPE, sub):
        locked = lock_scope(res.id).lower()
        if at_scope:
            keep = _covers(locked, scope.lower())
        else:
            keep = _covers(locked, scope.lower()) or _covers(scope.lower(), locked)
        if keep:
            found.append(_render(res))
    return common.paginate(em, req, found)


def list_at_group(em: Emulator, req: ArmRequest) -> ArmResponse:
    group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
    return _listed(em, req, group.id)


def list_at_subscription(em: Emulator, req: ArmRequest) -> ArmResponse:
    return _listed(em, req, f"/subscriptions/{req.subscription}")


# enforcement --------------------------------------------------------------------------------


def _covers(outer: str, inner: str) -> bool:
    """Whether scope ``outer`` is ``inner`` or one of its ancestors (both lower-case)."""
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def blocking(em: Emulator, sub: str, path: str, *, delete: bool) -> list[str]:
    """The scopes whose locks refuse a delete (``delete``) or a write of ``path``.

    A delete is refused by a CanNotDelete or ReadOnly lock on the path, on a scope above it or
    on anything below it (deleting a group deletes its locked resources); a write only by a
    ReadOnly lock on the path or above it."""
    target = path.rstrip("/").lower()
    scopes: list[str] = []
    for res in em.store.resources(TYPE, f"/subscriptions/{sub}"):
        level = res.properties.get("level")
        scope = lock_scope(res.id)
        above = _covers(scope.lower(), target)
        if (
            delete
            and level in ("CanNotDelete", "ReadOnly")
            and (above or _covers(target, scope.lower()))
        ):
            scopes.append(scope)
        elif not delete and level == "ReadOnly" and above:
            scopes.append(scope)
    return list(dict.fromkeys(scopes))


def scope_locked(path: str, scopes: list[str], *, delete: bool) -> ArmError:
    listed = ",".join(f"'{s}'" for s in scopes)
    operation = "delete" if delete else "write"
    return ArmError(
        409,
        "ScopeLocked",
        f"The scope '{path.rstrip('/')}' cannot perform {operation} operation because following "
        f"scope(s) are locked: {listed}. Please remove the lock and try again.",
    )


def _guarded(handler: Callable[..., Any], *, delete: bool) -> Callable[..., Any]:
    def guarded(em: Emulator, req: ArmRequest) -> Any:
        scopes = blocking(em, req.subscription, req.path, delete=delete)
        if scopes:
            raise scope_locked(req.path, scopes, delete=delete)
        return handler(em, req)

    return guarded


def enforced(route: Route) -> Route:
    """``route`` with its handler behind the locks of the scopes it touches (see above)."""
    template = route.template.lower()
    if SUFFIX.lower() in template or "{subscriptionid}" not in template:
        return route
    if route.method == "DELETE" and "/providers/microsoft.resources/tags/" not in template:
        return dataclasses.replace(route, handler=_guarded(route.handler, delete=True))
    if route.method in (*_WRITES, "DELETE"):
        return dataclasses.replace(route, handler=_guarded(route.handler, delete=False))
    return route
