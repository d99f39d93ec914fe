"""The route table: every ARM path and method the emulator serves, with its api-version family.

Paths are built from the scopes ARM nests resources in (subscription, resource group,
provider, location); most resource types get their list/PUT/PATCH/GET/DELETE routes from
``routing.crud_routes``. A template is what the request log counts by, so templates spell
parameters as Azure's REST specs do.
"""

from __future__ import annotations

from imageforge.sandbox.emulator.handlers import (
    authorization,
    galleries,
    images,
    locks,
    marketplace,
    operations,
    resourcegroups,
    runcommand,
    sharing,
    subscriptions,
    tags,
    versions,
    vmcreate,
    vmpower,
    vms,
)
from imageforge.sandbox.emulator.handlers.network import nics, nsgs, publicips, vnets
from imageforge.sandbox.emulator.routing import Crud, Route, Router, crud_routes

SUB = "/subscriptions/{subscriptionId}"
RG = SUB + "/resourceGroups/{resourceGroupName}"
OPERATION = "/{operationId}"


def _provider(scope: str, namespace: str) -> str:
    return f"{scope}/providers/{namespace}"


def _named(collection: str, param: str) -> str:
    """The path of one item of ``collection``, named by route parameter ``param``."""
    return f"{collection}/{{{param}}}"


def _routes() -> list[Route]:
    compute = _provider(RG, "Microsoft.Compute")
    network = _provider(RG, "Microsoft.Network")
    sub_compute = _provider(SUB, "Microsoft.Compute")
    compute_loc = _named(sub_compute + "/locations", "location")
    network_loc = _named(_provider(SUB, "Microsoft.Network") + "/locations", "location")
    gallery = _named(compute + "/galleries", "galleryName")
    image = _named(gallery + "/images", "galleryImageName")
    vm = _named(compute + "/virtualMachines", "vmName")
    vnet = _named(network + "/virtualNetworks", "virtualNetworkName")
    vmimage = (
        compute_loc
        + "/publishers/{publisherName}/artifacttypes/vmimage/offers/{offer}/skus/{skus}/versions"
    )
    scoped_tags = SUB + "{scope:path}" + tags.SUFFIX
    assignments = SUB + "{scope:path}" + authorization.SUFFIX
    assignment_methods = (
        ("PUT", authorization.put_assignment),
        ("GET", authorization.get_assignment),
        ("DELETE", authorization.delete_assignment),
    )
    group_locks = RG + locks.SUFFIX
    lock_methods = (
        ("PUT", locks.put_at_group),
        ("GET", locks.get_at_group),
        ("DELETE", locks.delete_at_group),
    )
    group_methods = (
        ("PUT", resourcegroups.put),
        ("GET", resourcegroups.get),
        ("HEAD", resourcegroups.head),
        ("PATCH", resourcegroups.patch),
        ("DELETE", resourcegroups.delete),
    )
    tags_methods = (
        ("GET", tags.get_tags),
        ("PUT", tags.put_tags),
        ("PATCH", tags.patch_tags),
        ("DELETE", tags.delete_tags),
    )
    network_types = (vnets.VNETS, nsgs.NSGS, publicips.PUBLIC_IPS, nics.NICS)
    return [
        # the sandbox marketplace (VirtualMachineImages)
        Route("GET", vmimage, marketplace.list_versions, "compute.vm"),
        Route("GET", vmimage + "/{version}", marketplace.get_version, "compute.vm"),
        # resource groups, their deletion's monitor, the Tags API on any resource
        Route("GET", SUB + "/resourcegroups", resourcegroups.list_groups, "resources"),
        *(Route(method, RG, handler, "resources") for method, handler in group_methods),
        Route("GET", SUB + "/operationresults" + OPERATION, operations.location_status,
              "resources"),
        *(Route(method, scoped_tags, handler, "resources") for method, handler in tags_methods),
        # management locks on resource groups (and the subscription's list of them)
        Route("GET", SUB + locks.SUFFIX, locks.list_at_subscription, "authorization"),
        Route("GET", group_locks, locks.list_at_group, "authorization"),
        *(Route(method, group_locks + "/{lockName}", handler, "authorization")
          for method, handler in lock_methods),
        # the caller's subscriptions and tenant; role assignments at any scope
        Route("GET", "/subscriptions", subscriptions.list_subscriptions, "subscriptions"),
        Route("GET", SUB, subscriptions.get_subscription, "subscriptions"),
        Route("GET", "/tenants", subscriptions.list_tenants, "subscriptions"),
        Route("GET", assignments, authorization.list_assignments, "authorization.roles"),
        *(Route(method, assignments + "/{roleAssignmentName}", handler, "authorization.roles")
          for method, handler in assignment_methods),
        # galleries, image definitions and image versions
        *crud_routes(
            "compute.gallery", compute + "/galleries", "galleryName",
            Crud(galleries.list_galleries, galleries.put_gallery, galleries.get_gallery,
                 galleries.delete_gallery, patch=galleries.patch_gallery),
            also_listed_at=sub_compute + "/galleries",
        ),
        *crud_routes(
            "compute.gallery", gallery + "/images", "galleryImageName",
            Crud(galleries.list_images, galleries.put_image, galleries.get_image,
                 galleries.delete_image, patch=galleries.patch_image),
        ),
        *crud_routes(
            "compute.gallery", image + "/versions", "galleryImageVersionName",
            Crud(versions.list_versions, versions.put_version, versions.get_version,
                 versions.delete_version, patch=versions.patch_version),
        ),
        Route("POST", gallery + "/share", sharing.share, "compute.gallery"),
        Route("GET", compute_loc + "/capsOperations" + OPERATION, operations.async_status,
              "compute.gallery"),
        # virtual machines
        *crud_routes(
            "compute.vm", compute + "/virtualMachines", "vmName",
            Crud(vms.list_vms, vmcreate.put_vm, vms.get_vm, vms.delete_vm),
        ),
        Route("GET", vm + "/instanceView", vms.get_instance_view, "compute.vm"),
        Route("POST", vm + "/deallocate", vmpower.deallocate, "compute.vm"),
        Route("POST", vm + "/generalize", vmpower.generalize, "compute.vm"),
        Route("POST", vm + "/runCommand", runcommand.run_command, "compute.vm"),
        Route("GET", compute_loc + "/operations" + OPERATION, operations.async_status,
              "compute.vm"),
        # managed images
        *crud_routes(
            "compute.image", compute + "/images", "imageName",
            Crud(images.list_images, images.put_image, images.get_image, images.delete_image),
            also_listed_at=sub_compute + "/images",
        ),
        # network: virtual networks, NSGs, public IPs, NICs, and subnets on their own
        *(route for kind in network_types
          for route in crud_routes("network", f"{network}/{kind.collection}", kind.param,
                                   kind.crud)),
        *crud_routes(
            "network", vnet + "/subnets", "subnetName",
            Crud(vnets.list_subnets, vnets.put_subnet, vnets.get_subnet, vnets.delete_subnet),
        ),
        Route("GET", network_loc + "/operations" + OPERATION, operations.async_status,
              "network"),
        Route("GET", network_loc + "/operationResults" + OPERATION, operations.location_status,
              "network"),
    ]  # fmt: skip


def router() -> Router:
    """The table, every route behind the management locks of the scopes it deletes or writes."""
    return Router([locks.enforced(route) for route in _routes()])
