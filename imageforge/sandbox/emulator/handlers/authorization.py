"""Microsoft.Authorization role assignments at a scope:
``{scope}/providers/Microsoft.Authorization/roleAssignments[/{roleAssignmentName}]``.

Read in the Authorization spec (stable 2022-04-01, authorization-RoleAssignmentsCalls.json)
and its examples RoleAssignments_CreateForResource, _Get, _ListForScope and _Delete:

- PUT answers 201 (created) or 200, synchronously, with the RoleAssignment: ``id`` (the scope's
  id + ``/providers/Microsoft.Authorization/roleAssignments/{name}``), ``name``, ``type``
  ``Microsoft.Authorization/roleAssignments`` and ``properties`` {``roleDefinitionId``,
  ``principalId``, ``principalType``, ``scope``, ...}. ``roleDefinitionId`` and ``principalId``
  are required; ``principalType`` defaults to User. The examples answer the role definition
  id in its tenant form (``/providers/Microsoft.Authorization/roleDefinitions/{id}``) although
  the request names it under a subscription; the emulator does the same.
- GET answers the assignment; DELETE answers 200 with it, or 204 when there is none.
- The list at a scope takes ``$filter``: ``atScope()`` (assignments at or above the scope) or
  ``principalId eq '{id}'`` (at, above or below it, for that principal); without a filter it
  answers those at, above and below the scope.

Where the spec is silent the emulator chooses, and says so here (codes and messages are ARM's
usual ones, from memory, not from the spec): the assignment name must be a GUID
(400 InvalidRoleAssignmentId); the role definition must be one of the built-in roles below
(400 RoleDefinitionDoesNotExist); the principal id must be a GUID (400 InvalidPrincipalId) but
is not looked up (the sandbox has no directory); the same principal, role and scope under
another name is 409 RoleAssignmentExists; changing an existing assignment's principal, role
or scope is 409 RoleAssignmentUpdateNotPermitted; the scope must be a subscription the
sandbox knows, or a resource group or resource it stores (else ARM's not-found errors).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from imageforge.sandbox.emulator.armerrors import ArmError, bad_request_body
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common, subscriptions
from imageforge.sandbox.emulator.handlers.sharing import GUID
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

SUFFIX = "/providers/Microsoft.Authorization/roleAssignments"
TYPE = "Microsoft.Authorization/roleAssignments"
#: The built-in role definitions the sandbox knows (their ids are the same in every tenant).
BUILTIN_ROLES = {
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
}
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")
_ROLE_ID = re.compile(
    r"^(/subscriptions/[^/]+)?/providers/Microsoft\.Authorization/roleDefinitions/"
    r"(?P<guid>[^/]+)$",
    re.I,
)
_PRINCIPAL_FILTER = re.compile(r"^\s*principalId\s+eq\s+'(?P<id>[^']*)'\s*$", re.I)


def _scope(req: ArmRequest) -> str:
    return f"/subscriptions/{req.subscription}{req.params.get('scope', '')}".rstrip("/")


def _check_scope(em: Emulator, req: ArmRequest, scope: str) -> None:
    """The scope exists: a known subscription, or a stored resource group or resource."""
    if scope.lower() == f"/subscriptions/{req.subscription}".lower():
        subscriptions.require(em, req.subscription)
        return
    if em.store.get(scope) is not None:
        return
    parts = scope.strip("/").split("/")
    if len(parts) < 4 or parts[2].lower() != "resourcegroups":
        raise ArmError(400, "InvalidScope", f"The scope '{scope}' is not valid.")
    group = common.require_group(em, req.subscription, parts[3])
    provider_path = scope.split("/providers/", 1)[1] if "/providers/" in scope else scope
    raise ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{provider_path}' under resource group '{group.body['name']}' was not "
        "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def _name(req: ArmRequest) -> str:
    name = req.param("roleAssignmentName")
    if not GUID.match(name):
        raise ArmError(
            400,
            "InvalidRoleAssignmentId",
            f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
        )
    return name.lower()


def _role(value: Any) -> str:
    """The role definition's GUID, or RoleDefinitionDoesNotExist."""
    found = _ROLE_ID.match(value) if isinstance(value, str) else None
    guid = found.group("guid").lower() if found else ""
    if guid not in BUILTIN_ROLES:
        raise ArmError(
            400,
            "RoleDefinitionDoesNotExist",
            f"The specified role definition with ID '{value}' does not exist.",
        )
    return guid


