"""imageforge: Packer-driven golden VM images for Azure Compute Gallery, tested before promotion.

The library behind tasks.py. Modules are imported where they are used (the Azure SDKs only
when Azure is talked to), so importing this package costs nothing.
"""

__version__ = "0.1.0"
