"""resolve_options: every user value is checked against the chosen profile; defaults fill the rest."""

from __future__ import annotations

import pytest

from daas_spawner.backends.local.profile import LocalRequest
from daas_spawner.options import OptionsError, UserAccess, option_fields, resolve_options
from daas_spawner.profiles import parse_profiles

from .conftest import site_profiles_raw


def test_profile_alone_fills_every_default(site):
    resolved = resolve_options({"profile": "gpu"}, site, UserAccess())
    assert resolved.profile.id == "gpu"
    assert resolved.backend == "slurm"
    assert resolved.environment.id == "daas"
    assert resolved.request.partition == "gpu"
    assert resolved.request.feature is None
    assert (resolved.request.cores, resolved.request.whole_node) == (2, False)
    assert resolved.request.memory_mb == 4096
    assert (resolved.request.gpus, resolved.request.gpu_type) == (1, "tesla")
    assert resolved.request.walltime_seconds == 2 * 3600


def test_summary(site):
    summary = resolve_options({"profile": "gpu"}, site, UserAccess()).summary()
    assert summary == {
        "profile": "gpu",
        "environment": "daas",
        "partition": "gpu",
        "cores": 2,
        "whole_node": False,
        "memory_mb": 4096,
        "memory": "4G",
        "gpu_type": "tesla",
        "gpus": 1,
        "walltime_seconds": 7200,
        "walltime": "2:00:00",
    }


@pytest.mark.parametrize("raw", [None, {}, {"profile": None}, {"profile": ""}, {"cores": ""}])
def test_nothing_given_uses_the_default_profile(site, raw):
    resolved = resolve_options(raw, site, UserAccess())
    assert resolved.profile.id == "cpu"
    request = resolved.request
    assert (request.partition, request.cores, request.memory_mb, request.walltime_seconds) == ("cpu", 1, 2048, 3600)
    assert (request.gpus, request.gpu_type, request.feature) == (0, None, None)


def test_no_default_profile_and_several_allowed_requires_a_choice():
    raw = site_profiles_raw()
    del raw["default_profile"]
    with pytest.raises(OptionsError) as info:
        resolve_options({}, parse_profiles(raw, "t"), UserAccess())
    assert info.value.field == "profile"


def test_single_allowed_profile_is_the_default():
    raw = site_profiles_raw()
    del raw["default_profile"]
    raw["profiles"] = [raw["profiles"][1]]
    assert resolve_options(None, parse_profiles(raw, "t"), UserAccess()).profile.id == "gpu"


def test_default_profile_restricted_falls_back_to_the_only_allowed():
    raw = site_profiles_raw()
    raw["default_profile"] = "staff"
    raw["profiles"] = [raw["profiles"][1], raw["profiles"][3]]
    profiles = parse_profiles(raw, "t")
    assert resolve_options({}, profiles, UserAccess()).profile.id == "gpu"
    assert resolve_options({}, profiles, UserAccess(groups=frozenset({"staff"}))).profile.id == "staff"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"profile": "cpu", "cores": "4"}, {"cores": 4}),
        ({"profile": "cpu", "cores": 4}, {"cores": 4}),
        ({"profile": "cpu", "cores": "16"}, {"cores": 16}),
        ({"profile": "cpu", "cores": "medium"}, {"cores": 4}),
        ({"profile": "cpu", "cores": "max"}, {"cores": 8}),
        ({"profile": "cpu", "partition": "cpu-long"}, {"partition": "cpu-long"}),
        ({"profile": "cpu", "memory": "512M"}, {"memory_mb": 512}),
        ({"profile": "cpu", "memory": "32G"}, {"memory_mb": 32768}),
        ({"profile": "cpu", "memory": 1024}, {"memory_mb": 1024}),
        ({"profile": "cpu", "walltime": "12:00:00"}, {"walltime_seconds": 12 * 3600}),
        ({"profile": "cpu", "walltime": "90"}, {"walltime_seconds": 90 * 60}),
        ({"profile": "cpu", "walltime": 1}, {"walltime_seconds": 60}),
        ({"profile": "cpu", "environment": "box"}, {}),
        ({"profile": "gpu", "gpus": "2"}, {"gpus": 2, "gpu_type": "tesla"}),
        ({"profile": "gpu", "gpus": 0}, {"gpus": 0, "gpu_type": None}),
        ({"profile": "gpu", "gpus": "0", "gpu_type": "tesla"}, {"gpus": 0, "gpu_type": None}),
        ({"profile": "power9"}, {"feature": "power9", "partition": "power9"}),
        ({"profile": "power9", "feature": "power9", "cores": "32"}, {"feature": "power9", "cores": 32}),
    ],
)
def test_accepted(site, raw, expected):
    resolved = resolve_options(raw, site, UserAccess())
    for name, value in expected.items():
        assert getattr(resolved.request, name) == value, name


