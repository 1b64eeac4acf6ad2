"""jupyterhub-daas spawner: one profile spawner for Slurm, local processes and (later) Kubernetes and OpenStack."""

from .options import OptionsError, ResolvedOptions, resolve_options
from .profiles import ProfileConfigError, ProfileSet, load_profiles
from .spawner import DaaSSpawner

__all__ = [
    "DaaSSpawner",
    "OptionsError",
    "ProfileConfigError",
    "ProfileSet",
    "ResolvedOptions",
    "load_profiles",
    "resolve_options",
]
