"""The Dask-cluster validator: every request body becomes bounded numbers or a 400 / 403 naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from daas_services.dask.limits import (
    Adapt,
    DaskConfig,
    DaskConfigError,
    Limits,
    RequestError,
    ResolvedCluster,
    load_dask_config,
    resolve_adapt,
    resolve_request,
    resolve_scale,
    tightest,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "profiles" / "dask.yaml"
MINE = ["20231234", "20239999"]
SITE = DaskConfig(defaults={"partitions": ["cpu", "gpu", "bigmem"]})


def refused(raw, config: DaskConfig = SITE, proposals: list[str] | None = None, running: int = 0) -> RequestError:
    with pytest.raises(RequestError) as err:
        resolve_request(raw, config, MINE if proposals is None else proposals, running)
    return err.value


# --- resolve_request: what a good request becomes ---------------------------------------------------------------


def test_defaults():
    resolved = resolve_request({}, DaskConfig(), ["20231234"], 0)
    assert resolved.proposal == "20231234"
    assert resolved.account == "20231234"
    assert resolved.partition == "cpu"
    assert resolved.cores == 1
    assert resolved.memory_mb == 4096
    assert resolved.walltime_seconds == 3600
    assert resolved.workers == 0
    assert resolved.adapt is None
    assert resolved.idle_timeout == 1800
    assert resolved.max_workers == 8


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"workers": 3}, {"workers": 3, "adapt": None}),
        ({"workers": 0}, {"workers": 0}),
        ({"workers": 8}, {"workers": 8}),
        ({"cores": 4}, {"cores": 4}),
        ({"cores": 2, "workers": 2}, {"cores": 2, "workers": 2}),
        ({"memory": "4GB"}, {"memory_mb": 4096}),
        ({"memory": "512M"}, {"memory_mb": 512}),
        ({"memory": 2048}, {"memory_mb": 2048}),
        ({"memory": "16G"}, {"memory_mb": 16384}),
        ({"walltime": "2:00:00"}, {"walltime_seconds": 7200}),
        ({"walltime": 90}, {"walltime_seconds": 5400}),
        ({"walltime": "8:00:00"}, {"walltime_seconds": 28800}),
        ({"partition": "gpu"}, {"partition": "gpu"}),
        ({"partition": "bigmem"}, {"partition": "bigmem"}),
        ({"adapt": {"minimum": 1, "maximum": 4}}, {"adapt": Adapt(minimum=1, maximum=4), "workers": 0}),
        ({"adapt": {"maximum": 8}}, {"adapt": Adapt(minimum=0, maximum=8)}),
        ({"adapt": {"minimum": 2, "maximum": 2}}, {"adapt": Adapt(minimum=2, maximum=2)}),
        ({"proposal": "20239999"}, {"proposal": "20239999", "account": "20239999"}),
        ({"server_name": ""}, {"server_name": ""}),
        ({"server_name": "gpu-box_1.x~y"}, {"server_name": "gpu-box_1.x~y"}),
        ({}, {"server_name": None}),
        (
            {"workers": 2, "cores": 3, "memory": "8G", "walltime": "1-00:00", "partition": "gpu"},
            {"workers": 2, "cores": 3, "memory_mb": 8192, "walltime_seconds": 86400, "partition": "gpu"},
        ),
    ],
)
def test_full_requests(body, expected):
    config = DaskConfig(defaults={"partitions": ["cpu", "gpu", "bigmem"], "max_walltime": "1-00:00:00"})
    servers = {name: "cpu" for name in ("", "gpu-box_1.x~y")}  # a server named in a request must be running
    resolved = resolve_request(body, config, MINE, 0, servers if "server_name" in body else None)
    assert {key: getattr(resolved, key) for key in expected} == expected


def test_first_partition_is_the_default():
    assert resolve_request({}, DaskConfig(defaults={"partitions": ["gpu", "cpu"]}), MINE, 0).partition == "gpu"


def test_account_template():
    config = DaskConfig(account_template="p{proposal}")
    assert resolve_request({"proposal": "20239999"}, config, MINE, 0).account == "p20239999"
    assert config.account("42") == "p42"
    assert config.account(None) is None


def test_fixed_account_without_placeholder():
    assert resolve_request({}, DaskConfig(account_template="daas"), MINE, 0).account == "daas"


def test_no_proposals():
    resolved = resolve_request({}, DaskConfig(), [], 0)
    assert resolved.proposal is None
    assert resolved.account is None
    assert resolved.max_workers == 8


def test_require_proposal_refuses_a_user_without_one():
    err = refused({}, DaskConfig(require_proposal=True), proposals=[])
    assert err.status == 403
    assert "proposal" in str(err)
    assert "proposals only" in str(err)


def test_require_proposal_accepts_a_user_with_one():
    assert resolve_request({}, DaskConfig(require_proposal=True), ["20231234"], 0).proposal == "20231234"


def test_running_below_max_clusters_is_fine():
    assert resolve_request({}, DaskConfig(), MINE, 1).proposal == "20231234"


# --- resolve_request: malformed (400) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, fragment",
    [
        ([], "the body must be a JSON object"),
        (["workers", 2], "the body must be a JSON object"),
        ("workers=2", "the body must be a JSON object"),
        (None, "the body must be a JSON object"),
        (42, "the body must be a JSON object"),
        ({"nodes": 2}, "nodes: Extra inputs are not permitted"),
        ({"account": "other"}, "account: Extra inputs are not permitted"),
        ({"workers": "2"}, "workers: Input should be a valid integer"),
        ({"workers": True}, "workers: Input should be a valid integer"),
        ({"workers": -1}, "workers: Input should be greater than or equal to 0"),
        ({"workers": 2.5}, "workers: Input should be a valid integer"),
        ({"workers": 2.0}, "workers: Input should be a valid integer"),
        ({"cores": 0}, "cores: Input should be greater than or equal to 1"),
        ({"cores": -2}, "cores: Input should be greater than or equal to 1"),
        ({"cores": "4"}, "cores: Input should be a valid integer"),
        ({"cores": True}, "cores: Input should be a valid integer"),
        ({"memory": "lots"}, "memory: memory 'lots' is not a size"),
        ({"memory": "4 gigabytes"}, "memory: memory '4 gigabytes' is not a size"),
        ({"memory": -5}, "memory: memory must not be negative"),
        ({"memory": True}, "memory"),
        ({"memory": 1.5}, "memory"),
        ({"walltime": "forever"}, "walltime: walltime 'forever' is not a duration"),
        ({"walltime": "1:99"}, "walltime: walltime '1:99' has minutes or seconds above 59"),
        ({"walltime": "1-25:00"}, "walltime: walltime '1-25:00' has minutes or seconds above 59 or hours above 23"),
        ({"walltime": -1}, "walltime: walltime must not be negative"),
        ({"walltime": True}, "walltime"),
        ({"workers": 1, "adapt": {"maximum": 2}}, "give either workers or adapt, not both"),
        ({"workers": 0, "adapt": {"maximum": 2}}, "give either workers or adapt, not both"),
        ({"adapt": {"minimum": 3, "maximum": 2}}, "adapt: Value error, minimum is above maximum"),
        ({"adapt": {"minimum": 1}}, "adapt.maximum: Field required"),
        ({"adapt": {}}, "adapt.maximum: Field required"),
        ({"adapt": {"minimum": 0, "maximum": 2, "step": 1}}, "adapt.step: Extra inputs are not permitted"),
        ({"adapt": {"maximum": 0}}, "adapt.maximum: Input should be greater than 0"),
        ({"adapt": {"minimum": -1, "maximum": 2}}, "adapt.minimum: Input should be greater than or equal to 0"),
        ({"adapt": {"maximum": "4"}}, "adapt.maximum: Input should be a valid integer"),
        ({"adapt": {"maximum": True}}, "adapt.maximum: Input should be a valid integer"),
        ({"adapt": {"maximum": 2.0}}, "adapt.maximum: Input should be a valid integer"),
        ({"adapt": [1, 4]}, "adapt: Input should be a valid dictionary"),
        ({"adapt": 4}, "adapt: Input should be a valid dictionary"),
        ({"server_name": "a/b"}, "server_name: String should match pattern"),
        ({"server_name": "../up"}, "server_name: String should match pattern"),
        ({"server_name": "a;b"}, "server_name: String should match pattern"),
        ({"server_name": "a b"}, "server_name: String should match pattern"),
        ({"server_name": "x" * 256}, "server_name: String should match pattern"),
        ({"server_name": 5}, "server_name"),
        ({"partition": 5}, "partition: Input should be a valid string"),
        ({"proposal": 20231234}, "proposal: Input should be a valid string"),
    ],
)
def test_malformed_requests_are_400(body, fragment):
    err = refused(body)
    assert err.status == 400
    assert fragment in str(err)


@pytest.mark.parametrize(
    "body, field",
    [
        # Zero memory reaches Slurm as --mem=0 (the whole node) and a zero wall time as -t 0:00:00 (no limit).
        ({"memory": 0}, "memory"),
        ({"memory": "0G"}, "memory"),
        ({"walltime": 0}, "walltime"),
        ({"walltime": "0:00:00"}, "walltime"),
    ],
)
def test_zero_memory_or_walltime_is_refused(body, field):
    err = refused(body)
    assert err.status == 400
    assert str(err).startswith(f"{field}:")


def test_longest_server_name_is_fine():
    longest = "x" * 255
    assert resolve_request({"server_name": longest}, SITE, MINE, 0, {longest: None}).server_name == longest


# --- resolve_request: not allowed (403) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, running, fragment",
    [
        ({"workers": 9}, 0, "workers: 9 is over your limit max_workers=8"),
        ({"workers": 1000}, 0, "max_workers=8"),
        ({"adapt": {"maximum": 9}}, 0, "workers: 9 is over your limit max_workers=8"),
        ({"adapt": {"minimum": 1, "maximum": 50}}, 0, "max_workers=8"),
        ({"cores": 5}, 0, "cores: 5 is over your limit max_cores=4"),
        ({"memory": "32G"}, 0, "memory: 32G is over your limit max_memory=16G"),
        ({"memory": 16385}, 0, "max_memory=16G"),
        ({"memory": "17G"}, 0, "max_memory"),
        ({"walltime": "9:00:00"}, 0, "walltime: 9:00:00 is over your limit max_walltime=8:00:00"),
        ({"walltime": 481}, 0, "max_walltime=8:00:00"),
        ({"walltime": "1-00:00:00"}, 0, "max_walltime"),
        ({"partition": "gpu2"}, 0, "partition: 'gpu2' is not offered (choose from cpu, gpu, bigmem)"),
        ({"partition": "cpu; rm -rf /"}, 0, "partition: 'cpu; rm -rf /' is not offered"),
        ({"partition": "gpu\n#SBATCH --qos=high"}, 0, "partition:"),
        ({"partition": "$(id)"}, 0, "partition:"),
        ({"partition": "CPU"}, 0, "partition: 'CPU' is not offered"),
        ({"proposal": "20220001"}, 0, "proposal: '20220001' is not one of your proposals"),
        ({"proposal": "20231234; rm -rf /"}, 0, "is not one of your proposals"),
        ({"proposal": ""}, 0, "proposal: '' is not one of your proposals"),
        ({}, 2, "clusters: 3 is over your limit max_clusters=2"),
        ({}, 5, "max_clusters=2"),
    ],
)
def test_over_limit_requests_are_403(body, running, fragment):
    err = refused(body, running=running)
    assert err.status == 403
    assert fragment in str(err)


def test_a_proposal_is_refused_to_a_user_without_any():
    err = refused({"proposal": "20231234"}, proposals=[])
    assert err.status == 403
    assert "is not one of your proposals" in str(err)


def test_limits_of_the_chosen_proposal_apply():
    config = DaskConfig(proposals=[{"match": "2023*", "limits": {"max_workers": 16}}])
    assert resolve_request({"workers": 16}, config, ["20231234"], 0).max_workers == 16
    err = refused({"workers": 16}, config, proposals=["20220001"])
    assert err.status == 403
    assert "max_workers=8" in str(err)
    assert "max_workers=16" in str(refused({"workers": 17}, config, proposals=["20231234"]))


# --- per-proposal limits -----------------------------------------------------------------------------------------


def test_limits_for_a_matching_rule():
    config = DaskConfig(proposals=[{"match": "2023*", "limits": {"max_workers": 16}}])
    assert config.limits_for("20231234").max_workers == 16
    # Only the named field differs; everything else (in the same units) is the defaults'.
    assert config.limits_for("20231234") == config.defaults.model_copy(update={"max_workers": 16})


def test_limits_for_no_matching_rule_is_the_defaults():
    config = DaskConfig(proposals=[{"match": "2023*", "limits": {"max_workers": 16}}])
    assert config.limits_for("20220001") == config.defaults
    assert config.limits_for("20220001") == Limits()
    assert config.limits_for(None) == config.defaults
    assert config.limits_for("x2023") == config.defaults


def test_first_matching_rule_wins():
    config = DaskConfig(
        proposals=[
            {"match": "20231*", "limits": {"max_workers": 32}},
            {"match": "2023*", "limits": {"max_workers": 16, "max_cores": 8}},
        ]
    )
    assert config.limits_for("20231234").max_workers == 32
    assert config.limits_for("20231234").max_cores == 4
    assert config.limits_for("20239999").max_workers == 16
    assert config.limits_for("20239999").max_cores == 8


def test_rules_are_case_sensitive_globs():
    config = DaskConfig(proposals=[{"match": "MX-???", "limits": {"max_clusters": 5}}])
    assert config.limits_for("MX-123").max_clusters == 5
    assert config.limits_for("mx-123").max_clusters == 2
    assert config.limits_for("MX-1234").max_clusters == 2


def test_a_rule_may_change_wall_times_in_slurm_grammar():
    config = DaskConfig(proposals=[{"match": "2023*", "limits": {"max_walltime": "12:00:00"}}])
    limits = config.limits_for("20231234")
    assert limits.max_walltime == 12 * 3600
    assert limits.walltime == 3600


def test_defaults_set_in_the_file_survive_a_rule():
    config = DaskConfig(
        defaults={"walltime": "2:00:00", "max_walltime": "4:00:00", "memory": "2G"},
        proposals=[{"match": "2023*", "limits": {"max_workers": 16}}],
    )
    limits = config.limits_for("20231234")
    assert (limits.walltime, limits.max_walltime, limits.memory) == (7200, 14400, 2048)
    assert resolve_request({}, config, ["20231234"], 0).walltime_seconds == 7200


@pytest.mark.parametrize(
    "raw",
    [
        {"proposals": [{"match": "2023*", "limits": {"max_wrkers": 16}}]},
        {"proposals": [{"match": "2023*", "limits": {"max_workers": 0}}]},
        {"proposals": [{"match": "2023*", "limits": {"max_workers": "many"}}]},
        {"proposals": [{"match": "2023*", "limits": {"cores": 8}}]},
        {"proposals": [{"match": "2023*", "limits": {"memory": "32G"}}]},
        {"proposals": [{"match": "2023*", "limits": {"max_walltime": "0:30:00"}}]},
        {"proposals": [{"match": "2023*", "limits": {"partitions": []}}]},
        {"proposals": [{"match": "2023*", "limits": {"partitions": ["cpu; rm -rf /"]}}]},
        {"proposals": [{"match": "2023 *", "limits": {}}]},
        {"proposals": [{"match": "", "limits": {}}]},
        {"proposals": [{"match": "2023*"}]},
        {"proposals": [{"match": "2023*", "limits": {}, "extra": 1}]},
        {"defaults": {"cores": 8}},
        {"defaults": {"memory": "32G"}},
        {"defaults": {"walltime": "9:00:00"}},
        {"defaults": {"max_workers": 0}},
        {"defaults": {"partitions": []}},
        {"defaults": {"partitions": ["-cpu"]}},
        {"defaults": {"max_memory": "lots"}},
        {"unknown": 1},
        {"account_template": ""},
        {"account_template": "p {proposal}"},
        {"account_template": "{proposal};rm"},
        {"account_template": "{project}"},
        {"account_template": "a" * 101},
    ],
)
def test_bad_config_is_refused(raw):
    with pytest.raises(ValueError):
        DaskConfig.model_validate(raw)


def test_bad_account_template_names_the_field():
    with pytest.raises(ValueError, match="account_template"):
        DaskConfig(account_template="p {proposal}")


def test_limits_defaults_within_bounds_message():
    with pytest.raises(ValueError, match="cores is above max_cores"):
        Limits(cores=8)


# --- resolve_scale / resolve_adapt -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [({"workers": 3}, 3), ({"workers": 0}, 0), ({"workers": 8}, 8)])
def test_resolve_scale(raw, expected):
    assert resolve_scale(raw, 8) == expected


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"workers": "3"}, "workers: a whole number >= 0"),
        ({}, 'the body must be {"workers": <number>}'),
        ({"workers": 3, "x": 1}, 'the body must be {"workers": <number>}'),
        ([], 'the body must be {"workers": <number>}'),
        (None, 'the body must be {"workers": <number>}'),
        ("3", 'the body must be {"workers": <number>}'),
        ({"workers": -1}, "workers: a whole number >= 0"),
        ({"workers": True}, "workers: a whole number >= 0"),
        ({"workers": 2.0}, "workers: a whole number >= 0"),
        ({"workers": None}, "workers: a whole number >= 0"),
    ],
)
def test_resolve_scale_malformed(raw, fragment):
    with pytest.raises(RequestError) as err:
        resolve_scale(raw, 8)
    assert err.value.status == 400
    assert fragment in str(err.value)


def test_resolve_scale_over_the_limit():
    with pytest.raises(RequestError) as err:
        resolve_scale({"workers": 9}, 8)
    assert err.value.status == 403
    assert "workers: 9 is over your limit max_workers=8" in str(err.value)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"minimum": 1, "maximum": 4}, Adapt(minimum=1, maximum=4)),
        ({"maximum": 4}, Adapt(minimum=0, maximum=4)),
        ({"minimum": 8, "maximum": 8}, Adapt(minimum=8, maximum=8)),
    ],
)
def test_resolve_adapt(raw, expected):
    assert resolve_adapt(raw, 8) == expected


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"minimum": 5, "maximum": 4}, "minimum is above maximum"),
        ({"minimum": 1}, "maximum: Field required"),
        ({}, "maximum: Field required"),
        ({"minimum": -1, "maximum": 4}, "minimum: Input should be greater than or equal to 0"),
        ({"maximum": 0}, "maximum: Input should be greater than 0"),
        ({"maximum": 4, "x": 1}, "x: Extra inputs are not permitted"),
        ({"minimum": "a", "maximum": 4}, "minimum: Input should be a valid integer"),
        ({"minimum": "1", "maximum": "4"}, "minimum: Input should be a valid integer"),
        ({"maximum": True}, "maximum: Input should be a valid integer"),
        ({"maximum": 2.0}, "maximum: Input should be a valid integer"),
        ({"maximum": None}, "maximum: Input should be a valid integer"),
        ([], "Input should be a valid dictionary"),
        (None, "Input should be a valid dictionary"),
        ("4", "Input should be a valid dictionary"),
    ],
)
def test_resolve_adapt_malformed(raw, fragment):
    with pytest.raises(RequestError) as err:
        resolve_adapt(raw, 8)
    assert err.value.status == 400
    assert fragment in str(err.value)


def test_resolve_adapt_over_the_limit():
    with pytest.raises(RequestError) as err:
        resolve_adapt({"minimum": 1, "maximum": 9}, 8)
    assert err.value.status == 403
    assert "workers: 9 is over your limit max_workers=8" in str(err.value)


# --- load_dask_config --------------------------------------------------------------------------------------------

SITE_YAML = """\
defaults:
  max_workers: 4
  max_memory: 32G
  max_walltime: "12:00:00"
  partitions: [cpu, gpu]
  memory: 2G
  walltime: 90
