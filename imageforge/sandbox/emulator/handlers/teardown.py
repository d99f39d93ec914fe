"""Deleting everything inside a resource group, in dependency order, for resource group
DELETE: virtual machines (through the backend) first, then managed images' captured copies,
network resources (NICs before what they use), gallery versions' images last; whatever else the
group holds goes after them."""

from __future__ import annotations

import logging
from collections.abc import Callable

from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import galleries, images, versions, vms
from imageforge.sandbox.emulator.handlers.network import nics, nsgs, publicips, vnets
from imageforge.sandbox.emulator.store import Resource

log = logging.getLogger("imageforge.sandbox.emulator")

Cleanup = Callable[[Emulator, Resource], None]

#: The types in a group in the order they are deleted, with what deleting one leaves to do.
_ORDER: tuple[tuple[str, Cleanup | None], ...] = (
    (vms.TYPE, vms.destroy),
    (images.TYPE, images.remove_blob),
    *(
        (kind.type_name, kind.cleanup)
        for kind in (nics.NICS, publicips.PUBLIC_IPS, nsgs.NSGS, vnets.VNETS)
    ),
    (galleries.VERSION_TYPE, versions.remove_images),
    (galleries.IMAGE_TYPE, None),
    (galleries.GALLERY_TYPE, None),
)


def delete_group_contents(em: Emulator, group_id: str) -> None:
    for type_name, cleanup in _ORDER:
        for res in em.store.resources(type_name, group_id):
            if cleanup is not None:
                cleanup(em, res)
            em.store.delete(res.id)
    for res in em.store.resources(None, group_id):
        log.info("deleting %s with its resource group", res.id)
        em.store.delete(res.id)
