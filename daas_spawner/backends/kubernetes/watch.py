"""The hub's one view of its pods, their events and the nodes: what poll, progress and the form read.

kubespawner's `ResourceReflector` keeps the pods and the events: one LIST, then one WATCH
each, for the whole hub, re-listed only when a watch breaks. Every poll, progress step and
end check is a lookup in that view, never an API call per server. Nodes are cluster-wide
objects, which the reflector cannot key (it names everything `<namespace>/<name>`), and
change rarely: one LIST every `node_interval` seconds serves the form's availability.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from kubespawner.clients import shared_client
from kubespawner.reflector import ResourceReflector

from .pods import DAAS_SELECTOR

RESTART_DELAY = 5.0  # seconds between attempts to start a watch that gave up


class PodReflector(ResourceReflector):
    """The hub's pods (those with the DaaS label), in one namespace or in all."""

    kind = "pods"


class EventReflector(ResourceReflector):
    """Events about pods: the scheduler's reasons, image pulls, evictions."""

    kind = "events"


class NodeList:
    """The cluster's nodes, listed every `interval` seconds (the reflector keys only namespaced objects)."""

    def __init__(self, interval: float, log: Any) -> None:
        self.interval = interval
        self.log = log
        self.nodes: list[dict[str, Any]] = []
        self.taken_at: float | None = None  # time.time() of the last answer
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        api = shared_client("CoreV1Api")
        while True:
            try:
                response = await api.list_node(_preload_content=False, _request_timeout=10)
                self.nodes = json.loads(await response.read())["items"]
                self.taken_at, self.error = time.time(), None
            except Exception as err:  # an answer about the view, never a crash of the hub
                self.error = f"the Kubernetes API does not list nodes: {err}"
                self.log.warning("Listing nodes failed: %s", err)
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class ClusterView:
    """Pods, their events and nodes as the hub last saw them; subscribers hear of changes within `tick`."""

    def __init__(self, namespace: str, all_namespaces: bool, node_interval: float, tick: float, log: Any) -> None:
        self.log = log
        self.tick = tick
        self._restarts: set[asyncio.Future[None]] = set()
        self._scope: dict[str, Any] = {"omit_namespace": True} if all_namespaces else {"namespace": namespace}
        self.pods = self._reflector("pods")
        self.events = self._reflector("events")
        self.nodes = NodeList(node_interval, log)
        self._listeners: dict[int, Callable[[], None]] = {}
        self._next_id = 0
        self._ticker: asyncio.Task[None] | None = None
        self._event_index: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._indexed_at = -float("inf")

    def _reflector(self, kind: str) -> ResourceReflector:
        if kind == "pods":
            return PodReflector(
                log=self.log, labels=dict(DAAS_SELECTOR), on_failure=self._restarter(kind), **self._scope
            )
        return EventReflector(
            log=self.log, fields={"involvedObject.kind": "Pod"}, on_failure=self._restarter(kind), **self._scope
        )

    def _restarter(self, kind: str) -> Callable[[], None]:
        """A watch that gave up (the API was gone for a while) starts over, with a fresh LIST.

        kubespawner stops the hub here; a DaaS hub also runs Slurm and local servers, so it
        keeps its other backends and keeps answering from the last view meanwhile.
        """

        def restart() -> None:
            self.log.error("The Kubernetes %s watch gave up; starting it again", kind)
            task = asyncio.ensure_future(self._start_again(kind))
            self._restarts.add(task)
            task.add_done_callback(self._restarts.discard)

        return restart

    async def _start_again(self, kind: str) -> None:
        while True:
            fresh = self._reflector(kind)
            try:
                await fresh.start()
            except Exception as err:
                self.log.warning("The Kubernetes %s watch cannot start yet: %s", kind, err)
                await asyncio.sleep(RESTART_DELAY)
                continue
            setattr(self, kind, fresh)
            return

    async def start(self) -> None:
        """The first LIST of pods and events (so that a restarted hub knows every pod before its first poll)."""
        await self.pods.start()
        await self.events.start()
        self.nodes.start()
        self._ticker = asyncio.ensure_future(self._tick())

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for task in list(self._restarts):
            task.cancel()
        await self.nodes.close()
        await self.pods.stop()
        await self.events.stop()

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.pods.resources.get(f"{namespace}/{name}")

    def pod_events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The pod's events, from an index rebuilt at most twice a tick.

        Every server's check reads its pod's events each tick: scanning all events per check
        would cost servers x events per tick in the hub's event loop.
        """
        if time.monotonic() - self._indexed_at > self.tick / 2:
            index: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for event in list(self.events.resources.values()):
                key = (event["metadata"].get("namespace", ""), event.get("involvedObject", {}).get("name", ""))
                index.setdefault(key, []).append(event)
            self._event_index, self._indexed_at = index, time.monotonic()
        return self._event_index.get((namespace, name), [])

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` every tick (it checks its own pod in the view); return an unsubscribe."""
        key = self._next_id
        self._next_id += 1
        self._listeners[key] = listener
        return lambda: self._listeners.pop(key, None)

    def notify(self) -> None:
        """Let every subscriber look at the view now (each tick, and when a poll saw an end first)."""
        for listener in list(self._listeners.values()):
            try:
                listener()
            except Exception:
                self.log.exception("A pod watcher failed")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self.notify()
