"""The configuration reference, written at build time from the code itself so it cannot drift from it.

Two parts. The settings: every traitlets Configurable class defined in the suite's packages (found by
importing every module, so a new class appears without anyone listing it), with each `config=True`
trait it defines as a `confval` entry (type, default, help). The site files: the pydantic models of
the three YAML files (profiles, with each registered backend's profile model from the
`daas_spawner.backends` entry points; data locations; Dask limits), as tables of field, type, default
and description, following nested models. The page `reference/configuration.md` holds a marker
(MARKER, at the end); `source-read` puts the generated MyST text in its place.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import pkgutil
import types
import typing
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel
from traitlets import Container, Dict, Enum, Instance, TraitType, Type
from traitlets.config import Configurable

PACKAGES = ("daas_core", "daas_auth", "daas_spawner", "daas_services", "daas_hub")
# Entry-point groups through which JupyterHub and the spawner find our classes by a short name.
ENTRY_POINT_GROUPS = ("jupyterhub.spawners", "jupyterhub.authenticators", "daas_spawner.backends")
SECTIONS = {
    "daas_spawner": "The spawner and its backends (jupyterhub_config.py)",
    "daas_auth": "Login: authenticators and user offices (jupyterhub_config.py)",
    "daas_services": "The services daas-data and daas-dask (daas_config.py)",
    "daas_core": "Shared by the hub and the services",
    "daas_hub": "The hub's wiring",
}


# -- finding the classes -------------------------------------------------------------------------


@functools.cache
def our_modules() -> tuple[types.ModuleType, ...]:
    """Every module of the suite's packages, imported (`__main__` modules would run their command)."""
    modules = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            if info.name.rsplit(".", 1)[-1] != "__main__":
                modules.append(importlib.import_module(info.name))
    return tuple(modules)


def configurable_classes() -> list[type[Configurable]]:
    """Configurable classes defined in our modules that have settings of their own, or that an entry point names."""
    named = set(entry_point_names())
    found = []
    for module in our_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, Configurable):
                continue
            if cls.class_own_traits(config=True) or cls in named:
                found.append(cls)
    return sorted(found, key=lambda cls: (PACKAGES.index(cls.__module__.split(".")[0]), _source_order(cls)))


def _source_order(cls: type) -> tuple[str, int]:
    return cls.__module__, inspect.getsourcelines(cls)[1]


def entry_point_names() -> dict[type, list[str]]:
    """Class -> its `group: name` entry points, for the suite's own distribution's entry points."""
    names: dict[type, list[str]] = {}
    for group in ENTRY_POINT_GROUPS:
        for entry in entry_points(group=group):
            if entry.value.split(".", 1)[0] in PACKAGES:
                names.setdefault(entry.load(), []).append(f"{group}: {entry.name}")
    return names


# -- settings ------------------------------------------------------------------------------------


def trait_type(trait: TraitType) -> str:
    """A short type: `Float`, `List(Unicode)`, `Instance(ProfileSet)`, `Enum: cli, rest`."""
    kind = type(trait).__name__
    if isinstance(trait, Enum):
        return f"{kind}: " + ", ".join(code(str(value)) for value in trait.values)
    inner = getattr(trait, "_trait", None)  # List, Set, Tuple: their items
    if inner is None:
        inner = getattr(trait, "_value_trait", None)  # Dict: its values
    if isinstance(inner, TraitType):
        return f"{kind}({type(inner).__name__})"
    if isinstance(trait, Container | Dict):
        return kind
    if isinstance(trait, Instance | Type) and isinstance(trait.klass, type):
        return f"{kind}({trait.klass.__name__})"
    return kind


def trait_default(cls: type[Configurable], name: str, trait: TraitType) -> str:
    """The default as configuration would write it, or where a computed one comes from."""
    generator = cls._all_trait_default_generators.get(name)
    if generator is not None and getattr(generator, "__self__", None) is not trait:  # an @default method
        return "computed when the component starts (see the description)"
    return code(trait.default_value_repr())


def code(text: str) -> str:
    """Inline code that survives any backticks in `text`."""
    fence = "``" if "`" in text else "`"
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def help_text(trait: TraitType) -> str:
    return inspect.cleandoc(trait.help) if trait.help else "(no description)"


def class_label(cls: type) -> str:
    return f"config-{cls.__name__.lower()}"


