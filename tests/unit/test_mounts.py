"""The mount model (site locations filled in per proposal) and what the backends get from it."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from pydantic import ValidationError

from daas_core.mount_builders import apptainer_bind_args, cloud_init_mounts, kubernetes_volumes, volume_names
from daas_core.mounts import (
    DataConfigError,
    DataLocations,
    Location,
    Mount,
    is_safe_path,
    load_data_locations,
    mounts_env,
    mounts_from_env,
    parse_data_locations,
    resolve_mounts,
)
from daas_core.proposals import Proposal

ESRF = DataLocations(
    locations=[
        Location(name="raw", path="/data/visitor/{proposal}/{beamline}/raw"),
        Location(name="processed", path="/data/visitor/{proposal}/processed", writable=True),
    ]
)
ESRF_NFS = ESRF.model_copy(update={"nfs_server": "nfs.example.org"})
RAW = Mount("20231234", "raw", "/data/visitor/20231234/id11/raw", False)
PROCESSED = Mount("20231234", "processed", "/data/visitor/20231234/processed", True)
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
FIELDS = "['beamline', 'instrument', 'processed_data', 'proposal', 'raw_data', 'year']"
NOT_SAFE = "a location is an absolute path of letters, digits and _ . + @ = ~ - segments"


# --- the site's locations ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/data/visitor/{proposal}/{beamline}/raw",
        "/data/{year}/{instrument}/{proposal}-{beamline}",
        "{raw_data}",
        "{processed_data}/daas",
        "/data/a_b.c+d@e=f~g-h/{proposal}",
    ],
)
def test_good_location_paths(path):
    assert Location(name="raw", path=path).path == path


@pytest.mark.parametrize(
    "path, message",
    [
        ("/data/{user}/raw", f"unknown template field(s) ['user']; use {FIELDS}"),
        ("/data/{proposal[0]}", f"unknown template field(s) ['proposal[0]']; use {FIELDS}"),
        ("/data/{}", f"unknown template field(s) ['']; use {FIELDS}"),
        ("/data/{proposal!r}", "template fields take no format specification or conversion"),
        ("/data/{proposal:>9}", "template fields take no format specification or conversion"),
        ("data/{proposal}", NOT_SAFE),
        ("/data/../{proposal}", NOT_SAFE),
        ("/data/./{proposal}", NOT_SAFE),
        ("/data//{proposal}", NOT_SAFE),
        ("/data/{proposal}/", NOT_SAFE),
        ("/data/my data/{proposal}", NOT_SAFE),
        ("/data/a:b/{proposal}", NOT_SAFE),
        ("/data/a,b/{proposal}", NOT_SAFE),
        ("/data/{{proposal}}", NOT_SAFE),
        ("/data/{raw_data}", NOT_SAFE),  # a path field fills a whole path: this would give /data//...
        ("", NOT_SAFE),
    ],
)
def test_bad_location_paths(path, message):
    with pytest.raises(ValidationError) as info:
        Location(name="raw", path=path)
    assert info.value.errors()[0]["msg"] == f"Value error, {message}"


@pytest.mark.parametrize("name", ["Raw", "1raw", "raw data", "raw.x", "", "r" * 33])
def test_bad_location_names(name):
    with pytest.raises(ValidationError, match="String should match pattern"):
        Location(name=name, path="/data/{proposal}")


@pytest.mark.parametrize(
    "raw, field, message",
    [
        (
            {"locations": [{"name": "raw", "path": "/a/{proposal}"}, {"name": "raw", "path": "/b/{proposal}"}]},
            "locations",
            "Value error, location names must be unique",
        ),
        ({"link_dir": "../data"}, "link_dir", "String should match pattern '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$'"),
        ({"link_dir": "a/b"}, "link_dir", "String should match pattern '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$'"),
        ({"link_dir": ""}, "link_dir", "String should match pattern '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$'"),
        ({"mount_root": "/"}, "mount_root", "Value error, mount_root is an absolute path below /"),
        ({"mount_root": "data"}, "mount_root", "Value error, mount_root is an absolute path below /"),
        ({"mount_root": "/data/"}, "mount_root", "Value error, mount_root is an absolute path below /"),
        ({"mount_root": "/data/../etc"}, "mount_root", "Value error, mount_root is an absolute path below /"),
        ({"nfs_server": "nfs server"}, "nfs_server", "String should match pattern '^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$'"),
        ({"nfs_server": "-o"}, "nfs_server", "String should match pattern '^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$'"),
        ({"servers": []}, "servers", "Extra inputs are not permitted"),
        (
            {"locations": [{"name": "raw", "path": "/a", "mode": "ro"}]},
            "locations[0].mode",
            "Extra inputs are not permitted",
        ),
    ],
)
def test_bad_data_locations_name_the_file_and_the_field(raw, field, message):
    with pytest.raises(DataConfigError) as info:
        parse_data_locations(raw, "data.yaml")
    assert str(info.value) == f"invalid data locations\n  data.yaml: {field}: {message}"


def test_every_error_is_listed():
    raw = {"locations": [{"name": "raw", "path": "relative"}, {"name": "X", "path": "/a"}], "mount_root": "/"}
    with pytest.raises(DataConfigError) as info:
        parse_data_locations(raw, "data.yaml")
    assert str(info.value).splitlines() == [
        "invalid data locations",
        f"  data.yaml: locations[0].path: Value error, {NOT_SAFE}",
        "  data.yaml: locations[1].name: String should match pattern '^[a-z][a-z0-9_-]{0,31}$'",
        "  data.yaml: mount_root: Value error, mount_root is an absolute path below /",
    ]


@pytest.mark.parametrize("raw", [None, [], "locations"])
def test_data_locations_must_be_a_mapping(raw):
    with pytest.raises(DataConfigError) as info:
        parse_data_locations(raw, "data.yaml")
    assert str(info.value) == "data.yaml: expected a mapping with a 'locations' list"


def test_defaults():
    config = parse_data_locations({}, "data.yaml")
    assert (config.locations, config.link_dir, config.mount_root, config.nfs_server) == (
        [],
        "data",
        "/data/proposals",
        None,
    )


def test_load_data_locations(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text(
        "locations:\n"
        "  - {name: raw, path: '/data/visitor/{proposal}/{beamline}/raw'}\n"
        "  - {name: processed, path: '/data/visitor/{proposal}/processed', writable: true}\n",
        encoding="utf-8",
    )
    assert load_data_locations(path) == ESRF
    assert load_data_locations(str(path)) == ESRF


def test_load_data_locations_missing_file(tmp_path):
    path = tmp_path / "missing.yaml"
    with pytest.raises(DataConfigError) as info:
        load_data_locations(path)
    assert str(info.value) == f"{path}: cannot read data locations file: No such file or directory"


def test_load_data_locations_invalid_yaml(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("locations: [unclosed\n", encoding="utf-8")
    with pytest.raises(DataConfigError) as info:
        load_data_locations(path)
    assert str(info.value).startswith(f"{path}: not valid YAML: ")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "expected a mapping with a 'locations' list"),
        ("- raw\n", "expected a mapping with a 'locations' list"),
        ("locations:\n  - {name: raw, path: 'relative/{proposal}'}\n", f"locations[0].path: Value error, {NOT_SAFE}"),
    ],
)
def test_load_data_locations_invalid_content(tmp_path, text, message):
    path = tmp_path / "data.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataConfigError) as info:
        load_data_locations(path)
    assert str(info.value).endswith(f"{path}: {message}")


@pytest.mark.parametrize(
    "path, safe",
    [
        ("/", True),
        ("/data/visitor/MX-2/id11", True),
        ("/a/b_c.d+e@f=g~h-i", True),
        ("", False),
        ("data", False),
        ("/data/", False),
        ("/data//x", False),
        ("/data/./x", False),
        ("/data/../x", False),
        ("/data/.hidden", False),
        ("/data/-x", False),
        ("/data/a b", False),
        ("/data/a:b", False),
        ("/data/a,b", False),
        ("/data/a\nb", False),
        ("/data/é", False),
        ("/" + "a" * 256, False),
        ("/a" * 2049, False),  # longer than 4096
    ],
)
def test_is_safe_path(path, safe):
    assert is_safe_path(path) is safe


# --- filled in per proposal -------------------------------------------------------------------------------------


def test_esrf_locations_for_two_proposals():
    proposals = [Proposal(id="20231234", instrument="ID11"), Proposal(id="MX-2", instrument=" BM29 ")]
    assert resolve_mounts(ESRF, proposals) == [
        RAW,
        PROCESSED,
        Mount("MX-2", "raw", "/data/visitor/MX-2/bm29/raw", False),
        Mount("MX-2", "processed", "/data/visitor/MX-2/processed", True),
    ]


def test_user_office_paths():
    config = DataLocations(
        locations=[
            Location(name="raw", path="{raw_data}"),
            Location(name="processed", path="{processed_data}/daas", writable=True),
        ]
    )
    proposals = [
        Proposal(id="1", raw_data="/gpfs/office/1/RAW_DATA/", processed_data="/gpfs/office/1/PROCESSED"),
        Proposal(id="2", raw_data="/gpfs/office/2/raw"),
        Proposal(id="3"),
    ]
    assert resolve_mounts(config, proposals) == [
        Mount("1", "raw", "/gpfs/office/1/RAW_DATA", False),
        Mount("1", "processed", "/gpfs/office/1/PROCESSED/daas", True),
        Mount("2", "raw", "/gpfs/office/2/raw", False),
    ]


@pytest.mark.parametrize("instrument", ["", "   "])
def test_proposal_without_instrument_keeps_the_other_locations(instrument):
    proposal = Proposal(id="20230001", instrument=instrument)
    assert resolve_mounts(ESRF, [proposal]) == [
        Mount("20230001", "processed", "/data/visitor/20230001/processed", True)
    ]


def test_instrument_location_uses_the_name_as_given():
    config = DataLocations(locations=[Location(name="raw", path="/data/{instrument}/{proposal}")])
    assert resolve_mounts(config, [Proposal(id="7", instrument="ID11")]) == [Mount("7", "raw", "/data/ID11/7", False)]


def test_year_from_the_start_date():
    config = DataLocations(locations=[Location(name="raw", path="/data/{year}/{proposal}")])
    proposals = [Proposal(id="1", start=date(2023, 5, 1)), Proposal(id="2")]
    assert resolve_mounts(config, proposals) == [Mount("1", "raw", "/data/2023/1", False)]


@pytest.mark.parametrize(
    "metadata",
    [
        {"instrument": "../etc"},
        {"instrument": ".."},
        {"instrument": "a b"},
        {"instrument": "x/y"},
        {"instrument": ".hidden"},
        {"instrument": "id11;reboot"},
        {"instrument": "id11:/etc"},
        {"raw_data": "/data/../etc"},
        {"raw_data": "/data//x"},
        {"raw_data": "/data/a b"},
        {"raw_data": "/data/a,b"},
        {"raw_data": "relative/path"},  # the model refuses it; built without validation, fill refuses it too
        {"raw_data": ""},
    ],
)
def test_unsafe_metadata_never_gives_a_path(metadata):
    config = DataLocations(
        locations=[
            Location(name="raw", path="/data/visitor/{proposal}/{beamline}/raw"),
            Location(name="office", path="{raw_data}"),
            Location(name="processed", path="/data/visitor/{proposal}/processed", writable=True),
        ]
    )
    proposal = Proposal.model_construct(id="1", **metadata)
    assert resolve_mounts(config, [proposal]) == [Mount("1", "processed", "/data/visitor/1/processed", True)]


@pytest.mark.parametrize("proposal_id", ["../x", "a b", "a/b", ".x"])
def test_unsafe_proposal_id_never_gives_a_path(proposal_id):
    assert resolve_mounts(ESRF, [Proposal.model_construct(id=proposal_id, instrument="ID11")]) == []


def test_no_config_or_no_proposals():
    assert resolve_mounts(None, [Proposal(id="1", instrument="ID11")]) == []
    assert resolve_mounts(ESRF, []) == []
    assert resolve_mounts(DataLocations(), [Proposal(id="1")]) == []


def test_mount_target():
    assert Mount("MX-2", "raw", "/x", False).target("/data/proposals") == "/data/proposals/MX-2/raw"


def test_mounts_env_round_trip():
    env = mounts_env(ESRF.model_copy(update={"link_dir": "my-data"}), [RAW, PROCESSED])
    assert env == {
        "DAAS_DATA": json.dumps(
            [
                {"proposal": "20231234", "name": "raw", "source": "/data/visitor/20231234/id11/raw", "writable": False},
                {
                    "proposal": "20231234",
                    "name": "processed",
                    "source": "/data/visitor/20231234/processed",
                    "writable": True,
                },
            ]
        ),
        "DAAS_DATA_DIR": "my-data",
    }
    assert mounts_from_env(env) == [RAW, PROCESSED]


def test_mounts_env_edges():
    assert mounts_env(None, [RAW]) == {}
    assert mounts_env(ESRF, []) == {"DAAS_DATA": "[]", "DAAS_DATA_DIR": "data"}
    assert mounts_from_env({}) == []
    assert mounts_from_env({"DAAS_DATA": ""}) == []


# --- Kubernetes -------------------------------------------------------------------------------------------------


def test_kubernetes_host_paths():
    volumes, volume_mounts = kubernetes_volumes(ESRF, [RAW, PROCESSED])
    assert volumes == [
        {"name": "data-20231234-raw", "hostPath": {"path": RAW.source, "type": "Directory"}},
        {"name": "data-20231234-processed", "hostPath": {"path": PROCESSED.source, "type": "Directory"}},
    ]
    assert volume_mounts == [
        {"name": "data-20231234-raw", "mountPath": "/data/proposals/20231234/raw", "readOnly": True},
        {"name": "data-20231234-processed", "mountPath": "/data/proposals/20231234/processed", "readOnly": False},
    ]


def test_kubernetes_nfs():
    config = ESRF_NFS.model_copy(update={"mount_root": "/mnt/data"})
    volumes, volume_mounts = kubernetes_volumes(config, [RAW, PROCESSED])
    assert volumes == [
        {"name": "data-20231234-raw", "nfs": {"server": "nfs.example.org", "path": RAW.source, "readOnly": True}},
        {
            "name": "data-20231234-processed",
            "nfs": {"server": "nfs.example.org", "path": PROCESSED.source, "readOnly": False},
        },
    ]
    assert volume_mounts == [
        {"name": "data-20231234-raw", "mountPath": "/mnt/data/20231234/raw", "readOnly": True},
        {"name": "data-20231234-processed", "mountPath": "/mnt/data/20231234/processed", "readOnly": False},
    ]


def test_kubernetes_nothing_to_mount():
    assert kubernetes_volumes(ESRF_NFS, []) == ([], [])


def _mounts(*keys: tuple[str, str]) -> list[Mount]:
    return [Mount(proposal, name, "/data/x", False) for proposal, name in keys]


@pytest.mark.parametrize(
    "keys, names",
    [
        ([("20231234", "raw")], ["data-20231234-raw"]),
        ([("MX-2", "raw")], ["data-mx-2-raw"]),
        ([("A.b_c", "raw_data")], ["data-a-b-c-raw-data"]),
        ([("1", "raw-")], ["data-1-raw"]),
        # differ only in case, in '_' vs '.', or in a trailing '-': a hash of the exact ids keeps them apart
        ([("MX-2", "raw"), ("mx-2", "raw")], ["data-mx-2-raw-97d69335", "data-mx-2-raw-1a366dfc"]),
        ([("ab_1", "raw"), ("ab.1", "raw")], ["data-ab-1-raw-f1e29b43", "data-ab-1-raw-32a76ca8"]),
        ([("1", "raw-"), ("1", "raw")], ["data-1-raw-4b21e8b5", "data-1-raw-fb7e2f44"]),
        # only the colliding ones change
        (
            [("2", "raw"), ("MX-2", "raw"), ("mx-2", "raw")],
            ["data-2-raw", "data-mx-2-raw-97d69335", "data-mx-2-raw-1a366dfc"],
        ),
        # 63 characters fit; one more is cut and hashed
        ([("a" * 54, "raw")], [f"data-{'a' * 54}-raw"]),
        ([("a" * 55, "raw")], [f"data-{'a' * 49}-59f84fa2"]),
        ([("A" * 64, "processed_data")], [f"data-{'a' * 49}-30435ed8"]),
    ],
)
def test_volume_names(keys, names):
    assert volume_names(_mounts(*keys)) == names


@pytest.mark.parametrize(
    "keys",
    [
        [("MX-2", "raw"), ("mx-2", "raw"), ("mx.2", "raw"), ("mx_2", "raw"), ("Mx_2", "raw")],
        [("a" * 64, "raw"), ("a" * 63 + "b", "raw"), ("a" * 63 + "B", "raw"), ("a" * 63 + ".", "raw")],
        [("a" * 60 + "-", "raw"), ("a" * 60 + "_", "raw"), ("a" * 60, "raw-"), ("a" * 60, "raw_")],
        [("1." + "x" * 62, "processed_data"), ("1_" + "x" * 62, "processed_data"), ("1-" + "X" * 62, "processed_data")],
    ],
)
def test_volume_names_are_unique_labels(keys):
    names = volume_names(_mounts(*keys))
    assert len(set(names)) == len(keys)
    assert [bool(LABEL.match(name)) and len(name) <= 63 for name in names] == [True] * len(keys)
    assert volume_names(_mounts(*keys)) == names  # deterministic


def test_the_same_mount_twice_is_refused():
    with pytest.raises(ValueError, match=re.escape("mounts given more than once (volume names ['data-1-raw-")):
        volume_names(_mounts(("1", "raw"), ("1", "raw")))


@pytest.mark.parametrize(
    "mount",
    [
        Mount("1", "raw", "relative", False),
        Mount("1", "raw", "/data/../etc", False),
        Mount("1", "raw", "/data/a b", False),
        Mount("../x", "raw", "/data/x", False),  # its target would leave mount_root
    ],
)
def test_kubernetes_unsafe_paths_are_refused(mount):
    with pytest.raises(ValueError, match="unsafe mount path"):
        kubernetes_volumes(ESRF, [mount])


# --- OpenStack (cloud-init) -------------------------------------------------------------------------------------


def test_cloud_init_mounts():
    assert cloud_init_mounts(ESRF_NFS, [RAW, PROCESSED]) == {
        "bootcmd": [
            ["mkdir", "-p", "/data/proposals/20231234/raw"],
            ["mkdir", "-p", "/data/proposals/20231234/processed"],
        ],
        "mounts": [
            [
                "nfs.example.org:/data/visitor/20231234/id11/raw",
                "/data/proposals/20231234/raw",
                "nfs",
                "ro,nosuid,nodev,noexec,_netdev",
                "0",
                "0",
            ],
            [
                "nfs.example.org:/data/visitor/20231234/processed",
                "/data/proposals/20231234/processed",
                "nfs",
                "rw,nosuid,nodev,_netdev",
                "0",
                "0",
            ],
        ],
    }


def test_cloud_init_needs_an_nfs_server():
    with pytest.raises(ValueError) as info:
        cloud_init_mounts(ESRF, [RAW])
    assert str(info.value) == "data mounts for VMs need an NFS server: set nfs_server in the data locations file"


@pytest.mark.parametrize("config", [ESRF, ESRF_NFS])
def test_cloud_init_nothing_to_mount(config):
    assert cloud_init_mounts(config, []) == {}


@pytest.mark.parametrize(
    "mount",
    [Mount("1", "raw", "/data/a b", False), Mount("1", "raw", "/data/x:/y", False), Mount("a b", "raw", "/x", False)],
)
def test_cloud_init_unsafe_paths_are_refused(mount):
    with pytest.raises(ValueError, match="unsafe mount path"):
        cloud_init_mounts(ESRF_NFS, [mount])


# --- Apptainer --------------------------------------------------------------------------------------------------


def test_apptainer_bind_args():
    assert apptainer_bind_args([RAW, PROCESSED]) == [
        "--bind=/data/visitor/20231234/id11/raw:/data/visitor/20231234/id11/raw:ro",
        "--bind=/data/visitor/20231234/processed:/data/visitor/20231234/processed:rw",
    ]
    assert apptainer_bind_args([]) == []


@pytest.mark.parametrize("source", ["relative", "/data/../etc", "/data//x", "/data/a b", "/data/a:b", "/data/a,b", ""])
def test_apptainer_unsafe_sources_are_refused(source):
    with pytest.raises(ValueError) as info:
        apptainer_bind_args([PROCESSED, Mount("1", "raw", source, False)])
    assert str(info.value).startswith(f"unsafe mount path {source!r}: ")


def test_from_proposals_to_every_backend():
    mounts = resolve_mounts(ESRF_NFS, [Proposal(id="20231234", instrument="ID11")])
    assert mounts == [RAW, PROCESSED]
    assert [volume["name"] for volume in kubernetes_volumes(ESRF_NFS, mounts)[0]] == volume_names(mounts)
    assert [line[1] for line in cloud_init_mounts(ESRF_NFS, mounts)["mounts"]] == [
        "/data/proposals/20231234/raw",
        "/data/proposals/20231234/processed",
    ]
    assert apptainer_bind_args(mounts)[1] == f"--bind={PROCESSED.source}:{PROCESSED.source}:rw"


def test_the_example_file_loads_and_fills():
    from pathlib import Path

    example = load_data_locations(Path(__file__).resolve().parents[2] / "profiles" / "data.yaml")
    mounts = resolve_mounts(example, [Proposal(id="20231234", instrument="ID11")])
    assert [(m.name, m.source, m.writable) for m in mounts] == [
        ("raw", "/data/visitor/20231234/id11/raw", False),
        ("processed", "/data/visitor/20231234/processed", True),
    ]
