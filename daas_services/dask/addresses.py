"""The scheduler address a notebook's client is given: Slurm's node address, or the site's name for that node.

The service learns where a scheduler runs from Slurm (the node's NodeAddr), and the service and the
workers reach it there. Notebook servers may sit on another network — pods behind a cluster network,
VMs behind a gateway — and reach the same node by another address: `c.DaskService.client_hosts` maps
one to the other, for what the API hands to clients only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\]")


def plain_host(value: str) -> bool:
    """A host name, an IPv4 address or a bracketed IPv6 address: nothing that changes a URL's meaning."""
    return _HOST.fullmatch(value) is not None


def client_address(scheduler_address: str, client_hosts: Mapping[str, str]) -> str:
    """`tls://<node>:<port>` with the node replaced by the host clients use, when the site names one."""
    scheme, separator, rest = scheduler_address.rpartition("://")
    host, _, port = rest.rpartition(":")
    mapped = client_hosts.get(host)
    if mapped is None:
        return scheduler_address
    return f"{scheme}{separator}{mapped}:{port}"
