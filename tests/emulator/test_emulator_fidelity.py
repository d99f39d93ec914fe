"""Fidelity: the documented GalleryRP examples, driven with the real SDK clients over HTTPS.

Each test names the azure-rest-api-specs example it follows
(specification/compute/resource-manager/Microsoft.Compute/GalleryRP/stable/2024-03-03/examples/
galleryExamples/...) and checks the documented status codes, headers and response shapes.
"""

from __future__ import annotations

import datetime as dt
import time

from emulator_helpers import (
    LOCATION,
    begin_version_from_image,
    blobs,
    error_of,
    gallery_path,
    make_generalized_vm,
    make_image,
    make_version,
    managed_image_id,
    rg_path,
)

GALLERY_API = "2026-03-03"


def _assert_lro_headers(response) -> None:  # type: ignore[no-untyped-def]
    headers = response.headers
    assert "capsOperations/" in headers["Azure-AsyncOperation"]
    assert headers["Location"].startswith("https://")
    assert int(headers["Retry-After"]) >= 1


def test_gallery_create_and_get(clients, rg):  # Gallery_Create.json, Gallery_Get.json
    path = gallery_path(clients, rg, "myGalleryName")
    body = {
        "location": "West US",
        "properties": {"description": "This is the gallery description."},
    }
    created = clients.send("PUT", path, body, **{"api-version": GALLERY_API})
    assert created.status_code == 201
    _assert_lro_headers(created)
    shown = created.json()
    assert shown["name"] == "myGalleryName"
    assert shown["location"] == "westus"
    assert shown["properties"]["provisioningState"] == "Creating"
    assert shown["properties"]["identifier"]["uniqueName"].endswith("-MYGALLERYNAME")
    status = clients.send("GET", created.headers["Azure-AsyncOperation"])
    assert status.status_code == 200
    assert status.json()["status"] == "Succeeded"
    assert {"name", "status", "startTime", "endTime"} <= set(status.json())

    again = clients.send("PUT", path, body, **{"api-version": GALLERY_API})
    assert again.status_code == 200
    assert again.json()["properties"]["provisioningState"] == "Updating"
    updated = clients.send("GET", again.headers["Azure-AsyncOperation"])
    assert updated.json()["status"] == "Succeeded"

    gallery = clients.compute.galleries.get(rg, "myGalleryName")
    assert gallery.provisioning_state == "Succeeded"
    assert gallery.description == "This is the gallery description."
    assert gallery.id == path


def test_gallery_image_create_and_delete(clients, rg):  # GalleryImage_Create/_Delete.json
    make_image(clients, rg)
    path = gallery_path(clients, rg) + "/images/myGalleryImageName"
    body = {
        "location": LOCATION,
        "properties": {
            "osType": "Windows",
            "osState": "Generalized",
            "hyperVGeneration": "V1",
            "identifier": {
                "publisher": "myPublisherName",
                "offer": "myOfferName",
                "sku": "mySkuName",
            },
        },
    }
    created = clients.send("PUT", path, body, **{"api-version": GALLERY_API})
    assert created.status_code == 201
    _assert_lro_headers(created)
    props = created.json()["properties"]
    assert props["provisioningState"] == "Creating"
    assert props["identifier"] == body["properties"]["identifier"]
    assert clients.send("GET", created.headers["Azure-AsyncOperation"]).json()["status"] == (
        "Succeeded"
    )
    image = clients.compute.gallery_images.get(rg, "gallery", "myGalleryImageName")
    assert (image.os_type, image.os_state, image.hyper_v_generation) == (
        "Windows",
        "Generalized",
        "V1",
    )
    assert image.provisioning_state == "Succeeded"

    deleted = clients.send("DELETE", path, **{"api-version": GALLERY_API})
    assert deleted.status_code == 202
    _assert_lro_headers(deleted)
    monitor = clients.send("GET", deleted.headers["Location"])
    assert monitor.status_code in (200, 204)
    gone = clients.send("GET", path, **{"api-version": GALLERY_API})
    assert gone.status_code == 404
    assert error_of(gone)["code"] == "ResourceNotFound"
    assert clients.send("DELETE", path, **{"api-version": GALLERY_API}).status_code == 204


