"""The route table: every ARM path and method the emulator serves."""

from __future__ import annotations

from imageforge.sandbox.emulator.handlers import (
    galleries,
    images,
    marketplace,
    network,
    operations,
    resourcegroups,
    tags,
    versions,
    vms,
)
from imageforge.sandbox.emulator.routing import Route, Router

SUB = "/subscriptions/{subscriptionId}"
RG = SUB + "/resourceGroups/{resourceGroupName}"
GALLERY = RG + "/providers/Microsoft.Compute/galleries/{galleryName}"
IMAGE = GALLERY + "/images/{galleryImageName}"
VERSION = IMAGE + "/versions/{galleryImageVersionName}"
VM = RG + "/providers/Microsoft.Compute/virtualMachines/{vmName}"
MANAGED_IMAGE = RG + "/providers/Microsoft.Compute/images/{imageName}"
NET = RG + "/providers/Microsoft.Network"
VNET = NET + "/virtualNetworks/{virtualNetworkName}"
NSG = NET + "/networkSecurityGroups/{networkSecurityGroupName}"
PIP = NET + "/publicIPAddresses/{publicIpAddressName}"
NIC = NET + "/networkInterfaces/{networkInterfaceName}"
COMPUTE_LOC = SUB + "/providers/Microsoft.Compute/locations/{location}"
VMIMAGE = (
    COMPUTE_LOC
    + "/publishers/{publisherName}/artifacttypes/vmimage/offers/{offer}/skus/{skus}/versions"
)
NETWORK_LOC = SUB + "/providers/Microsoft.Network/locations/{location}"
TAGS = SUB + "{scope:path}" + tags.SUFFIX


def _routes() -> list[Route]:
    r = Route
    return [
        # the sandbox marketplace (VirtualMachineImages)
        r("GET", VMIMAGE, marketplace.list_versions, "compute.vm"),
        r("GET", VMIMAGE + "/{version}", marketplace.get_version, "compute.vm"),
        # resource groups
        r("GET", SUB + "/resourcegroups", resourcegroups.list_groups, "resources"),
        r("PUT", RG, resourcegroups.put, "resources"),
        r("GET", RG, resourcegroups.get, "resources"),
        r("HEAD", RG, resourcegroups.head, "resources"),
        r("PATCH", RG, resourcegroups.patch, "resources"),
        r("DELETE", RG, resourcegroups.delete, "resources"),
        r("GET", SUB + "/operationresults/{operationId}", operations.location_status, "resources"),
        # the Tags API on any resource
        r("GET", TAGS, tags.get_tags, "resources"),
        r("PUT", TAGS, tags.put_tags, "resources"),
        r("PATCH", TAGS, tags.patch_tags, "resources"),
        r("DELETE", TAGS, tags.delete_tags, "resources"),
        # galleries
        r("GET", SUB + "/providers/Microsoft.Compute/galleries", galleries.list_galleries,
          "compute.gallery"),
        r("GET", RG + "/providers/Microsoft.Compute/galleries", galleries.list_galleries,
          "compute.gallery"),
        r("PUT", GALLERY, galleries.put_gallery, "compute.gallery"),
        r("PATCH", GALLERY, galleries.patch_gallery, "compute.gallery"),
        r("GET", GALLERY, galleries.get_gallery, "compute.gallery"),
        r("DELETE", GALLERY, galleries.delete_gallery, "compute.gallery"),
        r("GET", GALLERY + "/images", galleries.list_images, "compute.gallery"),
        r("PUT", IMAGE, galleries.put_image, "compute.gallery"),
        r("PATCH", IMAGE, galleries.patch_image, "compute.gallery"),
        r("GET", IMAGE, galleries.get_image, "compute.gallery"),
        r("DELETE", IMAGE, galleries.delete_image, "compute.gallery"),
        r("GET", IMAGE + "/versions", versions.list_versions, "compute.gallery"),
        r("PUT", VERSION, versions.put_version, "compute.gallery"),
        r("PATCH", VERSION, versions.patch_version, "compute.gallery"),
        r("GET", VERSION, versions.get_version, "compute.gallery"),
        r("DELETE", VERSION, versions.delete_version, "compute.gallery"),
        r("GET", COMPUTE_LOC + "/capsOperations/{operationId}", operations.async_status,
          "compute.gallery"),
        # virtual machines
        r("GET", RG + "/providers/Microsoft.Compute/virtualMachines", vms.list_vms, "compute.vm"),
        r("PUT", VM, vms.put_vm, "compute.vm"),
        r("GET", VM, vms.get_vm, "compute.vm"),
        r("DELETE", VM, vms.delete_vm, "compute.vm"),
        r("GET", VM + "/instanceView", vms.get_instance_view, "compute.vm"),
        r("POST", VM + "/deallocate", vms.deallocate, "compute.vm"),
        r("POST", VM + "/generalize", vms.generalize, "compute.vm"),
        r("GET", COMPUTE_LOC + "/operations/{operationId}", operations.async_status, "compute.vm"),
        # managed images
        r("GET", SUB + "/providers/Microsoft.Compute/images", images.list_images, "compute.image"),
        r("GET", RG + "/providers/Microsoft.Compute/images", images.list_images, "compute.image"),
        r("PUT", MANAGED_IMAGE, images.put_image, "compute.image"),
        r("GET", MANAGED_IMAGE, images.get_image, "compute.image"),
        r("DELETE", MANAGED_IMAGE, images.delete_image, "compute.image"),
        # network
        r("GET", NET + "/virtualNetworks", network.list_vnets, "network"),
        r("PUT", VNET, network.put_vnet, "network"),
        r("GET", VNET, network.get_vnet, "network"),
        r("DELETE", VNET, network.delete_vnet, "network"),
        r("GET", VNET + "/subnets", network.list_subnets, "network"),
        r("PUT", VNET + "/subnets/{subnetName}", network.put_subnet, "network"),
        r("GET", VNET + "/subnets/{subnetName}", network.get_subnet, "network"),
        r("DELETE", VNET + "/subnets/{subnetName}", network.delete_subnet, "network"),
        r("GET", NET + "/networkSecurityGroups", network.list_nsgs, "network"),
        r("PUT", NSG, network.put_nsg, "network"),
        r("GET", NSG, network.get_nsg, "network"),
        r("DELETE", NSG, network.delete_nsg, "network"),
        r("GET", NET + "/publicIPAddresses", network.list_public_ips, "network"),
        r("PUT", PIP, network.put_public_ip, "network"),
        r("GET", PIP, network.get_public_ip, "network"),
        r("DELETE", PIP, network.delete_public_ip, "network"),
        r("GET", NET + "/networkInterfaces", network.list_nics, "network"),
        r("PUT", NIC, network.put_nic, "network"),
        r("GET", NIC, network.get_nic, "network"),
        r("DELETE", NIC, network.delete_nic, "network"),
        r("GET", NETWORK_LOC + "/operations/{operationId}", operations.async_status, "network"),
        r("GET", NETWORK_LOC + "/operationResults/{operationId}", operations.location_status,
          "network"),
    ]  # fmt: skip


def router() -> Router:
    return Router(_routes())
