"""Prepare the server's working tree, start it on a free port and tell the hub where it is.

Runs inside the job (Slurm node, container), as the user, so it uses the standard library
only: the batch script embeds this file and runs it with the environment's `python3`, so
compute nodes need JupyterHub's single-user server but not this package.

It links the proposals' data locations ($DAAS_DATA) into `<working dir>/$DAAS_DATA_DIR/
<proposal>/<location>`, reports host and port to the hub's `/api/daas/server-address` with the
server's own token, then execs the server command. A location this job cannot open (a proposal
group the node does not see yet) is not linked: the job log says why, and the report names it
(`unreachable_data`) so the spawn progress says so too.
With --no-report (the local backend, which picks the port itself) it only links.
Usage: python3 launcher.py [--no-report] jupyterhub-singleuser [args...]
"""

import grp
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


def report(api_url, token, host, port, unreachable_data=()):
    if urllib.parse.urlsplit(api_url).scheme not in ("http", "https"):
        sys.exit("daas launcher: JUPYTERHUB_API_URL must be an http(s) URL")
    body = {"host": host, "port": port}
    if unreachable_data:
        body["unreachable_data"] = list(unreachable_data)
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        api_url.rstrip("/") + "/daas/server-address",
        data=json.dumps(body).encode(),
        headers={"Authorization": "token " + token, "Content-Type": "application/json"},
        method="POST",
    )
    for attempt in range(REPORT_ATTEMPTS):
        try:
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310 (scheme checked above)
                return
        except urllib.error.HTTPError as err:
            if err.code != 409:  # the hub refused: retrying will not change its mind
                sys.exit(f"daas launcher: hub refused the address ({err.code}): {err.read()[:500]!r}")
            print("daas launcher: the hub does not see this job running yet, retrying", file=sys.stderr)
            time.sleep(1)
        except (urllib.error.URLError, OSError) as err:
            print(f"daas launcher: hub not reachable ({err}), retrying", file=sys.stderr)
            time.sleep(min(2**attempt, 30))
    sys.exit("daas launcher: gave up reporting the address to the hub at " + api_url)


def cannot_open(folder):
    """Why this job cannot list a folder (None: it can), with its groups as the node sees them now."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as err:
        return err.strerror
    os.close(fd)
    return None if os.access(folder, os.X_OK) else "Permission denied"


def group_names():
    names = []
    for gid in sorted(set(os.getgroups()) | {os.getgid()}):
        try:
            names.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            names.append(str(gid))
    return ", ".join(names)


def link_data(mounts, link_dir):
    """Keep <link_dir>/<proposal>/<location> links in step with the mounts; touch nothing but links.

    Returns the locations ("<proposal>/<name>") left unlinked because this job cannot open them.
    """
    wanted, unreachable = {}, []
    for m in mounts:
        why = cannot_open(m["source"])
        if why is None:
            wanted[os.path.join(link_dir, m["proposal"], m["name"])] = m["source"]
            continue
        unreachable.append(f"{m['proposal']}/{m['name']}")
        print(
            f"daas launcher: not linking {link_dir}/{m['proposal']}/{m['name']}: cannot open {m['source']} ({why}). "
            f"This job runs with the groups: {group_names()}. If you joined proposal {m['proposal']} recently, "
            "the node may not know it yet (Slurm and the name service cache group lists): start the server again "
            "later, or ask the facility's support.",
            file=sys.stderr,
        )
    if os.path.isdir(link_dir) and not os.path.islink(link_dir):
        for proposal in os.listdir(link_dir):
            folder = os.path.join(link_dir, proposal)
            if os.path.islink(folder) or not os.path.isdir(folder):
                continue
            for name in os.listdir(folder):
                link = os.path.join(folder, name)
                if os.path.islink(link) and wanted.get(link) != os.readlink(link):
                    os.unlink(link)  # a proposal or location that is gone, or moved
            if not os.listdir(folder):
                os.rmdir(folder)
    for link, source in sorted(wanted.items()):
        if os.path.islink(link):
            continue  # already right: wrong ones were removed above
        if os.path.lexists(link):
            print(f"daas launcher: not replacing {link}: it is not a link", file=sys.stderr)
            continue
        os.makedirs(os.path.dirname(link), mode=0o700, exist_ok=True)
        os.symlink(source, link)
    return unreachable


def main(argv=None):
    command = list(sys.argv[1:] if argv is None else argv)
    report_address = command[:1] != ["--no-report"]
    command = command if report_address else command[1:]
    if not command:
        sys.exit("usage: launcher.py [--no-report] COMMAND [ARGS...]")
    unreachable = []
    if os.environ.get("DAAS_DATA_DIR"):
        unreachable = link_data(json.loads(os.environ.get("DAAS_DATA") or "[]"), os.environ["DAAS_DATA_DIR"])
    if not report_address:
        os.execvp(command[0], command)  # noqa: S606 (argv from the hub, no shell)
    bind_ip = os.environ.get("DAAS_BIND_IP", "0.0.0.0")  # noqa: S104 (the hub must reach the node)
    host = os.environ.get("DAAS_REPORT_HOST") or socket.gethostname()
    port = free_port(bind_ip)
    service = urllib.parse.urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://0.0.0.0:0/"))
    netloc = f"[{bind_ip}]:{port}" if ":" in bind_ip else f"{bind_ip}:{port}"
    os.environ["JUPYTERHUB_SERVICE_URL"] = urllib.parse.urlunsplit(service._replace(netloc=netloc))
    report(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"], host, port, unreachable)
    os.execvp(command[0], command)  # noqa: S606 (argv from the hub, no shell)


if __name__ == "__main__":
    main()
