"""Fidelity: a gallery's sharing profile, role assignments, and the caller's subscriptions.

Each test names the azure-rest-api-specs example it follows: GalleryRP stable/2025-12-03 (and
2025-03-03) examples/galleryExamples/..., Authorization stable/2022-04-01 examples/...,
Microsoft.Resources subscriptions stable/2022-12-01 examples/... Requests go over HTTPS
through the SDK pipeline (raw, to see statuses and headers) or the SDK operations themselves.
"""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError
from emulator_helpers import error_of, gallery_path, make_image, rg_path

from imageforge.sandbox.emulator.handlers.subscriptions import SANDBOX_TENANT_ID

GALLERY_API = "2025-12-03"
ROLES_API = "2022-04-01"
SUBS_API = "2022-12-01"
SUB_A = "34a4ab42-0d72-47d9-bd1a-aed207386dac"
SUB_B = "380fd389-260b-41aa-bad9-0a83108c370b"
TENANT = "c24c76aa-8897-4027-9b03-8f7928b54ff6"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
PRINCIPAL = "ce2ce14e-85d7-4629-bdbc-454d0519d987"


def _groups_gallery(clients, rg, name="myGalleryName"):  # type: ignore[no-untyped-def]
    """Gallery_Create_WithSharingProfile: a gallery whose permissions are Groups."""
    body = {
        "location": "West US",
        "properties": {
            "description": "This is the gallery description.",
            "sharingProfile": {"permissions": "Groups"},
        },
    }
    created = clients.send(
        "PUT", gallery_path(clients, rg, name), body, **{"api-version": GALLERY_API}
    )
    assert created.status_code == 201, created.text()
    assert created.json()["properties"]["sharingProfile"] == {"permissions": "Groups"}
    assert created.json()["properties"]["provisioningState"] == "Creating"
    clients.compute.galleries.get(rg, name)  # the operation is done by the first poll
    return gallery_path(clients, rg, name)


def _share(clients, path, update):  # type: ignore[no-untyped-def]
    """POST share and follow its Location monitor to the end; (first answer, last answer)."""
    first = clients.send("POST", path + "/share", update, **{"api-version": GALLERY_API})
    last = first
    while last.status_code == 202:
        last = clients.send("GET", last.headers["Location"])
    return first, last


ADD = {  # Gallery_AddToSharingProfile.json
    "operationType": "Add",
    "groups": [
        {"type": "Subscriptions", "ids": [SUB_A, SUB_B]},
        {"type": "AADTenants", "ids": [TENANT]},
    ],
}


def test_add_to_sharing_profile_then_get_with_select_permissions(clients, rg):
    path = _groups_gallery(clients, rg)
    first, last = _share(clients, path, ADD)
    # 202 with Location and Retry-After (the example's headers), body the SharingUpdate
    assert first.status_code == 202
    assert first.headers["Location"].startswith("https://")
    assert int(first.headers["Retry-After"]) >= 1
    assert "Azure-AsyncOperation" not in first.headers
    assert first.json() == ADD
    assert last.status_code == 200 and last.json() == ADD

    # Gallery_Get_WithSelectPermissions.json: only the sharing profile, with its groups
    selected = clients.send("GET", path, **{"api-version": GALLERY_API, "$select": "Permissions"})
    assert selected.status_code == 200
    body = selected.json()
    assert body["id"] == path and body["name"] == "myGalleryName" and body["location"] == "westus"
    assert body["properties"] == {
        "sharingProfile": {
            "permissions": "Groups",
            "groups": [
                {"type": "Subscriptions", "ids": [SUB_A, SUB_B]},
                {"type": "AADTenants", "ids": [TENANT]},
            ],
        }
    }
    # Gallery_Get_WithExpandSharingProfileGroups.json: the groups with the whole gallery
    expanded = clients.send(
        "GET", path, **{"api-version": GALLERY_API, "$expand": "SharingProfile/Groups"}
    ).json()
    assert expanded["properties"]["sharingProfile"] == body["properties"]["sharingProfile"]
    assert expanded["properties"]["description"] == "This is the gallery description."
    # a plain GET shows the permissions only (as Gallery_Create_WithSharingProfile answers)
    plain = clients.send("GET", path, **{"api-version": GALLERY_API}).json()
    assert plain["properties"]["sharingProfile"] == {"permissions": "Groups"}
    assert plain["properties"]["provisioningState"] == "Succeeded"
    # the SDK reads the same through its own $select
    gallery = clients.compute.galleries.get(rg, "myGalleryName", select="Permissions")
    groups = {g.type: g.ids for g in gallery.properties.sharing_profile.groups}
    assert groups == {"Subscriptions": [SUB_A, SUB_B], "AADTenants": [TENANT]}


