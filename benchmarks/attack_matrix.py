"""The security attack matrix as one script: a pass/fail line per case, against the real components.

    /opt/jupyterhub-daas/venv/bin/python benchmarks/attack_matrix.py [--json out.json]

The cases are the integration tests' own (so the matrix is written once): the daas-data service's path,
token and cross-user attacks, directly and through the proxy (issue #5); the daas-dask service's
cross-user, token and over-limit attacks (issue #6), and its scheduler, dashboard, report and limit attacks
(#14); the server-address endpoint's (#2); logins that would become another person's or a system account,
services reading people's tokens, tokens at rest, port hijack, what a person's reads may cost (memory, CPU,
concurrent readers, decompression bombs) and a cut-off sbatch (#14). pytest starts the real Slurm test
cluster, hubs, proxies and services as the tests do. Exit status 1 if any case fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, RESULTS, environment, require_fresh_install

MATRIX = {
    "data": [
        "tests/integration/test_data.py::test_attacks_are_refused_and_leak_nothing",
        "tests/integration/test_data.py::test_bob_cannot_read_alices_data",
        "tests/integration/test_data.py::test_tokens_without_the_service_scope_and_no_token_are_refused",
        "tests/integration/test_data.py::test_a_preview_that_would_decompress_a_huge_chunk_is_refused",
        "tests/integration/test_data.py::test_a_read_over_the_memory_limit_fails_cleanly_and_the_service_stays_up",
        "tests/integration/test_data.py::test_a_read_over_the_cpu_limit_is_ended_and_leaves_no_reader",
        "tests/integration/test_data.py::test_a_person_has_at_most_three_readers_at_once",
        "tests/integration/test_data.py::test_a_timeout_kills_the_reader_not_only_sudo",
    ],
    "dask": [
        "tests/integration/test_dask.py::test_bob_cannot_see_steer_stop_or_open_alices_cluster",
        "tests/integration/test_dask.py::test_the_dashboards_live_plots_reach_only_the_owner",
        "tests/integration/test_dask.py::test_bob_cannot_connect_to_alices_scheduler",
        "tests/integration/test_dask.py::test_no_token_and_a_token_without_the_scope_are_refused",
        "tests/integration/test_dask.py::test_bad_and_over_limit_requests_start_nothing",
        "tests/integration/test_dask.py::test_scale_and_adapt_are_held_to_the_limit",
        # issue #14: user code off the hub host, service-made credentials, limits the owner cannot change
        "tests/integration/test_dask.py::test_the_scheduler_runs_in_a_slurm_job_of_the_cluster_not_under_the_service",
        "tests/integration/test_dask.py::test_another_users_code_cannot_fetch_a_dashboard",
        "tests/integration/test_dask.py::test_a_forged_ready_report_is_refused",
        "tests/integration/test_dask.py::test_a_request_without_server_name_gets_the_limits_of_the_callers_running_server",
        "tests/integration/test_dask.py::test_the_owners_dask_config_does_not_change_worker_jobs",
        "tests/integration/test_dask.py::test_the_worker_cap_holds_whatever_the_owners_scheduler_asks",
        "tests/unit/test_dask_dashboard_socket.py",
    ],
    "server address endpoint": ["tests/integration/test_address_endpoint.py"],
    "server tokens and ports": [
        "tests/integration/test_slurm_spawn.py::test_no_token_at_rest_and_the_bootstrap_secret_works_once",
        "tests/integration/test_port_hijack.py::test_on_slurm_a_taken_port_never_gets_the_servers_traffic",
        "tests/integration/test_port_hijack.py::test_locally_a_taken_port_never_gets_the_servers_traffic",
    ],
    "identity -> Unix account": [
        "tests/integration/test_oidc_login.py::test_someone_calling_themselves_bob_cannot_log_in_or_spawn_as_bob",
        "tests/integration/test_oidc_login.py::test_a_person_named_like_a_system_account_cannot_log_in",
        "tests/integration/test_oidc_login.py::test_a_person_linked_to_another_account_must_log_in_again",
        "tests/integration/test_oidc_account_claim.py::test_the_claim_names_the_account_not_the_chosen_user_name",
        "tests/integration/test_oidc_account_claim.py::test_a_claim_that_is_not_an_account_name_as_it_stands_is_refused",
        "tests/integration/test_oidc_account_claim.py::test_a_person_named_like_a_system_account_gets_no_server_as_it",
    ],
    "services and people's tokens": ["tests/integration/test_proposals_api.py"],
    "scheduler commands": [
        "tests/integration/test_scheduler_resilience.py::test_an_sbatch_that_outlives_its_timeout_leaves_no_job",
    ],
}


def outcome(case: ET.Element) -> str:
    for tag, word in (("failure", "FAIL"), ("error", "FAIL"), ("skipped", "SKIP")):
        if case.find(tag) is not None:
            return word
    return "PASS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=RESULTS / "attack_matrix.json", help="results file")
    args = parser.parse_args()
    require_fresh_install()
    report = Path(tempfile.mkdtemp(prefix="daas-attacks-")) / "junit.xml"
    began = time.monotonic()
    ids = [test for tests in MATRIX.values() for test in tests]
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *ids],
        cwd=REPO,
        check=False,
    )
    cases = []
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        area = next((name for name, tests in MATRIX.items() if any(module in test for test in tests)), module)
        cases.append({"area": area, "case": case.get("name", ""), "result": outcome(case)})
    print()
    for case in cases:
        print(f"{case['result']}  {case['area']}: {case['case']}")
    failed = sum(1 for c in cases if c["result"] == "FAIL")
    print(f"\n{len(cases)} cases: {len(cases) - failed} passed, {failed} failed")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"environment": environment(), "elapsed_s": round(time.monotonic() - began, 1), "cases": cases}, indent=2
        )
        + "\n"
    )
    return 1 if failed or not cases else 0


if __name__ == "__main__":
    sys.exit(main())