proposals:
  - match: "2023*"
    limits:
      max_workers: 16
      partitions: [gpu]
account_template: "p{proposal}"
require_proposal: true
"""


def test_load_dask_config(tmp_path):
    path = tmp_path / "dask.yaml"
    path.write_text(SITE_YAML, encoding="utf-8")
    config = load_dask_config(path)
    assert config.defaults.max_workers == 4
    assert config.defaults.max_memory == 32768
    assert config.defaults.max_walltime == 43200
    assert config.defaults.partitions == ["cpu", "gpu"]
    assert config.defaults.memory == 2048
    assert config.defaults.walltime == 5400
    assert config.account_template == "p{proposal}"
    assert config.require_proposal is True
    assert config.limits_for("20220001") == config.defaults
    special = config.limits_for("20231234")
    assert (special.max_workers, special.partitions) == (16, ["gpu"])
    assert (special.memory, special.walltime, special.max_walltime) == (2048, 5400, 43200)
    assert load_dask_config(str(path)) == config


def test_load_empty_file_is_all_defaults(tmp_path):
    path = tmp_path / "dask.yaml"
    path.write_text("", encoding="utf-8")
    assert load_dask_config(path) == DaskConfig()
    path.write_text("# nothing here\n", encoding="utf-8")
    assert load_dask_config(path) == DaskConfig()


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("defaults: [\n", ["not valid YAML"]),
        ("defaults:\n  max_workers: 0\n", ["defaults.max_workers", "greater than 0"]),
        ("defaults:\n  max_wrkers: 3\n", ["defaults.max_wrkers", "Extra inputs are not permitted"]),
        ("defaults:\n  max_memory: lots\n", ["defaults.max_memory"]),
        ("account_template: 'p {proposal}'\n", ["account_template"]),
        ("proposals:\n  - match: '2023*'\n    limits: {max_wrkers: 3}\n", ["max_wrkers"]),
        ("proposals:\n  - match: '2023*'\n    limits: {cores: 8}\n", ["cores is above max_cores"]),
        ("- 1\n- 2\n", ["expected a mapping"]),
    ],
)
def test_load_bad_file_names_the_path_and_field(tmp_path, text, fragments):
    path = tmp_path / "dask.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DaskConfigError) as err:
        load_dask_config(path)
    message = str(err.value)
    assert f"{path}: " in message
    for fragment in fragments:
        assert fragment in message


def test_load_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "dask.yaml"
    with pytest.raises(DaskConfigError) as err:
        load_dask_config(path)
    assert str(err.value).startswith(f"{path}: cannot read Dask limits")


# --- ResolvedCluster.summary -------------------------------------------------------------------------------------


def test_summary():
    resolved = resolve_request(
        {"adapt": {"minimum": 1, "maximum": 6}, "cores": 2, "memory": "1536M", "walltime": "1-02:03:04"},
        DaskConfig(defaults={"max_walltime": "2-00:00:00"}),
        ["20231234"],
        0,
    )
    assert resolved.summary() == {
        "proposal": "20231234",
        "partition": "cpu",
        "cores": 2,
        "memory": "1536M",
        "walltime": "1-02:03:04",
        "workers": 0,
        "adapt": {"minimum": 1, "maximum": 6},
        "idle_timeout": 1800,
    }


def test_summary_of_fixed_workers():
    resolved = ResolvedCluster(
        proposal=None,
        account=None,
        partition="gpu",
        cores=4,
        memory_mb=8192,
        walltime_seconds=5400,
        workers=3,
        adapt=None,
        idle_timeout=600,
        max_workers=8,
        server_name="",
    )
    assert resolved.summary() == {
        "proposal": None,
        "partition": "gpu",
        "cores": 4,
        "memory": "8G",
        "walltime": "1:30:00",
        "workers": 3,
        "adapt": None,
        "idle_timeout": 600,
    }


def test_resolved_round_trips_through_json():
    resolved = resolve_request({"adapt": {"maximum": 4}, "server_name": "gpu"}, SITE, MINE, 0, {"gpu": "gpu"})
    assert ResolvedCluster.model_validate(resolved.model_dump(mode="json")) == resolved


# --- the example file in profiles/ -------------------------------------------------------------------------------


def test_example_file_loads():
    config = load_dask_config(EXAMPLE)
    assert config.defaults.partitions == ["cpu", "gpu"]
    assert config.defaults.cores <= config.defaults.max_cores
    assert config.account_template == "{proposal}"
    assert config.account("20231234") == "20231234"
    assert [(rule.match, rule.profile) for rule in config.proposals] == [("2023*", None), (None, "training*")]


def test_example_file_limits_for():
    config = load_dask_config(EXAMPLE)
    special = config.limits_for("20231234")
    assert special.max_workers > config.defaults.max_workers
    assert config.limits_for("20220001") == config.defaults
    assert special.walltime == config.defaults.walltime
    assert special.max_walltime == config.defaults.max_walltime
    workers = special.max_workers
    assert resolve_request({"workers": workers}, config, ["20231234"], 0).workers == workers
    assert refused({"workers": workers}, config, proposals=["20220001"]).status == 403
    assert resolve_request({"partition": "gpu"}, config, ["20220001"], 0).partition == "gpu"
    assert config.limits_for("20220001", "training-2026").max_workers == 2


@pytest.mark.parametrize(
    ("proposal", "profile", "max_workers"),
    [
        ("20231234", "training", 1),  # the profile rule comes first
        ("20231234", "cpu", 16),
        ("20220001", "training-2", 1),
        ("20220001", None, 8),  # a request tied to no server meets no profile rule
        (None, "gpu", 4),
    ],
)
def test_rules_by_profile_and_proposal(proposal, profile, max_workers):
    config = DaskConfig(
        proposals=[
            {"profile": "training*", "limits": {"max_workers": 1}},
            {"match": "2023*", "limits": {"max_workers": 16}},
            {"match": "*", "profile": "gpu", "limits": {"max_workers": 2}},
            {"profile": "gpu", "limits": {"max_workers": 4}},
        ]
    )
    assert config.limits_for(proposal, profile).max_workers == max_workers
    proposals = [proposal] if proposal else []
    servers = {"s": profile} if profile else {}
    assert resolve_request({"workers": max_workers}, config, proposals, 0, servers).workers == max_workers
    with pytest.raises(RequestError) as refused:
        resolve_request({"workers": max_workers + 1}, config, proposals, 0, servers)
    assert refused.value.status == 403 and f"max_workers={max_workers}" in str(refused.value)


def test_a_rule_names_a_proposal_or_a_profile():
    with pytest.raises(ValidationError, match="names a proposal pattern"):
        DaskConfig(proposals=[{"limits": {"max_workers": 1}}])


# --- limits from the caller's running servers (issue #14) ------------------------------------------------------

PROFILED = DaskConfig(
    defaults={"max_workers": 8, "partitions": ["cpu", "gpu"]},
    proposals=[
        {"profile": "training*", "limits": {"max_workers": 1, "max_memory": "2G", "memory": "1G", "walltime": "30"}},
        {"profile": "gpu", "limits": {"partitions": ["gpu"]}},
    ],
)


@pytest.mark.parametrize(
    ("body", "servers", "token_server", "max_workers"),
    [
        ({}, {"training": "training"}, None, 1),  # no server named: the running server's rule still applies
        ({}, {"training": "training"}, "training", 1),  # from the server's own token
        ({}, {"training": "training", "big": "cpu"}, None, 1),  # several: the tightest
        ({"server_name": "big"}, {"training": "training", "big": "cpu"}, None, 8),  # a running server named
        ({}, {"training": "training", "big": "cpu"}, "big", 8),  # ... or calling with its token
        ({}, {}, None, 8),  # no server runs: the proposal's limits
    ],
)
def test_limits_come_from_the_callers_running_servers(body, servers, token_server, max_workers):
    resolved = resolve_request(body | {"workers": 1}, PROFILED, MINE, 0, servers, token_server)
    assert resolved.max_workers == max_workers
    assert resolved.server_name == body.get("server_name", token_server)


@pytest.mark.parametrize(
    ("body", "servers", "token_server"),
    [
        ({"server_name": "gone"}, {"training": "training"}, None),
        ({}, {"training": "training"}, "gone"),
        ({"server_name": "big"}, {}, None),
    ],
)
def test_a_server_that_is_not_running_gives_no_limits(body, servers, token_server):
    with pytest.raises(RequestError) as refused:
        resolve_request(body, PROFILED, MINE, 0, servers, token_server)
    assert refused.value.status == 403 and "is not a running server of yours" in str(refused.value)


def test_tightest_takes_each_bound_and_default_at_its_lowest():
    training, plain = PROFILED.limits_for(None, "training"), PROFILED.limits_for(None, "cpu")
    tight = tightest([plain, training])
    assert (tight.max_workers, tight.max_memory, tight.memory) == (1, 2048, 1024)
    assert tight.walltime == 30 * 60 and tight.max_walltime == plain.max_walltime
    assert tight.partitions == ["cpu", "gpu"]
    assert tightest([plain]) is plain


def test_tightest_keeps_shared_partitions_only():
    assert tightest([PROFILED.limits_for(None, "cpu"), PROFILED.limits_for(None, "gpu")]).partitions == ["gpu"]
    cpu_only = DaskConfig(proposals=[{"profile": "a", "limits": {"partitions": ["cpu"]}}]).limits_for(None, "a")
    with pytest.raises(RequestError, match="share no partition"):
        tightest([cpu_only, PROFILED.limits_for(None, "gpu")])
