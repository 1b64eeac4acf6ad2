"""The data service's h5grove API end to end: the real hub and service, reading as the caller (sudo).

The site is test_data.py's (alice has proposal 20231234, bob 20230042, and alice's raw data holds
a NeXus file and symlinks out of her location). Values are compared with h5py reading the file
directly, as root.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import h5py
import numpy as np
import pytest

from .conftest import cancel_test_jobs
from .test_data import SERVICE, DataSite, alices_file, readable_by_alice

pytestmark = pytest.mark.slurm

NEXUS = "20231234/raw/sample.nxs"


@pytest.fixture(scope="module")
def site(slurm_cluster: None) -> Iterator[DataSite]:
    cancel_test_jobs()
    site = DataSite().start()
    yield site
    site.oidc.close()


def h5grove(site: DataSite, endpoint: str, user: str = "alice", **params: str):
    return site.get(f"h5grove/{endpoint}/", user=user, params=params)


def test_alice_reads_a_nexus_file_through_h5grove(site: DataSite) -> None:
    with h5py.File(site.tree.raw("20231234") / "sample.nxs") as nexus:
        frames = nexus["/entry/data/data"][()]
        title = nexus["/entry/title"][()].decode()

    meta = h5grove(site, "meta", file=NEXUS, path="/entry/data")
    assert meta.status_code == 200, meta.text
    assert meta.headers["content-type"] == "application/json"
    children = {child["name"]: child for child in meta.json()["children"]}
    assert children["data"]["kind"] == "dataset" and children["data"]["shape"] == list(frames.shape)
    assert children["data"]["type"]["dtype"] == "<u2"
    assert sorted(attr["name"] for attr in meta.json()["attributes"]) == ["NX_class", "signal"]

    attrs = h5grove(site, "attr", file=NEXUS, path="/entry/data", attr_keys="signal")
    assert attrs.status_code == 200 and attrs.json() == {"signal": "data"}

    data = h5grove(site, "data", file=NEXUS, path="/entry/data/data", selection="3,0:4,::8")
    assert data.status_code == 200 and data.json() == frames[3, 0:4, ::8].tolist()
    binary = h5grove(site, "data", file=NEXUS, path="/entry/data/data", selection="7", format="bin", dtype="safe")
    assert binary.headers["content-type"] == "application/octet-stream"
    assert np.array_equal(np.frombuffer(binary.content, dtype="<u2").reshape(32, 32), frames[7])
    npy = h5grove(site, "data", file=NEXUS, path="/entry/data/data", format="npy")
    assert npy.headers["content-disposition"] == 'attachment; filename="data.npy"'
    assert np.array_equal(np.load(io.BytesIO(npy.content)), frames)
    assert h5grove(site, "data", file=NEXUS, path="/entry/title").json() == title
    paths = h5grove(site, "paths", file=NEXUS).json()
    assert paths == ["/", "/entry", "/entry/data", "/entry/data/data", "/entry/title"]


def test_h5webs_requests_as_its_provider_sends_them(site: DataSite) -> None:
    """The requests H5Web's H5GroveProvider makes (jupyterlab-h5web 12.9's bundle): no trailing slash."""
    with h5py.File(site.tree.raw("20231234") / "sample.nxs") as nexus:
        frames = nexus["/entry/data/data"][()]
    root = site.get("h5grove/meta", params={"file": NEXUS, "path": "/"})
    assert root.status_code == 200, root.text
    assert [child["name"] for child in root.json()["children"]] == ["entry"]
    typed = site.get(
        "h5grove/data", params={"file": NEXUS, "path": "/entry/data/data", "selection": "9,:,:", "format": "bin"}
    )
    assert np.array_equal(np.frombuffer(typed.content, dtype="<u2").reshape(32, 32), frames[9])
    flat = site.get(
        "h5grove/data", params={"file": NEXUS, "path": "/entry/data/data", "selection": "0,0:2", "flatten": "true"}
    )
    assert flat.json() == frames[0, 0:2].ravel().tolist()
    assert site.get("h5grove/attr", params={"file": NEXUS, "path": "/entry"}).json() == {"NX_class": "NXentry"}
    missing = site.get("h5grove/meta", params={"file": NEXUS, "path": "/entry/nothing"})
    assert missing.status_code == 404
    assert "not a valid path" in missing.json()["message"]  # H5Web shows "No entity found at /entry/nothing"


def test_a_browser_session_reads_through_h5grove_once_logged_in_to_the_service(site: DataSite) -> None:
    """H5Web on the hub's origin sends the service's session cookie, which its page sets."""
    http, _ = site.oidc.login("alice")
    assert http.get(f"{site.hub.url}{SERVICE}/", follow_redirects=True).status_code == 200
    meta = http.get(f"{site.hub.url}{SERVICE}/h5grove/meta", params={"file": NEXUS, "path": "/entry/title"})
    assert meta.status_code == 200, meta.text
    assert meta.json()["kind"] == "dataset"


def test_bob_and_carol_are_refused_alices_file(site: DataSite) -> None:
    for endpoint in ("meta", "attr", "data"):
        refused = h5grove(site, endpoint, user="bob", file=NEXUS, path="/entry/data/data")
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"] == "20231234 is not one of your proposals"
        assert "Strain" not in refused.text
    site.oidc.login("carol")
    carol = site.hub.token_for("carol", ["access:services!service=daas-data"])
    assert site.get("h5grove/meta/", token=carol, params={"file": NEXUS}).status_code == 403


@pytest.mark.parametrize(
    ("file", "status", "message"),
    [
        ("20231234/raw/../../../20230042/d22/raw/notes.txt", 400, "the path may not contain . or .."),
        ("/etc/passwd", 400, "the path has an empty part (// or an absolute path)"),
        ("20231234/raw//etc/passwd", 400, "the path has an empty part (// or an absolute path)"),
        ("20231234/raw/%2e%2e/notes.txt", 400, "the path contains encoded characters (encode a name once)"),
        ("20231234/raw/readme.txt", 403, "the path leads outside its location"),
        ("20231234/raw/bobs-raw/notes.txt", 403, "the path leads outside its location"),
        ("20231234/raw/notes.txt", 400, "not an HDF5 file"),
    ],
)
def test_a_file_outside_the_location_is_refused(site: DataSite, file: str, status: int, message: str) -> None:
    refused = h5grove(site, "meta", file=file)
    assert (refused.status_code, refused.json()["message"]) == (status, message)
    assert "world-readable" not in refused.text and "beamtime" not in refused.text


@pytest.mark.parametrize(
    ("endpoint", "params", "message"),
    [
        ("data", {"selection": "0:1:0"}, "selection: a slice's step is at least 1, not 0"),
        ("data", {"format": "pickle"}, "format: Input should be 'json', 'bin', 'npy', 'csv' or 'tiff'"),
        ("meta", {"selection": "0"}, "/meta/ takes no selection"),
        ("data", {"resolve_links": "all"}, "resolve_links: Extra inputs are not permitted"),
        ("shell", {}, "endpoint: Input should be 'meta', 'attr', 'data', 'stats' or 'paths'"),
        ("meta", {"path": "/entry/../entry"}, "an in-file path is absolute, such as /entry/data/data, with no '.', "),
    ],
)
def test_bad_values_get_400_with_what_is_wrong(site: DataSite, endpoint: str, params: dict, message: str) -> None:
    refused = h5grove(site, endpoint, file=NEXUS, path=params.pop("path", "/entry/data/data"), **params)
    assert refused.status_code == 400, refused.text
    assert refused.json()["message"].startswith(message)


def test_a_selection_over_the_byte_bounds_is_refused_before_reading(site: DataSite) -> None:
    path = alices_file(site, "large.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("image", data=np.arange(400 * 1000, dtype="f8").reshape(400, 1000))  # 3.05 MiB
        f["external"] = h5py.ExternalLink(str(site.tree.raw("20230042") / "notes.txt"), "/")
    file = readable_by_alice(path)
    whole = h5grove(site, "data", file=file, path="/image")
    assert whole.status_code == 422, whole.text
    assert whole.json()["message"] == (
        "this selection of /image holds 3.05 MiB of values, more than one read may return (1 MiB): "
        "select fewer elements"
    )
    rows = h5grove(site, "data", file=file, path="/image", selection="10:20", format="bin")
    assert rows.status_code == 200
    assert np.frombuffer(rows.content, dtype="<f8").tolist() == np.arange(10_000, 20_000, dtype="f8").tolist()
    link = h5grove(site, "meta", file=file, path="/external")
    assert link.json()["kind"] == "external_link"  # shown, never opened
    assert h5grove(site, "data", file=file, path="/external").status_code == 400
