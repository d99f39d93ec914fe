"""Sharing the gallery: its sharing profile (subscriptions and tenants) and Reader role
assignments on it, and what ARM tells the caller about its own subscription and tenants.

imageforge.azure.gallery owns the gallery's REST calls; the calls that share it live here
(docs/ARCHITECTURE.md, "Sharing"), with the Authorization and subscription calls they need.

Read in GalleryRP.json (stable 2025-12-03) and its examples: ``POST .../galleries/{g}/share``
(GallerySharingProfile_Update) takes a ``SharingUpdate`` {operationType Add|Remove|Reset,
groups [{type Subscriptions|AADTenants, ids}]} and is long-running (final-state-via location);
it needs the gallery's ``sharingProfile.permissions`` to be ``Groups``. ``Galleries_Get`` with
``$select=Permissions`` answers the groups (Gallery_Get_WithSelectPermissions); a plain GET
need not. GalleryUpdate (the PATCH) carries the gallery's properties, ``sharingProfile``
included, so imageforge switches an existing gallery to Groups with a PATCH the first time it
shares it. (Azure's documentation of the feature's preview said the property could not be
changed on an existing gallery; the spec does not say so. If Azure refuses, its error is shown.)
A gallery nobody shares stays Private, as ``ensure_gallery`` creates it.

Role assignments (Authorization 2022-04-01): ``PUT {scope}/providers/Microsoft.Authorization/
roleAssignments/{name}`` with the role definition id and the principal id; the name is a GUID.
imageforge names it by a UUID5 of scope, role and principal, so granting twice PUTs the same
assignment again, and it first lists the principal's assignments at the gallery (``$filter=
principalId eq '...'``) to report one that exists already under another name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from imageforge.azure.arm import arm_call, as_json
from imageforge.azure.clients import Session
from imageforge.azure.ids import gallery_id, where
from imageforge.errors import AzureError, NotFoundError

#: The built-in Reader role (its id is the same in every tenant).
READER_ROLE_ID = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
#: Microsoft.Resources' subscriptions API (subscriptions.json, newest stable).
SUBSCRIPTIONS_API = "2022-12-01"
SUBSCRIPTIONS = "Subscriptions"
TENANTS = "AADTenants"


@dataclass(frozen=True)
class Sharing:
    """Who the gallery is shared with, as its sharing profile says (ids lower-case)."""

    permissions: str
    subscriptions: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()

    @property
    def shared(self) -> bool:
        return bool(self.subscriptions or self.tenants)


@dataclass(frozen=True)
class ReaderAssignment:
    """A role assignment granting Reader on the gallery."""

    name: str
    principal_id: str
    scope: str
    created: bool


def _gallery_missing(session: Session) -> NotFoundError:
    return NotFoundError(
        f"{where(session)} does not exist in {session.where}: there is nothing to share yet; "
        "build an image first (invoke build)"
    )


def read_sharing(session: Session) -> Sharing:
    """The gallery's sharing profile (one GET with ``$select=Permissions``)."""
    site = session.site
    try:
        with arm_call(f"{where(session)}", where=session.where):
            data = as_json(
                session.compute.galleries.get(
                    site.resource_group, site.gallery, select="Permissions"
                )
            )
    except NotFoundError:
        raise _gallery_missing(session) from None
    profile = (data.get("properties") or {}).get("sharingProfile") or {}
    ids: dict[str, list[str]] = {SUBSCRIPTIONS: [], TENANTS: []}
    for group in profile.get("groups") or []:
        bucket = ids.get(str(group.get("type")))
        if bucket is not None:
            bucket.extend(str(i).lower() for i in group.get("ids") or [])
    return Sharing(
        str(profile.get("permissions") or "Private"),
        tuple(ids[SUBSCRIPTIONS]),
        tuple(ids[TENANTS]),
    )


def allow_groups(session: Session) -> None:
    """Set the gallery's ``sharingProfile.permissions`` to Groups (a PATCH; long-running)."""
    site = session.site
    body = {"properties": {"sharingProfile": {"permissions": "Groups"}}}
    with arm_call(f"allowing {where(session)} to be shared", where=session.where):
        session.compute.galleries.begin_update(site.resource_group, site.gallery, body).result()


def update_sharing(
    session: Session,
    operation: str,
    *,
    subscriptions: Iterable[str] = (),
    tenants: Iterable[str] = (),
) -> None:
    """POST the gallery's ``share`` action (Add, Remove or Reset) and wait for it."""
    groups = [
        {"type": kind, "ids": list(ids)}
        for kind, ids in ((SUBSCRIPTIONS, list(subscriptions)), (TENANTS, list(tenants)))
        if ids
    ]
    body: dict[str, Any] = {"operationType": operation}
    if groups:
        body["groups"] = groups
    site = session.site
    with arm_call(f"sharing {where(session)} ({operation})", where=session.where):
        session.compute.gallery_sharing_profile.begin_update(
            site.resource_group, site.gallery, body
        ).result()


