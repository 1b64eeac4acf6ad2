"""Run the data service: `python -m daas_services.data --locations /etc/jupyterhub/data.yaml`.

JupyterHub starts it as a managed service and passes its URL, prefix and token in the
environment (JUPYTERHUB_SERVICE_URL, JUPYTERHUB_SERVICE_PREFIX, JUPYTERHUB_API_TOKEN).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
from urllib.parse import urlsplit

from daas_spawner.accounts import add_account_arguments, policy_from_arguments

from .as_user import UserReader
from .mounts import load_data_locations
from .service import make_app

DEFAULT_PREFIX = "sudo -n -u {username} --"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="daas-data", description=__doc__.splitlines()[0])
    parser.add_argument("--locations", required=True, help="The data-locations YAML file the spawner uses too.")
    parser.add_argument(
        "--user-prefix",
        default=DEFAULT_PREFIX,
        help=f"Command prefix that runs the reader as the user (default: {DEFAULT_PREFIX!r}); "
        "empty: as the service's own user (the single-account demo only).",
    )
    parser.add_argument("--reader-timeout", type=float, default=60.0, help="Seconds one read may take.")
    add_account_arguments(parser)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    locations = load_data_locations(args.locations)
    reader = UserReader(
        prefix=shlex.split(args.user_prefix), timeout=args.reader_timeout, accounts=policy_from_arguments(args)
    )
    app = make_app(locations, reader)
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    app.listen(url.port or 80, url.hostname or "127.0.0.1")
    logging.getLogger("daas-data").info("daas-data listening on %s", url.geturl())
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
