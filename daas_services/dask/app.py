"""The `daas-dask` command: Dask clusters on Slurm for notebooks on any backend (a hub-managed service).

daas-dask -f /etc/jupyterhub/daas_config.py     # c.DaskService.*, c.UserAccounts.*
daas-dask --help-all                            # every setting, with its default
"""

from __future__ import annotations

import os
import sys
from typing import Any

from traitlets import Bool, Dict, Float, Integer, TraitError, Unicode, default, observe, validate

from ..app import ByteSize, DaaSService
from .addresses import plain_host
from .limits import DaskConfig, load_dask_config


class DaskService(DaaSService):
    """Start, steer and end people's Dask clusters: a scheduler job and worker jobs, submitted as their owner."""

    name = "daas-dask"
    description = __doc__.splitlines()[0]
    examples = (
        "daas-dask -f /etc/jupyterhub/daas_config.py\n"
        "daas-dask --limits=/etc/jupyterhub/dask.yaml\n"
        "daas-dask schema > dask.schema.json   # the JSON Schema of the limits file"
    )
    default_url = "http://127.0.0.1:10102"
    site_file_model = DaskConfig
    aliases = {
        **DaaSService.aliases,
        "limits": "DaskService.limits_file",
        "db-url": "DaskService.db_url",
        "records": "DaskService.records",  # deprecated with the setting, for one release
    }

    limits_file = Unicode(
        "",
        config=True,
        help="""The Dask limits YAML file (required; empty file: the defaults): who may have how many
        clusters, workers, cores and memory, and for how long. profiles/dask.yaml is an example.""",
    )
    db_url = Unicode(
        "sqlite:////var/lib/daas-dask/clusters.sqlite",
        config=True,
        help="""The service's database of clusters, as an SQLAlchemy URL: after a restart it re-attaches the live
        ones. It holds each cluster's TLS credentials, so it must be the service's alone. The default, SQLite, is
        a file the service makes mode 0600 in a 0700 folder: `sqlite:///<relative path>` or
        `sqlite:////<absolute path>`. A PostgreSQL server (its driver: pip install "jupyterhub-daas[postgresql]"):
        `postgresql://<role>@<host>:<port>/<database>` (`postgresql+psycopg://` with SQLAlchemy 2.0), a database
        of a role no one else has, the password in the service's ~/.pgpass or PGPASSWORD (or in the URL, then
        keep this file unreadable to others). Logs show the URL with its password masked.""",
    )
    records = Unicode(
        "",
        config=True,
        help="""Deprecated in 0.3.0, removed in the next release: the path of the SQLite file, now
        `db_url = "sqlite:///<path>"`. Set, it gives db_url (unless db_url is set too) and logs a warning.""",
    )
    python = Unicode(
        config=True,
        help="Python of the scheduler and worker jobs, as the compute nodes see it. Default: the service's own.",
    )
    interface = Unicode(
        "",
        config=True,
        help="Network interface schedulers and workers talk on (e.g. ib0). Empty: Dask's choice.",
    )
    client_hosts = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="""Node address (as Slurm gives it, `sinfo -o %o`) -> the host notebook servers connect to for a
        scheduler on that node, where they reach the compute nodes by another address: pods behind a cluster
        network, a gateway name. The service and the workers keep using Slurm's address. A node not listed:
        Slurm's address. The scheduler must listen there too: leave `interface` empty (all addresses), or name
        the interface that carries it. Example: {"10.1.0.17": "node17.hpc.example.org"}.""",
    )
    service_url = Unicode(
        "",
        config=True,
        help="""Where scheduler jobs reach this service (the nodes must reach it). Empty: the service's own
        URL and prefix from the hub (JUPYTERHUB_SERVICE_URL, JUPYTERHUB_SERVICE_PREFIX).""",
    )
    scheduler_partition = Unicode(
        "", config=True, help="Partition of scheduler jobs. Empty: the partition of the cluster's workers."
    )
    scheduler_qos = Unicode(
        "", config=True, help="QOS of scheduler jobs (e.g. one that starts them soon). Empty: Slurm's default."
    )
    scheduler_cores = Integer(1, min=1, config=True, help="Cores of each scheduler job.")
    scheduler_memory = ByteSize(1 << 30, config=True, help="Memory of each scheduler job.")
    slurm_bin_dir = Unicode(
        "/usr/bin",
        config=True,
        help="Directory holding sbatch, squeue and scancel. Absolute, because sudo resets PATH.",
    )
    workdir = Unicode(
        "{home}/.daas-dask/{cluster}",
        config=True,
        help="Each cluster's folder, made as its owner (logs, TLS files); `{home}` and `{cluster}` are replaced.",
    )
    check_interval = Float(
        10.0,
        config=True,
        help="Seconds between liveness checks of every cluster and their adaptive resizing.",
    )
    stop_with_server = Bool(
        True,
        config=True,
        help="Stop a cluster when the notebook server it was made from stops.",
    )

    @default("python")
    def _python_default(self) -> str:
        return sys.executable

    @validate("client_hosts")
    def _plain_hosts(self, proposal: Any) -> dict[str, str]:
        for node, host in proposal.value.items():
            if not (plain_host(node) and plain_host(host)):
                raise TraitError(f"client_hosts: {node!r} -> {host!r}: both must be host names or addresses")
        return proposal.value

    @validate("db_url")
    def _database_url(self, proposal: Any) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(proposal.value).get_dialect()  # a database SQLAlchemy knows ("postgres://" is not one)
        except ArgumentError as err:
            raise TraitError(f"db_url: {err} (a URL such as sqlite:///clusters.sqlite or postgresql://...)") from None
        return proposal.value

    @observe("records")
    def _records_is_deprecated(self, change: Any) -> None:
        if not change.new:
            return
        if self.db_url != self.trait_defaults("db_url"):  # set too (config loads notify after all their values)
            self.log.warning("c.DaskService.records is deprecated and ignored: c.DaskService.db_url is set")
            return
        self.db_url = "sqlite:///" + os.path.abspath(change.new)
        self.log.warning("c.DaskService.records is deprecated: set c.DaskService.db_url = %r instead", self.db_url)

    @validate("check_interval")
    def _positive(self, proposal: Any) -> float:
        if proposal.value <= 0:
            raise TraitError(f"{proposal.trait.name} must be more than 0 seconds, not {proposal.value}")
        return proposal.value

    def load_site_files(self) -> None:
        self.limits: DaskConfig = load_dask_config(self.require("limits_file"))

    async def serve(self) -> None:
        # Dask, JupyterHub's auth and the web stack: not for --help or a bad setting.
        import httpx
        from prometheus_client import REGISTRY

        from ..hub_users import HubUsers
        from .manager import ClusterManager, SchedulerJobSettings
        from .records import ClusterRecords, shown_url
        from .service import DaskApp, make_app, watch

        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/daas-dask/")
        self.log.info("daas-dask keeps its clusters in %s", shown_url(self.db_url))
        manager = ClusterManager(
            ClusterRecords(self.db_url),
            self.user_accounts.user_prefix,
            service_url=self.service_url or self.listen.geturl().rstrip("/") + prefix,
            workdir_template=self.workdir,
            python=self.python,
            interface=self.interface or None,
            dashboard_prefix=f"{prefix}dashboard/",
            scheduler_job=SchedulerJobSettings(
                self.scheduler_partition or None,
                self.scheduler_qos or None,
                self.scheduler_cores,
                self.scheduler_memory >> 20,
            ),
            slurm_bin_dir=self.slurm_bin_dir,
            accounts=self.user_accounts.policy,
        )
        await manager.reconcile()
        app = DaskApp(self.limits, manager, HubUsers(), prefix, self.client_hosts)
        REGISTRY.register(app.metrics_collector())  # served at <prefix>metrics
        make_app(app).listen(self.listen.port or 80, self.listen.hostname or "127.0.0.1")
        self.log.info("daas-dask listening on %s", self.listen.geturl())
        hub = httpx.AsyncClient(
            base_url=os.environ["JUPYTERHUB_API_URL"].rstrip("/"),
            headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"},
            timeout=10,
        )
        await watch(app, hub, self.check_interval, self.stop_with_server)


main = DaskService.launch_instance
