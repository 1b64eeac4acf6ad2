"""The notebook side of Dask offload: ask the daas-dask service for a cluster and connect to it.

    from daas_services.dask import DaskOffload
    cluster = DaskOffload().new_cluster(workers=2, cores=2, memory="4GB")
    client = cluster.get_client()
    cluster.scale(4); cluster.adapt(minimum=0, maximum=8); cluster.close()

It finds the service through the server's JupyterHub environment ($DAAS_DASK_URL, or the
hub's public URL + /services/daas-dask/) and authenticates with $JUPYTERHUB_API_TOKEN. The
token stays here: the service hands back the cluster's own TLS credentials, and only
those reach the scheduler. Works from a server on any backend that can reach the hub.
"""

from __future__ import annotations

import html
import os
import tempfile
from typing import Any
from urllib.parse import urljoin

import httpx

SERVICE_PATH = "/services/daas-dask/"


class OffloadError(RuntimeError):
    """The service refused or failed; the message is the service's own."""


def service_url() -> str:
    """Where the service is, from the server's environment."""
    explicit = os.environ.get("DAAS_DASK_URL")
    if explicit:
        return explicit.rstrip("/") + "/"
    public = os.environ.get("JUPYTERHUB_PUBLIC_HUB_URL") or os.environ.get("JUPYTERHUB_PUBLIC_URL")
    if public:
        return urljoin(public, SERVICE_PATH)
    raise OffloadError("set DAAS_DASK_URL to the daas-dask service (the hub's public URL + /services/daas-dask/)")


class DaskOffload:
    """A session with the daas-dask service, as the server's owner."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 180.0) -> None:
        self.url = (url.rstrip("/") + "/") if url else service_url()
        token = token or os.environ.get("JUPYTERHUB_API_TOKEN")
        if not token:
            raise OffloadError("no token: run this in a JupyterHub server, or pass token=")
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"token {token}"}, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.http.request(method, path, **kwargs)
        if response.is_error:
            try:
                message = response.json().get("message")
            except ValueError:
                message = response.text[:300]
            raise OffloadError(f"{response.status_code}: {message}")
        return response.json()

    def new_cluster(
        self,
        workers: int | None = None,
        cores: int | None = None,
        memory: str | None = None,
        *,
        adapt: dict[str, int] | None = None,
        partition: str | None = None,
        walltime: str | None = None,
        proposal: str | None = None,
    ) -> OffloadCluster:
        """Start a cluster (workers are Slurm jobs, billed to the proposal); omitted values take the site's defaults."""
        body = {
            "workers": workers,
            "cores": cores,
            "memory": memory,
            "adapt": adapt,
            "partition": partition,
            "walltime": walltime,
            "proposal": proposal,
        }
        body = {key: value for key, value in body.items() if value is not None}
        if "JUPYTERHUB_SERVER_NAME" in os.environ:  # in a notebook server: the cluster stops with it
            body["server_name"] = os.environ["JUPYTERHUB_SERVER_NAME"]
        return OffloadCluster(self, self.request("POST", "api/clusters", json=body))

    def list_clusters(self) -> list[OffloadCluster]:
        """My running clusters."""
        return [OffloadCluster(self, model) for model in self.request("GET", "api/clusters")["clusters"]]

    def cluster(self, cluster_id: str) -> OffloadCluster:
        return OffloadCluster(self, self.request("GET", f"api/clusters/{cluster_id}"))


class OffloadCluster:
    """One of my clusters; the methods mirror dask's own cluster objects."""

    def __init__(self, offload: DaskOffload, model: dict[str, Any]) -> None:
        self.offload = offload
        self.model = model
        self._credentials: tempfile.TemporaryDirectory[str] | None = None

    @property
    def id(self) -> str:
        return self.model["id"]

    @property
    def status(self) -> str:
        return self.model["status"]

    @property
    def dashboard_link(self) -> str | None:
        link = self.model.get("dashboard_url")
        return urljoin(self.offload.url, link) if link else None

    def refresh(self) -> OffloadCluster:
        self.model = self.offload.request("GET", f"api/clusters/{self.id}")
        return self

    def security(self) -> Any:
        """The cluster's TLS credentials as distributed's Security, in files only this user can read."""
        from distributed.security import Security

        credentials = self.offload.request("GET", f"api/clusters/{self.id}/credentials")
        self._credentials = tempfile.TemporaryDirectory(prefix="daas-dask-")
        paths = {}
        for name in ("ca", "cert", "key"):
            path = os.path.join(self._credentials.name, f"{name}.pem")
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
                file.write(credentials["tls"][name])
            paths[name] = path
        return Security(
            tls_ca_file=paths["ca"],
            tls_client_cert=paths["cert"],
            tls_client_key=paths["key"],
            require_encryption=True,
        )

    def get_client(self, **kwargs: Any) -> Any:
        """A distributed Client connected to this cluster over its TLS."""
        from distributed import Client

        return Client(self.model["scheduler_address"], security=self.security(), **kwargs)

    def scale(self, workers: int) -> OffloadCluster:
        self.model = self.offload.request("POST", f"api/clusters/{self.id}/scale", json={"workers": workers})
        return self

    def adapt(self, minimum: int = 0, maximum: int = 1) -> OffloadCluster:
        body = {"minimum": minimum, "maximum": maximum}
        self.model = self.offload.request("POST", f"api/clusters/{self.id}/adapt", json=body)
        return self

    def close(self) -> None:
        """Stop the cluster: its scheduler ends and its worker jobs are cancelled."""
        self.model = self.offload.request("DELETE", f"api/clusters/{self.id}")
        if self._credentials is not None:
            self._credentials.cleanup()
            self._credentials = None

    def __repr__(self) -> str:
        return f"<OffloadCluster {self.id} {self.status}: {self.model.get('workers', 0)} workers>"

    def _repr_html_(self) -> str:
        """A summary like dask's own cluster widgets: workers, cores, memory, dashboard link."""
        options = self.model.get("options", {})
        workers = self.model.get("workers", 0)
        requested = self.model.get("requested") or {}
        wanted = requested.get("adapt") or requested.get("workers")
        memory_gib = (self.model.get("memory") or 0) / 2**30
        rows = {
            "Status": self.status,
            "Workers": f"{workers}" + (f" (asked: {wanted})" if wanted is not None else ""),
            "Cores": f"{self.model.get('cores', 0)} ({options.get('cores')} per worker)",
            "Memory": f"{memory_gib:.1f} GiB ({options.get('memory_mb')} MiB per worker)",
            "Partition": options.get("partition"),
            "Proposal": options.get("proposal") or "—",
            "Scheduler": self.model.get("scheduler_address") or "—",
        }
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in rows.items()
        )
        link = self.dashboard_link
        dashboard = f"<p><a href='{html.escape(link)}' target='_blank'>Dashboard</a></p>" if link else ""
        return f"<div><strong>Dask cluster {html.escape(self.id)}</strong><table>{body}</table>{dashboard}</div>"