def class_section(cls: type[Configurable], ours: set[type], entry_names: dict[type, list[str]]) -> Iterator[str]:
    yield f"({class_label(cls)})="
    yield f"### {cls.__name__}"
    yield ""
    where = [f"`{cls.__module__}.{cls.__name__}`"]
    where += [f"entry point `{name}`" for name in entry_names.get(cls, [])]
    yield "; ".join(where) + "."
    yield ""
    if cls.__doc__:  # its own docstring (a class does not inherit __doc__), first paragraph
        yield inspect.cleandoc(cls.__doc__).split("\n\n", 1)[0]
        yield ""
    bases = [base for base in cls.__mro__[1:] if issubclass(base, Configurable) and base is not Configurable]
    our_bases = [base for base in bases if base in ours]
    upstream = [base for base in cls.__bases__ if base.__module__.split(".")[0] not in PACKAGES]
    upstream = [base for base in upstream if issubclass(base, Configurable) and base.class_traits(config=True)]
    if our_bases:
        links = ", ".join(f"{{ref}}`{base.__name__} <{class_label(base)}>`" for base in our_bases)
        yield (
            f"Also takes the settings of {links}: written for the base class they apply to every subclass, "
            f"written as `c.{cls.__name__}.<setting>` to this one."
        )
        yield ""
    for base in upstream:
        yield (
            f"Also takes every setting of `{base.__module__}.{base.__name__}` (upstream: see its own "
            f"documentation, or `--help-all` of the command that loads it)."
        )
        yield ""
    own = cls.class_own_traits(config=True)
    if not own:
        yield "No settings of its own."
        yield ""
    for name, trait in sorted(own.items()):
        yield f":::{{confval}} c.{cls.__name__}.{name}"
        yield f":type: {trait_type(trait)}"
        yield f":default: {trait_default(cls, name, trait)}"
        yield ""
        yield help_text(trait)
        yield ":::"
        yield ""


def settings_markdown() -> Iterator[str]:
    classes = configurable_classes()
    entry_names = entry_point_names()
    ours = set(classes)
    package = None
    for cls in classes:
        top = cls.__module__.split(".")[0]
        if top != package:
            package = top
            yield f"## {SECTIONS[top]}"
            yield ""
        yield from class_section(cls, ours, entry_names)


# -- the YAML files --------------------------------------------------------------------------------


def site_files() -> list[tuple[str, str, type[BaseModel]]]:
    """(title, example file, model) of each YAML file a site writes; the loaders validate with these models."""
    from daas_core.mounts import DataLocations
    from daas_services.dask.limits import DaskConfig
    from daas_spawner.profiles import ProfileSet

    return [
        ("Profiles", "profiles/facility.yaml", ProfileSet),
        ("Data locations", "profiles/data.yaml", DataLocations),
        ("Dask limits", "profiles/dask.yaml", DaskConfig),
    ]


def backend_profiles() -> dict[str, type[BaseModel]]:
    """Backend name -> its profile model, from the `daas_spawner.backends` entry points."""
    from daas_spawner.backends.registry import backend_classes

    return {name: cls.profile_class for name, cls in backend_classes().items()}


def type_aliases() -> dict[int, str]:
    """id of each module-level `Annotated` alias in our modules (Identifier, MemoryMB, ...) -> its name."""
    aliases = {}
    for module in our_modules():
        for name, value in vars(module).items():
            if typing.get_origin(value) is typing.Annotated and not name.startswith("_"):
                aliases.setdefault(id(value), name)
    return aliases


def model_label(model: type) -> str:
    return f"model-{model.__name__.lower()}"


