"""Per-proposal data end to end: real permissions, a Slurm server's links, and the daas-data service.

The site is the OIDC one (a real provider and user office; alice has 20231234 at ID11,
bob 20230042 at D22) plus data locations from data_tree.py and the data service as a
hub-managed service, which reads every file as the calling user (sudo).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import h5py
import httpx
import numpy as np
import pytest

from daas_services.data.as_user import ReaderError, UserReader

from .conftest import cancel_test_jobs, public_tempdir
from .data_tree import BLOB, FRAMES, make_data_tree
from .hub import VENV_BIN, Hub
from .oidc_site import OidcSite
from .process import free_port, wait_for
from .slurm import batch_script, exported

pytestmark = pytest.mark.slurm

SERVICE = "/services/daas-data"
# The service's config file: reader limits tight enough for the tests to cross each, loose enough for
# every ordinary read.
SERVICE_CONFIG = """
c.DataService.data_locations = {locations!r}
c.DataService.reader_memory = "300M"
c.DataService.reader_cpu_time = 2
c.DataService.readers_per_person = 3
c.DataService.reader_queue_wait = 1
"""


class DataSite:
    """The OIDC site with data locations, the data service, and alice and bob logged in once."""

    def __init__(self) -> None:
        self.tree = make_data_tree(public_tempdir("daas-data-"))
        locations = self.tree.base / "data.yaml"
        locations.write_text(self.tree.locations_yaml)
        service_config = self.tree.base / "daas_config.py"
        service_config.write_text(SERVICE_CONFIG.format(locations=str(locations)))
        self.service_port = free_port()
        config = f"""
            from daas_core.mounts import load_data_locations
            from daas_hub import add_service_roles, data_service
            c.DaaSSpawner.data_locations = load_data_locations("{locations}")
            c.JupyterHub.services.append(
                data_service("{service_config}", url="http://127.0.0.1:{self.service_port}")
            )
            add_service_roles(c, "daas-data")
            # A spawn request answers at once, so a test reads the progress a person's page shows.
            c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
        """
        self.oidc = OidcSite(extra_config=config, prefix="daas-data-site-")
        self.hub = self.oidc.hub

    def start(self) -> DataSite:
        self.oidc.start()
        for user in ("alice", "bob"):
            self.oidc.login(user)
        scopes = ["access:services!service=daas-data"]
        self.service_token = {user: self.hub.token_for(user, scopes) for user in ("alice", "bob")}
        return self

    def get(self, path: str, user: str | None = "alice", token: str | None = None, **kwargs) -> httpx.Response:
        token = token or (self.service_token[user] if user else None)
        headers = {"Authorization": f"token {token}"} if token else {}
        headers |= kwargs.pop("headers", {})
        return self.hub.http.get(f"{self.hub.url}{SERVICE}/{path}", headers=headers, follow_redirects=False, **kwargs)

    def raw_get(self, path: str, user: str = "alice", direct: bool = False) -> tuple[int, bytes]:
        """A request whose path goes out exactly as written (httpx would normalise '..').

        `direct` skips the proxy, as anyone on the hub host can: the service must hold on its own.
        """
        port = self.service_port if direct else self.hub.port
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", f"{SERVICE}/{path}", headers={"Authorization": f"token {self.service_token[user]}"})
        response = connection.getresponse()
        return response.status, response.read()


@pytest.fixture(scope="module")
def site(slurm_cluster: None) -> Iterator[DataSite]:
    cancel_test_jobs()
    site = DataSite().start()
    yield site
    site.oidc.close()


# -- the Slurm server's view ------------------------------------------------------------------


def test_a_slurm_server_sees_its_proposals_data_with_the_filesystems_rights(site: DataSite) -> None:
    hub, tree = site.hub, site.tree
    token = hub.token_for("alice", ["servers!user=alice", "access:servers!user=alice"])
    assert hub.spawn("alice", {"profile": "mx", "proposal": "20231234"}).status_code in (201, 202)
    events = hub.progress("alice")
    hub.wait_ready("alice")
    try:
        # 20220001's group does not have alice: no links, and the job log and the progress say why.
        notes = [e["message"] for e in events if "20220001" in e["message"]]
        assert notes and "without the raw and processed data of proposal 20220001" in notes[0], events
        log = Path(hub.server_model("alice")["state"]["daas"]["state"]["log"]).read_text()
        assert f"not linking data/20220001/raw: cannot open {tree.raw('20220001')} (Permission denied)" in log
        data = json.loads(exported(batch_script(hub.job_id("alice")), "DAAS_DATA"))
        assert {(m["proposal"], m["name"]) for m in data} == {
            ("20231234", "raw"),
            ("20231234", "processed"),
            ("20220001", "raw"),
            ("20220001", "processed"),
        }
        contents = f"{hub.url}/user/alice/api/contents"
        headers = {"Authorization": f"token {token}"}

        folder = hub.http.get(f"{contents}/data", headers=headers).json()
        assert sorted(item["name"] for item in folder["content"]) == ["20231234"]  # no 20230042, no 20220001
        raw = hub.http.get(f"{contents}/data/20231234/raw", headers=headers)
        assert raw.status_code == 200, raw.text
        assert {"scan_0001", "sample.nxs", "notes.txt"} <= {item["name"] for item in raw.json()["content"]}
        notes = hub.http.get(f"{contents}/data/20231234/raw/notes.txt", headers=headers).json()
        assert notes["content"] == "beamtime 20231234\n"

        new_file = {"type": "file", "format": "text", "content": "result\n"}
        refused = hub.http.put(f"{contents}/data/20231234/raw/result.txt", headers=headers, json=new_file)
        assert refused.status_code >= 400 and "Permission denied" in refused.text
        assert not (tree.raw("20231234") / "result.txt").exists()
        written = hub.http.put(f"{contents}/data/20231234/processed/result.txt", headers=headers, json=new_file)
        assert written.status_code == 201, written.text
        assert (tree.processed("20231234") / "result.txt").read_text() == "result\n"
        assert (tree.processed("20231234") / "result.txt").owner() == "alice"

        assert hub.http.get(f"{contents}/data/20230042", headers=headers).status_code == 404
        as_alice = subprocess.run(
            ["sudo", "-n", "-u", "alice", "--", "cat", str(tree.raw("20230042") / "notes.txt")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert as_alice.returncode != 0 and "Permission denied" in as_alice.stderr
    finally:
        hub.stop_server("alice")


def test_a_proposals_server_links_only_that_proposals_data(site: DataSite) -> None:
    hub = site.hub
    server = "proposal-20231234"
    assert hub.spawn("alice", {"profile": "mx"}, server=server).status_code in (201, 202)
    hub.wait_ready("alice", server)
    try:
        data = json.loads(exported(batch_script(hub.job_id("alice", server)), "DAAS_DATA"))
        assert {m["proposal"] for m in data} == {"20231234"}
    finally:
        hub.stop_server("alice", server)


def test_a_local_server_gets_the_same_links(site: DataSite) -> None:
    """The local backend, on a hub whose admin wrote alice's proposals into her auth_state."""
    hub = Hub(
        public_tempdir("daas-data-local-") / "hub",
        f"""
        from daas_core.mounts import load_data_locations
        c.Authenticator.enable_auth_state = True
        c.DaaSSpawner.data_locations = load_data_locations("{site.tree.base / "data.yaml"}")
        c.LocalBackend.user_prefix = ["sudo", "-E", "-H", "-n", "-u", "{{username}}", "--"]
        c.LocalBackend.working_dir = "/home/{{username}}"
        c.Spawner.cmd = ["{VENV_BIN}/jupyterhub-singleuser"]
        """,
        env={"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)},
    ).start()
    try:
        hub.create_users("alice")
        proposals = [{"id": "20231234", "instrument": "ID11"}]
        assert hub.api("PATCH", "/users/alice", json={"auth_state": {"proposals": proposals}}).status_code == 200
        assert hub.spawn("alice", {}).status_code in (201, 202)
        hub.wait_ready("alice", timeout=90)
        token = hub.token_for("alice", ["access:servers!user=alice"])
        headers = {"Authorization": f"token {token}"}
        contents = f"{hub.url}/user/alice/api/contents/data"
        assert [item["name"] for item in hub.http.get(contents, headers=headers).json()["content"]] == ["20231234"]
        raw = hub.http.get(f"{contents}/20231234/raw/notes.txt", headers=headers).json()
        assert raw["content"] == "beamtime 20231234\n"
        new_file = {"type": "file", "format": "text", "content": "x"}
        refused = hub.http.put(f"{contents}/20231234/raw/local.txt", headers=headers, json=new_file)
        assert refused.status_code >= 400 and "Permission denied" in refused.text
        hub.stop_server("alice")
    finally:
        hub.stop()
        subprocess.run(["pkill", "-u", "alice", "-f", "jupyterhub-singleuser"], check=False)


# -- the data service ---------------------------------------------------------------------------


def test_mounts_lists_only_the_callers_proposals(site: DataSite) -> None:
    response = site.get("api/mounts")
    assert response.status_code == 200, response.text
    proposals = response.json()["proposals"]
    assert [p["id"] for p in proposals] == ["20231234", "20220001"]
    first = proposals[0]
    assert first["title"] == "Strain in additively manufactured alloys"
    assert first["locations"] == [
        {"name": "raw", "path": str(site.tree.raw("20231234")), "writable": False},
        {"name": "processed", "path": str(site.tree.processed("20231234")), "writable": True},
    ]
    assert [p["id"] for p in site.get("api/mounts", user="bob").json()["proposals"]] == ["20230042"]


def test_browse_lists_a_directory_in_pages(site: DataSite) -> None:
    listing = site.get("api/browse/20231234/raw/").json()
    names = [entry["name"] for entry in listing["entries"]]
    assert names == ["bobs-notes.txt", "bobs-raw", "notes.txt", "readme.txt", "sample.nxs", "scan_0001"]
    types = {entry["name"]: entry["type"] for entry in listing["entries"]}
    assert types["scan_0001"] == "directory" and types["sample.nxs"] == "file" and types["bobs-raw"] == "link"
    page = site.get("api/browse/20231234/raw", params={"offset": 2, "limit": 2}).json()
    assert [entry["name"] for entry in page["entries"]] == ["notes.txt", "readme.txt"] and page["total"] == 6
    inner = site.get("api/browse/20231234/raw/scan_0001").json()
    assert inner["entries"][0]["name"] == "frames.bin" and inner["entries"][0]["size"] == len(BLOB)
    assert site.get("api/browse/20231234/raw", params={"limit": 0}).status_code == 400


def test_download_whole_and_with_ranges(site: DataSite) -> None:
    whole = site.get("api/files/20231234/raw/scan_0001/frames.bin")
    assert whole.status_code == 200 and whole.content == BLOB
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-disposition"].startswith("attachment;")
    part = site.get("api/files/20231234/raw/scan_0001/frames.bin", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == BLOB[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(BLOB)}"
    tail = site.get("api/files/20231234/raw/scan_0001/frames.bin", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == BLOB[-10:]
    beyond = site.get("api/files/20231234/raw/scan_0001/frames.bin", headers={"Range": f"bytes={len(BLOB)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(BLOB)}"
    huge = site.get("api/files/20231234/raw/scan_0001/frames.bin", headers={"Range": "bytes=" + "9" * 5000 + "-"})
    assert huge.status_code == 416  # was a 500: Python refuses int() of a 5000-digit string


def test_hdf5_tree_and_preview_of_a_nexus_file(site: DataSite) -> None:
    tree = site.get("api/hdf5/20231234/raw/sample.nxs")
    assert tree.status_code == 200, tree.text
    entry = next(child for child in tree.json()["children"] if child["name"] == "entry")
    assert entry["nx_class"] == "NXentry"
    data_group = next(child for child in entry["children"] if child["name"] == "data")
    assert data_group["nx_class"] == "NXdata" and data_group["attrs"]["signal"] == "data"
    dataset = next(child for child in data_group["children"] if child["name"] == "data")
    assert (dataset["path"], dataset["shape"], dataset["dtype"]) == ("/entry/data/data", [10, 32, 32], "uint16")
    preview = site.get("api/hdf5/20231234/raw/sample.nxs", params={"dataset": "/entry/data/data"}).json()
    selection = [slice(start, stop) for start, stop in preview["selection"]]
    assert preview["data"] == FRAMES[tuple(selection)].tolist()
    assert site.get("api/hdf5/20231234/raw/notes.txt").status_code == 400


def test_the_page_lists_mounts_and_browses_them(site: DataSite) -> None:
    http, _ = site.oidc.login("alice")  # a browser session: the service's OAuth goes through the hub
    page = http.get(f"{site.hub.url}{SERVICE}/", follow_redirects=True)
    assert page.status_code == 200, page.text[:500]
    assert "Strain in additively manufactured alloys" in page.text and "20230042" not in page.text
    folder = http.get(f"{site.hub.url}{SERVICE}/view/20231234/raw/", follow_redirects=True)
    assert "sample.nxs" in folder.text and "scan_0001" in folder.text
    nexus = http.get(f"{site.hub.url}{SERVICE}/view/20231234/raw/sample.nxs", follow_redirects=True)
    assert "NXentry" in nexus.text and "uint16" in nexus.text


# -- the attack matrix ---------------------------------------------------------------------------

ATTACKS = {
    "another proposal": ("api/browse/20230042/raw/", 403),
    "another proposal's file": ("api/files/20230042/raw/notes.txt", 403),
    "dot-dot": ("api/files/20231234/raw/../../../../../../etc/passwd", 400),
    "dot-dot into B": ("api/browse/20231234/raw/../../../20230042/d22/raw", 400),
    "encoded dot-dot": ("api/files/20231234/raw/%2e%2e/%2e%2e/%2e%2e/etc/passwd", 400),
    "encoded slash": ("api/files/20231234/raw/..%2f..%2f..%2fetc%2fpasswd", 400),
    "double encoding": ("api/files/20231234/raw/%252e%252e/%252e%252e/etc/passwd", 400),
    "absolute path": ("api/files/20231234/raw//etc/passwd", 400),
    "NUL byte": ("api/files/20231234/raw/notes.txt%00.png", 400),
    "backslashes": ("api/files/20231234/raw/..%5c..%5cetc%5cpasswd", 400),
    "very long path": ("api/browse/20231234/raw/" + "/".join(["a" * 200] * 30), 400),
    "symlink into B's file": ("api/files/20231234/raw/bobs-notes.txt", 403),
    "symlink into B's folder": ("api/browse/20231234/raw/bobs-raw", 403),
    "symlink to a readable file outside": ("api/files/20231234/raw/readme.txt", 403),
    "unknown location": ("api/browse/20231234/scratch/", 404),
}


@pytest.mark.parametrize("route", ["direct", "through the proxy"])
@pytest.mark.parametrize("attack", ATTACKS)
def test_attacks_are_refused_and_leak_nothing(site: DataSite, attack: str, route: str) -> None:
    path, status = ATTACKS[attack]
    answer, body = site.raw_get(path, direct=route == "direct")
    if route == "direct":
        assert answer == status, body[:300]
    else:  # the proxy resolves '..' and %2e itself: such requests then miss the service, or meet its checks
        assert answer in (status, 302, 404), body[:300]
    text = body.decode(errors="replace")
    for secret in ("root:", "beamtime 20230042", "world-readable", str(site.tree.base)):
        assert secret not in text


def test_the_service_logs_refusals(site: DataSite) -> None:
    site.raw_get("api/files/20231234/raw/readme.txt")
    assert "leads outside its location" in site.hub.log_tail(400)


def test_the_service_reads_as_no_system_account(site: DataSite) -> None:
    """A person whose provider name is "root" has a proposal, hence a mount; nothing reads as root for them."""
    site.oidc.login("root")
    token = site.hub.token_for("root", ["access:services!service=daas-data"])
    assert [p["id"] for p in site.get("api/mounts", token=token).json()["proposals"]] == ["20239999"]
    refused = site.get("api/browse/20239999/processed/", token=token)
    assert refused.status_code == 403 and "root is a system account" in refused.json()["message"], refused.text


def test_bob_cannot_read_alices_data(site: DataSite) -> None:
    for path in ("api/browse/20231234/raw/", "api/files/20231234/raw/notes.txt", "api/hdf5/20231234/raw/sample.nxs"):
        assert site.get(path, user="bob").status_code == 403


def test_tokens_without_the_service_scope_and_no_token_are_refused(site: DataSite) -> None:
    narrow = site.hub.token_for("alice", ["read:users!user=alice"])
    assert site.get("api/mounts", token=narrow).status_code == 403
    anonymous = site.get("api/mounts", user=None)
    assert anonymous.status_code == 403 and "Strain" not in anonymous.text
    assert site.get("api/files/20231234/raw/notes.txt", user=None).status_code == 403


# -- what a person's reads may cost ----------------------------------------------------------------


def alices_file(site: DataSite, name: str) -> Path:
    """A file in alice's processed data, readable by her proposal's group only (the tree's 20231234)."""
    path = site.tree.processed("20231234") / name
    path.unlink(missing_ok=True)
    return path


def readable_by_alice(path: Path) -> str:
    os.chown(path, 0, path.parent.stat().st_gid)
    path.chmod(0o640)
    return f"20231234/processed/{path.name}"


def gzip_bomb(path: Path, elements: int) -> str:
    """`elements` float32 zeros in one gzip chunk: under a megabyte on disk, 4 x elements bytes decompressed."""
    with h5py.File(path, "w") as f:
        f.create_dataset("zeros", shape=(elements,), dtype="f4", chunks=(elements,), compression="gzip")
        f["zeros"][:] = 0
    return readable_by_alice(path)


def alices_readers() -> list[str]:
    found = subprocess.run(["pgrep", "-u", "alice", "-f", "daas_services.data.reader"], capture_output=True, text=True)
    return found.stdout.split()


def test_a_preview_that_would_decompress_a_huge_chunk_is_refused(site: DataSite) -> None:
    """The issue's file: 0.2 MB of gzip that took the reader from 38 to 230 MB for a 10-element preview."""
    bomb = gzip_bomb(alices_file(site, "bomb.h5"), 50_000_000)
    refused = site.get(f"api/hdf5/{bomb}", params={"dataset": "/zeros"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["message"] == (
        "previewing /zeros means reading a chunk of 191 MiB (chunk shape [50000000]), more than a preview may (128 MiB)"
    )


def test_a_read_over_the_memory_limit_fails_cleanly_and_the_service_stays_up(site: DataSite) -> None:
    """A 126 MiB chunk is within the preview's bound (128 MiB); decompressing it is not within 300 MiB."""
    zeros = gzip_bomb(alices_file(site, "zeros.h5"), 33_000_000)
    failed = site.get(f"api/hdf5/{zeros}", params={"dataset": "/zeros"})
    assert failed.status_code == 422, failed.text
    assert "reading it needs more memory than a reader may use" in failed.json()["message"]
    assert site.get("api/hdf5/20231234/raw/sample.nxs", params={"dataset": "/entry/title"}).status_code == 200


@pytest.fixture(scope="module")
def slow_to_describe(site: DataSite) -> str:
    """A file whose 100,000 attributes take about 8 s of CPU time to describe."""
    path = alices_file(site, "many-attributes.h5")
    with h5py.File(path, "w", libver="latest") as f:
        for index in range(100_000):
            f.attrs[f"a{index:06d}"] = np.int32(index)
    return readable_by_alice(path)


def test_a_read_over_the_cpu_limit_is_ended_and_leaves_no_reader(site: DataSite, slow_to_describe: str) -> None:
    ended = site.get(f"api/hdf5/{slow_to_describe}")
    assert ended.status_code == 504, ended.text
    assert ended.json()["message"] == "reading needed more than the 2 s of CPU time a reader may use"
    assert alices_readers() == []
    assert site.get("api/browse/20231234/processed/").status_code == 200


def test_a_person_has_at_most_three_readers_at_once(site: DataSite) -> None:
    """Three downloads whose client reads nothing hold three readers; the fourth waits a second, then 429."""
    big = alices_file(site, "big.bin")
    with big.open("wb") as file:
        file.truncate(1 << 30)  # sparse: reads as 1 GiB of zeros
    path = f"{SERVICE}/api/files/{readable_by_alice(big)}"
    headers = {"Authorization": f"token {site.service_token['alice']}"}
    held = []
    try:
        for _ in range(3):
            connection = http.client.HTTPConnection("127.0.0.1", site.service_port, timeout=30)
            connection.request("GET", path, headers=headers)
            assert connection.getresponse().status == 200  # headers only: the body stays unread
            held.append(connection)
        busy = site.get(f"api/files/{readable_by_alice(big)}", headers={"Range": "bytes=0-9"})
        assert busy.status_code == 429, busy.text
        assert busy.headers["retry-after"] == "1"
        assert busy.json()["message"] == "3 of your reads are running; try again when one has ended"
        assert site.get("api/files/20230042/raw/notes.txt", user="bob").status_code == 200  # others are not held up
        held.pop().close()
        wait_for(
            lambda: site.get(f"api/files/{readable_by_alice(big)}", headers={"Range": "bytes=0-9"}).status_code == 206,
            30,
            "a slot freed by the closed download",
        )
    finally:
        for connection in held:
            connection.close()
    wait_for(lambda: alices_readers() == [], 30, "alice's readers to end with their downloads")


def test_a_timeout_kills_the_reader_not_only_sudo(site: DataSite, slow_to_describe: str) -> None:
    """The service's reader as it runs it (sudo as alice), cut off by its timeout long before its CPU limit."""
    reader = UserReader(prefix=["sudo", "-n", "-u", "{username}", "--"], timeout=1, cpu_seconds=60)
    name = slow_to_describe.rsplit("/", 1)[1]
    request = {"op": "hdf5", "root": str(site.tree.processed("20231234")), "names": [name]}
    with pytest.raises(ReaderError) as late:
        # Bounded: before, only sudo was killed, and the answer waited for the reader's 8 s of CPU time.
        asyncio.run(asyncio.wait_for(reader.ask("alice", request), 4))
    wait_for(lambda: alices_readers() == [], 2, "the timed-out reader to end")
    assert (late.value.status, str(late.value)) == (504, "reading took longer than 1 s")