def test_whole_node(site):
    resolved = resolve_options({"profile": "cpu", "cores": "whole_node"}, site, UserAccess())
    assert resolved.request.whole_node is True
    assert resolved.request.cores is None
    assert resolved.request.memory_mb is None
    assert resolved.request.walltime_seconds == 3600


def test_local_profile(site):
    resolved = resolve_options({"profile": "local"}, site, UserAccess())
    assert resolved.backend == "local"
    assert resolved.environment.id == "default"
    assert resolved.request == LocalRequest()
    assert resolved.summary() == {"profile": "local", "environment": "default"}


def test_restricted_profile_for_its_group(site):
    access = UserAccess(groups=frozenset({"staff"}))
    assert resolve_options({"profile": "staff"}, site, access).request.partition == "staff"


LONG = "a" * 129

# (raw options, the field OptionsError must name)
REJECT = [
    ({"colour": "blue"}, "colour"),
    ({"profile": "cpu", "Cores": "1"}, "Cores"),
    ({"profile": "cpu", "x" * 200: "1"}, "x" * 64),
    ({"profile": "cpu", 7: "1"}, "7"),
    ({"profile": "cpu", "partition": "gpu"}, "partition"),
    ({"profile": "cpu", "partition": "CPU"}, "partition"),
    ({"profile": "cpu", "partition": 1}, "partition"),
    ({"profile": "cpu", "partition": ["cpu"]}, "partition"),
    ({"profile": "cpu", "cores": 17}, "cores"),
    ({"profile": "cpu", "cores": "17"}, "cores"),
    ({"profile": "cpu", "cores": 0}, "cores"),
    ({"profile": "cpu", "cores": "0"}, "cores"),
    ({"profile": "cpu", "cores": -1}, "cores"),
    ({"profile": "cpu", "cores": "-1"}, "cores"),
    ({"profile": "cpu", "cores": 10**12}, "cores"),
    ({"profile": "cpu", "cores": str(10**12)}, "cores"),
    ({"profile": "cpu", "cores": 1.5}, "cores"),
    ({"profile": "cpu", "cores": 2.0}, "cores"),
    ({"profile": "cpu", "cores": "1.5"}, "cores"),
    ({"profile": "cpu", "cores": True}, "cores"),
    ({"profile": "cpu", "cores": False}, "cores"),
    ({"profile": "cpu", "cores": [1]}, "cores"),
    ({"profile": "cpu", "cores": {"a": 1}}, "cores"),
    ({"profile": "cpu", "cores": "$(id)"}, "cores"),
    ({"profile": "cpu", "cores": "`id`"}, "cores"),
    ({"profile": "cpu", "cores": "1;id"}, "cores"),
    ({"profile": "cpu", "cores": "1\n#SBATCH --uid=0"}, "cores"),
    ({"profile": "cpu", "cores": "#SBATCH"}, "cores"),
    ({"profile": "cpu", "cores": " 1"}, "cores"),
    ({"profile": "cpu", "cores": "\u0663"}, "cores"),  # ARABIC-INDIC DIGIT THREE
    ({"profile": "gpu", "cores": "max"}, "cores"),  # preset the profile does not have
    ({"profile": "gpu", "cores": "whole_node"}, "cores"),
    ({"profile": "cpu", "memory": "33G"}, "memory"),
    ({"profile": "cpu", "memory": "511M"}, "memory"),
    ({"profile": "cpu", "memory": 0}, "memory"),
    ({"profile": "cpu", "memory": -1}, "memory"),
    ({"profile": "cpu", "memory": 10**12}, "memory"),
    ({"profile": "cpu", "memory": 1.5}, "memory"),
    ({"profile": "cpu", "memory": True}, "memory"),
    ({"profile": "cpu", "memory": "4G\n#SBATCH --mem=0"}, "memory"),
    ({"profile": "cpu", "memory": "lots"}, "memory"),
    ({"profile": "cpu", "cores": "whole_node", "memory": "4G"}, "memory"),
    ({"profile": "gpu", "gpus": 3}, "gpus"),
    ({"profile": "gpu", "gpus": "3"}, "gpus"),
    ({"profile": "gpu", "gpus": -1}, "gpus"),
    ({"profile": "gpu", "gpus": "-1"}, "gpus"),
    ({"profile": "gpu", "gpus": 1.0}, "gpus"),
    ({"profile": "gpu", "gpus": True}, "gpus"),
    ({"profile": "gpu", "gpu_type": "a100"}, "gpu_type"),
    ({"profile": "gpu", "gpu_type": "Tesla"}, "gpu_type"),
    ({"profile": "cpu", "gpus": 1}, "gpus"),
    ({"profile": "cpu", "gpu_type": "tesla"}, "gpu_type"),
    ({"profile": "cpu", "feature": "power9"}, "feature"),
    ({"profile": "power9", "feature": "x86"}, "feature"),
    ({"profile": "cpu", "walltime": "12:00:01"}, "walltime"),
    ({"profile": "cpu", "walltime": "1-00:00:00"}, "walltime"),
    ({"profile": "cpu", "walltime": 0}, "walltime"),
    ({"profile": "cpu", "walltime": "0:00:59"}, "walltime"),
    ({"profile": "cpu", "walltime": "1:00:00; rm -rf ~"}, "walltime"),
    ({"profile": "cpu", "walltime": "1:75:00"}, "walltime"),
    ({"profile": "cpu", "walltime": "1h"}, "walltime"),
    ({"profile": "cpu", "walltime": 1.5}, "walltime"),
    ({"profile": "cpu", "walltime": False}, "walltime"),
    ({"profile": "cpu", "environment": "conda"}, "environment"),
    ({"profile": "gpu", "environment": "box"}, "environment"),  # another profile's environment
    ({"profile": "cpu", "environment": 1}, "environment"),
    ({"profile": "nope"}, "profile"),
    ({"profile": "staff"}, "profile"),
    ({"profile": "CPU"}, "profile"),
    ({"profile": 1}, "profile"),
    ({"profile": ["cpu"]}, "profile"),
    ({"profile": {"id": "cpu"}}, "profile"),
    ({"profile": True}, "profile"),
    ({"profile": "local", "partition": "cpu"}, "partition"),
    ({"profile": "local", "cores": "1"}, "cores"),
    ({"profile": "local", "memory": "1G"}, "memory"),
    ({"profile": "local", "walltime": "1:00:00"}, "walltime"),
    ({"profile": "local", "gpus": "1"}, "gpus"),
    ({"profile": "local", "environment": "daas"}, "environment"),
    ({"profile": LONG}, "profile"),
    ({"profile": "cpu", "partition": LONG}, "partition"),
    ({"profile": "cpu", "cores": "1" * 129}, "cores"),
    ({"profile": "cpu", "memory": "1" * 129}, "memory"),
    ({"profile": "gpu", "gpus": "1" * 129}, "gpus"),
    ({"profile": "gpu", "gpu_type": LONG}, "gpu_type"),
    ({"profile": "cpu", "walltime": "1" * 129}, "walltime"),
    ({"profile": "power9", "feature": LONG}, "feature"),
    ({"profile": "cpu", "environment": LONG}, "environment"),
]


