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
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from daas_core.accounts import add_account_arguments, policy_from_arguments
from daas_core.mounts import load_data_locations
from daas_core.quantities import parse_memory_mb

from .as_user import UserReader
from .service import PreviewBounds, make_app

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
    parser.add_argument(
        "--reader-timeout",
        type=positive(float),
        default=60.0,
        help="Seconds one answer (a listing, an HDF5 tree or preview, a download's start) may take; "
        "then the reader's whole process group is killed (default: 60).",
    )
    parser.add_argument(
        "--reader-memory",
        type=size,
        default=size("1G"),
        help="Address space one reader may use, e.g. 512M or 2G (RLIMIT_AS, set by the reader on itself; "
        "default: 1G). A read that needs more fails with 422.",
    )
    parser.add_argument(
        "--reader-cpu-time",
        type=positive(int),
        default=30,
        help="CPU seconds one reader may use for an answer (RLIMIT_CPU; default: 30). Downloads are not "
        "limited: their cost grows with the bytes the person asked for.",
    )
    parser.add_argument(
        "--readers-per-person",
        type=positive(int),
        default=4,
        help="Readers one person may have running at once (default: 4); a further request waits "
        "--reader-queue-wait seconds for one to end, then gets 429 with Retry-After.",
    )
    parser.add_argument(
        "--reader-queue-wait",
        type=float,
        default=5.0,
        help="Seconds a request waits for one of its person's readers to end (default: 5).",
    )
    parser.add_argument(
        "--preview-max-bytes",
        type=size,
        default=PreviewBounds.max_bytes,
        help="Bytes of values one HDF5 preview may hold, elements x item size (default: 1M); "
        "fewer elements when each is large, 422 when one element is larger.",
    )
    parser.add_argument(
        "--preview-max-read-bytes",
        type=size,
        default=PreviewBounds.max_read_bytes,
        help="Bytes HDF5 may read and decompress for one preview (default: 128M): a compressed chunk "
        "is decompressed whole, so a preview of a dataset whose chunk is larger gets 422.",
    )
    add_account_arguments(parser)
    return parser.parse_args(argv)


def size(text: str) -> int:
    """A size in bytes from '512M', '2G' (binary units, whole MiB at least)."""
    try:
        mib = parse_memory_mb(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if mib < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is less than 1M")
    return mib << 20


def positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


async def serve(args: argparse.Namespace) -> None:
    locations = load_data_locations(args.locations)
    reader = UserReader(
        prefix=shlex.split(args.user_prefix),
        timeout=args.reader_timeout,
        memory=args.reader_memory,
        cpu_seconds=args.reader_cpu_time,
        per_person=args.readers_per_person,
        queue_wait=args.reader_queue_wait,
        accounts=policy_from_arguments(args),
    )
    preview = PreviewBounds(max_bytes=args.preview_max_bytes, max_read_bytes=args.preview_max_read_bytes)
    app = make_app(locations, reader, preview=preview)
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    app.listen(url.port or 80, url.hostname or "127.0.0.1")
    logging.getLogger("daas-data").info("daas-data listening on %s", url.geturl())
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