def test_version_create_from_vm(clients, rg):  # GalleryImageVersion_Create_WithVmAsSource.json
    make_image(clients, rg)
    vm = make_generalized_vm(clients, rg)
    path = gallery_path(clients, rg) + "/images/debian-12/versions/1.0.0"
    body = {
        "location": "West US",
        "properties": {
            "publishingProfile": {
                "targetRegions": [
                    {"name": "West US", "regionalReplicaCount": 2, "excludeFromLatest": False},
                    {
                        "name": "East US",
                        "regionalReplicaCount": 2,
                        "storageAccountType": "Standard_ZRS",
                    },
                ]
            },
            "storageProfile": {"source": {"virtualMachineId": vm.id}},
            "safetyProfile": {"allowDeletionOfReplicatedLocations": False},
        },
    }
    created = clients.send("PUT", path, body, **{"api-version": GALLERY_API})
    assert created.status_code == 201
    _assert_lro_headers(created)
    props = created.json()["properties"]
    assert props["provisioningState"] == "Creating"
    publishing = props["publishingProfile"]
    assert publishing["replicaCount"] == 1
    assert publishing["storageAccountType"] == "Standard_LRS"
    dt.datetime.fromisoformat(publishing["publishedDate"])
    assert publishing["targetRegions"] == [
        {
            "name": "West US",
            "regionalReplicaCount": 2,
            "storageAccountType": "Standard_LRS",
            "excludeFromLatest": False,
        },
        {
            "name": "East US",
            "regionalReplicaCount": 2,
            "storageAccountType": "Standard_ZRS",
            "excludeFromLatest": False,
        },
    ]
    assert props["storageProfile"]["source"] == {"virtualMachineId": vm.id}
    assert props["storageProfile"]["osDiskImage"]["sizeInGB"] > 0
    assert props["safetyProfile"]["allowDeletionOfReplicatedLocations"] is False
    assert props["safetyProfile"]["reportedForPolicyViolation"] is False

    status = clients.send("GET", created.headers["Azure-AsyncOperation"])
    assert status.json()["status"] == "Succeeded"
    version = clients.compute.gallery_image_versions.get(rg, "gallery", "debian-12", "1.0.0")
    assert version.provisioning_state == "Succeeded"
    blob_dirs = sorted(p.parent.parent.name for p in blobs(clients.arm).glob("*/*/IMAGE"))
    assert {"westus", "eastus"} <= set(blob_dirs)


def test_version_update(clients, rg):  # GalleryImageVersion_Update.json
    make_image(clients, rg)
    make_version_from_managed_image(clients, rg, "1.0.0")
    path = gallery_path(clients, rg) + "/images/debian-12/versions/1.0.0"
    patch = {
        "properties": {
            "publishingProfile": {
                "targetRegions": [
                    {"name": "West US", "regionalReplicaCount": 1},
                    {
                        "name": "East US",
                        "regionalReplicaCount": 2,
                        "storageAccountType": "Standard_ZRS",
                    },
                ]
            },
            "storageProfile": {"source": {"id": managed_image_id(clients, rg)}},
        }
    }
    updated = clients.send("PATCH", path, patch, **{"api-version": GALLERY_API})
    assert updated.status_code == 200
    _assert_lro_headers(updated)
    assert updated.json()["properties"]["provisioningState"] == "Updating"
    # ARM refuses a second update while this one runs (409 OperationNotAllowed): follow it first
    status = clients.send("GET", updated.headers["Azure-AsyncOperation"])
    assert status.json()["status"] == "Succeeded"
    version = clients.compute.gallery_image_versions.begin_update(
        rg, "gallery", "debian-12", "1.0.0", patch
    ).result()
    assert version.provisioning_state == "Succeeded"
    regions = [
        (t.name, t.regional_replica_count, t.storage_account_type)
        for t in version.publishing_profile.target_regions
    ]
    assert regions == [("West US", 1, "Standard_LRS"), ("East US", 2, "Standard_ZRS")]
    assert version.storage_profile.source.id == managed_image_id(clients, rg)


def test_version_update_without_source_id_and_without_storage_profile(clients, rg):
    """GalleryImageVersion_Update_WithoutSourceId.json (2025-12-03) sends ``storageProfile: {}``:
    GalleryImageVersionProperties requires storageProfile, PATCH included; a PATCH that leaves
    it out is refused and changes nothing."""
    make_image(clients, rg)
    make_version_from_managed_image(clients, rg, "1.0.0")
    path = gallery_path(clients, rg) + "/images/debian-12/versions/1.0.0"
    targets = [{"name": "West US", "regionalReplicaCount": 1}, {"name": "East US"}]
    missing = {"properties": {"publishingProfile": {"targetRegions": targets}}}
    refused = clients.send("PATCH", path, missing, **{"api-version": GALLERY_API})
    assert refused.status_code == 400
    assert error_of(refused) == {
        "code": "InvalidParameter",
        "message": "Required parameter 'storageProfile' is missing (null).",
        "target": "galleryImageVersion.properties.storageProfile",
    }
    shown = clients.compute.gallery_image_versions.get(rg, "gallery", "debian-12", "1.0.0")
    assert [t.name for t in shown.publishing_profile.target_regions] == ["West US"]
    example = {
        "properties": {"publishingProfile": {"targetRegions": targets}, "storageProfile": {}}
    }
    version = clients.compute.gallery_image_versions.begin_update(
        rg, "gallery", "debian-12", "1.0.0", example
    ).result()
    assert [t.name for t in version.publishing_profile.target_regions] == ["West US", "East US"]
    assert version.storage_profile.source.id == managed_image_id(clients, rg)


