"""The launcher reports only a port its own account listens on, and no other account does (#14, item 2)."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
import time

from daas_spawner import launcher
from daas_spawner.launcher import is_running, listening_uids, parse_listeners, route_address, wait_until_listening

TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4711 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:A2B4 01 00000000:00000000 00:00000000 00000000  1001        0 4712 1 0 20 4 30 10 -1
   2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1002        0 4713 1 0 100 0 0 10 0
"""
TABLE6 = (  # one line of /proc/net/tcp6, cut for width: [::]:8080 listening, uid 1003
    "  sl  local_address remote_address st tx_queue rx_queue tr tm->when retrnsmt uid timeout inode\n"
    "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000  1003        0 4714 1 0 100 0 0 10 0\n"
)


def test_only_listening_sockets_on_the_port_count_with_their_owner() -> None:
    assert parse_listeners(TABLE, 8080) == {1000}  # the connection of uid 1001 on 8080 is no listener
    assert parse_listeners(TABLE, 8081) == {1002}
    assert parse_listeners(TABLE, 9000) == set()
    assert parse_listeners(TABLE6, 8080) == {1003}  # another account on [::]:8080 counts as well


def test_listening_uids_reads_the_kernels_tables(tmp_path) -> None:
    v4, v6 = tmp_path / "tcp", tmp_path / "tcp6"
    v4.write_text(TABLE)
    v6.write_text(TABLE6)
    assert listening_uids(8080, (str(v4), str(v6))) == {1000, 1003}
    assert listening_uids(8080, (str(v4), str(tmp_path / "no-ipv6"))) == {1000}


def test_a_real_listener_is_seen_with_this_processes_uid() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert os.getuid() not in listening_uids(port)  # bound, not listening yet: the window
        sock.listen()
        assert listening_uids(port) == {os.getuid()}
        assert wait_until_listening(os.getpid(), port) is None


def test_the_socket_tables_are_read_only_once_something_accepts(monkeypatch) -> None:
    looks = []
    monkeypatch.setattr(launcher, "port_check", lambda port, uid: looks.append(port) or (True, None))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        waiting = threading.Thread(target=launcher.wait_until_listening, args=(os.getpid(), port, 0.01))
        waiting.start()
        time.sleep(0.3)  # thirty looks while nothing listens: none reads the tables
        assert looks == []
        sock.listen()
        waiting.join(5)
    assert looks == [port]


def test_a_port_another_account_holds_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(launcher, "listening_uids", lambda port: {os.getuid(), 4242})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        why = launcher.wait_until_listening(os.getpid(), port)
    assert why == f"port {port} was taken by another account (uid 4242) before the server could listen on it"


def test_waiting_ends_when_the_server_ends_first() -> None:
    server = subprocess.Popen([sys.executable, "-c", "pass"])
    server.wait()
    assert not is_running(server.pid)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert wait_until_listening(server.pid, port, interval=0.01) == "the server ended before it listened"


def test_a_vm_reports_the_address_it_reaches_the_hub_from() -> None:
    """A VM's launcher (DAAS_REPORT_ROUTE) reports its own address: bound to one, that one; else the route's."""
    assert route_address("http://127.0.0.1:8081/hub/api", "127.0.9.7") == "127.0.9.7"
    assert route_address("http://127.0.0.1:8081/hub/api", "0.0.0.0") == "127.0.0.1"
    assert route_address("http://localhost/hub/api", "127.0.9.8") == "127.0.9.8"


def test_a_reserved_port_goes_to_no_other_launcher_and_the_server_can_listen_on_it() -> None:
    """Two launchers starting at once on one node must not pick the same port (#21: a storm of 250)."""
    held = [launcher.reserve_port("0.0.0.0") for _ in range(50)]
    reserved = {port for _, port in held}
    assert len(reserved) == 50
    picked = []
    for _ in range(5000):  # without the reservation about 18 of these land on a reserved port
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            other.bind(("0.0.0.0", 0))
            picked.append(other.getsockname()[1])
    assert reserved.isdisjoint(picked)
    sock, port = held[0]
    assert sock.get_inheritable()  # the server process keeps it through the exec
    with socket.socket() as server:  # what Tornado and asyncio do
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen()
        assert listening_uids(port) == {os.getuid()}
    for sock, _ in held:
        sock.close()


def test_a_slow_server_is_looked_at_ever_less_often(monkeypatch) -> None:
    """After WATCH_SLOWER_AFTER the watcher's looks grow sparser, to at most WATCH_INTERVAL_MAX apart (#21)."""
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(launcher.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(launcher.time, "sleep", sleep)
    monkeypatch.setattr(launcher, "accepts", lambda host, port: clock[0] >= 30)  # listens after 30 s
    monkeypatch.setattr(launcher, "port_check", lambda port, uid: (True, None))
    assert launcher.wait_until_listening(os.getpid(), 1234) is None
    early = [s for s, t in zip(sleeps, itertools.accumulate(sleeps), strict=True) if t <= launcher.WATCH_SLOWER_AFTER]
    assert set(early) == {launcher.WATCH_INTERVAL}
    assert max(sleeps) == launcher.WATCH_INTERVAL_MAX == sleeps[-1]
    assert len(sleeps) < 30 / launcher.WATCH_INTERVAL / 2  # ten looks a second throughout would be 300
