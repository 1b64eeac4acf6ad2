"""The services' metrics and logs: counters by rule and kind, the Dask gauges, JSON log lines, --log-level.

The services run in fresh interpreters here (as the hub starts them) whenever logging is configured,
so the test process's logging stays as it was.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from daas_services import metrics
from daas_services.dask.limits import DaskConfig
from daas_services.dask.manager import ClusterManager
from daas_services.dask.records import ClusterRecord, ClusterRecords
from daas_services.dask.service import DaskApp
from daas_services.logs import JsonFormatter


def sample(name: str, registry: CollectorRegistry = REGISTRY, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_reader_errors_count_as_refusals_only_when_they_are_refusals():
    rules = ("permission_denied", "too_large", "busy", "bad_request")
    before = {rule: sample("daas_service_refusals_total", rule=rule) for rule in rules}
    for status in (403, 422, 413, 429, 400, 404, 416, 504, 502):
        metrics.reader_refused(status)
    after = {rule: sample("daas_service_refusals_total", rule=rule) - before[rule] for rule in rules}
    assert after == {"permission_denied": 1, "too_large": 2, "busy": 1, "bad_request": 1}


def test_reads_count_by_kind_and_bytes_add_up():
    reads, served = sample("daas_data_reads_total", kind="list"), sample("daas_data_served_bytes_total")
    metrics.data_read("list")
    metrics.data_served(1 << 20)
    metrics.data_served(17)
    assert sample("daas_data_reads_total", kind="list") - reads == 1
    assert sample("daas_data_served_bytes_total") - served == (1 << 20) + 17


def record(records: ClusterRecords, cluster_id: str, status: str, worker_jobs: list[str]) -> None:
    records.save(ClusterRecord(cluster_id, "alice", status, f"daas-dask-{cluster_id}", {}, worker_jobs=worker_jobs))


def test_the_dask_gauges_read_the_service_records_at_each_scrape(tmp_path: Path):
    records = ClusterRecords(f"sqlite:///{tmp_path}/service/clusters.sqlite")
    app = DaskApp(DaskConfig(), ClusterManager(records, [], service_url="http://127.0.0.1/"), None, "/dask/")
    registry = CollectorRegistry()
    registry.register(app.metrics_collector())
    assert sample("daas_dask_clusters", registry, status="running") == 0  # every status shows, at 0
    record(records, "a" * 16, "running", ["11", "12"])
    record(records, "b" * 16, "running", ["13"])
    record(records, "c" * 16, "starting", [])
    record(records, "d" * 16, "stopped", ["9"])  # ended: not counted
    app.workers_connected = 2
    assert sample("daas_dask_clusters", registry, status="running") == 2
    assert sample("daas_dask_clusters", registry, status="starting") == 1
    assert sample("daas_dask_clusters", registry, status="stopping") == 0
    assert sample("daas_dask_workers", registry, state="submitted") == 3
    assert sample("daas_dask_workers", registry, state="connected") == 2


def test_a_json_log_line_is_one_object_with_its_traceback():
    logger = logging.getLogger("daas-data")
    try:
        raise OSError("disk gone")
    except OSError:
        record = logger.makeRecord(
            "daas-data", logging.ERROR, __file__, 1, "read of %s\nfailed", ("x.h5",), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    document = json.loads(line)
    assert document["level"] == "ERROR" and document["logger"] == "daas-data"
    assert document["message"] == "read of x.h5\nfailed"
    assert document["time"].endswith("+00:00")
    assert "OSError: disk gone" in document["exc_info"]
    plain = json.loads(JsonFormatter().format(logging.makeLogRecord({"msg": "up", "levelname": "INFO"})))
    assert set(plain) == {"time", "level", "logger", "message"}


def run(module: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("module", ["daas_services.data", "daas_services.dask"])
def test_the_services_log_json_at_the_level_asked(tmp_path: Path, module: str):
    config = tmp_path / "daas_config.py"
    config.write_text("")  # the required YAML file is not set: the service stops, saying so
    done = run(module, ["-f", str(config), "--log-format=json", "--log-level=DEBUG"])
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert {line["level"] for line in lines} >= {"DEBUG", "CRITICAL"}
    assert any("is not set" in line["message"] for line in lines if line["level"] == "CRITICAL")

    config.write_text('c.DaaSService.log_format = "json"\nc.DaaSService.log_level = "ERROR"\n')
    quiet = run(module, ["-f", str(config)])
    lines = [json.loads(line) for line in quiet.stderr.splitlines()]
    assert lines and {line["level"] for line in lines} == {"CRITICAL"}


@pytest.mark.parametrize("module", ["daas_services.data", "daas_services.dask"])
def test_help_documents_the_log_options(module: str):
    shown = run(module, ["--help"]).stdout
    assert "--log-level=<Enum>" in shown and "`--log-level=DEBUG`" in shown
    assert "--log-format=<Unicode>" in shown and '"json"' in shown
