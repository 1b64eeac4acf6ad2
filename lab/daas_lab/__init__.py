"""jupyterhub-daas inside the single-user server: when the session ends, for JupyterLab's time-left display.

Install it into the servers' environments (`pip install ./lab` after `jupyter labextension build lab`,
see the README). The hub's spawner puts the session's ends into the server's environment; this
extension serves them at `<base_url>daas/session`, and its JupyterLab part shows them.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "@jupyterhub-daas/lab"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "daas_lab"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from .handlers import SessionHandler

    web_app = server_app.web_app
    web_app.add_handlers(".*$", [(url_path_join(web_app.settings["base_url"], "daas", "session"), SessionHandler)])
