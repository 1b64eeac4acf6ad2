"""Kubernetes backend: the single-user server as a pod, built with kubespawner's pod builder.

The hub keeps one view of its pods and their events (watch.py, kubespawner's reflector):
poll, progress, the end of a server and the form's availability are lookups in it. What
this module does with the API is what a person's action needs: create the home claim and
the pod at a start, delete the pod at a stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client.exceptions import ApiException
from kubespawner.clients import shared_client
from pydantic import Field
from traitlets import Bool, Dict, Float, Integer, List, Unicode, default

from daas_core.mount_builders import kubernetes_volumes

from ..base import BackendState, Launch, ProgressEvent, ServerAddress, SpawnFailed
from ..contained import ContainedBackend
from ..launcher_source import launcher_source
from .availability import pool_availability
from .pods import (
    PodInputs,
    build_home_pvc,
    build_pod,
    home_claim_name,
    owner_annotations,
    owner_labels,
    pod_name,
)
from .profile import KubernetesProfile, KubernetesRequest
from .resources import cores, memory_mib
from .status import api_refusal, pod_end, pod_progress
from .watch import ClusterView

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
START_LABEL = "daas.io/start"  # one start's random id: a pod of the same name from another start is not this one


class KubernetesState(BackendState):
    """One server's pod: where it is, which start made it, and whether the API has it.

    Version 1 is the first layout.
    """

    version: ClassVar[int] = 1

    namespace: str
    pod: str
    start_id: str
    port: int = Field(ge=1, le=65535)
    created: bool = False  # the API accepted the pod
    home_claim: str | None = None  # the person's home PVC (kept when the server stops)


class KubernetesBackend(ContainedBackend[KubernetesState]):
    """Starts servers as pods; one shared watch per hub answers poll, progress and availability."""

    name = "kubernetes"
    profile_class = KubernetesProfile
    state_class = KubernetesState

    kubeconfig = Unicode(
        "",
        config=True,
        help="""A kubeconfig file for the hub's access to the cluster. Empty: the pod's service account
        when the hub runs in Kubernetes, else $KUBECONFIG or ~/.kube/config.""",
    )
    namespace = Unicode(
        config=True,
        help="""Namespace of the servers' pods (a profile's `kubernetes.namespace` may name another, e.g.
        one per proposal, with `watch_all_namespaces`). Default: the hub's own namespace in a pod, else "default".""",
    )
    watch_all_namespaces = Bool(
        False,
        config=True,
        help="""Watch pods and events in every namespace (needed when profiles put pods in namespaces other
        than `namespace`, such as one per proposal). Needs a ClusterRole: list and watch on pods and events.""",
    )
    port = Integer(8888, config=True, help="Port the single-user server listens on inside its pod.")
    service_account = Unicode(
        "",
        config=True,
        help="Service account of the servers' pods; its token is never mounted. Empty: the namespace's default.",
    )
    home_storage_class = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""StorageClass of each person's persistent home (a PVC `home-<user>`, kept across servers).
        None: no persistent home (an empty folder each time, gone with the pod).""",
    )
    home_size = Unicode("10Gi", config=True, help="Size of a new home PVC (a Kubernetes quantity).")
    home_path = Unicode("/home/{username}", config=True, help="Where the home is mounted in the pod; $HOME.")
    extra_volumes = List(
        Dict(),
        config=True,
        help="""Volumes every server pod gets (Kubernetes API shape), e.g. a site's software tree. Admin-set;
        pair each with an entry of `extra_volume_mounts`.""",
    )
    extra_volume_mounts = List(Dict(), config=True, help="Mounts of `extra_volumes` (Kubernetes API shape).")
    pool_label = Unicode(
        "daas.io/pool",
        config=True,
        help="Node label naming a node's pool in the form's availability (nodes without it: pool 'default').",
    )
    node_interval = Float(30.0, config=True, help="Seconds between listings of the nodes (the form's availability).")
    watch_tick = Float(1.0, config=True, help="Seconds between looks at the shared view for servers that ended.")
    stop_grace = Integer(5, config=True, help="Seconds a stopped pod gets to end its server before it is killed.")
    stop_timeout = Float(60.0, config=True, help="Seconds a stop waits for the pod to be gone.")
    create_grace = Float(
        30.0,
        config=True,
        help="Seconds a pod just created may be missing from the watch before it counts as gone.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view: ClusterView | None = None
        self._created_at: dict[str, float] = {}  # "<namespace>/<pod>" -> time.monotonic() of its create
        self._last_seen: dict[str, dict[str, Any]] = {}  # "<namespace>/<pod>" -> the pod as last seen (why it went)
        self._removing: dict[str, asyncio.Future[None]] = {}  # ended pods being deleted, by "<namespace>/<pod>"

    @default("namespace")
    def _namespace_default(self) -> str:
        try:
            return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
        except OSError:
            return "default"

    # -- life of the backend ----------------------------------------------------------

    async def setup(self) -> None:
        if self.kubeconfig:
            await kube_config.load_kube_config(config_file=self.kubeconfig)
        else:
            try:
                kube_config.load_incluster_config()
            except kube_config.ConfigException:
                await kube_config.load_kube_config()
        view = ClusterView(self.namespace, self.watch_all_namespaces, self.node_interval, self.watch_tick, self.log)
        try:
            await view.start()
        except Exception as err:
            await view.close()
            raise SpawnFailed(f"the Kubernetes API does not answer: {err}") from None
        self.view = view

    async def close(self) -> None:
        if self.view is not None:
            await self.view.close()
            self.view = None

    @property
    def api(self) -> Any:
        return shared_client("CoreV1Api")

    def _view(self) -> ClusterView:
        if self.view is None:
            raise SpawnFailed("the Kubernetes backend is not set up")
        return self.view

    # -- start ---------------------------------------------------------------------------

    def _namespace(self, request: KubernetesRequest, proposal: str | None) -> str:
        try:
            namespace = request.kubernetes.namespace_for(proposal, self.namespace)
        except ValueError as err:
            raise SpawnFailed(f"no namespace for this server: {err}") from None
        if namespace != self.namespace and not self.watch_all_namespaces:
            raise SpawnFailed(
                f"profile namespace {namespace!r} is not watched by this hub: the site must set "
                "c.KubernetesBackend.watch_all_namespaces = True"
            )
        return namespace

    async def start(self, launch: Launch, resume: KubernetesState | None = None) -> AsyncIterator[KubernetesState]:
        view = self._view()
        if resume is not None:
            found = view.pod(resume.namespace, resume.pod)
            if found is not None and found["metadata"].get("labels", {}).get(START_LABEL) == resume.start_id:
                self.log.info("Re-attached %s to pod %s/%s", launch.server, resume.namespace, resume.pod)
                yield resume.model_copy(update={"created": True})
                return
            if found is not None:
                raise SpawnFailed(f"pod {resume.namespace}/{resume.pod} belongs to another start; stop it first")
        request: KubernetesRequest = launch.request  # type: ignore[assignment]
        options = launch.options
        namespace = self._namespace(request, options.proposal)
        name = pod_name(launch.username, launch.server)
        await self._clear_ended_pod(namespace, name)
        identity = self.identity(launch)
        image = request.kubernetes.images[options.environment.id]
        start_id = resume.start_id if resume is not None else secrets.token_hex(8)
        labels = {**owner_labels(launch.username, launch.server), START_LABEL: start_id}
        home_claim = self._home_claim(launch.username)
        state = KubernetesState(namespace=namespace, pod=name, start_id=start_id, port=self.port, home_claim=home_claim)
        yield state  # stored before anything is made: the next hub finds the pod by name and start id
        made_claim = False
        if home_claim is not None:
            made_claim = await self._ensure_home(namespace, home_claim, launch.username)
        node_cpu, node_memory = self._node_size(request) if request.whole_node else (None, None)
        volumes, mounts = self._volumes(launch, home_claim)
        inputs = PodInputs(
            name=name,
            namespace=namespace,
            port=self.port,
            command=self._command(launch),
            env=self._env(launch),
            request=request,
            image=image,
            identity=identity,
            labels=labels,
            annotations=owner_annotations(launch.username, launch.server),
            volumes=volumes,
            volume_mounts=mounts,
            node_cpu=node_cpu,
            node_memory_mb=node_memory,
            working_dir=self._home(launch.username),  # the launcher links the data there, as on Slurm
            service_account=self.service_account or None,
        )
        try:
            manifest = build_pod(inputs)
        except ValueError as err:
            raise SpawnFailed(f"cannot describe this server's pod: {err}") from None
        try:
            await self.api.create_namespaced_pod(namespace, manifest, _request_timeout=30)
        except ApiException as err:
            if made_claim:
                await self._delete_claim(namespace, home_claim)
            raise SpawnFailed(api_refusal(err.status, err.body)) from None
        except (OSError, asyncio.TimeoutError) as err:
            raise SpawnFailed(f"the Kubernetes API is not answering ({err}); please try again later") from None
        self._created_at[f"{namespace}/{name}"] = time.monotonic()
        self.log.info("Created pod %s/%s for %s", namespace, name, launch.server)
        yield state.model_copy(update={"created": True})

    async def _clear_ended_pod(self, namespace: str, name: str) -> None:
        """Remove an ended pod of this server's name (one a hub that was down could not remove); refuse a live one."""
        view = self._view()
        pod = view.pod(namespace, name)
        if pod is None:
            return
        if pod_end(pod, view.pod_events(namespace, name)) is None:
            raise SpawnFailed(f"a pod {namespace}/{name} exists already (an earlier server is still stopping)")
        await self._delete_pod(namespace, name, grace=0)
        await self._gone(namespace, name)

    def _home_claim(self, username: str) -> str | None:
        if self.home_storage_class is None:
            return None
        return home_claim_name(username)

    async def _ensure_home(self, namespace: str, claim: str, username: str) -> bool:
        """Create the person's home claim if it is missing; True if this call made it."""
        assert self.home_storage_class is not None
        labels = owner_labels(username, "")
        body = build_home_pvc(claim, namespace, self.home_storage_class or None, self.home_size, labels)
        try:
            await self.api.create_namespaced_persistent_volume_claim(namespace, body, _request_timeout=30)
        except ApiException as err:
            if err.status == 409:
                return False  # kept from an earlier server
            raise SpawnFailed(api_refusal(err.status, err.body)) from None
        return True

    async def _delete_claim(self, namespace: str, claim: str | None) -> None:
        try:
            await self.api.delete_namespaced_persistent_volume_claim(claim, namespace, _request_timeout=30)
        except ApiException as err:
            if err.status != 404:
                self.log.warning("Could not delete the claim %s/%s made for a failed start: %s", namespace, claim, err)

    def _node_size(self, request: KubernetesRequest) -> tuple[float, int]:
        """The allocatable CPU and memory of the largest Ready node a whole-node request may land on."""
        selector = request.kubernetes.node_selector_for(request.feature)
        sizes = []
        for node in self._view().nodes.nodes:
            labels = node["metadata"].get("labels", {})
            if any(labels.get(key) != value for key, value in selector.items()):
                continue
            allocatable = node.get("status", {}).get("allocatable", {})
            sizes.append((cores(allocatable.get("cpu", "0")), memory_mib(allocatable.get("memory", "0"))))
        if not sizes:
            raise SpawnFailed("no node can take a whole-node server of this profile (none matches its selectors)")
        return max(sizes)

    def _volumes(self, launch: Launch, home_claim: str | None) -> tuple[list[dict], list[dict]]:
        volumes: list[dict] = []
        mounts: list[dict] = []
        if launch.mounts and launch.data_locations is not None:
            try:
                volumes, mounts = kubernetes_volumes(launch.data_locations, launch.mounts)
            except ValueError as err:
                raise SpawnFailed(f"cannot mount this server's data: {err}") from None
        # Without a persistent home, an empty one per server: JupyterLab writes its runtime files there.
        source = {"persistentVolumeClaim": {"claimName": home_claim}} if home_claim else {"emptyDir": {}}
        volumes.append({"name": "home", **source})
        mounts.append({"name": "home", "mountPath": self._home(launch.username)})
        return volumes + list(self.extra_volumes), mounts + list(self.extra_volume_mounts)

    def _home(self, username: str) -> str:
        return self.home_path.replace("{username}", username)

    def _env(self, launch: Launch) -> dict[str, str]:
        """The pod's environment (`server_env`): the server listens on the pod's port, on every address."""
        service = urllib.parse.urlsplit(launch.env.get("JUPYTERHUB_SERVICE_URL", "http://0.0.0.0:0/"))
        url = urllib.parse.urlunsplit(service._replace(netloc=f"0.0.0.0:{self.port}"))
        return self.server_env(launch, self._home(launch.username), JUPYTERHUB_SERVICE_URL=url)

    def _command(self, launch: Launch) -> list[str]:
        """The launcher (standard library only, passed inline) redeems the bootstrap and links the data."""
        prefix = launch.options.environment.prefix
        python = f"{prefix}/bin/python3" if prefix else "python3"
        return [python, "-I", "-c", launcher_source(), "--no-report", *launch.command]

    # -- a running server -----------------------------------------------------------------

    def _end(self, state: KubernetesState) -> str | None:
        """Why the server ended (a sentence for the person), from the shared view; None while it may still run."""
        why = self._end_clause(state)
        return None if why is None else why[:1].upper() + why[1:] + "."

    def _end_clause(self, state: KubernetesState) -> str | None:
        view = self._view()
        key = f"{state.namespace}/{state.pod}"
        pod = view.pod(state.namespace, state.pod)
        if pod is not None and pod["metadata"].get("labels", {}).get(START_LABEL) != state.start_id:
            pod = None  # another start's pod of the same name
        if pod is None:
            if not state.created:
                return None  # a start cut off before its create: nothing runs
            created = self._created_at.get(key)
            if created is not None and time.monotonic() - created < self.create_grace:
                return None  # the watch may not have shown it yet
            return pod_end(None, view.pod_events(state.namespace, state.pod), self._last_seen.get(key))
        self._created_at.pop(key, None)
        self._last_seen[key] = pod
        return pod_end(pod, view.pod_events(state.namespace, state.pod))

    async def wait_for_address(
        self, state: KubernetesState, reported: Awaitable[ServerAddress], redeemed: asyncio.Event
    ) -> ServerAddress:
        """The pod's IP once its launcher redeemed the bootstrap secret; JupyterHub then waits for the server.

        Not its Ready condition: the pod's status reaches the hub through the kubelet's rate-limited
        status updates and the watch, seconds late when many pods start at once.
        """
        view = self._view()
        while True:
            why = self._end(state)
            if why is not None:
                await self.stop(state)
                raise SpawnFailed(why)
            if redeemed.is_set():
                ip = (view.pod(state.namespace, state.pod) or {}).get("status", {}).get("podIP")
                if ip:
                    return ServerAddress(ip, state.port)
                await asyncio.sleep(view.tick / 4)  # the watch has yet to show the pod's IP
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(redeemed.wait(), view.tick / 4)

    async def progress(self, state: KubernetesState) -> AsyncIterator[ProgressEvent]:
        view = self._view()
        last = None
        while self._end(state) is None:
            pod = view.pod(state.namespace, state.pod)
            event = pod_progress(pod, view.pod_events(state.namespace, state.pod))
            if event is not None and event != last:
                last = event
                yield event
            if pod is not None and pod.get("status", {}).get("phase") == "Running":
                return
            await asyncio.sleep(view.tick / 2)

    async def stop(self, state: KubernetesState) -> None:
        view = self._view()
        pod = view.pod(state.namespace, state.pod)
        if pod is not None and pod["metadata"].get("labels", {}).get(START_LABEL) != state.start_id:
            return  # another start's pod: not ours to stop
        await self._delete_pod(state.namespace, state.pod, grace=self.stop_grace)
        await self._gone(state.namespace, state.pod)
        self._created_at.pop(f"{state.namespace}/{state.pod}", None)
        self._last_seen.pop(f"{state.namespace}/{state.pod}", None)

    async def _delete_pod(self, namespace: str, name: str, grace: int) -> None:
        try:
            await self.api.delete_namespaced_pod(name, namespace, grace_period_seconds=grace, _request_timeout=30)
        except ApiException as err:
            if err.status != 404:
                raise SpawnFailed(f"Kubernetes refused to delete pod {namespace}/{name}: {err.reason}") from None
        except (OSError, asyncio.TimeoutError) as err:
            raise SpawnFailed(f"the Kubernetes API is not answering ({err}); pod {name} may still run") from None

    async def _gone(self, namespace: str, name: str) -> None:
        """Wait until the watch shows the pod gone, bounded by `stop_timeout`."""
        view = self._view()
        deadline = time.monotonic() + self.stop_timeout
        while view.pod(namespace, name) is not None:
            if time.monotonic() > deadline:
                raise SpawnFailed(f"pod {namespace}/{name} is still there after {self.stop_timeout:.0f}s")
            await asyncio.sleep(view.tick / 4)

    def _remove_ended(self, state: KubernetesState) -> None:
        """Delete the pod of a server that ended on its own (restartPolicy Never keeps it, and its name).

        JupyterHub does not stop a server its poll found ended; without this the ended pod would stay,
        holding its node's resources for an image that cannot be pulled, and the server's name.
        Its reason stays known: `_last_seen` keeps the pod as it ended.
        """
        pod = self._view().pod(state.namespace, state.pod)
        key = f"{state.namespace}/{state.pod}"
        if pod is None or pod["metadata"].get("deletionTimestamp") or key in self._removing:
            return
        if pod["metadata"].get("labels", {}).get(START_LABEL) != state.start_id:
            return

        async def remove() -> None:
            try:
                await self._delete_pod(state.namespace, state.pod, grace=0)
                self.log.info("Removed the ended pod %s", key)
                self._created_at.pop(key, None)  # the spawner has heard why it ended: a gone pod is ended
                self._last_seen.pop(key, None)
            except SpawnFailed as err:
                self.log.warning("Could not remove the ended pod %s: %s", key, err)
            finally:
                self._removing.pop(key, None)

        self._removing[key] = asyncio.ensure_future(remove())

    async def availability(self, profiles: Sequence[Any]) -> dict[str, Any] | None:
        view = self.view
        if view is None:
            return {"error": "the Kubernetes backend is not set up"}
        gpu_resources = {profile.kubernetes.gpu_resource for profile in profiles}
        answer = pool_availability(
            view.nodes.nodes, list(view.pods.resources.values()), self.pool_label, sorted(gpu_resources)[0]
        )
        answer["taken_at"] = (
            time.strftime("%H:%M:%S", time.localtime(view.nodes.taken_at)) if view.nodes.taken_at else None
        )
        if view.nodes.error:
            answer["error"] = view.nodes.error
        return answer
