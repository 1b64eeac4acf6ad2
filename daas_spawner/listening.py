"""Wait until a started server accepts connections, trying often but at a bounded rate for the hub.

A server reports its address before it listens (it cannot report after exec). JupyterHub then
checks it over HTTP with exponential backoff (0.2 s doubling to 5 s), so a server that needs 3 s
to listen is seen up to 4 s late: that was most of the hub's overhead per spawn in
benchmarks/spawns.py. The spawner instead tries the port every tenth of a second and returns as
soon as it accepts; JupyterHub's first HTTP check then succeeds.

A refused connect costs the hub about 70 us of CPU, and many servers may wait at once (50 waiting
for two minutes at a fixed 0.1 s period could make 60,000 tries): so all waiting servers share
MAX_ATTEMPTS_PER_S, and each one's period grows with their number.
"""

from __future__ import annotations

import asyncio
import contextlib

INTERVAL = 0.1  # seconds between tries while few servers start
MAX_ATTEMPTS_PER_S = 50.0  # for the whole hub: 50 starting servers are tried once a second each
_waiting = 0


def interval() -> float:
    return max(INTERVAL, _waiting / MAX_ATTEMPTS_PER_S)


async def wait_listening(host: str, port: int, timeout: float) -> bool:
    """True once host:port accepts a TCP connection; False after `timeout` seconds (JupyterHub decides then)."""
    global _waiting
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    _waiting += 1
    try:
        while True:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1.0)
            except (OSError, asyncio.TimeoutError):
                pause = interval()
                if loop.time() + pause >= deadline:
                    return False
                await asyncio.sleep(pause)
            else:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return True
    finally:
        _waiting -= 1
