"""What a request to the service's h5grove API may ask: one model for every value it sends.

The API is h5grove's (https://github.com/silx-kit/h5grove), so that H5Web's H5GroveProvider and
jupyterlab-h5web-style clients can view a proposal's files:

    GET h5grove/meta/?file=<proposal>/<location>/<names>&path=/entry
    GET h5grove/attr/?file=...&path=...&attr_keys=NX_class&attr_keys=signal
    GET h5grove/data/?file=...&path=...&selection=0,:,10:20&format=json|bin|npy|csv|tiff&dtype=origin|safe&flatten=true
    GET h5grove/stats/?file=...&path=...&selection=...
    GET h5grove/paths/?file=...&path=...

`file` is the data path the service's other endpoints take, checked by the same rules (paths.py);
the answer is computed by a reader running as the caller (h5grove_content.py).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError, model_validator

MAX_SELECTION_CHARS = 1000
MAX_AXES = 32  # HDF5's own limit on a dataspace's rank
MAX_ATTR_KEYS = 1000
_WHOLE = re.compile(r"-?[0-9]{1,18}")

# What each endpoint takes besides `file` and `path`.
PARAMETERS = {
    "meta": set(),
    "attr": {"attr_keys"},
    "data": {"selection", "format", "dtype", "flatten"},
    "stats": {"selection"},
    "paths": set(),
}
LISTS = {"attr_keys"}  # the only parameter given more than once

Member = int | tuple[int | None, int | None, int | None]  # an index, or a slice's start, stop and step


class H5groveQueryError(ValueError):
    """A query the API refuses; the message names the parameter and what it takes (HTTP 400)."""


def _index(text: str, what: str) -> int | None:
    """A whole number, or None for an empty part (a slice's default)."""
    text = text.strip()
    if text == "":
        return None
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"{what} {text!r} is not a whole number")
    return int(text)


def parse_selection(raw: Any) -> tuple[Member, ...] | None:
    """h5grove's selection syntax, NumPy's basic indexing: '5', '1, 2:5', '0:10:5, 2, 3:'.

    Each member is an index or start:stop[:step] (each part optional, step at least 1);
    no more members than HDF5 has axes.
    """
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > MAX_SELECTION_CHARS:
        raise ValueError(f"a selection is text of at most {MAX_SELECTION_CHARS} characters")
    members = raw.split(",")
    if len(members) > MAX_AXES:
        raise ValueError(f"a selection has at most {MAX_AXES} members, one per axis")
    parsed: list[Member] = []
    for member in members:
        parts = member.split(":")
        if len(parts) == 1:
            index = _index(parts[0], "an index")
            if index is None:
                raise ValueError("a selection member is an index or start:stop[:step], not empty")
            parsed.append(index)
        elif len(parts) in (2, 3):
            start, stop, step = (_index(part, "a slice's bound") for part in (*parts, "")[:3])
            if step is not None and step < 1:
                raise ValueError(f"a slice's step is at least 1, not {step}")
            parsed.append((start, stop, step))
        else:
            raise ValueError(f"{member.strip()!r} is not an index or start:stop[:step]")
    return tuple(parsed)


InFilePath = Annotated[str, StringConstraints(pattern=r"^/[^\x00-\x1f\x7f]{0,4095}$")]
AttrName = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{1,255}$")]


class H5groveQuery(BaseModel):
    """One h5grove request; the defaults are h5grove's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: Literal["meta", "attr", "data", "stats", "paths"]
    file: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    path: InFilePath = "/"
    selection: Annotated[tuple[Member, ...] | None, BeforeValidator(parse_selection)] = None
    format: Literal["json", "bin", "npy", "csv", "tiff"] = "json"
    dtype: Literal["origin", "safe"] = "origin"
    flatten: bool = False
    attr_keys: Annotated[list[AttrName], Field(max_length=MAX_ATTR_KEYS)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _only_the_endpoints_parameters(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("endpoint") in PARAMETERS:
            allowed = PARAMETERS[raw["endpoint"]] | {"endpoint", "file", "path"}
            for name in raw:
                if name not in allowed and name in cls.model_fields:
                    raise ValueError(f"/{raw['endpoint']}/ takes no {name}")
        return raw

    def reader_request(self) -> dict[str, Any]:
        """What the reader needs (h5grove_content.h5grove_answer), without the file: the service resolves that."""
        return self.model_dump(exclude={"file"}, mode="json")


def parse_query(endpoint: str, arguments: dict[str, list[bytes]]) -> H5groveQuery:
    """The model from tornado's query arguments; H5groveQueryError with every bad value's message."""
    raw: dict[str, Any] = {"endpoint": endpoint}
    for name, values in arguments.items():
        try:
            texts = [value.decode("utf-8") for value in values]
        except UnicodeDecodeError:
            raise H5groveQueryError(f"{name}: not UTF-8 text") from None
        if name not in LISTS and len(texts) > 1:
            raise H5groveQueryError(f"{name}: give it once")
        raw[name] = texts if name in LISTS else texts[0]
    try:
        return H5groveQuery.model_validate(raw)
    except ValidationError as err:
        problems = []
        for error in err.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise H5groveQueryError("; ".join(problems)) from None
