"""The Tags API at a scope ({scope}/providers/Microsoft.Resources/tags/default) via the SDK."""

from __future__ import annotations

import threading

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from emulator_helpers import error_of, gallery_path, make_image, rg_path

RES_API = {"api-version": "2025-04-01"}


def _image_scope(clients, rg):  # type: ignore[no-untyped-def]
    return gallery_path(clients, rg) + "/images/debian-12"


def _merge(clients, scope, tags, operation="Merge"):  # type: ignore[no-untyped-def]
    return clients.resource.tags.begin_update_at_scope(
        scope, {"operation": operation, "properties": {"tags": tags}}
    ).result()


def test_merge_adds_and_updates_only_the_named_tags(clients, rg):
    make_image(clients, rg)
    scope = _image_scope(clients, rg)
    first = _merge(clients, scope, {"a": "1", "b": "2"})
    assert first.properties.tags == {"a": "1", "b": "2"}
    assert first.id == scope + "/providers/Microsoft.Resources/tags/default"
    assert first.name == "default" and first.type == "Microsoft.Resources/tags"
    assert _merge(clients, scope, {"B": "3", "c": "4"}).properties.tags == {
        "a": "1",
        "b": "3",
        "c": "4",
    }
    assert clients.resource.tags.get_at_scope(scope).properties.tags == {
        "a": "1",
        "b": "3",
        "c": "4",
    }
    image = clients.compute.gallery_images.get(rg, "gallery", "debian-12")
    assert image.tags == {"a": "1", "b": "3", "c": "4"}


def test_delete_removes_names_or_matching_name_value_pairs(clients, rg):
    make_image(clients, rg)
    scope = _image_scope(clients, rg)
    _merge(clients, scope, {"keep": "x", "byname": "y", "pair": "z", "stale": "old"})
    result = _merge(clients, scope, {"byname": "", "pair": "z", "stale": "not-the-value"}, "Delete")
    assert result.properties.tags == {"keep": "x", "stale": "old"}


def test_replace_put_and_delete_at_scope(clients, rg):
    scope = rg_path(clients, rg)
    _merge(clients, scope, {"a": "1"})
    assert _merge(clients, scope, {"b": "2"}, "Replace").properties.tags == {"b": "2"}
    put = clients.resource.tags.begin_create_or_update_at_scope(
        scope, {"properties": {"tags": {"c": "3"}}}
    ).result()
    assert put.properties.tags == {"c": "3"}
    assert clients.resource.resource_groups.get(rg).tags == {"c": "3"}
    clients.resource.tags.begin_delete_at_scope(scope).result()
    assert clients.resource.tags.get_at_scope(scope).properties.tags == {}


def test_concurrent_merges_of_different_names_lose_nothing(clients, rg):
    make_image(clients, rg)
    scope = _image_scope(clients, rg)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for round_ in range(3):
                _merge(clients, scope, {f"w{n}": str(round_)})
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert clients.resource.tags.get_at_scope(scope).properties.tags == {
        f"w{n}": "2" for n in range(8)
    }


def test_missing_scope_is_not_found_naming_the_resource(clients, rg):
    scope = gallery_path(clients, rg) + "/images/nope"
    with pytest.raises(ResourceNotFoundError) as caught:
        clients.resource.tags.get_at_scope(scope)
    assert caught.value.error.code == "ResourceNotFound"
    assert "Microsoft.Compute/galleries/gallery/images/nope" in caught.value.error.message
    with pytest.raises(ResourceNotFoundError) as caught:
        clients.resource.tags.get_at_scope(rg_path(clients, "no-such-group") + "/x")
    assert caught.value.error.code == "ResourceGroupNotFound"


def test_limits_and_bad_operations_are_refused(clients, rg):
    scope = rg_path(clients, rg)
    with pytest.raises(HttpResponseError) as caught:
        _merge(clients, scope, {f"t{n}": "v" for n in range(51)})
    assert caught.value.error.code == "InvalidTagCount"
    with pytest.raises(HttpResponseError) as caught:
        _merge(clients, scope, {"a/b": "v"})
    assert caught.value.error.code == "InvalidTagNameCharacters"
    response = clients.send(
        "PATCH",
        scope + "/providers/Microsoft.Resources/tags/default",
        {"operation": "Append", "properties": {"tags": {"a": "1"}}},
        **RES_API,
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "InvalidTagPatchOperation"
