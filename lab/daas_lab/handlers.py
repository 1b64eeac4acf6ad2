"""GET <base_url>daas/session: the ends the hub set for this server, and when it ends if left idle."""

from __future__ import annotations

import os
import time

from jupyter_server.base.handlers import APIHandler
from tornado import web


def _seconds(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


class SessionHandler(APIHandler):
    """The session as JupyterLab's status bar shows it; asking is not activity (an open tab keeps nothing alive)."""

    _track_activity = False

    @web.authenticated
    def get(self) -> None:
        now = time.time()
        idle_timeout = _seconds("DAAS_SESSION_IDLE_TIMEOUT")
        idle_ends_at = None
        kernels = self.kernel_manager
        busy = any(getattr(kernels.get_kernel(k), "execution_state", "") == "busy" for k in kernels.list_kernel_ids())
        if idle_timeout is not None and not busy:  # a running cell keeps the server
            idle_ends_at = self.serverapp.web_app.last_activity().timestamp() + idle_timeout
        self.finish(
            {
                "now": now,
                "started_at": _seconds("DAAS_SESSION_STARTED_AT"),
                "ends_at": _seconds("DAAS_SESSION_ENDS_AT"),
                "idle_timeout": idle_timeout,
                "idle_ends_at": idle_ends_at,
                "end_warning": _seconds("DAAS_SESSION_END_WARNING") or 15 * 60,
            }
        )
