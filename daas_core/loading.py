"""One loader for the site's YAML files: a bad file stops the hub or service naming the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class SiteFileError(ValueError):
    """A site file that cannot be used; the message names the file and every bad field."""


def field_path(loc: tuple[int | str, ...], raw: Any) -> str:
    """pydantic's error location as people read it: 'profiles[gpu].resources.cores.max'.

    A list item is named by its `id` when it has one, else by its index.
    """
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            label = str(item)
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, dict) and isinstance(node.get("id"), str):
                    label = node["id"]
            parts[-1:] = [f"{parts[-1]}[{label}]"] if parts else [f"[{label}]"]
        else:
            parts.append(item)
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "<top>"


def parse_model(
    model: type[M], raw: Any, source: str, what: str, error: type[ValueError] = SiteFileError, *, shape: str = ""
) -> M:
    """Validate already-parsed data as `model`; `error` names the source, and every bad field.

    `shape` describes the expected top level for the message about a file that is not a mapping.
    """
    if not isinstance(raw, dict):
        raise error(f"{source}: expected a mapping{shape and ' ' + shape}")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        lines = [f"{source}: {field_path(e['loc'], raw)}: {e['msg']}" for e in err.errors(include_url=False)]
        raise error(f"invalid {what}\n  " + "\n  ".join(lines)) from None


def load_model(
    model: type[M],
    path: str | Path,
    what: str,
    error: type[ValueError] = SiteFileError,
    *,
    shape: str = "",
    empty_means_defaults: bool = False,
) -> M:
    """Read a YAML file and validate it as `model` (see parse_model).

    An empty file is the model's defaults where `empty_means_defaults`, else an error.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise error(f"{path}: cannot read {what} file: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML: {err}") from None
    if raw is None and empty_means_defaults:
        raw = {}
    return parse_model(model, raw, str(path), what, error, shape=shape)


def site_file_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of a site file as written, for editors (yaml-language-server) and CI.

    Validation mode: quantities are text or numbers as files write them (`fields.written_as`). The
    loader stays the word that counts: rules across fields (a default within its bound) are its own.
    """
    return {"$schema": SCHEMA_DIALECT, **model.model_json_schema(mode="validation")}