def test_a_version_update_followed_by_its_location_ends_with_the_version(clients, rg):
    """GalleryImageVersions_Update says `final-state-via: location`, api-version 2025-12-03
    (what current non-Python SDKs send): the Location monitor's last answer is the resource."""
    make_image(clients, rg)
    make_version_from_managed_image(clients, rg, "1.0.0")
    path = gallery_path(clients, rg) + "/images/debian-12/versions/1.0.0"
    body = {
        "properties": {
            "publishingProfile": {"targetRegions": [{"name": "West US"}, {"name": "East US"}]},
            "storageProfile": {},
        }
    }
    updated = clients.send("PATCH", path, body, **{"api-version": "2025-12-03"})
    assert updated.status_code == 200
    location = updated.headers["Location"]
    for _ in range(100):
        final = clients.send("GET", location)
        if final.status_code != 202:
            break
        time.sleep(0.1)
    assert final.status_code == 200
    shown = final.json()
    assert shown["name"] == "1.0.0" and shown["id"].endswith("/versions/1.0.0")
    assert shown["properties"]["provisioningState"] == "Succeeded"
    regions = [t["name"] for t in shown["properties"]["publishingProfile"]["targetRegions"]]
    assert regions == ["West US", "East US"]
    got = clients.send("GET", path, **{"api-version": "2025-12-03"})
    assert got.status_code == 200 and got.json()["name"] == "1.0.0"


def make_version_from_managed_image(clients, rg, version, **publishing):  # type: ignore[no-untyped-def]
    source_id = managed_image_id(clients, rg)
    return begin_version_from_image(clients, rg, version, source_id, publishing=publishing).result()


def test_version_get_with_replication_status(clients, rg):  # ..._Get_WithReplicationStatus.json
    make_image(clients, rg)
    make_version_from_managed_image(
        clients, rg, "1.0.0", targetRegions=[{"name": "westus"}, {"name": "eastus"}]
    )
    path = gallery_path(clients, rg) + "/images/debian-12/versions/1.0.0"
    plain = clients.send("GET", path, **{"api-version": GALLERY_API}).json()
    assert "replicationStatus" not in plain["properties"]
    shown = clients.send(
        "GET", path, **{"api-version": GALLERY_API, "$expand": "ReplicationStatus"}
    )
    assert shown.status_code == 200
    status = shown.json()["properties"]["replicationStatus"]
    assert status == {
        "aggregatedState": "Completed",
        "summary": [
            {"region": "West US", "state": "Completed", "details": "", "progress": 100},
            {"region": "East US", "state": "Completed", "details": "", "progress": 100},
        ],
    }
    version = clients.compute.gallery_image_versions.get(
        rg, "gallery", "debian-12", "1.0.0", expand="ReplicationStatus"
    )
    assert version.replication_status.aggregated_state == "Completed"
    assert [s.region for s in version.replication_status.summary] == ["West US", "East US"]


def test_version_list_pages_with_next_link(clients, rg):  # ..._ListByGalleryImage.json
    make_image(clients, rg)
    names = [f"1.0.{n}" for n in range(12)]
    for name in names:
        make_version_from_managed_image(clients, rg, name)
    path = gallery_path(clients, rg) + "/images/debian-12/versions"
    first = clients.send("GET", path, **{"api-version": GALLERY_API})
    assert first.status_code == 200
    page = first.json()
    assert len(page["value"]) == 10
    assert page["nextLink"].startswith(clients.arm.base_url)
    second = clients.send("GET", page["nextLink"]).json()
    assert len(second["value"]) == 2
    assert "nextLink" not in second
    listed = [
        v.name
        for v in clients.compute.gallery_image_versions.list_by_gallery_image(
            rg, "gallery", "debian-12"
        )
    ]
    assert listed == names


