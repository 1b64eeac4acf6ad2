"""Run code in a notebook server's kernel, as a person's notebook does: the Jupyter server's REST API and the
kernel's websocket, through the hub's proxy, with a token of the server's owner.

The code runs where the server runs (a pod, a Slurm job), with the server's environment: its
JUPYTERHUB_API_TOKEN, its DAAS_* variables, its network.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import uuid
from dataclasses import dataclass

from tornado import websocket
from tornado.httpclient import HTTPRequest

from .hub import Hub


@dataclass(frozen=True)
class Execution:
    stdout: str
    stderr: str
    error: str | None  # the traceback of an exception the code raised

    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def _new_kernel(hub: Hub, user: str, token: str, server: str) -> tuple[str, dict[str, str], str]:
    """A new kernel in `user`'s server: the kernels API's URL, the headers, and the kernel's websocket URL."""
    base = f"{hub.url}/user/{user}/{server + '/' if server else ''}api/kernels"
    headers = {"Authorization": f"token {token}"}
    response = hub.http.post(base, headers=headers, json={"name": "python3"})
    assert response.status_code == 201, response.text
    kernel = f"{base}/{response.json()['id']}"
    return kernel, headers, f"{kernel.replace('http://', 'ws://', 1)}/channels?session_id={uuid.uuid4().hex}"


def run_in_kernel(hub: Hub, user: str, token: str, code: str, server: str = "", timeout: float = 300) -> Execution:
    """Start a kernel in `user`'s server, run `code` in it, shut the kernel down; what it printed."""
    kernel, headers, url = _new_kernel(hub, user, token, server)
    try:
        return asyncio.run(asyncio.wait_for(_execute(url, headers, user, code), timeout))
    finally:
        hub.http.delete(kernel, headers=headers)


def start_in_kernel(hub: Hub, user: str, token: str, code: str, server: str = "") -> None:
    """Start a kernel in `user`'s server and have it begin running `code`; return at once (the kernel is busy)."""
    _, headers, url = _new_kernel(hub, user, token, server)
    asyncio.run(_send(url, headers, user, code))


async def _send(url: str, headers: dict[str, str], user: str, code: str) -> None:
    connection = await websocket.websocket_connect(HTTPRequest(url, headers=headers))
    await connection.write_message(json.dumps(_execute_request(uuid.uuid4().hex, user, code)))
    connection.close()


def _execute_request(msg_id: str, user: str, code: str) -> dict:
    return {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": user,
            "session": uuid.uuid4().hex,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
        "channel": "shell",
        "buffers": [],
    }


async def _execute(url: str, headers: dict[str, str], user: str, code: str) -> Execution:
    connection = await websocket.websocket_connect(HTTPRequest(url, headers=headers))
    msg_id = uuid.uuid4().hex
    await connection.write_message(json.dumps(_execute_request(msg_id, user, code)))
    out: dict[str, list[str]] = {"stdout": [], "stderr": []}
    error = None
    try:
        while True:
            raw = await connection.read_message()
            if raw is None:
                raise AssertionError("the kernel's websocket closed before the code finished")
            message = json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                out[content["name"]].append(content["text"])
            elif kind == "error":
                error = "\n".join(content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                return Execution("".join(out["stdout"]), "".join(out["stderr"]), error)
    finally:
        connection.close()
