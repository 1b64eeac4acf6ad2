"""Run the Dask offload service: `python -m daas_services.dask --config /etc/jupyterhub/dask.yaml`.

JupyterHub starts it as a managed service and passes its URL, prefix and token in the
environment (JUPYTERHUB_SERVICE_URL, JUPYTERHUB_SERVICE_PREFIX, JUPYTERHUB_API_TOKEN).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import sys
from urllib.parse import urlsplit

import httpx

from daas_core.accounts import add_account_arguments, policy_from_arguments
from daas_core.quantities import parse_memory_mb

from ..hub_users import HubUsers
from .limits import load_dask_config
from .manager import ClusterManager, SchedulerJobSettings
from .records import ClusterRecords
from .service import DaskApp, make_app, watch

DEFAULT_PREFIX = "sudo -n -u {username} --"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="daas-dask", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="The limits YAML file (see profiles/dask.yaml).")
    parser.add_argument("--records", default="/var/lib/daas-dask/clusters.sqlite", help="The service's database.")
    parser.add_argument(
        "--user-prefix",
        default=DEFAULT_PREFIX,
        help=f"Command prefix that runs sbatch, scancel and mkdir as a cluster's owner (default: {DEFAULT_PREFIX!r}).",
    )
    parser.add_argument("--python", default=sys.executable, help="Python of the scheduler and worker jobs (nodes).")
    parser.add_argument("--interface", default=None, help="Network interface for scheduler and workers (e.g. ib0).")
    parser.add_argument(
        "--service-url",
        default=None,
        help="Where scheduler jobs reach this service (default: its own URL and prefix; the nodes must reach it).",
    )
    parser.add_argument(
        "--scheduler-partition", default=None, help="Partition of scheduler jobs (default: the cluster's own)."
    )
    parser.add_argument("--scheduler-qos", default=None, help="QOS of scheduler jobs (e.g. one that starts them soon).")
    parser.add_argument("--scheduler-cores", type=int, default=1, help="Cores of each scheduler job.")
    parser.add_argument("--scheduler-memory", type=parse_memory_mb, default=1024, help="Memory of each scheduler job.")
    parser.add_argument("--slurm-bin-dir", default="/usr/bin")
    parser.add_argument("--workdir", default="{home}/.daas-dask/{cluster}", help="Each cluster's folder (owner's).")
    parser.add_argument(
        "--check-interval", type=float, default=10.0, help="Seconds between liveness checks and adaptive resizing."
    )
    parser.add_argument(
        "--stop-with-server",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Stop a cluster when the notebook server it was made from stops.",
    )
    add_account_arguments(parser)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    config = load_dask_config(args.config)  # a bad file stops the service here
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/daas-dask/")
    own_url = os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10102")
    manager = ClusterManager(
        ClusterRecords(args.records),
        shlex.split(args.user_prefix),
        service_url=args.service_url or own_url.rstrip("/") + prefix,
        workdir_template=args.workdir,
        python=args.python,
        interface=args.interface,
        dashboard_prefix=f"{prefix}dashboard/",
        scheduler_job=SchedulerJobSettings(
            args.scheduler_partition, args.scheduler_qos, args.scheduler_cores, args.scheduler_memory
        ),
        slurm_bin_dir=args.slurm_bin_dir,
        accounts=policy_from_arguments(args),
    )
    await manager.reconcile()
    app = DaskApp(config, manager, HubUsers(), prefix)
    url = urlsplit(own_url)
    make_app(app).listen(url.port or 80, url.hostname or "127.0.0.1")
    logging.getLogger("daas-dask").info("daas-dask listening on %s", url.geturl())
    hub = httpx.AsyncClient(
        base_url=os.environ["JUPYTERHUB_API_URL"].rstrip("/"),
        headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"},
        timeout=10,
    )
    await watch(app, hub, args.check_interval, args.stop_with_server)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
