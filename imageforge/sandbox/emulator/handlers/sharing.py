"""A gallery's sharing profile: ``POST .../galleries/{galleryName}/share`` and what GET shows.

Read in GalleryRP.json (stable 2025-12-03, the same in 2025-03-03) and its examples:

- ``GallerySharingProfile_Update`` takes a ``SharingUpdate`` (``operationType`` required: Add,
  Remove, Reset, EnableCommunity; ``groups``: ``[{type: Subscriptions|AADTenants, ids}]``),
  answers 200 or 202 with Location and Retry-After, body the ``SharingUpdate`` itself, and
  ends ``final-state-via: location`` (Gallery_AddToSharingProfile, Gallery_ResetSharingProfile).
  The emulator answers 202 with Location and Retry-After only (no Azure-AsyncOperation, as in
  the examples); the Location monitor ends 200 with the SharingUpdate.
- ``SharingProfile``: ``permissions`` (Private, Groups, Community), ``groups`` (readOnly: only
  the share action changes them), ``communityGalleryInfo``. A PUT or PATCH of the gallery may
  set ``permissions`` (GalleryUpdate's properties are the gallery's); groups given there are
  ignored like any read-only field (Gallery_Create_WithSharingProfile).
- ``Galleries_Get`` takes ``$select=Permissions`` and ``$expand=SharingProfile/Groups``; both
  examples (Gallery_Get_WithSelectPermissions, Gallery_Get_WithExpandSharingProfileGroups)
  show the groups. The $select example shows only id, name, location and the sharing profile,
  which is what the emulator answers for it. Gallery_Create_WithSharingProfile's answer shows
  the permissions without groups, so a plain GET leaves the groups out.

Where the spec is silent the emulator chooses, and says so here:

- what a share on a gallery whose permissions are not Groups answers: 409 OperationNotAllowed;
- whether ids must be GUIDs: they must (400 InvalidParameter), as subscription and tenant ids
  are GUIDs;
- Remove of an id the gallery is not shared with: nothing happens (as for an Add of one it is);
- Reset: removes every group and leaves ``permissions`` as it is;
- changing ``permissions`` away from Groups while groups remain: 409 OperationNotAllowed;
- Community (and EnableCommunity): not served by the sandbox (400 InvalidParameter);
- while the share runs the gallery is Updating (another write is refused, as for any gallery
  operation); the spec's read-only ``sharingStatus`` is not kept.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from imageforge.sandbox.emulator.armerrors import invalid_parameter, not_allowed
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
PERMISSIONS = ("Private", "Groups", "Community")
OPERATIONS = ("Add", "Remove", "Reset", "EnableCommunity")
GROUP_TYPES = ("Subscriptions", "AADTenants")
SELECT = ("Permissions",)
EXPAND = ("SharingProfile/Groups",)


def _enum(value: Any, allowed: tuple[str, ...], target: str) -> str:
    found = next(
        (a for a in allowed if isinstance(value, str) and a.lower() == value.lower()), None
    )
    if found is None:
        raise invalid_parameter(
            f"The value '{value}' of {target} is invalid; use one of {', '.join(allowed)}.",
            target=target,
        )
    return found


# the profile on a gallery's PUT and PATCH -----------------------------------------------------


def profile_on_write(existing: dict[str, Any] | None, props: dict[str, Any]) -> dict[str, Any]:
    """``props`` of a gallery PUT/PATCH with the sharing profile it may store: the given
    permissions (validated), the stored groups (read-only), the stored profile when none is
    given."""
    stored = (existing or {}).get("sharingProfile")
    given = props.get("sharingProfile")
    if given is None:
        if stored is not None:
            props["sharingProfile"] = copy.deepcopy(stored)
        return props
    target = "gallery.properties.sharingProfile"
    if not isinstance(given, dict):
        raise invalid_parameter(f"{target} must be a JSON object.", target=target)
    old = (stored or {}).get("permissions", "Private")
    permissions = _enum(given.get("permissions", old), PERMISSIONS, f"{target}.permissions")
    if permissions == "Community":
        raise invalid_parameter(
            "The sandbox does not serve community galleries (sharingProfile.permissions "
            "'Community').",
            target=f"{target}.permissions",
        )
    groups = copy.deepcopy((stored or {}).get("groups") or [])
    if groups and permissions != "Groups":
        raise not_allowed(
            f"The gallery is shared with subscriptions or tenants; reset its sharing profile "
            f"before changing sharingProfile.permissions to '{permissions}'."
        )
    props["sharingProfile"] = {"permissions": permissions, **({"groups": groups} if groups else {})}
    return props


# what GET shows -------------------------------------------------------------------------------


def gallery_view(body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    """A gallery as GET answers it: groups only with ``$select=Permissions`` (then only the
    sharing profile) or ``$expand=SharingProfile/Groups``."""
    select = query.get("$select")
    expand = query.get("$expand")
    if select is not None:
        _enum(select, SELECT, "$select")
    if expand is not None:
        _enum(expand, EXPAND, "$expand")
    shown = copy.deepcopy(body)
    profile = shown.get("properties", {}).get("sharingProfile")
    if select is not None:
        trimmed: dict[str, Any] = {
            k: shown[k] for k in ("id", "name", "type", "location") if k in shown
        }
        trimmed["properties"] = {"sharingProfile": profile or {"permissions": "Private"}}
        return trimmed
    if profile is not None and expand is None:
        profile.pop("groups", None)
    return shown


# the share action -----------------------------------------------------------------------------


def _groups(body: dict[str, Any], operation: str) -> dict[str, list[str]]:
    """The update's ids by group type, lower-case, in the order given, each once."""
    groups = body.get("groups")
    if groups is None:
        groups = []
    if not isinstance(groups, list):
        raise invalid_parameter("sharingUpdate.groups must be an array.", target="groups")
    wanted: dict[str, list[str]] = {}
    for n, group in enumerate(groups):
        target = f"sharingUpdate.groups[{n}]"
        if not isinstance(group, dict):
            raise invalid_parameter(f"{target} must be a JSON object.", target=target)
        kind = _enum(group.get("type"), GROUP_TYPES, f"{target}.type")
        ids = group.get("ids") or []
        if not isinstance(ids, list):
            raise invalid_parameter(f"{target}.ids must be an array.", target=f"{target}.ids")
        for value in ids:
            if not isinstance(value, str) or not GUID.match(value):
                raise invalid_parameter(
                    f"The id '{value}' in {target}.ids is not a GUID.", target=f"{target}.ids"
                )
            bucket = wanted.setdefault(kind, [])
            if value.lower() not in bucket:
                bucket.append(value.lower())
    if operation in ("Add", "Remove") and not any(wanted.values()):
        raise invalid_parameter(
            f"sharingUpdate.groups must name at least one id for operationType '{operation}'.",
            target="groups",
        )
    return wanted


