"""Azure region names (the `name` ARM uses, lower case, no spaces).

Used to reject typos in image definitions at load time and by the sandbox emulator, which
accepts the same set. Regions Azure adds later can be added here.
"""

from __future__ import annotations

AZURE_REGIONS: frozenset[str] = frozenset(
    {
        "australiacentral", "australiacentral2", "australiaeast", "australiasoutheast",
        "austriaeast", "belgiumcentral", "brazilsouth", "brazilsoutheast", "canadacentral",
        "canadaeast", "centralindia", "centralus", "centraluseuap", "chilecentral",
        "eastasia", "eastus", "eastus2", "eastus2euap", "francecentral", "francesouth",
        "germanynorth", "germanywestcentral", "indonesiacentral", "israelcentral",
        "italynorth", "japaneast", "japanwest", "jioindiacentral", "jioindiawest",
        "koreacentral", "koreasouth", "malaysiawest", "mexicocentral", "newzealandnorth",
        "northcentralus", "northeurope", "norwayeast", "norwaywest", "polandcentral",
        "qatarcentral", "southafricanorth", "southafricawest", "southcentralus",
        "southeastasia", "southindia", "spaincentral", "swedencentral", "swedensouth",
        "switzerlandnorth", "switzerlandwest", "uaecentral", "uaenorth", "uksouth",
        "ukwest", "westcentralus", "westeurope", "westindia", "westus", "westus2",
        "westus3",
    }
)  # fmt: skip


def normalize(name: str) -> str:
    """ARM compares region names case- and space-insensitively ("West Europe" == westeurope)."""
    return name.replace(" ", "").lower()


def is_region(name: str) -> bool:
    return normalize(name) in AZURE_REGIONS
