"""`daas-profiles`: check a site's profiles files as the hub loads them, and print their JSON Schema.

`check` goes through `load_profiles`, the hub's own path, so a file it passes starts the hub and
its errors read the same; it then shows what each profile offers once defaults are filled in,
quantities in words ('14G', '12:00:00', '8 h'). `schema` prints the JSON Schema of the file as
written, for editors (yaml-language-server) and CI; the hub's check stays the word that counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import BaseModel

from daas_core.loading import site_file_schema
from daas_core.quantities import (
    format_duration,
    format_memory,
    format_walltime,
    parse_duration_seconds,
    parse_memory_mb,
    parse_walltime_seconds,
)

from .backends.registry import BackendRegistryError
from .profiles import Profile, ProfileConfigError, ProfileSet, load_profiles


def profiles_schema() -> dict[str, Any]:
    """The JSON Schema of a profiles file as written: every registered backend's profile, by `backend`."""
    return site_file_schema(ProfileSet)


# Parser -> formatter: a field its parser reads (MemoryMB, WalltimeSeconds, DurationSeconds) is shown by the other.
IN_WORDS = {
    parse_memory_mb: format_memory,
    parse_walltime_seconds: format_walltime,
    parse_duration_seconds: format_duration,
}


def _in_words(value: Any, annotation: Any, metadata: Sequence[Any] = ()) -> Any:
    """`value` for people: models as mappings, quantities as written ('4G'), by the field's declared type."""
    if value is None:
        return None
    for item in metadata:
        formatter = IN_WORDS.get(getattr(item, "func", None))
        if formatter is not None and isinstance(value, int):
            return formatter(value)
    if isinstance(value, BaseModel):
        return readable(value)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _in_words(value, args[0], args[1:])
    if origin in (typing.Union, types.UnionType):
        for member in args:
            shown = _in_words(value, member)
            if shown is not value:
                return shown
        return value
    if isinstance(value, list) and args:
        return [_in_words(item, args[0]) for item in value]
    if isinstance(value, dict) and len(args) == 2:
        return {key: _in_words(item, args[1]) for key, item in value.items()}
    return value


def readable(model: BaseModel) -> dict[str, Any]:
    """A site model's fields, defaults filled in, as people write them; unset ones (None, empty) left out."""
    shown = {
        name: _in_words(getattr(model, name), field.annotation, field.metadata)
        for name, field in type(model).model_fields.items()
    }
    return {name: value for name, value in shown.items() if value is not None and value not in ("", [], {})}


def _who(profile: Profile) -> str:
    rules = []
    if profile.allowed_groups:
        rules.append("groups " + ", ".join(profile.allowed_groups))
    if profile.allowed_proposals:
        rules.append("members of proposals " + ", ".join(profile.allowed_proposals))
    return " or ".join(rules) or "everyone"


def describe(profile: Profile) -> dict[str, Any]:
    """One profile's offer: who may use it, what a request with no choices gets, and every setting."""
    settings = readable(profile)
    head = {"backend": settings.pop("backend"), "display_name": settings.pop("display_name")}
    settings.pop("id")
    offer: dict[str, Any] = {**head, "open to": _who(profile)}
    if profile.requires_proposal:
        offer["billed to"] = "the chosen proposal (people without one cannot start it)"
    request = profile.resolve_request({}).summary()
    offer["default request"] = ", ".join(f"{name} {value}" for name, value in request.items()) or "no choices"
    return {profile.id: offer | settings}


def _check(paths: Sequence[str]) -> int:
    """Load each file as the hub does; print its offers, or its errors (on stderr). 1 if any failed."""
    failed = False
    for path in paths:
        try:
            profiles = load_profiles(path)
        except (ProfileConfigError, BackendRegistryError) as err:
            print(err, file=sys.stderr)
            failed = True
            continue
        default = f", default {profiles.default_profile}" if profiles.default_profile else ""
        count = len(profiles.profiles)
        print(f"{path}: OK, {count} profile{'s' if count != 1 else ''}{default}")
        offers = [describe(profile) for profile in profiles.profiles]
        print(yaml.safe_dump(offers, sort_keys=False, default_flow_style=None, width=4096).rstrip("\n"))
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="daas-profiles",
        description="Check jupyterhub-daas profiles files as the hub loads them, or print their JSON Schema.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="load files as the hub does: their errors, or what each profile offers",
        description="Load each FILE with the hub's own loader. Errors go to stderr with the text hub start "
        "gives, and the exit status is 1; a good file's profiles are printed with defaults filled in.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="a profiles YAML file")
    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of a profiles file (draft 2020-12)",
        description="Print the JSON Schema of a profiles file as written (quantities as text or numbers), "
        "covering every backend installed here, e.g. for yaml-language-server.",
    )
    schema.add_argument("--indent", type=int, default=2, help="JSON indentation (default: 2)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "schema":
        print(json.dumps(profiles_schema(), indent=args.indent))
        return 0
    return _check(args.files)


if __name__ == "__main__":
    sys.exit(main())