class ModelWriter:
    """Tables of nested models, each model once, in the order they are met."""

    names: typing.ClassVar[dict[Any, str]] = {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        type(None): "null",
    }

    def __init__(self) -> None:
        self.aliases = type_aliases()
        self.written: set[type] = set()
        self.queue: list[type[BaseModel]] = []
        self.used_aliases: dict[str, Any] = {}

    def describe(self, annotation: Any) -> str:
        """A field's type in words; nested models become links (and are queued for a table of their own)."""
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in self.written and annotation not in self.queue:
                self.queue.append(annotation)
            return f"{{ref}}`{annotation.__name__} <{model_label(annotation)}>`"
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Annotated:
            if isinstance(args[0], type) and issubclass(args[0], BaseModel):
                return self.describe(args[0])
            alias = self.aliases.get(id(annotation))
            if alias is None:
                return self.describe(args[0])
            self.used_aliases[alias] = annotation
            return f"{{ref}}`{alias} <{alias_label(alias)}>`"
        if origin is typing.Literal:
            return "one of " + ", ".join(code(json.dumps(value)) for value in args)
        if origin in (typing.Union, types.UnionType):
            kinds = [self.describe(arg) for arg in args if arg is not type(None)]
            return " or ".join(kinds) + (" or null" if type(None) in args else "")
        if origin in (list, tuple, set, frozenset):
            return "list of " + (self.describe(args[0]) if args else "values")
        if origin is dict:
            return f"mapping of {self.describe(args[0])} to {self.describe(args[1])}" if args else "mapping"
        return self.names.get(annotation, code(getattr(annotation, "__name__", str(annotation))))

    @staticmethod
    def default(field: Any) -> str:
        if field.is_required():
            return "required"
        value = field.default_factory() if field.default_factory is not None else field.default
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        elif isinstance(value, list):
            value = [item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in value]
        return code(json.dumps(value))  # as the YAML file would write it

    def table(self, model: type[BaseModel], level: str) -> Iterator[str]:
        self.written.add(model)
        yield f"({model_label(model)})="
        yield f"{level} {model.__name__}"
        yield ""
        yield f"`{model.__module__}.{model.__name__}`" + (
            f": {model.__doc__.strip().splitlines()[0]}" if model.__doc__ else ""
        )
        yield ""
        parent = next((base for base in model.__bases__ if base in self.written), None)
        fields = model.model_fields
        if parent is not None:  # a backend's profile: what it adds to, or changes in, the common fields
            yield f"Every field of {self.describe(parent)}, and:"
            yield ""
            fields = {
                name: field
                for name, field in fields.items()
                if name not in parent.model_fields or field.annotation != parent.model_fields[name].annotation
            }
        hints = typing.get_type_hints(model, include_extras=True)  # keeps the aliases (Identifier, MemoryMB)
        yield "| field | type | default | description |"
        yield "|---|---|---|---|"
        for name, field in fields.items():
            kind = self.describe(hints.get(name, field.annotation))
            cells = [code(field.alias or name), kind, self.default(field), field.description or ""]
            yield "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"
        yield ""

    def drain(self, level: str) -> Iterator[str]:
        while self.queue:
            model = self.queue.pop(0)
            if model not in self.written:
                yield from self.table(model, level)


def alias_label(alias: str) -> str:
    return f"type-{alias.lower()}"


def alias_rule(annotation: Any) -> str:
    """What a field type accepts: its pattern, or the summary its parser or check gives of itself."""
    base, *metadata = typing.get_args(annotation)
    kind = ModelWriter.names.get(base, getattr(base, "__name__", str(base)))
    for item in metadata:
        if getattr(item, "pattern", None):
            return f"{kind} matching {code(item.pattern)}"
        check = getattr(item, "func", None)
        summary = (check.__doc__ or "").strip().splitlines()[0] if check is not None and check.__doc__ else ""
        if summary and type(item).__name__ == "BeforeValidator":  # a parser: what it reads
            summary = summary.removeprefix("Return ")
            return f"{kind}, or a string read as {summary[0].lower()}{summary[1:]}"
        if summary:
            return f"{kind}, checked by `{check.__name__}`: {summary}"
    return kind


def aliases_markdown(writer: ModelWriter) -> Iterator[str]:
    yield "### Field types"
    yield ""
    for alias, annotation in sorted(writer.used_aliases.items()):
        yield f"({alias_label(alias)})="
        yield f"#### {alias}"
        yield ""
        yield alias_rule(annotation)
        yield ""


def models_markdown() -> Iterator[str]:
    writer = ModelWriter()
    yield "## Site files (YAML)"
    yield ""
    for title, example, model in site_files():
        yield f"### {title}"
        yield ""
        yield f"Validated by `{model.__module__}.{model.__name__}`; `{example}` is an example."
        yield ""
        yield from writer.table(model, "####")
        yield from writer.drain("####")
        if title == "Profiles":
            yield "Each entry of `profiles` is validated as the profile model of the backend it names (`backend:`)."
            yield ""
            for profile in backend_profiles().values():
                yield from writer.table(profile, "####")
                yield from writer.drain("####")
    yield from aliases_markdown(writer)


def reference_markdown() -> str:
    return "\n".join([*settings_markdown(), *models_markdown()]) + "\n"


# -- Sphinx --------------------------------------------------------------------------------------

PAGE = "reference/configuration"
MARKER = "<!-- daas-config-reference -->"


def _fill_in(app: Any, docname: str, source: list[str]) -> None:
    if docname == PAGE:
        if MARKER not in source[0]:
            raise RuntimeError(f"{PAGE}.md lost its marker {MARKER}")
        source[0] = source[0].replace(MARKER, reference_markdown())


def setup(app: Any) -> dict[str, Any]:
    app.connect("source-read", _fill_in)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