@pytest.mark.parametrize("raw, field", REJECT)
def test_rejected(site, raw, field):
    with pytest.raises(OptionsError) as info:
        resolve_options(raw, site, UserAccess())
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


@pytest.mark.parametrize("raw", [[], "cpu", 1, [("profile", "cpu")]])
def test_options_must_be_an_object(site, raw):
    with pytest.raises(OptionsError) as info:
        resolve_options(raw, site, UserAccess())
    assert info.value.field == "user_options"


def test_unknown_and_forbidden_profiles_get_the_same_answer(site):
    with pytest.raises(OptionsError) as unknown:
        resolve_options({"profile": "nope"}, site, UserAccess())
    with pytest.raises(OptionsError) as forbidden:
        resolve_options({"profile": "staff"}, site, UserAccess())
    assert unknown.value.message.replace("'nope'", "ID") == forbidden.value.message.replace("'staff'", "ID")
    assert "staff" not in unknown.value.message.replace("'nope'", "")


@pytest.mark.parametrize(
    "field, profile, valid",
    [
        ("profile", None, "gpu"),
        ("partition", "cpu", "cpu"),
        ("gpu_type", "gpu", "tesla"),
        ("feature", "power9", "power9"),
        ("environment", "cpu", "daas"),
    ],
)
def test_long_text_refused_before_lookup(site, field, profile, valid):
    raw = {"profile": profile} if profile else {}
    with pytest.raises(OptionsError) as info:
        resolve_options({**raw, field: valid + " " * (129 - len(valid))}, site, UserAccess())
    assert info.value.field == field
    assert "longer than 128 characters" in info.value.message