def _principal(props: dict[str, Any]) -> tuple[str, str]:
    principal = props.get("principalId")
    if not isinstance(principal, str) or not GUID.match(principal):
        raise ArmError(
            400, "InvalidPrincipalId", f"The principal ID '{principal}' is not a valid GUID."
        )
    kind = props.get("principalType") or "User"
    if kind not in PRINCIPAL_TYPES:
        raise ArmError(
            400,
            "InvalidParameter",
            f"The principalType '{kind}' is invalid; use one of {', '.join(PRINCIPAL_TYPES)}.",
        )
    return principal.lower(), kind


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def put_assignment(em: Emulator, req: ArmRequest) -> ArmResponse:
    name = _name(req)
    scope = _scope(req)
    body = common.body_object(req)
    props = common.properties_of(body)
    role = _role(props.get("roleDefinitionId"))
    principal, kind = _principal(props)
    rid = f"{scope}{SUFFIX}/{name}"
    with em.store.lock:
        _check_scope(em, req, scope)
        existing = em.store.get(rid)
        now = dt.datetime.now(dt.UTC).isoformat()
        if existing is not None:
            old = existing.properties
            if not (
                _same(old["principalId"], principal)
                and old["roleDefinitionId"].lower().endswith(role)
                and _same(old["scope"], scope)
            ):
                raise ArmError(
                    409,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be "
                    "updated.",
                )
        for other in em.store.resources(TYPE, scope):
            o = other.properties
            if (
                other.key != rid.lower()
                and _same(o["scope"], scope)
                and _same(o["principalId"], principal)
                and o["roleDefinitionId"].lower().endswith(role)
            ):
                raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
        res = existing or Resource(rid, TYPE, {"id": rid, "name": name, "type": TYPE})
        res.body["properties"] = {
            "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{role}",
            "principalId": principal,
            "principalType": kind,
            "scope": scope,
            "createdOn": (existing.properties["createdOn"] if existing else now),
            "updatedOn": now,
            **({"description": props["description"]} if props.get("description") else {}),
        }
        em.store.put(res)
    return ArmResponse(200 if existing else 201, res.body)


def get_assignment(em: Emulator, req: ArmRequest) -> ArmResponse:
    name = _name(req)
    found = em.store.get(f"{_scope(req)}{SUFFIX}/{name}")
    if found is None:
        raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
    return ArmResponse(200, found.body)


def delete_assignment(em: Emulator, req: ArmRequest) -> ArmResponse:
    name = _name(req)
    rid = f"{_scope(req)}{SUFFIX}/{name}"
    with em.store.lock:
        found = em.store.get(rid)
        if found is None:
            return ArmResponse(204)
        em.store.delete(rid)
    return ArmResponse(200, found.body)


def _related(assigned: str, scope: str, *, below: bool) -> bool:
    """Whether an assignment at ``assigned`` counts for ``scope``: at or above it, or (when
    ``below``) under it."""
    a, s = assigned.lower().rstrip("/"), scope.lower().rstrip("/")
    return a == s or s.startswith(a + "/") or (below and a.startswith(s + "/"))


def list_assignments(em: Emulator, req: ArmRequest) -> ArmResponse:
    scope = _scope(req)
    with em.store.lock:
        _check_scope(em, req, scope)
    wanted = (req.query.get("$filter") or "").strip()
    principal = None
    below = True
    if wanted.lower() == "atscope()":
        below = False
    elif wanted:
        match = _PRINCIPAL_FILTER.match(wanted)
        if match is None:
            raise bad_request_body(
                f"The $filter '{wanted}' is not supported; use atScope() or principalId eq "
                "'{id}'."
            )
        principal = match.group("id").lower()
    sub = f"/subscriptions/{req.subscription}"
    found = [
        r.body
        for r in em.store.resources(TYPE, sub)
        if _related(r.properties["scope"], scope, below=below)
        and (principal is None or r.properties["principalId"] == principal)
    ]
    return common.paginate(em, req, found)
