"""Fuzzing user options (issue #7, hardening): generated REST bodies and form posts against a real hub.

    /opt/jupyterhub-daas/venv/bin/python benchmarks/fuzz_options.py [--rest N] [--form N] [--json out.json]

A real JupyterHub with the DaaS spawner on the Slurm test cluster (tests/integration's SlurmHub:
profiles/facility.yaml, scheduler commands through logging wrappers) takes hypothesis-generated input as
alice: JSON bodies of every shape on `POST /hub/api/users/alice/server` (which JupyterHub writes into
user_options) and field lists on the spawn form's POST. It counts:

- answers >= 500 (goal 0): the validator must turn every bad input into a 400;
- refused requests that still ran sbatch (goal 0);
- accepted requests whose job holds anything unvalidated (goal 0): every sbatch argument must match the
  grammar of a resolved option of that profile, and the batch script, line by line, the hub's template
  (the embedded launcher byte for byte, `export NAME=<one shell word>` lines with known names,
  DAAS_OPTIONS a summary of known keys).

Accepted requests are real jobs; each is checked, then stopped. Needs ``bash tests/cluster/slurm.sh start``.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shlex
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import require_fresh_install  # noqa: E402
from daas_spawner.backends.slurm.commands import LAUNCHER_EOF, launcher_source  # noqa: E402
from tests.integration.conftest import SlurmHub  # noqa: E402
from tests.integration.slurm import batch_script  # noqa: E402

KEYS = ["profile", "proposal", "partition", "cores", "memory", "gpus", "gpu_type", "walltime", "feature", "environment"]
PROFILES = ["cpu", "gpu", "power9", "staff-only", "nope", ""]
VALID = ["cpu", "gpu", "power9", "tesla", "min", "medium", "max", "whole_node", "2G", "512M", "1:00:00", "4:00:00",
         "daas", "container", "1", "2", "8"]  # fmt: skip
INJECTIONS = ["1\n#SBATCH --uid=0", "cpu; id", "$(id)", "`id`", "x' ; touch /tmp/pwned; '", "../../bin", "\x00",
              "-p gpu", "--uid=0", "1 --exclusive", "%j", "{username}", "\u202e", "9" * 40]  # fmt: skip

SBATCH_ARG = re.compile(
    r"^(--parsable|--nodes=1|--ntasks=1|--no-requeue|--exclusive|--mem=0|--job-name=jupyterhub-daas|--chdir=/home/alice"
    r"|--output=/home/alice/jupyterhub-daas-%j\.log|--partition=(cpu|gpu|power9)|--cpus-per-task=[1-8]"
    r"|--mem=\d{3,5}M|--gres=gpu(:tesla)?:[12]|--constraint=(power9|ppc64le)"
    r"|--time=(\d{1,2}:\d\d:\d\d|\d-\d\d:\d\d:\d\d)|--account=[A-Za-z0-9_.:+-]{1,100})$"
)
ENV_NAME = re.compile(r"^(JUPYTERHUB_[A-Z_]+|JPY_[A-Z_]+|DAAS_[A-Z_]+|PATH|PYTHONUNBUFFERED|LANG|SHELL|USER|HOME)$")
SUMMARY_KEYS = {"profile", "backend", "partition", "cores", "whole_node", "memory", "memory_mb", "gpus", "gpu_type",
                "walltime", "walltime_seconds", "feature", "environment", "proposal"}  # fmt: skip

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(VALID + INJECTIONS),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
near_valid = st.fixed_dictionaries(
    {"profile": st.sampled_from(PROFILES)},
    optional={key: st.one_of(st.sampled_from(VALID + INJECTIONS), json_scalar) for key in KEYS[1:]},
)
rest_body = st.one_of(
    near_valid,
    near_valid,
    st.dictionaries(st.sampled_from([*KEYS, "user_options", "image", "cmd"]), json_value, max_size=5),
    json_value,
)
form_key = st.one_of(
    st.sampled_from(KEYS),
    st.builds(lambda p, k: f"{p}.{k}", st.sampled_from(PROFILES), st.sampled_from([*KEYS, "cores_custom"])),
    st.text(max_size=12),
)
form_fields = st.lists(
    st.tuples(form_key, st.one_of(st.sampled_from(VALID + INJECTIONS), st.text(max_size=30))), max_size=8
).map(lambda fields: [("profile", "cpu"), *fields] if len(fields) % 3 else fields)


def script_problems(script: str) -> list[str]:
    """What in a batch script is not the hub's template filled with validated values."""
    launcher = launcher_source().rstrip("\n")
    start = script.find(f"<<'{LAUNCHER_EOF}'")
    body_start = script.index("\n", start) + 1
    body_end = script.index(f"\n{LAUNCHER_EOF}\n", body_start)
    problems = [] if script[body_start:body_end] == launcher else ["the embedded launcher differs"]
    outside = script[:body_start].splitlines()[:-1] + script[body_end:].splitlines()[2:]
    for line in outside:
        if line in ("#!/bin/bash", "#!/bin/bash -l", "set -eu") or line.startswith("# jupyterhub-daas single-user"):
            continue
        words = shlex.split(line)
        if words[0] == "export" and len(words) == 2:
            name, _, value = words[1].partition("=")
            if not ENV_NAME.match(name) or re.search(r"[\x00-\x1f\x7f]", value):
                problems.append(f"environment {name!r}")
            elif name == "DAAS_OPTIONS" and not set(json.loads(value)) <= SUMMARY_KEYS:
                problems.append(f"DAAS_OPTIONS keys {sorted(json.loads(value))}")
        elif words[:3] in (["exec", "python3", "-c"], ["exec", "apptainer", "exec"]) or words[:2] == ["module", "load"]:
            continue
        else:
            problems.append(f"line {line[:80]!r}")
    return problems