def test_remove_and_reset_sharing_profile(clients, rg):  # Gallery_ResetSharingProfile.json
    path = _groups_gallery(clients, rg)
    _share(clients, path, ADD)
    removed = {"operationType": "Remove", "groups": [{"type": "Subscriptions", "ids": [SUB_A]}]}
    _, last = _share(clients, path, removed)
    assert last.json() == removed
    shown = clients.send("GET", path, **{"api-version": GALLERY_API, "$select": "Permissions"})
    assert shown.json()["properties"]["sharingProfile"]["groups"] == [
        {"type": "Subscriptions", "ids": [SUB_B]},
        {"type": "AADTenants", "ids": [TENANT]},
    ]
    first, last = _share(clients, path, {"operationType": "Reset"})
    assert first.json() == {"operationType": "Reset"}
    assert last.json() == {"operationType": "Reset"}
    shown = clients.send("GET", path, **{"api-version": GALLERY_API, "$select": "Permissions"})
    assert shown.json()["properties"]["sharingProfile"] == {"permissions": "Groups"}


def test_the_sdk_shares_through_its_poller(clients, rg):
    _groups_gallery(clients, rg)
    result = clients.compute.gallery_sharing_profile.begin_update(rg, "myGalleryName", ADD).result()
    assert result.operation_type == "Add"
    assert [g.ids for g in result.groups] == [[SUB_A, SUB_B], [TENANT]]


def test_permissions_become_groups_by_patch_and_groups_are_read_only(clients, rg):
    make_image(clients, rg)  # a Private gallery, as imageforge's build creates it
    path = gallery_path(clients, rg)
    refused, _ = _share(clients, path, ADD)
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "OperationNotAllowed"
    assert "'Private', not 'Groups'" in error_of(refused)["message"]
    patch = {"properties": {"sharingProfile": {"permissions": "Groups", "groups": ADD["groups"]}}}
    clients.compute.galleries.begin_update(rg, "gallery", patch).result()
    shown = clients.send("GET", path, **{"api-version": GALLERY_API, "$select": "Permissions"})
    assert shown.json()["properties"]["sharingProfile"] == {"permissions": "Groups"}
    _share(clients, path, ADD)
    # a PATCH without a sharing profile keeps it; one back to Private is refused while shared
    clients.compute.galleries.begin_update(
        rg, "gallery", {"properties": {"description": "x"}}
    ).result()
    kept = clients.send("GET", path, **{"api-version": GALLERY_API, "$select": "Permissions"})
    assert len(kept.json()["properties"]["sharingProfile"]["groups"]) == 2
    private = {"properties": {"sharingProfile": {"permissions": "Private"}}}
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.galleries.begin_update(rg, "gallery", private).result()
    assert caught.value.status_code == 409


