"""The spawn form: render it from the profiles a user may use, and read its post back.

Rendering uses Jinja2 with autoescaping. form.html holds what every profile has (the
choice of profile, the proposal); each profile's own widgets, and each backend's
availability, come from fragments in the backend's package (`<backend>/<file>`, from its
`templates/` folder). Sites override any of them by listing their own directories first
(`DaaSSpawner.template_paths`). Each profile's widgets are named `<profile>.<field>`, so a
plain HTML post (JavaScript off) carries the widgets of every profile: `form_to_options`
keeps only the chosen profile's values and hands them, as plain user options, to the one
validator (options.resolve_options).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader, select_autoescape

from daas_core.proposals import Proposal
from daas_core.quantities import format_memory, format_walltime

from .backends.registry import profile_classes
from .options import OptionsError, UserAccess, proposal_choices
from .profiles import Profile


def _backend_templates() -> PrefixLoader:
    """`<backend>/<file>`: the `templates/` folder of the package holding each registered backend's profile class."""
    loaders = {}
    for name, profile_class in profile_classes().items():
        if profile_class.form_template or profile_class.availability_template:
            package = profile_class.__module__.rpartition(".")[0]
            loaders[name] = PackageLoader(package, "templates")
    return PrefixLoader(loaders)


@functools.lru_cache(maxsize=8)
def template_environment(template_paths: tuple[str, ...] = ()) -> Environment:
    """One environment per template search path, so Jinja compiles form.html once, not per view."""
    loaders = [FileSystemLoader(list(template_paths)), PackageLoader("daas_spawner", "templates"), _backend_templates()]
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=False,  # templates change with a hub restart: no stat of every included file per view
    )
    env.filters["memory"] = format_memory
    env.filters["walltime"] = format_walltime
    return env


def render_form(
    env: Environment,
    profiles: Sequence[Profile],
    availability: Mapping[str, Any] | None = None,
    chosen: Mapping[str, str] | None = None,
    proposals: Sequence[Proposal] = (),
    access: UserAccess | None = None,
    warning: str | None = None,
    notice: str | None = None,
) -> str:
    """The form's HTML; `chosen` pre-selects values (e.g. from the spawn URL).

    `availability` maps a backend's name to what it shows as free (Backend.availability); each
    backend among `profiles` with an availability fragment shows it (no data: "no data yet").

    Each profile offers the user's proposals it may work for (none: no proposal field); a
    server named after a proposal shows that proposal only. `warning` is shown on top, then
    `notice` (why this server's last run ended on its own).
    """
    chosen = dict(chosen or {})
    access = access or UserAccess()
    by_id = {proposal.id: proposal for proposal in proposals}
    proposal_choices_by_profile = {}
    for profile in profiles:
        candidates, fixed = proposal_choices(profile, access)
        ids = [fixed] if fixed is not None else candidates
        proposal_choices_by_profile[profile.id] = [by_id.get(pid) or Proposal(id=pid) for pid in ids]
    backends: dict[str, list[Profile]] = {}
    for profile in profiles:
        backends.setdefault(profile.backend, []).append(profile)
    return env.get_template("form.html").render(
        profiles=profiles,
        backends=backends,
        availability=dict(availability or {}),
        chosen=chosen,
        proposal_choices=proposal_choices_by_profile,
        warning=warning,
        notice=notice,
    )


def _single_values(form: Mapping[str, list[str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, sent in form.items():
        filled = [value for value in sent if value != ""]
        if len(filled) > 1:
            raise OptionsError(key[:64], "was sent more than once")
        if filled:
            values[key] = filled[0]
    return values


def form_to_options(form: Mapping[str, list[str]], profiles: Collection[Profile]) -> dict[str, str]:
    """Turn a form post (or spawn-URL query) into user options for the chosen profile.

    Empty fields are dropped so profile defaults apply; a field sent twice is refused; widgets
    of profiles not chosen are ignored; unknown names pass through so the validator names them.
    The chosen profile's backend says which of its inputs override others (`form_overrides`).
    """
    by_id = {profile.id: profile for profile in profiles}
    values = _single_values(form)
    chosen = values.get("profile")
    overriding = by_id[chosen].form_overrides if chosen in by_id else {}
    options: dict[str, str] = {} if chosen is None else {"profile": chosen}
    overrides: dict[str, str] = {}
    for key, value in values.items():
        if key == "profile":
            continue
        owner, dot, field = key.partition(".")
        if not dot:
            target = key
        elif owner not in by_id:
            raise OptionsError(key[:64], "is not a known option")
        elif owner != chosen:
            continue
        elif field in overriding:
            overrides[overriding[field]] = value
            continue
        else:
            target = field
        if target in options:
            raise OptionsError(target, "was sent more than once")
        options[target] = value
    options.update(overrides)
    return options
