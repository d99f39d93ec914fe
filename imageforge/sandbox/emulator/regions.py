"""The Azure regions the emulator knows: ARM name -> display name.

ARM compares region names case- and space-insensitively ("West US" == "westus"). Resources
answer with the short name in ``location``; gallery target regions and replication status answer
with the display name, as Azure does. A name not in this table is rejected.
"""

from __future__ import annotations

REGIONS: dict[str, str] = {
    "australiacentral": "Australia Central",
    "australiacentral2": "Australia Central 2",
    "australiaeast": "Australia East",
    "australiasoutheast": "Australia Southeast",
    "austriaeast": "Austria East",
    "belgiumcentral": "Belgium Central",
    "brazilsouth": "Brazil South",
    "brazilsoutheast": "Brazil Southeast",
    "canadacentral": "Canada Central",
    "canadaeast": "Canada East",
    "centralindia": "Central India",
    "centralus": "Central US",
    "centraluseuap": "Central US EUAP",
    "chilecentral": "Chile Central",
    "eastasia": "East Asia",
    "eastus": "East US",
    "eastus2": "East US 2",
    "eastus2euap": "East US 2 EUAP",
    "francecentral": "France Central",
    "francesouth": "France South",
    "germanynorth": "Germany North",
    "germanywestcentral": "Germany West Central",
    "indonesiacentral": "Indonesia Central",
    "israelcentral": "Israel Central",
    "italynorth": "Italy North",
    "japaneast": "Japan East",
    "japanwest": "Japan West",
    "jioindiacentral": "Jio India Central",
    "jioindiawest": "Jio India West",
    "koreacentral": "Korea Central",
    "koreasouth": "Korea South",
    "malaysiawest": "Malaysia West",
    "mexicocentral": "Mexico Central",
    "newzealandnorth": "New Zealand North",
    "northcentralus": "North Central US",
    "northeurope": "North Europe",
    "norwayeast": "Norway East",
    "norwaywest": "Norway West",
    "polandcentral": "Poland Central",
    "qatarcentral": "Qatar Central",
    "southafricanorth": "South Africa North",
    "southafricawest": "South Africa West",
    "southcentralus": "South Central US",
    "southeastasia": "Southeast Asia",
    "southindia": "South India",
    "spaincentral": "Spain Central",
    "swedencentral": "Sweden Central",
    "swedensouth": "Sweden South",
    "switzerlandnorth": "Switzerland North",
    "switzerlandwest": "Switzerland West",
    "uaecentral": "UAE Central",
    "uaenorth": "UAE North",
    "uksouth": "UK South",
    "ukwest": "UK West",
    "westcentralus": "West Central US",
    "westeurope": "West Europe",
    "westindia": "West India",
    "westus": "West US",
    "westus2": "West US 2",
    "westus3": "West US 3",
}


def normalize(name: str) -> str:
    """The ARM short name of a region written either way ("East US 2" -> "eastus2")."""
    return name.replace(" ", "").lower()


def is_region(name: str) -> bool:
    return isinstance(name, str) and normalize(name) in REGIONS


def display_name(name: str) -> str:
    return REGIONS.get(normalize(name), name)