@pytest.mark.parametrize(
    ("update", "code", "fragment"),
    [
        ({}, "InvalidParameter", "operationType is required"),
        ({"operationType": "Share"}, "InvalidParameter", "'Share'"),
        ({"operationType": "Add"}, "InvalidParameter", "at least one id"),
        (
            {"operationType": "Add", "groups": [{"type": "Users", "ids": [SUB_A]}]},
            "InvalidParameter",
            "'Users'",
        ),
        (
            {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": ["not-a-guid"]}]},
            "InvalidParameter",
            "'not-a-guid' in sharingUpdate.groups[0].ids is not a GUID",
        ),
        ({"operationType": "EnableCommunity"}, "InvalidParameter", "community"),
    ],
    ids=["no-operation", "unknown-operation", "no-ids", "unknown-group", "not-a-guid", "community"],
)
def test_bad_share_requests(clients, rg, update, code, fragment):
    path = _groups_gallery(clients, rg)
    answer, _ = _share(clients, path, update)
    assert answer.status_code == 400
    assert error_of(answer)["code"] == code
    assert fragment in error_of(answer)["message"]


def test_share_of_a_missing_gallery(clients, rg):
    answer, _ = _share(clients, gallery_path(clients, rg, "nothere"), ADD)
    assert answer.status_code == 404
    assert error_of(answer)["code"] == "ResourceNotFound"


# role assignments ---------------------------------------------------------------------------


def _assignment_path(scope: str, name: str) -> str:
    return f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"


def test_role_assignment_for_a_resource(clients, rg):  # RoleAssignments_CreateForResource.json
    scope = _groups_gallery(clients, rg)
    sub = clients.arm.subscription_id
    name = str(uuid.uuid4())
    body = {
        "properties": {
            "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
            f"roleDefinitions/{READER}",
            "principalId": PRINCIPAL,
            "principalType": "User",
        }
    }
    path = _assignment_path(scope, name)
    created = clients.send("PUT", path, body, **{"api-version": ROLES_API})
    assert created.status_code == 201, created.text()
    assert created.json() == {
        "properties": {
            "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{READER}",
            "principalId": PRINCIPAL,
            "principalType": "User",
            "scope": scope,
            "createdOn": created.json()["properties"]["createdOn"],
            "updatedOn": created.json()["properties"]["updatedOn"],
        },
        "id": path,
        "type": "Microsoft.Authorization/roleAssignments",
        "name": name,
    }
    again = clients.send("PUT", path, body, **{"api-version": ROLES_API})
    assert again.status_code == 200
    # RoleAssignments_Get.json
    got = clients.send("GET", path, **{"api-version": ROLES_API})
    assert got.status_code == 200 and got.json()["properties"]["scope"] == scope
    # the same principal and role at the scope under another name
    other = clients.send(
        "PUT", _assignment_path(scope, str(uuid.uuid4())), body, **{"api-version": ROLES_API}
    )
    assert other.status_code == 409
    assert error_of(other)["code"] == "RoleAssignmentExists"
    # RoleAssignments_ListForScope.json: at the scope; at the group above it with a principal
    listed = clients.send(
        "GET",
        scope + "/providers/Microsoft.Authorization/roleAssignments",
        **{"api-version": ROLES_API, "$filter": "atScope()"},
    )
    assert [a["name"] for a in listed.json()["value"]] == [name]
    group = clients.send(
        "GET",
        rg_path(clients, rg) + "/providers/Microsoft.Authorization/roleAssignments",
        **{"api-version": ROLES_API, "$filter": f"principalId eq '{PRINCIPAL}'"},
    )
    assert [a["name"] for a in group.json()["value"]] == [name]
    above_only = clients.send(
        "GET",
        rg_path(clients, rg) + "/providers/Microsoft.Authorization/roleAssignments",
        **{"api-version": ROLES_API, "$filter": "atScope()"},
    )
    assert above_only.json()["value"] == []
    # RoleAssignments_Delete.json: 200 with the assignment, then 204
    deleted = clients.send("DELETE", path, **{"api-version": ROLES_API})
    assert deleted.status_code == 200 and deleted.json()["name"] == name
    assert clients.send("DELETE", path, **{"api-version": ROLES_API}).status_code == 204
    gone = clients.send("GET", path, **{"api-version": ROLES_API})
    assert gone.status_code == 404 and error_of(gone)["code"] == "RoleAssignmentNotFound"


@pytest.mark.parametrize(
    ("name", "props", "status", "code"),
    [
        ("not-a-guid", {}, 400, "InvalidRoleAssignmentId"),
        (None, {"roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/"
                + str(uuid.UUID(int=7))}, 400, "RoleDefinitionDoesNotExist"),
        (None, {"principalId": "someone"}, 400, "InvalidPrincipalId"),
    ],
    ids=["name", "role", "principal"],
)  # fmt: skip
def test_bad_role_assignments(clients, rg, name, props, status, code):
    scope = _groups_gallery(clients, rg)
    body = {
        "properties": {
            "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{READER}",
            "principalId": PRINCIPAL,
            **props,
        }
    }
    path = _assignment_path(scope, name or str(uuid.uuid4()))
    answer = clients.send("PUT", path, body, **{"api-version": ROLES_API})
    assert answer.status_code == status
    assert error_of(answer)["code"] == code


def test_role_assignment_at_a_missing_resource(clients, rg):
    path = _assignment_path(gallery_path(clients, rg, "nothere"), str(uuid.uuid4()))
    body = {
        "properties": {
            "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{READER}",
            "principalId": PRINCIPAL,
        }
    }
    answer = clients.send("PUT", path, body, **{"api-version": ROLES_API})
    assert answer.status_code == 404 and error_of(answer)["code"] == "ResourceNotFound"


# subscriptions and tenants ------------------------------------------------------------------


def test_the_callers_subscription_and_tenant(clients, rg):  # GetTenants.json
    sub = clients.arm.subscription_id
    got = clients.send("GET", f"/subscriptions/{sub}", **{"api-version": SUBS_API})
    assert got.status_code == 200
    assert got.json()["subscriptionId"] == sub
    assert got.json()["id"] == f"/subscriptions/{sub}"
    assert got.json()["tenantId"] == SANDBOX_TENANT_ID
    assert got.json()["state"] == "Enabled"
    foreign = clients.send("GET", f"/subscriptions/{SUB_A}", **{"api-version": SUBS_API})
    assert foreign.status_code == 404 and error_of(foreign)["code"] == "SubscriptionNotFound"
    tenants = clients.send("GET", "/tenants", **{"api-version": SUBS_API}).json()["value"]
    assert [t["tenantId"] for t in tenants] == [SANDBOX_TENANT_ID]
    assert tenants[0]["id"] == f"/tenants/{SANDBOX_TENANT_ID}"
    listed = clients.send("GET", "/subscriptions", **{"api-version": SUBS_API}).json()["value"]
    assert sub in [s["subscriptionId"] for s in listed]
