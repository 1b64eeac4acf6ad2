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


def run_in_kernel(hub: Hub, user: str, token: str, code: str, server: str = "", timeout: float = 300) -> Execution:
    """Start a kernel in `user`'s server, run `code` in it, shut the kernel down; what it printed."""
    base = f"{hub.url}/user/{user}/{server + '/' if server else ''}api/kernels"
    headers = {"Authorization": f"token {token}"}
    response = hub.http.post(base, headers=headers, json={"name": "python3"})
    assert response.status_code == 201, response.text
    kernel_id = response.json()["id"]
    try:
        url = f"{base.replace('http://', 'ws://', 1)}/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
        return asyncio.run(asyncio.wait_for(_execute(url, headers, user, code), timeout))
    finally:
        hub.http.delete(f"{base}/{kernel_id}", headers=headers)


async def _execute(url: str, headers: dict[str, str], user: str, code: str) -> Execution:
    connection = await websocket.websocket_connect(HTTPRequest(url, headers=headers))
    msg_id = uuid.uuid4().hex
    request = {
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
    await connection.write_message(json.dumps(request))
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
