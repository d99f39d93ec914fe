"""Shallow replication (publishingProfile.replicationMode), as GalleryRP's
GalleryImageVersion_Create_WithShallowReplicationMode.json shows it and with the limits
packer-plugin-azure's config.go states (own region only, one replica, not updatable)."""

from __future__ import annotations

from emulator_helpers import (
    begin_version_from_image,
    error_of,
    gallery_path,
    make_image,
    managed_image_id,
)

API = {"api-version": "2025-03-03"}


def _shallow(clients, rg, version, targets):  # type: ignore[no-untyped-def]
    path = gallery_path(clients, rg) + f"/images/debian-12/versions/{version}"
    body = {
        "location": "West US",
        "properties": {
            "publishingProfile": {"targetRegions": targets, "replicationMode": "Shallow"},
            "storageProfile": {"source": {"id": managed_image_id(clients, rg)}},
        },
    }
    return path, clients.send("PUT", path, body, **API)


def test_a_shallow_version_as_the_spec_example_creates_it(clients, rg):
    make_image(clients, rg)
    path, created = _shallow(clients, rg, "1.0.0", [{"name": "West US", "regionalReplicaCount": 1}])
    assert created.status_code in (200, 201), created.text
    publishing = created.json()["properties"]["publishingProfile"]
    assert publishing["replicationMode"] == "Shallow"
    assert [t["regionalReplicaCount"] for t in publishing["targetRegions"]] == [1]
    sdk = clients.compute.gallery_image_versions.get(rg, "gallery", "debian-12", "1.0.0")
    assert sdk.publishing_profile.replication_mode == "Shallow"


def test_a_shallow_version_stays_in_its_region_with_one_replica(clients, rg):
    make_image(clients, rg)
    _, two_regions = _shallow(clients, rg, "1.0.0", [{"name": "West US"}, {"name": "East US"}])
    assert two_regions.status_code == 400
    assert "cannot target East US" in error_of(two_regions)["message"]
    _, two_replicas = _shallow(
        clients, rg, "1.0.1", [{"name": "West US", "regionalReplicaCount": 2}]
    )
    assert two_replicas.status_code == 400
    assert "exactly one replica" in error_of(two_replicas)["message"]
    path, ok = _shallow(clients, rg, "1.0.2", [{"name": "West US"}])
    assert ok.status_code in (200, 201), ok.text
    clients.compute.gallery_image_versions.get(rg, "gallery", "debian-12", "1.0.2")
    wider = {
        "properties": {
            "storageProfile": {},
            "publishingProfile": {"targetRegions": [{"name": "West US"}, {"name": "East US"}]},
        }
    }
    refused = clients.send("PATCH", path, wider, **API)
    assert refused.status_code == 400, refused.text
    full = {"properties": {"storageProfile": {}, "publishingProfile": {"replicationMode": "Full"}}}
    changed = clients.send("PATCH", path, full, **API)
    assert (changed.status_code, error_of(changed)["code"]) == (409, "PropertyChangeNotAllowed")


def test_a_full_version_is_unchanged_and_an_unknown_mode_refused(clients, rg):
    make_image(clients, rg)
    source = managed_image_id(clients, rg)
    full = begin_version_from_image(
        clients, rg, "1.0.0", source, publishing={"replicationMode": "Full"}
    ).result()
    assert full.publishing_profile.replication_mode == "Full"
    path = gallery_path(clients, rg) + "/images/debian-12/versions/1.0.1"
    body = {
        "location": "West US",
        "properties": {
            "publishingProfile": {"replicationMode": "Deep"},
            "storageProfile": {"source": {"id": source}},
        },
    }
    bad = clients.send("PUT", path, body, **API)
    assert bad.status_code == 400 and "replicationMode" in error_of(bad)["message"]
