"""jupyterhub-daas spawner: one profile spawner for Slurm, local processes and (later) Kubernetes and OpenStack.

Names load on first use, so `import daas_spawner.profiles` (a service, a test, a tool) does not
import JupyterHub or the spawner.
"""

from daas_core.lazy import lazy_exports

_EXPORTS = {
    "DaaSSpawner": "spawner",
    "OptionsError": "options",
    "ResolvedOptions": "options",
    "resolve_options": "options",
    "ProfileConfigError": "profiles",
    "ProfileSet": "profiles",
    "load_profiles": "profiles",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