def test_version_delete(clients, rg):  # GalleryImageVersion_Delete.json
    make_image(clients, rg)
    vm = make_generalized_vm(clients, rg)
    version = make_version(clients, rg, "2.0.0", vm.id)
    path = version.id
    before = set(blobs(clients.arm).glob("westus/*"))
    deleted = clients.send("DELETE", path, **{"api-version": GALLERY_API})
    assert deleted.status_code == 202
    _assert_lro_headers(deleted)
    assert (
        clients.send("GET", deleted.headers["Azure-AsyncOperation"]).json()["status"] == "Succeeded"
    )
    assert clients.send("GET", path, **{"api-version": GALLERY_API}).status_code == 404
    assert len(set(blobs(clients.arm).glob("westus/*"))) == len(before) - 1


def test_read_only_fields_are_ignored_and_dates_round_trip(clients, rg):
    make_image(clients, rg)
    path = gallery_path(clients, rg) + "/images/debian-12/versions/3.1.4"
    body = {
        "location": LOCATION,
        "properties": {
            "provisioningState": "Failed",
            "replicationStatus": {"aggregatedState": "Failed"},
            "publishingProfile": {
                "publishedDate": "2000-01-01T00:00:00Z",
                "excludeFromLatest": True,
                "endOfLifeDate": "2030-01-01T00:00:00+00:00",
                "targetRegions": [
                    {"name": "westus"},
                    {"name": "eastus", "excludeFromLatest": True},
                ],
            },
            "storageProfile": {"source": {"id": managed_image_id(clients, rg)}},
        },
    }
    created = clients.send("PUT", path, body, **{"api-version": GALLERY_API})
    assert created.status_code == 201
    assert clients.send("GET", created.headers["Azure-AsyncOperation"]).json()["status"] == (
        "Succeeded"
    )
    version = clients.compute.gallery_image_versions.get(rg, "gallery", "debian-12", "3.1.4")
    published = version.publishing_profile.published_date
    assert published.year == dt.datetime.now(dt.UTC).year
    assert version.provisioning_state == "Succeeded"
    assert version.publishing_profile.exclude_from_latest is True
    assert version.publishing_profile.end_of_life_date == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    excluded = {t.name: t.exclude_from_latest for t in version.publishing_profile.target_regions}
    assert excluded == {"West US": False, "East US": True}

    # A client may send back what GET gave it: unchanged fixed fields and read-only ones pass.
    shown = clients.send("GET", path, **{"api-version": GALLERY_API}).json()
    shown["properties"]["publishingProfile"]["excludeFromLatest"] = False
    promoted = clients.compute.gallery_image_versions.begin_update(
        rg, "gallery", "debian-12", "3.1.4", {"properties": shown["properties"], "tags": {"s": "p"}}
    ).result()
    assert promoted.publishing_profile.exclude_from_latest is False
    assert promoted.publishing_profile.published_date == published
    assert promoted.tags == {"s": "p"}


def test_resource_group_lifecycle(clients):
    rgs = clients.resource.resource_groups
    name = "fidelity-rg"
    path = rg_path(clients, name).replace("resourceGroups", "resourcegroups")
    created = clients.send(
        "PUT",
        path,
        {"location": "West Europe", "tags": {"team": "imaging"}},
        **{"api-version": "2025-04-01"},
    )
    assert created.status_code == 201
    assert created.json()["properties"]["provisioningState"] == "Succeeded"
    assert created.json()["location"] == "westeurope"
    again = rgs.create_or_update(name, {"location": "westeurope", "tags": {"team": "imaging"}})
    assert again.id == rg_path(clients, name)
    assert rgs.check_existence(name) is True
    assert rgs.check_existence("no-such-group") is False
    rgs.create_or_update("fidelity-other", {"location": "westeurope", "tags": {"team": "other"}})
    tagged = [g.name for g in rgs.list(filter="tagName eq 'team' and tagValue eq 'imaging'")]
    assert tagged == [name]
    assert name in [g.name for g in rgs.list(filter="tagName eq 'team'")]

    deleted = clients.send("DELETE", path, **{"api-version": "2025-04-01"})
    assert deleted.status_code == 202
    assert "/operationresults/" in deleted.headers["Location"]
    assert int(deleted.headers["Retry-After"]) >= 1
    assert "Azure-AsyncOperation" not in deleted.headers
    assert clients.send("GET", deleted.headers["Location"]).status_code == 200
    missing = clients.send("GET", path, **{"api-version": "2025-04-01"})
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "ResourceGroupNotFound"
    rgs.begin_delete("fidelity-other").result()