@pytest.mark.parametrize("field", ["memory", "walltime"])
def test_long_quantity_refused_before_parsing(site, field):
    with pytest.raises(OptionsError) as info:
        resolve_options({"profile": "cpu", field: "1" * 33}, site, UserAccess())
    assert info.value.field == field
    assert "too long" in info.value.message


def test_long_value_is_not_echoed_in_full(site):
    with pytest.raises(OptionsError) as info:
        resolve_options({"profile": "cpu", "partition": "p" * 100}, site, UserAccess())
    assert "p" * 100 not in str(info.value)


# Each string field with the profile that offers it and one valid value.
STRING_FIELDS = [
    ("profile", "gpu", "gpu"),
    ("partition", "cpu", "cpu"),
    ("cores", "cpu", "4"),
    ("memory", "cpu", "4G"),
    ("gpus", "gpu", "1"),
    ("gpu_type", "gpu", "tesla"),
    ("walltime", "cpu", "1:00:00"),
    ("feature", "power9", "power9"),
    ("environment", "cpu", "daas"),
    ("proposal", "cpu", "20231234"),
    ("flavor", "vm", "daas.small"),
]
MEMBER = UserAccess(proposals=("20231234",))
HOSTILE = [
    "{}\n",
    "\n{}",
    "{}\r",
    "{}\n#SBATCH --uid=0",
    "#SBATCH --uid=0\n{}",
    "{};id",
    "{}; id",
    "{}$(id)",
    "$({})",
    "{}`id`",
    "`{}`",
    "{}\x00",
    "{}|id",
    "{}&&id",
]


def test_string_fields_cover_every_option():
    assert sorted(field for field, _, _ in STRING_FIELDS) == sorted(option_fields())


@pytest.mark.parametrize("pattern", HOSTILE)
@pytest.mark.parametrize("field, profile, valid", STRING_FIELDS)
def test_shell_and_directive_characters_rejected_in_every_field(site, field, profile, valid, pattern):
    raw = {"profile": profile, field: pattern.format(valid)}
    assert resolve_options({"profile": profile, field: valid}, site, MEMBER)  # the valid value passes
    with pytest.raises(OptionsError) as info:
        resolve_options(raw, site, MEMBER)
    assert info.value.field == field


def test_a_desktop_environment_opens_the_desktop_instead_of_the_profiles_page():
    raw = site_profiles_raw()
    cpu = raw["profiles"][0]
    cpu["default_url"] = "/lab"
    cpu["environments"].append({"id": "xfce", "display_name": "Xfce", "prefix": "/opt/daas/venv", "kind": "desktop"})
    site = parse_profiles(raw, "t")
    assert resolve_options({"profile": "cpu"}, site, UserAccess()).default_url == "/lab"
    desktop = resolve_options({"profile": "cpu", "environment": "xfce"}, site, UserAccess())
    assert (desktop.environment.kind, desktop.default_url) == ("desktop", "/desktop/")


def test_an_environment_kind_is_lab_or_desktop():
    raw = site_profiles_raw()
    raw["profiles"][0]["environments"][0]["kind"] = "vnc"
    with pytest.raises(
        ValueError, match=r"profiles\[cpu\]\.environments\[daas\]\.kind: Input should be 'lab' or 'desktop'"
    ):
        parse_profiles(raw, "t")
