"""Prepare the server's working tree, start it on a port it holds, and tell the hub where it is.

Runs inside the job (Slurm node, container), as the user, so it uses the standard library
only: the batch script embeds this file and runs it with the environment's `python3`, so
compute nodes need JupyterHub's single-user server but not this package.

1. The job script holds no token (slurmctld keeps scripts and shows them to operators): it
   holds a one-time $DAAS_BOOTSTRAP secret, exchanged at the hub's `/api/daas/server-secrets`
   for the server's tokens (see bootstrap.py), which reach the server only in its environment.
2. It links the proposals' data locations ($DAAS_DATA) into `<working dir>/$DAAS_DATA_DIR/
   <proposal>/<location>`. A location this job cannot open (a proposal group the node does not
   see yet) is not linked: the job log says why, and the report names it (`unreachable_data`)
   so the spawn progress says so too.
3. It picks a free port, holds it bound (see reserve_port) and execs the server on it. A
   watcher process reports host and port to the hub's `/api/daas/server-address` with the
   server's token only once this account listens on that port: between picking and binding,
   another user's process on the node could take the port, and the hub would route this
   person's browser to it. If another account holds the port, nothing is reported and the
   server is stopped (the job log says why).
   The host is $DAAS_REPORT_HOST, or with $DAAS_REPORT_ROUTE set (a VM) the address this
   machine reaches the hub from, else the host name.
With --no-report (the local backend, which picks the port and watches it itself) it only links.
Usage: python3 launcher.py [--no-report] jupyterhub-singleuser [args...]
"""

import grp
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HUB_ATTEMPTS = 10
LISTEN = "0A"  # TCP state of a listening socket in /proc/net/tcp
TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
WATCH_INTERVAL = 0.1  # seconds between looks while the server imports: a quick server is reported at once
WATCH_SLOWER_AFTER = 5.0  # seconds; then the looks grow sparser, up to
WATCH_INTERVAL_MAX = 0.5  # 50 watchers looking 10 times a second took a 2-core node a fifth of a core (#21)


class HubRefused(Exception):
    """The hub answered no; asking again will not change its mind."""


