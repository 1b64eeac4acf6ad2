"""wait_listening: returns when a port starts accepting, gives up (False) after its timeout."""

from __future__ import annotations

import asyncio
import socket

from daas_spawner.listening import wait_listening


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_returns_true_once_a_late_server_listens() -> None:
    port = unused_port()
    accepted = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        writer.close()

    async def listen_later() -> asyncio.Server:
        await asyncio.sleep(0.5)  # a few refused tries first
        return await asyncio.start_server(on_connect, "127.0.0.1", port)

    later = asyncio.ensure_future(listen_later())
    assert await wait_listening("127.0.0.1", port, timeout=30) is True
    server = await later
    await asyncio.wait_for(accepted.wait(), 10)
    server.close()
    await server.wait_closed()


async def test_returns_false_when_nothing_listens_before_the_timeout() -> None:
    assert await wait_listening("127.0.0.1", unused_port(), timeout=0.5) is False


async def test_many_waiting_servers_share_a_bounded_rate_of_tries(monkeypatch) -> None:
    from daas_spawner import listening

    monkeypatch.setattr(listening, "_waiting", 0)
    assert listening.interval() == listening.INTERVAL
    waits = [asyncio.ensure_future(wait_listening("127.0.0.1", unused_port(), timeout=30)) for _ in range(100)]
    await asyncio.sleep(0.05)
    assert listening._waiting == 100
    assert listening.interval() == 100 / listening.MAX_ATTEMPTS_PER_S
    for wait in waits:
        wait.cancel()
    await asyncio.gather(*waits, return_exceptions=True)
    assert listening._waiting == 0