def _apply(stored: list[dict[str, Any]], operation: str, wanted: dict[str, list[str]]) -> list:
    current = {g["type"]: list(g.get("ids") or []) for g in stored}
    if operation == "Reset":
        return []
    for kind, ids in wanted.items():
        bucket = current.setdefault(kind, [])
        for value in ids:
            if operation == "Add" and value not in bucket:
                bucket.append(value)
            elif operation == "Remove" and value in bucket:
                bucket.remove(value)
    return [{"type": k, "ids": current[k]} for k in GROUP_TYPES if current.get(k)]


def share(em: Emulator, req: ArmRequest) -> ArmResponse:
    """``POST .../galleries/{galleryName}/share``: a long-running change of the groups."""
    body = common.body_object(req)
    if "operationType" not in body:
        raise invalid_parameter(
            "sharingUpdate.operationType is required.", target="sharingUpdate.operationType"
        )
    operation = _enum(body["operationType"], OPERATIONS, "sharingUpdate.operationType")
    if operation == "EnableCommunity":
        raise invalid_parameter(
            "The sandbox does not serve community galleries (operationType 'EnableCommunity').",
            target="sharingUpdate.operationType",
        )
    wanted = _groups(body, operation)
    echo: dict[str, Any] = {"operationType": operation}
    if wanted:
        echo["groups"] = [{"type": k, "ids": v} for k, v in wanted.items()]
    with em.store.lock:
        group = req.param("resourceGroupName")
        gallery_id = common.provider_id(
            req.subscription, group, "Microsoft.Compute", "galleries", req.param("galleryName")
        )
        gallery = common.require(em, gallery_id, "Microsoft.Compute/galleries", group)
        name = gallery.body["name"]
        common.reject_if_busy(gallery, f"gallery '{name}'")
        permissions = (gallery.properties.get("sharingProfile") or {}).get("permissions")
        if operation != "Reset" and permissions != "Groups":
            raise not_allowed(
                f"The gallery '{name}' cannot be shared with subscriptions or tenants: its "
                f"sharingProfile.permissions is '{permissions or 'Private'}', not 'Groups'."
            )
        gallery.properties["provisioningState"] = "Updating"
        em.store.put(gallery)

    def work(_op_id: str) -> dict[str, Any]:
        with em.store.lock:
            found = em.store.get(gallery.id)
            if found is not None:
                profile = found.properties.setdefault("sharingProfile", {"permissions": "Private"})
                groups = _apply(profile.get("groups") or [], operation, wanted)
                if groups:
                    profile["groups"] = groups
                else:
                    profile.pop("groups", None)
                found.properties["provisioningState"] = "Succeeded"
                em.store.put(found)
        return echo

    answer = em.ops.start(
        req,
        provider=common.GALLERY.namespace,
        location=gallery.body.get("location", ""),
        resource_id=gallery.id,
        work=work,
        on_failure=common.failure_handler(em, gallery.id),
        status=202,
        body=echo,
        style=common.GALLERY.style,
    )
    answer.headers.pop("Azure-AsyncOperation", None)
    return answer
