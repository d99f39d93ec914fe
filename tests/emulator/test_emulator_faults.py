"""Fault injection through /_sandbox/faults, seen through the SDK's own retry and LRO logic."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError
from emulator_helpers import LOCATION, make_clients, make_image, managed_image_id

from imageforge.errors import SandboxError


def _create_version(clients, rg, name, regions):  # type: ignore[no-untyped-def]
    return clients.compute.gallery_image_versions.begin_create_or_update(
        rg,
        "gallery",
        "debian-12",
        name,
        {
            "location": LOCATION,
            "properties": {
                "publishingProfile": {"targetRegions": [{"name": r} for r in regions]},
                "storageProfile": {"source": {"id": managed_image_id(clients, rg)}},
            },
        },
    )


def test_throttling_storm_is_ridden_out_with_retry_after(clients, rg, arm):
    make_image(clients, rg)
    arm.reset_stats()
    arm.set_faults(
        [
            {
                "kind": "throttle",
                "method": "GET",
                "path": r"/images/debian-12$",
                "count": 2,
                "retry_after": 1,
            }
        ]
    )
    started = time.monotonic()
    image = clients.compute.gallery_images.get(rg, "gallery", "debian-12")
    elapsed = time.monotonic() - started
    assert image.name == "debian-12"
    assert elapsed >= 2.0  # azure-core waited Retry-After (1s) twice
    stats = arm.stats()
    assert stats["throttled"] == 2
    route = (
        "GET /subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
        "Microsoft.Compute/galleries/{galleryName}/images/{galleryImageName}"
    )
    assert stats["by_route"][route] == {"count": 3, "throttled": 2, "failed": 0}
    assert [entry["status"] for entry in stats["log"]] == [429, 429, 200]
    assert stats["log"][0]["fault"] == "throttle"
    assert arm.faults()[0]["remaining"] == 0


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried(arm, rg, status):
    quick = make_clients(arm, retry_backoff_factor=0.05)
    make_image(quick, rg)
    arm.reset_stats()
    arm.set_faults([{"kind": "error", "status": status, "method": "GET", "count": 2}])
    assert quick.compute.galleries.get(rg, "gallery").name == "gallery"
    stats = arm.stats()
    assert stats["failed"] == 2
    assert stats["by_status"] == {str(status): 2, "200": 1}


def test_unlimited_errors_exhaust_the_retries(arm, rg):
    impatient = make_clients(arm, retry_total=2, retry_backoff_factor=0.01)
    arm.set_faults([{"kind": "error", "status": 503, "path": "/galleries/", "count": None}])
    with pytest.raises(HttpResponseError) as raised:
        impatient.compute.galleries.get(rg, "gallery")
    assert raised.value.status_code == 503
    assert raised.value.error.code == "ServiceUnavailable"
    assert arm.faults()[0]["hits"] == 3


def test_long_running_operation_ending_failed(clients, rg, arm):
    make_image(clients, rg)
    arm.set_faults(
        [
            {
                "kind": "lro_failed",
                "method": "PUT",
                "path": "/versions/",
                "code": "InternalDiskManagementError",
                "message": "disk management failed",
            }
        ]
    )
    poller = _create_version(clients, rg, "1.0.0", ["westus"])
    with pytest.raises(HttpResponseError) as raised:
        poller.result()
    assert "disk management failed" in str(raised.value)
    version = clients.compute.gallery_image_versions.get(rg, "gallery", "debian-12", "1.0.0")
    assert version.provisioning_state == "Failed"
    # the next attempt (the rule was used up) works
    retry = clients.compute.gallery_image_versions.begin_update(
        rg,
        "gallery",
        "debian-12",
        "1.0.0",
        {"properties": {"publishingProfile": {}, "storageProfile": {}}},
    ).result()
    assert retry.provisioning_state == "Succeeded"


def test_failing_region(clients, rg, arm):
    make_image(clients, rg)
    arm.set_faults(
        [{"kind": "region_failure", "region": "East US", "message": "eastus store is down"}]
    )
    with pytest.raises(HttpResponseError) as raised:
        _create_version(clients, rg, "1.0.0", ["westus", "eastus", "northeurope"]).result()
    assert raised.value.error.code == "ReplicationFailed"
    version = clients.compute.gallery_image_versions.get(
        rg, "gallery", "debian-12", "1.0.0", expand="ReplicationStatus"
    )
    assert version.provisioning_state == "Failed"
    assert version.replication_status.aggregated_state == "Failed"
    states = {s.region: (s.state, s.details) for s in version.replication_status.summary}
    assert states["East US"] == ("Failed", "eastus store is down")
    assert states["West US"][0] == states["North Europe"][0] == "Completed"
    # Updating the version retries the failed region (the fault fired once).
    fixed = clients.compute.gallery_image_versions.begin_update(
        rg,
        "gallery",
        "debian-12",
        "1.0.0",
        {"properties": {"publishingProfile": {}, "storageProfile": {}}},
    ).result()
    assert fixed.provisioning_state == "Succeeded"
    again = clients.compute.gallery_image_versions.get(
        rg, "gallery", "debian-12", "1.0.0", expand="ReplicationStatus"
    )
    assert again.replication_status.aggregated_state == "Completed"


def test_latency_and_rule_matching(clients, rg, arm):
    clients.compute.galleries.begin_create_or_update(rg, "gallery", {"location": LOCATION}).result()
    arm.set_faults(
        [
            {"kind": "latency", "seconds": 0.4, "method": "GET", "path": "/galleries/gallery$"},
            {"kind": "error", "status": 500, "method": "DELETE", "count": None},
        ]
    )
    started = time.monotonic()
    clients.compute.galleries.get(rg, "gallery")
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    clients.resource.resource_groups.get(rg)  # neither rule matches
    assert time.monotonic() - started < 0.4
    arm.clear_faults()
    assert arm.faults() == []


def test_admin_api_validates_rules(arm):
    for bad in (
        {"kind": "explode"},
        {"kind": "throttle", "retry_after": 0},
        {"kind": "error", "status": 404},
        {"kind": "region_failure", "region": "atlantis"},
        {"kind": "latency", "seconds": 0},
        {"kind": "throttle", "path": "("},
        {"kind": "throttle", "count": 0},
        {"kind": "throttle", "colour": "red"},
    ):
        with pytest.raises(SandboxError, match="400"):
            arm.set_faults([bad])
    assert arm.faults() == []
    added = arm.set_faults([{"kind": "throttle", "count": None}])
    assert added[0]["remaining"] is None and added[0]["id"] >= 1
    arm.clear_faults()
    arm.reset_stats()
    assert arm.stats()["total"] == 0


def test_lro_failure_rules_wait_for_a_long_running_request(clients, rg, arm):
    arm.set_faults([{"kind": "lro_failed", "method": "PUT"}])
    clients.resource.resource_groups.create_or_update(rg, {"location": LOCATION})  # synchronous
    bad = clients.send(
        "PUT",
        f"/subscriptions/{arm.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Compute/"
        "galleries/gallery",
        {"properties": {}},
        **{"api-version": "2026-03-03"},
    )
    assert bad.status_code == 400  # refused before an operation began
    assert arm.faults()[0]["remaining"] == 1
    with pytest.raises(HttpResponseError):
        clients.compute.galleries.begin_create_or_update(
            rg, "gallery", {"location": LOCATION}
        ).result()
    assert arm.faults()[0]["remaining"] == 0
    assert clients.compute.galleries.get(rg, "gallery").provisioning_state == "Failed"
