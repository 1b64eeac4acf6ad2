"""Memory sizes and wall times: the strict grammar shared by profiles and user options."""

from __future__ import annotations

import pytest

from daas_core.quantities import (
    format_duration,
    format_memory,
    format_walltime,
    parse_duration_seconds,
    parse_memory_mb,
    parse_walltime_seconds,
)


@pytest.mark.parametrize(
    "value, expected",
    [
        (0, 0),
        (512, 512),
        ("512", 512),
        ("512M", 512),
        ("512m", 512),
        ("512MB", 512),
        ("512MiB", 512),
        ("4G", 4096),
        ("4g", 4096),
        ("4GB", 4096),
        ("4GiB", 4096),
        ("4 G", 4096),
        (" 4G ", 4096),
        ("1.5G", 1536),
        ("0.5G", 512),
        ("2048K", 2),
        ("1T", 1024 * 1024),
        ("999999999", 999_999_999),
    ],
)
def test_parse_memory(value, expected):
    assert parse_memory_mb(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        -1,
        True,
        False,
        1.5,
        None,
        [4],
        "",
        " ",
        "-1",
        "-4G",
        "4X",
        "G",
        "4GG",
        "4 GB B",
        "1.5.5G",
        "1.",
        ".5G",
        "1.2345G",
        "1e3",
        "0x10",
        "4G; rm -rf /",
        "4G && id",
        "$(id)",
        "`id`",
        "4G\n",
        "\n4G",
        "4\nG",
        "4G\n#SBATCH --uid=0",
        "4G\r",
        "4\tG",
        "\u0664G",  # ARABIC-INDIC DIGIT FOUR
        "\uff14G",  # FULLWIDTH DIGIT FOUR
        "1234567890",  # more digits than the grammar allows
        "9" * 400 + "G",
    ],
)
def test_parse_memory_rejects(value):
    with pytest.raises(ValueError):
        parse_memory_mb(value)


@pytest.mark.parametrize(
    "mb, text",
    [(0, "0M"), (1, "1M"), (1536, "1536M"), (1024, "1G"), (4096, "4G"), (1024 * 1024, "1T"), (1025, "1025M")],
)
def test_format_memory(mb, text):
    assert format_memory(mb) == text


@pytest.mark.parametrize("mb", [0, 1, 512, 1023, 1024, 1536, 4096, 3 * 1024 * 1024, 5 * 1024 * 1024 + 1024, 10**6])
def test_memory_round_trip(mb):
    assert parse_memory_mb(format_memory(mb)) == mb


@pytest.mark.parametrize(
    "value, expected",
    [
        (0, 0),
        (90, 90 * 60),
        ("90", 90 * 60),
        ("1:00", 3600),
        ("1:30:00", 5400),
        ("4:00:00", 4 * 3600),
        ("0:00:59", 59),
        ("48:00:00", 48 * 3600),
        (" 4:00:00 ", 4 * 3600),
        ("1-0", 86400),
        ("1-12", 36 * 3600),
        ("1-12:30", 36 * 3600 + 30 * 60),
        ("2-03:04:05", ((2 * 24 + 3) * 60 + 4) * 60 + 5),
        ("999999", 999999 * 60),
    ],
)
def test_parse_walltime(value, expected):
    assert parse_walltime_seconds(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        -1,
        True,
        False,
        1.5,
        None,
        ["1:00:00"],
        "",
        "-1",
        "-1:00:00",
        "1.5",
        "1e3",
        "1:75:00",
        "1:00:75",
        "1:5:00",
        "1:00:0",
        "1-24:00:00",
        "1-1:60",
        "1:00:00:00",
        "1-",
        ":30",
        "1:00:00; rm -rf /",
        "$(id)",
        "`id`",
        "1:00:00\n",
        "1:00:00\n#SBATCH --uid=0",
        "1\n:00:00",
        "\u0664:00:00",  # ARABIC-INDIC DIGIT FOUR
        "1234567",  # minutes: more digits than the grammar allows
        "12345:00:00",
        "1000-00:00:00",
        "9" * 400,
    ],
)
def test_parse_walltime_rejects(value):
    with pytest.raises(ValueError):
        parse_walltime_seconds(value)


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0:00:00"),
        (59, "0:00:59"),
        (3600, "1:00:00"),
        (5400, "1:30:00"),
        (86399, "23:59:59"),
        (86400, "1-00:00:00"),
        (2 * 86400 + 3 * 3600 + 4 * 60 + 5, "2-03:04:05"),
    ],
)
def test_format_walltime(seconds, text):
    assert format_walltime(seconds) == text


@pytest.mark.parametrize("seconds", [0, 1, 59, 60, 3599, 3600, 86399, 86400, 86401, 7 * 86400 + 1, 999 * 86400 + 86399])
def test_walltime_round_trip(seconds):
    assert parse_walltime_seconds(format_walltime(seconds)) == seconds


@pytest.mark.parametrize(
    "value, expected",
    [
        (0, 0),
        (90, 90),
        ("90s", 90),
        ("2m", 120),
        ("8h", 8 * 3600),
        ("2d", 2 * 86400),
        ("1h30m", 5400),
        ("1d 2h", 86400 + 7200),
        ("1h0m30s", 3630),
    ],
)
def test_parse_duration(value, expected):
    assert parse_duration_seconds(value) == expected


@pytest.mark.parametrize(
    "value",
    [True, -1, "", "m", "2", "2x", "30m2h", "1h30", "2m\n", "2 minutes", "$(id)m", "\u0664m", "9" * 20 + "s", None],
)
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError):
        parse_duration_seconds(value)


@pytest.mark.parametrize(
    "seconds, text",
    [(0, "0 s"), (45, "45 s"), (120, "2 min"), (5400, "1 h 30 min"), (8 * 3600, "8 h"), (86400 + 7260, "1 d 2 h")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
