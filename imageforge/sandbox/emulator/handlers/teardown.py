"""Deleting everything inside a resource group, in dependency order, for resource group
DELETE: virtual machines (through the backend) first, then managed images' captured copies,
gallery versions' images last."""

from __future__ import annotations

import logging

from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import galleries, images, network, versions, vms

log = logging.getLogger("imageforge.sandbox.emulator")

_ORDER = (
    vms.TYPE,
    images.TYPE,
    network.NIC_TYPE,
    network.PIP_TYPE,
    network.NSG_TYPE,
    network.VNET_TYPE,
    galleries.VERSION_TYPE,
    galleries.IMAGE_TYPE,
    galleries.GALLERY_TYPE,
)


def delete_group_contents(em: Emulator, group_id: str) -> None:
    for type_name in _ORDER:
        for res in em.store.resources(type_name, group_id):
            if type_name == vms.TYPE:
                vms.destroy(em, res)
            elif type_name == images.TYPE:
                images.remove_blob(em, res)
            elif type_name == galleries.VERSION_TYPE:
                versions.remove_images(em, res)
            elif type_name.startswith("Microsoft.Network"):
                network.forget(em, res)
            em.store.delete(res.id)
    for res in em.store.resources(None, group_id):
        log.info("deleting %s with its resource group", res.id)
        em.store.delete(res.id)
