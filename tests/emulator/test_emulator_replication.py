"""Replication at a pace, the request budget of replicate + promote, and restarts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from emulator_helpers import LOCATION, make_clients, make_image, managed_image_id

from imageforge.sandbox.harness import running_emulator

PACE = 0.5


@pytest.fixture(scope="module")
def paced(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with running_emulator(tmp_path_factory.mktemp("paced"), replication_seconds=PACE) as handle:
        yield handle


def _version(clients, group, regions, name="1.0.0"):  # type: ignore[no-untyped-def]
    return clients.compute.gallery_image_versions.begin_create_or_update(
        group,
        "gallery",
        "debian-12",
        name,
        {
            "location": LOCATION,
            "properties": {
                "publishingProfile": {
                    "excludeFromLatest": True,
                    "targetRegions": [{"name": r} for r in regions],
                },
                "storageProfile": {"source": {"id": managed_image_id(clients, group)}},
            },
        },
    )


def _status(clients, group, name="1.0.0"):  # type: ignore[no-untyped-def]
    return clients.compute.gallery_image_versions.get(
        group, "gallery", "debian-12", name, expand="ReplicationStatus"
    )


def test_regions_replicate_one_after_another(paced):
    clients = make_clients(paced)
    clients.resource.resource_groups.create_or_update("pace", {"location": LOCATION})
    make_image(clients, "pace")
    started = time.monotonic()
    poller = _version(clients, "pace", ["westus", "eastus", "northeurope"])
    early = _status(clients, "pace")
    assert early.provisioning_state == "Creating"
    assert early.replication_status.aggregated_state == "InProgress"
    states = [(s.state, s.details) for s in early.replication_status.summary]
    assert all(state == "Replicating" for state, _ in states)
    assert ("Replicating", "Queued") in states
    time.sleep(PACE * 1.5)
    middle = _status(clients, "pace").replication_status.summary
    assert middle[0].state == "Completed" and middle[0].progress == 100
    assert middle[1].state == "Replicating" and 0 <= middle[1].progress < 100
    version = poller.result()
    assert time.monotonic() - started >= 3 * PACE
    assert version.provisioning_state == "Succeeded"
    assert _status(clients, "pace").replication_status.aggregated_state == "Completed"


def test_replicate_to_three_regions_and_promote_within_budget(paced):
    clients = make_clients(paced)
    clients.resource.resource_groups.create_or_update("budget", {"location": LOCATION})
    make_image(clients, "budget")
    _version(clients, "budget", ["westus"]).result()
    paced.reset_stats()
    versions = clients.compute.gallery_image_versions
    targets = [
        {"name": r, "regionalReplicaCount": 2}
        for r in ("westus", "eastus", "westeurope", "southeastasia")
    ]
    versions.begin_update(
        "budget",
        "gallery",
        "debian-12",
        "1.0.0",
        {"properties": {"publishingProfile": {"targetRegions": targets}, "storageProfile": {}}},
    ).result()
    assert _status(clients, "budget").replication_status.aggregated_state == "Completed"
    promoted = versions.begin_update(
        "budget",
        "gallery",
        "debian-12",
        "1.0.0",
        {
            "properties": {"publishingProfile": {"excludeFromLatest": False}, "storageProfile": {}},
            "tags": {"stage": "promoted"},
        },
    ).result()
    assert promoted.publishing_profile.exclude_from_latest is False
    stats = paced.stats()
    assert stats["total"] < 30, stats["log"]
    async_polls = [e for e in stats["log"] if "capsOperations" in e["route"]]
    assert async_polls, "the SDK polled the operation"


def test_removing_a_region_removes_its_copy(paced):
    clients = make_clients(paced)
    clients.resource.resource_groups.create_or_update("shrink", {"location": LOCATION})
    make_image(clients, "shrink")
    from emulator_helpers import make_generalized_vm

    vm = make_generalized_vm(clients, "shrink")
    clients.compute.gallery_image_versions.begin_create_or_update(
        "shrink",
        "gallery",
        "debian-12",
        "1.0.0",
        {
            "location": LOCATION,
            "properties": {
                "publishingProfile": {"targetRegions": [{"name": "westus"}, {"name": "eastus"}]},
                "storageProfile": {"source": {"virtualMachineId": vm.id}},
            },
        },
    ).result()
    eastus = sorted((paced.state_dir / "blobs" / "eastus").iterdir())
    assert len(eastus) == 1 and (eastus[0] / "IMAGE").exists()
    clients.compute.gallery_image_versions.begin_update(
        "shrink",
        "gallery",
        "debian-12",
        "1.0.0",
        {
            "properties": {
                "publishingProfile": {"targetRegions": [{"name": "westus"}]},
                "storageProfile": {},
            }
        },
    ).result()
    assert not eastus[0].exists()
    summary = _status(clients, "shrink").replication_status.summary
    assert [s.region for s in summary] == ["West US"]


def test_state_and_replication_survive_a_restart(tmp_path: Path):
    state = tmp_path / "sandbox"
    with running_emulator(state, replication_seconds=1.0) as first:
        clients = make_clients(first)
        clients.resource.resource_groups.create_or_update(
            "keep", {"location": LOCATION, "tags": {"k": "v"}}
        )
        make_image(clients, "keep")
        _version(clients, "keep", ["westus", "eastus", "northeurope"])  # not waited for
        time.sleep(0.3)
        ca_before = first.ca_path.read_bytes()
        first_pid = first.pid
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(first_pid, 0)
    with running_emulator(state, replication_seconds=0.2) as second:
        assert second.ca_path.read_bytes() == ca_before
        clients = make_clients(second)
        assert clients.resource.resource_groups.get("keep").tags == {"k": "v"}
        assert clients.compute.gallery_images.get("keep", "gallery", "debian-12").os_type == "Linux"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            version = _status(clients, "keep")
            if version.provisioning_state != "Creating":
                break
            time.sleep(0.2)
        assert version.provisioning_state == "Succeeded"
        assert version.replication_status.aggregated_state == "Completed"
