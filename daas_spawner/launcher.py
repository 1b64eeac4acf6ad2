"""Start a single-user server on a free port and tell the hub where it is.

Runs inside the job (Slurm node, container), so it uses the standard library only: the
batch script embeds this file and runs it with the environment's `python3`, so compute
nodes need JupyterHub's single-user server but not this package.

It reports exactly two fields, host and port, to the hub's `/api/daas/server-address`
with the server's own token, then execs the server command.
Usage: python3 launcher.py jupyterhub-singleuser [args...]
"""

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

REPORT_ATTEMPTS = 10


def free_port(bind_ip):
    with socket.socket(socket.AF_INET6 if ":" in bind_ip else socket.AF_INET) as sock:
        sock.bind((bind_ip, 0))
        return sock.getsockname()[1]


def report(api_url, token, host, port):
    if urllib.parse.urlsplit(api_url).scheme not in ("http", "https"):
        sys.exit("daas launcher: JUPYTERHUB_API_URL must be an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        api_url.rstrip("/") + "/daas/server-address",
        data=json.dumps({"host": host, "port": port}).encode(),
        headers={"Authorization": "token " + token, "Content-Type": "application/json"},
        method="POST",
    )
    for attempt in range(REPORT_ATTEMPTS):
        try:
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310 (scheme checked above)
                return
        except urllib.error.HTTPError as err:
            # The hub answered: retrying will not change its mind.
            sys.exit(f"daas launcher: hub refused the address ({err.code}): {err.read()[:500]!r}")
        except (urllib.error.URLError, OSError) as err:
            print(f"daas launcher: hub not reachable ({err}), retrying", file=sys.stderr)
            time.sleep(min(2**attempt, 30))
    sys.exit("daas launcher: could not reach the hub at " + api_url)


def main(argv=None):
    command = list(sys.argv[1:] if argv is None else argv)
    if not command:
        sys.exit("usage: launcher.py COMMAND [ARGS...]")
    bind_ip = os.environ.get("DAAS_BIND_IP", "0.0.0.0")  # noqa: S104 (the hub must reach the node)
    host = os.environ.get("DAAS_REPORT_HOST") or socket.gethostname()
    port = free_port(bind_ip)
    service = urllib.parse.urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://0.0.0.0:0/"))
    netloc = f"[{bind_ip}]:{port}" if ":" in bind_ip else f"{bind_ip}:{port}"
    os.environ["JUPYTERHUB_SERVICE_URL"] = urllib.parse.urlunsplit(service._replace(netloc=netloc))
    report(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"], host, port)
    os.execvp(command[0], command)  # noqa: S606 (argv from the hub, no shell)


if __name__ == "__main__":
    main()
