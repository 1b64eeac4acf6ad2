#!/usr/bin/python3
"""A stand-in single-user server for benchmarks/scale.py: what the hub needs of one, in a few MB.

500 real `jupyterhub-singleuser` servers (about 100 MB and 2-4 CPU-seconds to start each) do not fit on
the 2-core, 24 GiB test machine; the scale benchmark measures the hub, not the server. This one does
what the hub sees of a server: it asks the hub for its version as it starts, listens where the
spawner said (JUPYTERHUB_SERVICE_URL, or `--port`/`--ip` as batchspawner passes them), answers HTTP
under its prefix (`api` and `api/status` as JSON, like jupyter_server), and posts its activity to the
hub every JUPYTERHUB_ACTIVITY_INTERVAL seconds. Standard library only: the jobs run it with the
system's python3, as the launcher.
"""

import asyncio
import json
import os
import signal
import sys
import time
import urllib.parse
import urllib.request

READ_LIMIT = 64 * 1024


def hub_request(url, token, body=None):
    """One request to the hub's API with the server's token; errors are printed, never fatal."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Authorization", f"token {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except OSError as err:
        print(f"stand-in: {url}: {err}", file=sys.stderr, flush=True)
        return None


def listen_address(argv, service_url):
    """(ip, port) from `--ip=`/`--port=` arguments if given, else from the service URL."""
    parsed = urllib.parse.urlsplit(service_url)
    ip, port = parsed.hostname or "127.0.0.1", parsed.port or 8888
    for arg in argv:
        name, _, value = arg.partition("=")
        if name == "--port" and value:
            port = int(value)
        elif name == "--ip" and value:
            ip = value
    return ip, port


def answer(prefix, path):
    """(status, JSON body) for a request path: the server's API under its prefix, else a small page."""
    if path.split("?")[0] in (f"{prefix}api", f"{prefix}api/"):
        return 200, {"version": "stand-in"}
    if path.split("?")[0] == f"{prefix}api/status":
        return 200, {"started": STARTED, "last_activity": STARTED, "connections": 0, "kernels": 0}
    return 200, {"stand-in": True, "path": path}


async def serve_one(reader, writer, prefix):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        writer.close()
        return
    request_line = head.split(b"\r\n", 1)[0].decode(errors="replace").split()
    status, body = answer(prefix, request_line[1] if len(request_line) > 1 else "/")
    payload = json.dumps(body).encode()
    writer.write(
        b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
        % (status, len(payload), payload)
    )
    try:
        await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def report_activity(url, token, server_name, interval):
    while True:
        await asyncio.sleep(interval)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        body = {"servers": {server_name: {"last_activity": stamp}}, "last_activity": stamp}
        await asyncio.to_thread(hub_request, url, token, body)


async def main(argv):
    env = os.environ
    token = env["JUPYTERHUB_API_TOKEN"]
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    await asyncio.to_thread(hub_request, env["JUPYTERHUB_API_URL"].rstrip("/") + "/", token)
    ip, port = listen_address(argv, env.get("JUPYTERHUB_SERVICE_URL", ""))
    server = await asyncio.start_server(lambda r, w: serve_one(r, w, prefix), ip, port, limit=READ_LIMIT)
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
    # jupyter_server's line shape: the benchmarks take the listening time from it
    print(f"[I {stamp} StandIn] {env.get('JUPYTERHUB_USER')}'s stand-in is running at:", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    tasks = []
    if env.get("JUPYTERHUB_ACTIVITY_URL"):
        interval = float(env.get("JUPYTERHUB_ACTIVITY_INTERVAL") or 300)
        name = env.get("JUPYTERHUB_SERVER_NAME", "")
        tasks.append(asyncio.ensure_future(report_activity(env["JUPYTERHUB_ACTIVITY_URL"], token, name, interval)))
    async with server:
        await stop.wait()
    for task in tasks:
        task.cancel()


STARTED = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())

if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
