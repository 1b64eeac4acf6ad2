"""Wait until a started server accepts connections, trying every tenth of a second.

A server reports its address before it listens (it cannot report after exec). JupyterHub then
checks it over HTTP with exponential backoff (0.2 s doubling to 5 s), so a server that needs 3 s
to listen is seen up to 4 s late: that was most of the hub's overhead per spawn in
benchmarks/spawns.py. A refused connect costs microseconds, so the spawner tries often and
returns as soon as the port accepts; JupyterHub's first HTTP check then succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib

INTERVAL = 0.1


async def wait_listening(host: str, port: int, timeout: float) -> bool:
    """True once host:port accepts a TCP connection; False after `timeout` seconds (JupyterHub decides then)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=max(INTERVAL, 1.0))
        except (OSError, asyncio.TimeoutError):
            if loop.time() + INTERVAL >= deadline:
                return False
            await asyncio.sleep(INTERVAL)
        else:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True
