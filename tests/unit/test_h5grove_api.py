"""The h5grove request model: every value a client sends, checked before the service uses it."""

from __future__ import annotations

import pytest

from daas_services.data.h5grove_api import H5groveQuery, H5groveQueryError, parse_query, parse_selection


def query(endpoint: str, **values: str | list[str]) -> H5groveQuery:
    arguments = {"file": [b"20231234/raw/sample.nxs"]}
    for name, value in values.items():
        arguments[name] = [item.encode() for item in value] if isinstance(value, list) else [value.encode()]
    return parse_query(endpoint, arguments)


def refusal(endpoint: str, **values: str | list[str]) -> str:
    with pytest.raises(H5groveQueryError) as error:
        query(endpoint, **values)
    return str(error.value)


def raw_refusal(endpoint: str, arguments: dict[str, list[bytes]]) -> str:
    with pytest.raises(H5groveQueryError) as error:
        parse_query(endpoint, arguments)
    return str(error.value)


@pytest.mark.parametrize(
    ("text", "members"),
    [
        ("5", (5,)),
        ("-1", (-1,)),
        ("1, 2:5", (1, (2, 5, None))),
        ("0:10:5, 2, 3:", ((0, 10, 5), 2, (3, None, None))),
        (":", ((None, None, None),)),
        ("::2,:", ((None, None, 2), (None, None, None))),
        (" 1 : 3 ", ((1, 3, None),)),
    ],
)
def test_selections_in_h5groves_syntax(text: str, members: tuple) -> None:
    assert parse_selection(text) == members
    assert query("data", selection=text).selection == members


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a selection member is an index or start:stop[:step], not empty"),
        ("1,,2", "a selection member is an index or start:stop[:step], not empty"),
        ("a", "an index 'a' is not a whole number"),
        ("1.5", "an index '1.5' is not a whole number"),
        ("--1", "an index '--1' is not a whole number"),
        ("\uff11", "an index '\uff11' is not a whole number"),  # a full-width digit: int() would take it
        ("0:5:0", "a slice's step is at least 1, not 0"),
        ("5:0:-1", "a slice's step is at least 1, not -1"),
        ("1:2:3:4", "'1:2:3:4' is not an index or start:stop[:step]"),
        ("9" * 19, f"an index '{'9' * 19}' is not a whole number"),
        (",".join(["0"] * 33), "a selection has at most 32 members, one per axis"),
        ("0," * 600, "a selection is text of at most 1000 characters"),
    ],
)
def test_bad_selections_are_refused_with_what_is_wrong(text: str, message: str) -> None:
    assert refusal("data", selection=text) == f"selection: {message}"


def test_defaults_are_h5groves() -> None:
    request = query("data", path="/entry/data/data").reader_request()
    assert request == {
        "endpoint": "data",
        "path": "/entry/data/data",
        "selection": None,
        "format": "json",
        "dtype": "origin",
        "flatten": False,
        "attr_keys": None,
    }
    assert query("meta").path == "/"


def test_what_the_reader_gets_is_json() -> None:
    request = query("data", selection="0,1:2,::3", format="bin", dtype="safe", flatten="true").reader_request()
    assert request["selection"] == [0, [1, 2, None], [None, None, 3]]
    assert (request["format"], request["dtype"], request["flatten"]) == ("bin", "safe", True)
    assert "file" not in request  # the service turns it into a checked location and names


def test_attr_keys_may_repeat_and_nothing_else_may() -> None:
    assert query("attr", attr_keys=["NX_class", "signal"]).attr_keys == ["NX_class", "signal"]
    assert refusal("data", format=["json", "bin"]) == "format: give it once"
    assert raw_refusal("meta", {"file": [b"a/raw/x.h5", b"b/raw/y.h5"]}) == "file: give it once"


@pytest.mark.parametrize(
    ("endpoint", "values", "message"),
    [
        ("meta", {"selection": "0"}, "/meta/ takes no selection"),
        ("attr", {"format": "bin"}, "/attr/ takes no format"),
        ("stats", {"dtype": "safe"}, "/stats/ takes no dtype"),
        ("data", {"attr_keys": "NX_class"}, "/data/ takes no attr_keys"),
        ("paths", {"flatten": "true"}, "/paths/ takes no flatten"),
        ("exec", {}, "endpoint: Input should be 'meta', 'attr', 'data', 'stats' or 'paths'"),
        ("data", {"format": "pickle"}, "format: Input should be 'json', 'bin', 'npy', 'csv' or 'tiff'"),
        ("data", {"dtype": "float128"}, "dtype: Input should be 'origin' or 'safe'"),
        ("data", {"flatten": "maybe"}, "flatten: Input should be a valid boolean, unable to interpret input"),
        ("meta", {"resolve_links": "all"}, "resolve_links: Extra inputs are not permitted"),
        ("meta", {"path": "entry"}, "path: String should match pattern '^/[^\\x00-\\x1f\\x7f]{0,4095}$'"),
        ("meta", {"path": "/entry\x00"}, "path: String should match pattern '^/[^\\x00-\\x1f\\x7f]{0,4095}$'"),
        ("attr", {"attr_keys": ""}, "attr_keys.0: String should match pattern '^[^\\x00-\\x1f\\x7f]{1,255}$'"),
    ],
)
def test_each_endpoint_takes_only_its_own_parameters_and_values(endpoint: str, values: dict, message: str) -> None:
    assert refusal(endpoint, **values) == message


def test_a_missing_file_and_bytes_that_are_not_text_are_refused() -> None:
    assert raw_refusal("meta", {}) == "file: Field required"
    assert raw_refusal("meta", {"file": [b"a/raw/x.h5"], "path": [b"/\xff"]}) == "path: not UTF-8 text"
    assert len(refusal("attr", attr_keys=["a"] * 1001).split("; ")) == 1  # one message, not a thousand
