"""The one assumption imageforge.azure makes about the Azure SDKs: a model's ``as_dict()`` is
the REST JSON (camelCase, ``properties`` nested), which ``arm.as_json`` hands to everything
that reads a version, a NIC or a group. The "hybrid models" that behave so arrived in
azure-mgmt-compute 38.0.0, azure-mgmt-network 31.0.0 and azure-mgmt-resource 26.0.0 (their
changelogs); older releases return snake_case, where ``version_info`` finds no
publishingProfile and "latest" is wrong. pyproject.toml's lower bounds say the same."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from imageforge.azure.arm import as_json
from imageforge.azure.gallery import version_info

HYBRID_MODELS_SINCE = {
    "azure-mgmt-compute": "38.0.0",
    "azure-mgmt-network": "31.0.0",
    "azure-mgmt-resource": "26.0.0",
}

VERSION_JSON = {
    "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/"
    "debian-12/versions/1.0.0",
    "name": "1.0.0",
    "location": "westeurope",
    "tags": {"imageforge.stage": "tested"},
    "properties": {
        "publishingProfile": {
            "excludeFromLatest": True,
            "targetRegions": [
                {"name": "West Europe", "regionalReplicaCount": 1, "excludeFromLatest": False}
            ],
        },
        "storageProfile": {"source": {"virtualMachineId": "/subscriptions/s/vm"}},
        "provisioningState": "Succeeded",
    },
}


def test_sdk_models_give_the_rest_shape():
    from azure.mgmt.compute.models import GalleryImageVersion
    from azure.mgmt.network.models import NetworkInterface
    from azure.mgmt.resource.resources.models import ResourceGroup

    version = as_json(GalleryImageVersion(VERSION_JSON))
    assert version["properties"]["publishingProfile"]["excludeFromLatest"] is True
    assert version["properties"]["storageProfile"]["source"]["virtualMachineId"]
    info = version_info(version)
    assert info.exclude_from_latest and info.stage == "tested"
    assert [t.region for t in info.targets] == ["westeurope"]

    nic = as_json(
        NetworkInterface(
            {"properties": {"ipConfigurations": [{"properties": {"privateIPAddress": "10.0.0.4"}}]}}
        )
    )
    assert nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.0.0.4"
    group = as_json(ResourceGroup({"location": "westeurope", "tags": {"a": "b"}}))
    assert group == {"location": "westeurope", "tags": {"a": "b"}}


def test_pyproject_requires_the_sdks_with_rest_shaped_models():
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    bounds = {}
    for line in pyproject["project"]["dependencies"]:
        req = Requirement(line)
        if req.name in HYBRID_MODELS_SINCE:
            lower = [s.version for s in req.specifier if s.operator == ">="]
            bounds[req.name] = Version(lower[0]) if lower else None
    assert set(bounds) == set(HYBRID_MODELS_SINCE)
    for name, since in HYBRID_MODELS_SINCE.items():
        assert bounds[name] is not None and bounds[name] >= Version(since), name