class Fuzz:
    """The hub, alice's token and browser session, and the counts."""

    def __init__(self, workdir: Path) -> None:
        self.slurm = SlurmHub(workdir, extra_config="c.JupyterHub.log_level = 'INFO'")
        self.hub = self.slurm.hub
        self.counts: Counter[str] = Counter()
        self.findings: list[dict[str, Any]] = []

    def start(self) -> None:
        self.slurm.start()
        self.token = self.hub.token_for("alice", ["servers!user=alice"])
        self.browser = httpx.Client(base_url=self.hub.url, follow_redirects=False, timeout=60)
        self.browser.get("/hub/login")
        xsrf = self.browser.cookies.get("_xsrf")
        self.browser.post("/hub/login", data={"username": "alice", "password": "daas-test-password", "_xsrf": xsrf})
        page = self.browser.get("/hub/spawn")
        self.action = html.unescape(re.search(r'<form[^>]*action="([^"]+)"', page.text, re.DOTALL).group(1))

    def finding(self, kind: str, problem: str, sent: Any, **details: Any) -> None:
        self.findings.append({"kind": kind, "problem": problem, "sent": repr(sent), **details})

    def record(self, kind: str, sent: Any, response: httpx.Response) -> None:
        sbatch_before = self.sbatch_count
        accepted = response.status_code in (201, 202) or (kind == "form" and response.status_code == 302)
        self.counts[f"{kind} {response.status_code}"] += 1
        if response.status_code >= 500:
            self.finding(kind, "HTTP 5xx", sent, answer=response.text[:500])
        if accepted:
            self.check_job(kind, sent)
        elif self.slurm.commands.count("sbatch") != sbatch_before:
            self.finding(kind, "refused but submitted", sent)
        self.sbatch_count = self.slurm.commands.count("sbatch")

    def check_job(self, kind: str, sent: Any) -> None:
        self.counts[f"{kind} accepted"] += 1
        deadline = time.monotonic() + 60
        while (model := self.hub.server_model("alice")) and "daas" not in (model.get("state") or {}):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        argv = [entry[2] for entry in self.slurm.commands.entries("sbatch")][self.sbatch_count :]
        problems = [arg for line in argv for arg in line.split() if not SBATCH_ARG.match(arg)]
        job = (model or {}).get("state", {}).get("daas", {}).get("state", {}).get("job_id")
        if job:
            problems += script_problems(batch_script(job))
        if problems:
            self.finding(kind, "unvalidated content", sent, found=problems)
        if self.hub.server_model("alice") is not None:
            self.hub.stop_server("alice")

    def rest(self, body: Any) -> None:
        response = self.hub.api("POST", "/users/alice/server", token=self.token, content=json.dumps(body))
        self.record("rest", body, response)

    def form(self, fields: list[tuple[str, str]]) -> None:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        response = self.browser.post(self.action, content=urlencode(fields).encode(), headers=form)
        self.record("form", fields, response)


def as_function(send: Callable[[Any], None]) -> Callable[[Any], None]:
    """hypothesis decorates plain functions only (not bound methods or lambdas with defaults)."""

    def attempt(sent: Any) -> None:
        send(sent)

    return attempt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rest", type=int, default=1000, help="REST bodies to try")
    parser.add_argument("--form", type=int, default=500, help="form posts to try")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "fuzz_options.json")
    args = parser.parse_args()
    require_fresh_install()
    workdir = Path(tempfile.mkdtemp(prefix="daas-fuzz-"))
    workdir.chmod(0o755)
    fuzz = Fuzz(workdir)
    common = {"deadline": None, "database": None, "phases": [Phase.generate]}
    common["suppress_health_check"] = list(HealthCheck)
    started = time.monotonic()
    try:
        fuzz.start()
        fuzz.sbatch_count = fuzz.slurm.commands.count("sbatch")
        for strategy, send, examples in ((rest_body, fuzz.rest, args.rest), (form_fields, fuzz.form, args.form)):
            settings(max_examples=examples, **common)(given(strategy)(as_function(send)))()
    finally:
        fuzz.slurm.close()
    kinds = Counter(finding["problem"] for finding in fuzz.findings)
    report = {
        "benchmark": "fuzz_options",
        "seconds": round(time.monotonic() - started, 1),
        "counts": dict(sorted(fuzz.counts.items())),
        "findings": fuzz.findings,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["counts"], indent=2))
    for problem in ("HTTP 5xx", "refused but submitted", "unvalidated content"):
        print(f"{problem:<24} {kinds.get(problem, 0)}   (goal 0)")
    print(f"JSON: {args.json}")


if __name__ == "__main__":
    main()