def reserve_port(bind_ip):
    """A free port, held bound (not listening) by a socket the server inherits: (socket, port).

    While it is held the kernel hands this port to no other bind to port 0, so two launchers
    starting on one node at once cannot pick the same port (in a storm of 250 servers on one node,
    a port closed after picking was picked again by another account's launcher before the first
    server listened). The server binds it too, with SO_REUSEADDR as Tornado and asyncio do on Unix,
    and listens: a socket that does not listen is no conflict for that.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in bind_ip else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind_ip, 0))
    sock.set_inheritable(True)
    return sock, sock.getsockname()[1]


def route_address(api_url, bind_ip):
    """The address this machine reaches the hub from (bound to `bind_ip` if it is one): a VM's own address."""
    hub = urllib.parse.urlsplit(api_url)
    default_port = 443 if hub.scheme == "https" else 80
    with socket.socket(socket.AF_INET6 if ":" in bind_ip else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        if bind_ip not in ("0.0.0.0", "::"):  # noqa: S104 (compared, not bound)
            sock.bind((bind_ip, 0))
        sock.connect((hub.hostname or "localhost", hub.port or default_port))  # UDP: sends nothing
        return sock.getsockname()[0]


def hub_post(api_url, path, body, token=None):
    """POST JSON to the hub's API; the decoded answer (None when empty). Retries what may pass: 409, no network."""
    if urllib.parse.urlsplit(api_url).scheme not in ("http", "https"):
        raise HubRefused("JUPYTERHUB_API_URL must be an http(s) URL")
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "token " + token
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        api_url.rstrip("/") + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    for attempt in range(HUB_ATTEMPTS):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (scheme checked above)
                answer = response.read()
                return json.loads(answer) if answer else None
        except urllib.error.HTTPError as err:
            if err.code != 409:
                raise HubRefused(f"the hub refused {path} ({err.code}): {err.read()[:500]!r}") from None
            print("daas launcher: the hub does not see this job running yet, retrying", file=sys.stderr)
            time.sleep(1)
        except (urllib.error.URLError, OSError) as err:
            print(f"daas launcher: hub not reachable ({err}), retrying", file=sys.stderr)
            time.sleep(min(2**attempt, 30))
    raise HubRefused("gave up reaching the hub at " + api_url)


def redeem_bootstrap(api_url, secret):
    """The server's secret environment (its tokens) for the job's one-time bootstrap secret."""
    answer = hub_post(api_url, "/daas/server-secrets", {"secret": secret})
    env = answer.get("env") if isinstance(answer, dict) else None
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise HubRefused("the hub's answer to the bootstrap secret is not an environment")
    return env


def report(api_url, token, host, port, unreachable_data=()):
    body = {"host": host, "port": port}
    if unreachable_data:
        body["unreachable_data"] = list(unreachable_data)
    hub_post(api_url, "/daas/server-address", body, token)


def parse_listeners(table, port):
    """The uids owning sockets that listen on `port`, from the text of /proc/net/tcp or tcp6."""
    uids = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 7 and fields[3] == LISTEN and int(fields[1].rpartition(":")[2], 16) == port:
            uids.add(int(fields[7]))
    return uids


def listening_uids(port, tables=TCP_TABLES):
    """The uids of every socket that listens on this TCP port on this host, on any address."""
    uids = set()
    for path in tables:
        try:
            with open(path) as table:
                uids |= parse_listeners(table.read(), port)
        except FileNotFoundError:  # a kernel without IPv6
            continue
    return uids


def port_check(port, uid):
    """(whether `uid` listens on `port`, why the port is not the server's: another account listens on it, or None)."""
    uids = listening_uids(port)
    others = ", ".join(str(owner) for owner in sorted(uids - {uid}))
    taken = f"port {port} was taken by another account (uid {others}) before the server could listen on it"
    return uid in uids, (taken if others else None)


def live_process_stat(pid):
    """Fields 3 onwards of /proc/<pid>/stat (after the command name); None: no such process, or a dead one."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields


def is_running(pid):
    return live_process_stat(pid) is not None


def accepts(host, port):
    """Whether something accepts connections on host:port now: a cheap first look, no socket table read.

    A numeric host (connect_host gives one): no name lookup."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def connect_host(bind_ip):
    """Where the server bound to `bind_ip` is reached from this machine."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bind_ip, bind_ip)  # noqa: S104 (compared, not bound)


def wait_until_listening(pid, port, interval=WATCH_INTERVAL, host="127.0.0.1"):
    """None once this account listens on `port` and no other does; else why not (server ended, port taken).

    The socket tables are read only once something accepts on host:port: reading them costs
    milliseconds on a node with many sockets, ten times a second while the server imports. After
    WATCH_SLOWER_AFTER seconds the looks grow sparser: a server still importing then is a slow
    start anyway, and its watcher's looks take CPU from the imports of every server on the node.
    """
    me = os.getuid()
    slower_at = time.monotonic() + WATCH_SLOWER_AFTER
    while True:
        if accepts(host, port):
            listening, taken = port_check(port, me)
            if taken:
                return taken
            if listening:
                return None
        if not is_running(pid):
            return "the server ended before it listened"
        time.sleep(interval)
        if time.monotonic() > slower_at:
            interval = min(interval * 1.2, WATCH_INTERVAL_MAX)


def watch_and_report(pid, api_url, token, host, port, unreachable, bind_ip):
    """In a process of its own (the server keeps the launcher's pid): report once the server holds its port."""
    why_not = wait_until_listening(pid, port, host=connect_host(bind_ip))
    if why_not is None:
        try:
            report(api_url, token, host, port, unreachable)
            return
        except HubRefused as err:
            why_not = str(err)
    print(f"daas launcher: not reporting the address to the hub: {why_not}; stopping the server", file=sys.stderr)
    if is_running(pid):
        os.kill(pid, signal.SIGTERM)


def fork_watcher(*args):
    """Start watch_and_report detached (double fork): the server, which this process becomes, never reaps it."""
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        return
    try:
        if os.fork() == 0:
            watch_and_report(*args)
    finally:
        os._exit(0)


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
    api_url = os.environ.get("JUPYTERHUB_API_URL", "")
    try:
        if os.environ.get("DAAS_BOOTSTRAP"):
            os.environ.update(redeem_bootstrap(api_url, os.environ.pop("DAAS_BOOTSTRAP")))
    except HubRefused as err:
        sys.exit(f"daas launcher: no tokens for this server: {err}")
    unreachable = []
    if os.environ.get("DAAS_DATA_DIR"):
        unreachable = link_data(json.loads(os.environ.get("DAAS_DATA") or "[]"), os.environ["DAAS_DATA_DIR"])
    if report_address:
        bind_ip = os.environ.get("DAAS_BIND_IP", "0.0.0.0")  # noqa: S104 (the hub must reach the node)
        host = os.environ.get("DAAS_REPORT_HOST") or (
            route_address(api_url, bind_ip) if os.environ.get("DAAS_REPORT_ROUTE") else socket.gethostname()
        )
        _held, port = reserve_port(bind_ip)  # stays open through the exec, for the server's life
        service = urllib.parse.urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://0.0.0.0:0/"))
        netloc = f"[{bind_ip}]:{port}" if ":" in bind_ip else f"{bind_ip}:{port}"
        os.environ["JUPYTERHUB_SERVICE_URL"] = urllib.parse.urlunsplit(service._replace(netloc=netloc))
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        fork_watcher(os.getpid(), api_url, token, host, port, unreachable, bind_ip)
    os.execvp(command[0], command)  # noqa: S606 (argv from the hub, no shell)


if __name__ == "__main__":
    main()
