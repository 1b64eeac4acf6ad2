"""The spawn form: reading posts back into options, and rendering from profiles."""

from __future__ import annotations

import pytest

from daas_core.proposals import Proposal
from daas_spawner.form import form_to_options, render_form, template_environment
from daas_spawner.options import OptionsError, UserAccess, resolve_options


@pytest.mark.parametrize(
    "form, expected",
    [
        ({}, {}),
        ({"profile": ["gpu"]}, {"profile": "gpu"}),
        ({"profile": ["gpu"], "cores": [""], "memory": []}, {"profile": "gpu"}),
        ({"profile": ["gpu"], "gpus": ["", "2"]}, {"profile": "gpu", "gpus": "2"}),
        ({"profile": ["gpu"], "colour": ["blue"]}, {"profile": "gpu", "colour": "blue"}),
        # namespaced widgets: only the chosen profile's count
        ({"profile": ["gpu"], "gpu.gpus": ["1"], "cpu.cores": ["max"]}, {"profile": "gpu", "gpus": "1"}),
        ({"profile": ["cpu"], "cpu.cores": ["min"], "cpu.cores_custom": ["6"]}, {"profile": "cpu", "cores": "6"}),
        (
            {"profile": ["cpu"], "cpu.walltime": ["1:00:00"], "cpu.walltime_custom": [""]},
            {"profile": "cpu", "walltime": "1:00:00"},
        ),
        ({"profile": ["cpu"], "cpu.walltime_custom": ["2:30:00"]}, {"profile": "cpu", "walltime": "2:30:00"}),
        ({"gpu.gpus": ["1"]}, {}),
    ],
)
def test_form_to_options(site, form, expected):
    assert form_to_options(form, site.profiles) == expected


@pytest.mark.parametrize("values", [["1", "2"], ["1", "1"], ["1", "", "2"]])
def test_duplicates_are_refused(site, values):
    with pytest.raises(OptionsError) as info:
        form_to_options({"profile": ["cpu"], "cores": values}, site.profiles)
    assert info.value.field == "cores"


def test_a_field_both_plain_and_namespaced_is_refused(site):
    with pytest.raises(OptionsError) as info:
        form_to_options({"profile": ["cpu"], "cores": ["1"], "cpu.cores": ["2"]}, site.profiles)
    assert info.value.field == "cores"


@pytest.mark.parametrize("key", ["nope.cores", "cpu;id.cores", "../x.cores"])
def test_unknown_namespaces_are_refused(site, key):
    with pytest.raises(OptionsError):
        form_to_options({"profile": ["cpu"], key: ["1"]}, site.profiles)


@pytest.mark.parametrize("key", ["colour", "cpu.colour"])
def test_unknown_fields_are_named_by_the_validator(site, key):
    with pytest.raises(OptionsError) as info:
        resolve_options(form_to_options({"profile": ["cpu"], key: ["blue"]}, site.profiles), site, UserAccess())
    assert info.value.field == "colour"


def test_form_strings_resolve_like_json(site):
    form = {
        "profile": ["gpu"],
        "gpu.cores": ["4"],
        "gpu.memory": ["8G"],
        "gpu.gpus": ["2"],
        "gpu.walltime": ["4:00:00"],
    }
    from_form = resolve_options(form_to_options(form, site.profiles), site, UserAccess())
    raw = {"profile": "gpu", "cores": 4, "memory": 8192, "gpus": 2, "walltime": 240}
    from_json = resolve_options(raw, site, UserAccess())
    assert from_form == from_json


SLURM = {
    "stale": False,
    "taken_at": "2026-11-22T04:00:00Z",
    "partitions": {
        "gpu": {
            "nodes_idle": 0,
            "nodes_total": 1,
            "nodes_down": 0,
            "cores_idle": 0,
            "cores_total": 8,
            "gpus_free": 0,
            "gpus_total": 2,
            "memory_free_mb": 1024,
            "memory_total_mb": 16000,
        },
    },
}
AVAILABILITY = {"slurm": SLURM}  # what each backend among the profiles shows, by name


