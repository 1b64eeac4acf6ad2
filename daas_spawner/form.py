"""Render the spawn form from the profiles a user may use (Jinja2, autoescaped).

Sites can override templates by listing their own directories first (`template_paths`).
"""

from __future__ import annotations

from collections.abc import Sequence

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, select_autoescape

from .profiles import Profile
from .quantities import format_memory, format_walltime

FIELDS = (
    ("partition", "Partition", "e.g. cpu"),
    ("cores", "Cores", "a number, or min / medium / max / whole_node"),
    ("memory", "Memory", "e.g. 4G"),
    ("gpus", "GPUs", "number of GPUs"),
    ("gpu_type", "GPU type", "e.g. tesla"),
    ("feature", "Architecture", "e.g. power9"),
    ("walltime", "Wall time", "e.g. 4:00:00"),
)


def template_environment(template_paths: Sequence[str] = ()) -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(list(template_paths)), PackageLoader("daas_spawner", "templates")]),
        autoescape=select_autoescape(default=True),
    )
    env.filters["memory"] = format_memory
    env.filters["walltime"] = format_walltime
    return env


def render_form(env: Environment, profiles: Sequence[Profile]) -> str:
    return env.get_template("form.html").render(
        profiles=profiles,
        fields=FIELDS,
        any_resources=any(profile.resources for profile in profiles),
    )
