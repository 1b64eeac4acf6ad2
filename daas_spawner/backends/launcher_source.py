"""The launcher's source (launcher.py), which backends ship to where servers run.

Batch scripts, pod commands and VM user_data carry it, so nodes, images and VMs need
JupyterHub's single-user server and a python3, but not this package.
"""

from __future__ import annotations

import functools
from importlib.resources import files


@functools.cache
def launcher_source() -> str:
    """launcher.py's text (standard library only)."""
    return files("daas_spawner").joinpath("launcher.py").read_text(encoding="utf-8")
