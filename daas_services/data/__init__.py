"""Per-proposal data: the mount model every backend uses, and the `daas-data` browsing service."""

from .mounts import DataLocations, Location, Mount, load_data_locations

__all__ = ["DataLocations", "Location", "Mount", "load_data_locations"]
