"""The hub's calls to one OpenStack cloud: raw compute and network API requests through openstacksdk.

openstacksdk (keystoneauth underneath) finds the cloud in clouds.yaml, authenticates, renews the
token and picks the endpoints; this module asks for exactly the JSON the backend reads, in a
worker thread (the SDK blocks), each call bounded by `timeout`. Every failure is a `CloudError`:
with the HTTP status when the cloud answered, without when it did not (no route, Keystone down).
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import openstack
from keystoneauth1 import exceptions as ksa_exceptions

# Compute API microversion of every call: 2.37 networks "auto"/"none", 2.52 tags at create,
# 2.61 flavors with their extra specs (the form's GPUs).
MICROVERSION = "2.61"
PAGE = 1000  # Nova's default max_limit
_UUID = re.compile(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")

T = TypeVar("T")


class CloudError(Exception):
    """A call that failed; `status` is None when the cloud did not answer at all."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class Cloud:
    """One connection (one clouds.yaml entry) shared by every call of the hub."""

    def __init__(self, cloud: str, timeout: float) -> None:
        self.cloud = cloud
        self.timeout = timeout
        self._connection: Any = None

    def _connect(self) -> Any:
        if self._connection is None:
            try:
                self._connection = openstack.connect(cloud=self.cloud, api_timeout=self.timeout)
            except openstack.exceptions.ConfigException as err:
                raise CloudError(f"cloud {self.cloud!r} is not configured: {err}") from None
        return self._connection

    async def _call(self, work: Callable[[], T]) -> T:
        try:
            return await asyncio.wait_for(asyncio.to_thread(work), self.timeout + 1)
        except asyncio.TimeoutError:
            raise CloudError(f"no answer within {self.timeout:.0f}s") from None

    def _request(self, service: str, method: str, url: str, body: Any = None) -> Any:
        """One request (in the worker thread); the decoded JSON answer, or CloudError."""
        adapter = getattr(self._connect(), service)
        extra = {"microversion": MICROVERSION} if service == "compute" else {}
        try:
            response = adapter.request(url, method, json=body, raise_exc=False, **extra)
        except ksa_exceptions.ClientException as err:
            raise CloudError(f"{type(err).__name__}: {err}") from None
        if response.status_code >= 400:
            raise CloudError(f"{method} {url}: HTTP {response.status_code}", response.status_code, response.text)
        return response.json() if response.content else None

    async def list_servers(self, tag: str) -> list[dict[str, Any]]:
        """Every server of the project with this tag, all pages: one request per thousand servers."""

        def pages() -> list[dict[str, Any]]:
            servers: list[dict[str, Any]] = []
            query = {"tags": tag, "limit": PAGE}
            while True:
                page = self._request("compute", "GET", "/servers/detail?" + urllib.parse.urlencode(query))["servers"]
                servers += page
                if len(page) < PAGE:
                    return servers
                query["marker"] = page[-1]["id"]

        return await self._call(pages)

    async def create_server(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /servers; the server's id (and admin password, which is ignored) as Nova answers."""
        return (await self._call(lambda: self._request("compute", "POST", "/servers", {"server": body})))["server"]

    async def delete_server(self, server_id: str) -> None:
        """DELETE the server; one already gone is not an error."""
        try:
            await self._call(lambda: self._request("compute", "DELETE", f"/servers/{server_id}"))
        except CloudError as err:
            if err.status != 404:
                raise

    async def addresses(self, server_id: str) -> set[str]:
        """The fixed IPs of the server's Neutron ports: where the hub may route to it."""
        query = urllib.parse.urlencode({"device_id": server_id, "fields": "fixed_ips"})
        answer = await self._call(lambda: self._request("network", "GET", f"/ports?{query}"))
        return {ip["ip_address"] for port in answer["ports"] for ip in port.get("fixed_ips", [])}

    async def image_id(self, image: str) -> str:
        """The id of an active image given by name (or its id, returned as it is)."""
        if _UUID.fullmatch(image):
            return image
        query = urllib.parse.urlencode({"name": image, "status": "active"})
        found = (await self._call(lambda: self._request("image", "GET", f"/images?{query}")))["images"]
        if not found:
            raise CloudError(f"the cloud has no active image named {image!r}", 404)
        return found[0]["id"]

    async def flavors(self) -> list[dict[str, Any]]:
        """The flavors the project may use, with vCPUs, RAM and extra specs."""
        return (await self._call(lambda: self._request("compute", "GET", "/flavors/detail")))["flavors"]

    async def limits(self) -> dict[str, Any]:
        """The project's absolute compute limits and usage (cores, RAM, instances)."""
        return (await self._call(lambda: self._request("compute", "GET", "/limits")))["limits"]["absolute"]
