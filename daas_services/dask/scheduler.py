"""A cluster's Dask scheduler, run by its Slurm job as the owner, on a compute node (never the hub host).

The service submitted this job and holds the cluster's TLS credentials (it made them). Here the
job fetches them with its one-time secret, keeps them in the cluster's folder for the worker
jobs (owner-only files), serves the scheduler and its dashboard over TLS that requires this
cluster's certificate from every peer, and reports its two ports. The service checks the
report against Slurm (the job's node) and by connecting with its own copy of the credentials,
so whatever the owner's code does in here (preloads, `run_on_scheduler`) concerns their
cluster only. The job ends when the scheduler closes: idle, told to by the service, or killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
import urllib.request
from typing import Any

import dask
from distributed import Scheduler
from distributed.security import Security

from .jobs import SECRET_VARIABLE, URL_VARIABLE, tls_paths

log = logging.getLogger("daas-dask-scheduler")


def service_call(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One call to the service, authenticated by the job's secret (never on argv: `ps` shows argv)."""
    url = os.environ[URL_VARIABLE].rstrip("/") + "/" + path
    headers = {"Authorization": f"secret {os.environ[SECRET_VARIABLE]}", "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")  # noqa: S310
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 (the service's own URL)
        return json.loads(response.read())


def write_credentials(workdir: str, tls: dict[str, str]) -> dict[str, str]:
    """The credentials as owner-only files (the workers of this cluster read them from the shared home)."""
    paths = tls_paths(workdir)
    os.makedirs(os.path.dirname(paths["ca"]), mode=0o700, exist_ok=True)
    for name, path in paths.items():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w") as file:
            file.write(tls[name])
    return paths


async def serve(args: argparse.Namespace, paths: dict[str, str]) -> None:
    security = Security(
        tls_ca_file=paths["ca"],
        tls_scheduler_cert=paths["cert"],
        tls_scheduler_key=paths["key"],
        tls_client_cert=paths["cert"],
        tls_client_key=paths["key"],
        require_encryption=True,
    )
    dashboard_tls = {"cert": paths["cert"], "key": paths["key"], "ca-file": paths["ca"]}
    with dask.config.set({"distributed.scheduler.dashboard.tls": dashboard_tls}):
        scheduler = Scheduler(
            security=security,
            protocol="tls://",
            interface=args.interface,
            port=0,
            dashboard_address=":0",
            http_prefix=args.dashboard_prefix,
            idle_timeout=args.idle_timeout,
        )
    # distributed's dashboard TLS encrypts only; nothing has run since it started listening, so from
    # the first connection on it answers holders of this cluster's certificate alone.
    scheduler.http_server.ssl_options.verify_mode = ssl.CERT_REQUIRED
    await scheduler
    port = int(scheduler.address.rsplit(":", 1)[1])
    report = {"port": port, "dashboard_port": scheduler.http_server.port}
    # The service connects back to check the report: this loop must stay free while it does.
    await asyncio.to_thread(service_call, f"api/clusters/{args.cluster}/ready", report)
    log.info("reported %s", report)
    await scheduler.finished()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="daas-dask-scheduler", description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--idle-timeout", type=int, required=True)
    parser.add_argument("--dashboard-prefix", required=True)
    parser.add_argument("--interface", default=None)
    return parser.parse_args(argv)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
    os.umask(0o077)  # credentials and logs are the owner's alone
    args = parse_args()
    tls = service_call(f"api/clusters/{args.cluster}/bootstrap")["tls"]
    paths = write_credentials(args.workdir, tls)
    try:
        asyncio.run(serve(args, paths))
    except Exception:
        log.exception("the scheduler failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
