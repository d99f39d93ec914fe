"""ResourceNotFound names the resource the way ARM does: Namespace/type/name[/type/name]."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceNotFoundError
from emulator_helpers import make_image


def test_missing_nested_resources_are_named_by_their_path(clients, rg):
    with pytest.raises(ResourceNotFoundError) as caught:
        clients.compute.galleries.get(rg, "nogallery")
    assert caught.value.error.message.startswith(
        f"The Resource 'Microsoft.Compute/galleries/nogallery' under resource group '{rg}' "
        "was not found."
    )
    make_image(clients, rg)
    with pytest.raises(ResourceNotFoundError) as caught:
        clients.compute.gallery_image_versions.get(rg, "gallery", "debian-12", "9.9.9")
    assert caught.value.error.code == "ResourceNotFound"
    assert caught.value.error.message.startswith(
        "The Resource 'Microsoft.Compute/galleries/gallery/images/debian-12/versions/9.9.9' "
        f"under resource group '{rg}' was not found."
    )