def test_render_lists_given_profiles_with_labelled_fields(site):
    profiles = [site.get("cpu"), site.get("gpu")]
    page = render_form(template_environment(), profiles, AVAILABILITY)
    assert 'value="cpu"' in page and 'value="gpu"' in page
    assert 'value="power9"' not in page
    for field in ("gpu.cores", "gpu.walltime", "gpu.gpus", "gpu.partition", "gpu.memory", "gpu.gpu_type"):
        assert f'name="{field}"' in page
    assert '<label for="daas-gpu-memory">' in page
    assert "(full: jobs queue)" in page  # gpu has no idle core
    assert 'data-partition="cpu"' in page  # unknown availability still listed


def test_render_escapes_profile_text(site):
    hostile = site.get("cpu").model_copy(update={"display_name": "<script>alert(1)</script>"})
    page = render_form(template_environment(), [hostile], None)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


def test_render_marks_stale_data(site):
    page = render_form(template_environment(), [site.get("gpu")], {"slurm": dict(SLURM, stale=True)})
    assert "the scheduler is not answering" in page


def test_chosen_values_preselect(site):
    page = render_form(
        template_environment(), [site.get("cpu"), site.get("gpu")], None, {"profile": "gpu", "gpus": "2"}
    )
    assert 'id="daas-profile-gpu" value="gpu" checked' in page
    assert '<option value="2" selected>' in page


def test_site_templates_override_the_builtin(site, tmp_path):
    (tmp_path / "form.html").write_text("site form for {{ profiles|length }} profiles")
    page = render_form(template_environment((str(tmp_path),)), [site.get("cpu")], None)
    assert page == "site form for 1 profiles"


def test_the_environment_is_reused_so_templates_compile_once():
    assert template_environment(()) is template_environment(())


def test_proposals_are_offered_with_titles_and_escaped(site):
    proposals = [
        Proposal(id="20231234", title="Strain in <b>alloys</b>", instrument="ID11"),
        Proposal(id="20220001"),
    ]
    access = UserAccess(proposals=("20231234", "20220001"))
    page = render_form(template_environment(), [site.get("cpu")], None, proposals=proposals, access=access)
    assert 'name="cpu.proposal"' in page
    assert '<option value="20231234">20231234 — Strain in &lt;b&gt;alloys&lt;/b&gt; (ID11)</option>' in page
    assert '<option value="20220001">20220001</option>' in page


def test_no_proposals_no_proposal_field(site):
    page = render_form(template_environment(), [site.get("cpu")], None)
    assert 'name="cpu.proposal"' not in page
    assert "Proposal</label>" not in page


def test_a_proposal_server_offers_only_its_proposal(site):
    access = UserAccess(proposals=("20231234", "20220001"), server_proposal="20220001")
    page = render_form(template_environment(), [site.get("cpu")], None, access=access)
    assert '<option value="20220001">' in page
    assert '<option value="20231234">' not in page


def test_a_proposal_from_the_link_is_preselected(site):
    access = UserAccess(proposals=("20231234", "20220001"))
    chosen = {"profile": "cpu", "proposal": "20220001"}
    page = render_form(template_environment(), [site.get("cpu")], None, chosen, access=access)
    assert '<option value="20220001" selected>' in page


def test_the_user_office_warning_is_shown(site):
    page = render_form(template_environment(), [site.get("cpu")], None, warning="The user office <is> down")
    assert 'role="alert">The user office &lt;is&gt; down</div>' in page


def test_render_names_desktop_environments(site):
    cpu = site.get("cpu")
    environments = [*cpu.environments, cpu.environments[0].model_copy(update={"id": "xfce", "kind": "desktop"})]
    page = render_form(template_environment(), [cpu.model_copy(update={"environments": environments})], None)
    assert '<option value="xfce">DaaS Python (remote desktop)</option>' in page
    assert '<option value="daas">DaaS Python</option>' in page
