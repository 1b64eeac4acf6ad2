"""parse_report: a starting server may report exactly a host name or IP and a port, and its unopenable data."""

from __future__ import annotations

import pytest

from daas_spawner.address import ServerReport, parse_report
from daas_spawner.backends.base import ServerAddress
from daas_spawner.spawner import unreachable_data_notes


@pytest.mark.parametrize(
    "host, port",
    [
        ("node01", 8888),
        ("node01.cluster.example.org", 1),
        ("n", 65535),
        ("10.0.0.17", 40000),
        ("::1", 8888),
        ("fe80::1ff:fe23:4567:890a", 8888),
        ("2001:db8::8a2e:370:7334", 8888),
        ("::ffff:10.0.0.1", 8888),
        ("a" * 63 + "." + "b" * 63, 8888),
    ],
)
def test_accepts(host, port):
    assert parse_report({"host": host, "port": port}) == ServerReport(ServerAddress(host, port))


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "node01:8888",
        {},
        {"host": "node01"},
        {"port": 8888},
        {"host": "node01", "port": 8888, "ip": "10.0.0.1"},
        {"host": "node01", "port": 8888, "cmd": "id"},
        {"Host": "node01", "port": 8888},
    ],
)
def test_rejects_body_shape(body):
    with pytest.raises(ValueError, match="body must be exactly"):
        parse_report(body)


@pytest.mark.parametrize(
    "port",
    [True, False, "8888", 8888.0, 0, -1, 65536, 10**20, None, [8888]],
)
def test_rejects_port(port):
    with pytest.raises(ValueError, match="port must be"):
        parse_report({"host": "node01", "port": port})


@pytest.mark.parametrize(
    "host",
    [
        "",
        " ",
        "node 01",
        " node01",
        "node01 ",
        "node01;id",
        "node01/evil",
        "evil@node01",
        "user:pass@node01",
        "node01\n",
        "node01\nX-Header: 1",
        "\nnode01",
        "node01\r",
        "node01\t",
        "node01:8888",
        "http://node01",
        "-node01",
        "node01-",
        "node_01",
        "node01..x",
        ".node01",
        "$(id)",
        "`id`",
        "a" * 64,
        "a" * 300,
        "::1\n",
        ":" * 46,
        "[::1]",
        "fe80::1%eth0",
        None,
        8888,
        ["node01"],
    ],
)
def test_rejects_host(host):
    with pytest.raises(ValueError, match="host must be"):
        parse_report({"host": host, "port": 8888})


def test_accepts_the_data_locations_the_job_could_not_open():
    report = parse_report({"host": "node01", "port": 8888, "unreachable_data": ["20231234/raw", "MX-1/processed"]})
    assert report.unreachable_data == ("20231234/raw", "MX-1/processed")
    assert parse_report({"host": "node01", "port": 8888, "unreachable_data": []}).unreachable_data == ()


@pytest.mark.parametrize(
    "unreachable",
    [
        "20231234/raw",
        {"20231234": "raw"},
        [1],
        ["20231234"],
        ["20231234/raw/x"],
        ["../raw"],
        ["20231234/.."],
        ["/raw"],
        ["20231234/raw\n"],
        ["20231234/raw; id"],
        ["a" * 101 + "/raw"],
        ["20231234/raw"] * 101,
        None,
    ],
)
def test_rejects_unreachable_data(unreachable):
    with pytest.raises(ValueError, match="unreachable_data must be"):
        parse_report({"host": "node01", "port": 8888, "unreachable_data": unreachable})


def test_the_person_reads_one_line_per_proposal_written_by_the_hub():
    notes = unreachable_data_notes(("20231234/raw", "20231234/processed", "MX-1/raw"))
    assert len(notes) == 2
    assert notes[0].startswith("Your server starts without the raw and processed data of proposal 20231234:")
    assert "without the raw data of proposal MX-1" in notes[1]