# what ARM tells the caller about subscriptions and tenants ----------------------------------


def _get(session: Session, path: str, what: str) -> dict[str, Any] | None:
    """GET a Microsoft.Resources subscriptions-API path through the SDK pipeline; None when
    ARM does not show it to the caller: 404, or 401/403 (the spec does not say which ARM answers
    for a subscription of another tenant; either way it tells nothing)."""
    from azure.core.rest import HttpRequest

    request = HttpRequest("GET", path, params={"api-version": SUBSCRIPTIONS_API})
    with arm_call(what, where=session.where):
        response = session.resource.send_request(request)
        if response.status_code in (401, 403, 404):
            return None
        response.raise_for_status()
        return dict(response.json())


def tenant_of(session: Session) -> str:
    """The tenant of the session's own subscription (its ``tenantId``)."""
    data = _get(session, f"/subscriptions/{session.subscription_id}", "the subscription")
    if not data or not data.get("tenantId"):
        raise AzureError(
            f"subscription {session.subscription_id}: {session.where} does not say its tenant"
        )
    return str(data["tenantId"]).lower()


def visible_subscription(session: Session, subscription_id: str) -> str | None:
    """The display name of a subscription the caller can see, else None. ARM answers 404 for
    a subscription the caller has no access to exactly as for one that does not exist."""
    data = _get(session, f"/subscriptions/{subscription_id}", f"subscription {subscription_id}")
    return None if data is None else str(data.get("displayName") or subscription_id)


def visible_tenants(session: Session) -> set[str]:
    """The tenants the caller can sign in to (``GET /tenants``, every page)."""
    from azure.core.rest import HttpRequest

    found: set[str] = set()
    request: HttpRequest | None = HttpRequest(
        "GET", "/tenants", params={"api-version": SUBSCRIPTIONS_API}
    )
    with arm_call("the tenants", where=session.where):
        while request is not None:
            response = session.resource.send_request(request)
            response.raise_for_status()
            page = response.json()
            found.update(str(t.get("tenantId", "")).lower() for t in page.get("value") or [])
            link = page.get("nextLink")
            request = HttpRequest("GET", link) if link else None
    return found - {""}


# Reader on the gallery --------------------------------------------------------------------


def _scope(session: Session) -> str:
    """The gallery's id as the Authorization SDK takes a scope (no leading slash)."""
    return gallery_id(session).lstrip("/")


def _is_reader_here(assignment: Any, scope: str) -> bool:
    role = str(assignment.role_definition_id or "").lower()
    at = str(assignment.scope or "").lower().strip("/")
    return role.endswith("/" + READER_ROLE_ID) and at == scope.lower()


def readers(session: Session, principal_id: str | None = None) -> list[ReaderAssignment]:
    """Reader assignments at exactly the gallery (of one principal, when given)."""
    scope = _scope(session)
    wanted = f"principalId eq '{principal_id}'" if principal_id else "atScope()"
    with arm_call(f"role assignments on {where(session)}", where=session.where):
        found = list(session.authorization.role_assignments.list_for_scope(scope, filter=wanted))
    return [
        ReaderAssignment(str(a.name), str(a.principal_id).lower(), "/" + scope, created=False)
        for a in found
        if _is_reader_here(a, scope)
        and (principal_id is None or str(a.principal_id).lower() == principal_id.lower())
    ]


def grant_reader(session: Session, principal_id: str) -> ReaderAssignment:
    """Reader on the gallery for ``principal_id`` (a user, group or service principal object
    id); an assignment that exists already is reported, not made again."""
    principal = principal_id.lower()
    existing = readers(session, principal)
    if existing:
        return existing[0]
    from azure.mgmt.authorization.v2022_04_01.models import (  # the SDK loads when used
        RoleAssignmentCreateParameters,
    )

    scope = _scope(session)
    role = (
        f"/subscriptions/{session.subscription_id}/providers/Microsoft.Authorization/"
        f"roleDefinitions/{READER_ROLE_ID}"
    )
    name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{READER_ROLE_ID}|{principal}".lower()))
    parameters = RoleAssignmentCreateParameters(role_definition_id=role, principal_id=principal)
    what = f"granting principal {principal} Reader on {where(session)}"
    try:
        with arm_call(what, where=session.where):
            session.authorization.role_assignments.create(scope, name, parameters)
    except AzureError as err:
        if "RoleAssignmentExists" not in str(err):
            raise
        again = readers(session, principal)  # made meanwhile under another name
        if not again:
            raise
        return again[0]
    return ReaderAssignment(name, principal, "/" + scope, created=True)
