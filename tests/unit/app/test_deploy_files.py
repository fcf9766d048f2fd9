"""The deployment files parse, point the probes at the real endpoints, load as configuration,
and the Grafana dashboard only asks for metrics the service exports."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from da_app.settings import Settings

from .helpers import echo_window
from .ops_support import ops_service, wait_for

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"


def _k8s(name: str) -> list[dict[str, Any]]:
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / name).read_text(encoding="utf-8")))
    assert docs, name
    return [d for d in docs if d is not None]


def _container(kind: str = "Deployment") -> dict[str, Any]:
    (deployment,) = [d for d in _k8s("deployment.yaml") if d["kind"] == kind]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def test_every_kubernetes_manifest_parses_and_has_a_kind() -> None:
    files = sorted((DEPLOY / "k8s").glob("*.yaml"))
    assert {f.name for f in files} >= {"deployment.yaml", "service.yaml", "configmap.yaml"}
    for f in files:
        for doc in _k8s(f.name):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), f.name


def test_the_probes_check_health_and_ready_on_8080_and_both_ports_are_declared() -> None:
    c = _container()
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8080}
    assert {p["containerPort"] for p in c["ports"]} == {8080, 8001}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["DATA_ANALYSIS_LOG"] == "/var/log/data_analysis/app.log"
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert env["DATA_ANALYSIS_CONFIG"] == mounts["config-volume"] + "/config.py"
    (deployment,) = _k8s("deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == "config-volume"]
    (cm,) = _k8s("configmap.yaml")
    assert volume["configMap"]["name"] == cm["metadata"]["name"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "8001"


def test_the_service_exposes_the_health_port_as_the_guide_and_the_metrics_port() -> None:
    (svc,) = _k8s("service.yaml")
    ports = {p["port"]: p["targetPort"] for p in svc["spec"]["ports"]}
    assert ports == {8080: 8080, 8001: 8001}
    (deployment,) = _k8s("deployment.yaml")
    assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_the_configmaps_config_py_is_valid_and_loads_as_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DATA_ANALYSIS_HEALTH_PORT", "DATA_ANALYSIS_METRICS_PORT"):
        monkeypatch.delenv(name)  # set to 0 for the whole suite by tests/conftest.py
    (cm,) = _k8s("configmap.yaml")
    source = cm["data"]["config.py"]
    compile(source, "config.py", "exec")
    path = tmp_path / "config.py"
    path.write_text(source, encoding="utf-8")
    settings = Settings.load(path)
    svc = settings.service
    assert (svc.health_host, svc.health_port) == ("0.0.0.0", 8080)
    assert (svc.metrics_host, svc.metrics_port) == ("0.0.0.0", 8001)
    assert svc.module_name == "load_prediction"
    assert settings.kafka.has_brokers
    assert settings.resolve_adapter(asynchronous=False) == "confluent"
    assert settings.catalog.topics["SCHEDULE-STATION-REALTIME-DATA"].window_size == 168
    (deployment,) = _k8s("deployment.yaml")
    if deployment["spec"]["replicas"] > 1:  # replicas share the stations: co-location needed
        assert settings.routing_mode(settings.resolve_adapter(asynchronous=False)) == "rekey"


def test_the_container_command_runs_the_module_the_config_names() -> None:
    cmd = _container()["command"]
    assert cmd[:2] == ["da-app", "run"]
    assert cmd[cmd.index("--module") + 1] == "load_prediction"


def _dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text(encoding="utf-8")


def test_the_dockerfile_runs_as_the_non_root_analysis_user_and_exposes_both_ports() -> None:
    text = _dockerfile()
    assert re.search(r"^FROM python:3.11-slim$", text, re.M)
    assert "useradd -m -u 1000 analysis" in text
    assert re.search(r"^USER analysis$", text, re.M)
    assert re.search(r"^EXPOSE 8080 8001$", text, re.M)
    assert "DATA_ANALYSIS_LOG=/var/log/data_analysis/app.log" in text
    assert "COPY requirements.txt" in text


def _healthcheck_argv() -> list[str]:
    text = _dockerfile().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*? CMD (\[.*\])$", text, re.M)
    assert match, "no exec-form HEALTHCHECK"
    argv = json.loads(match.group(1))
    assert isinstance(argv, list)
    return [str(a) for a in argv]


def test_the_dockerfile_healthcheck_passes_for_a_live_service_and_fails_once_stopped() -> None:
    argv = _healthcheck_argv()
    assert argv[0] == "python"

    def run(port: int) -> int:
        env = {**os.environ, "DATA_ANALYSIS_HEALTH_PORT": str(port)}
        return subprocess.run([sys.executable, *argv[1:]], env=env, timeout=30).returncode

    with ops_service(echo_window) as ops:
        assert run(ops.health.port) == 0
        ops.service.stop()
        assert run(ops.health.port) != 0


def test_the_systemd_unit_matches_the_guide_and_reloads_with_sighup() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / "data_analysis.service").read_text(encoding="utf-8"))
    service = unit["Service"]
    assert (service["User"], service["Group"]) == ("analysis", "analysis")
    assert service["Restart"] == "always"
    assert service["RestartSec"] == "10"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    exec_start = shlex.split(service["ExecStart"])
    assert exec_start[0].endswith("/venv/bin/da-app")
    assert exec_start[1] == "run"
    text = (DEPLOY / "data_analysis.service").read_text(encoding="utf-8")
    assert "Environment=DATA_ANALYSIS_LOG=/var/log/data_analysis/app.log" in text
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def _requirement_names(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.split(r"[<>=!~ \[]", line, maxsplit=1)[0]
            out[name.lower().replace("_", "-")] = line
    return out


def test_requirements_txt_pins_what_pyproject_depends_on() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^\[project\]$.*?^dependencies = \[(.*?)^\]", text, re.M | re.S)
    assert block
    wanted = _requirement_names(re.findall(r'"([^"]+)"', block.group(1)))
    have = _requirement_names((ROOT / "requirements.txt").read_text().splitlines())
    assert have == wanted


# ---------------------------------------------------------------- the Grafana dashboard

PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([a-zA-Z_:][\w:]*)(?!\w)(\s*\()?", expr):
        if m.group(2) is None and m.group(1) not in PROMQL_WORDS:
            names.add(m.group(1))
    return names


def test_the_promql_name_extraction_ignores_functions_labels_and_numbers() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{instance=~"$instance"}[5m]))) '
        "/ clamp_min(sum(rate(b_total[5m])) + c, 1e-9)"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def _dashboard() -> dict[str, Any]:
    data = json.loads((DEPLOY / "grafana" / "data-analysis.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _dashboard_exprs() -> list[str]:
    dash = _dashboard()
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if isinstance(query, str) and query.startswith("label_values("):
            inner = query[len("label_values(") : -1]
            exprs.append(inner.split(",")[0])
    return exprs


def test_the_dashboard_parses_and_every_panel_queries_something() -> None:
    dash = _dashboard()
    assert dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        assert p["targets"], p["title"]
        assert all(t["expr"].strip() for t in p["targets"]), p["title"]


def test_the_dashboard_only_references_metrics_the_service_exports() -> None:
    with ops_service(echo_window) as ops:
        ops.feed(["S1", "S2"], range(3))
        wait_for(lambda: ops.service.engine.stats.uploads_ok >= 1, what="an upload")
        exported = {s.name for f in text_string_to_metric_families(ops.scrape()) for s in f.samples}
    referenced = set().union(*(metric_names(e) for e in _dashboard_exprs()))
    assert referenced, "no metric found in the dashboard"
    assert sorted(referenced - exported) == []
    # and the guide's metrics are all on the dashboard
    for name in (
        "data_analysis_processed_total",
        "data_analysis_errors_total",
        "data_analysis_memory_usage",
        "data_analysis_station_count",
        "data_analysis_processing_seconds_bucket",
        "batch_success_total",
        "batch_timeout_total",
        "batch_station_count_bucket",
        "data_analysis_consumer_lag",
        "data_analysis_commit_age_seconds",
    ):
        assert name in referenced, name


@pytest.mark.parametrize("name", ["deployment.yaml", "service.yaml", "configmap.yaml"])
def test_manifests_target_the_guides_namespace(name: str) -> None:
    for doc in _k8s(name):
        assert doc["metadata"]["namespace"] == "production"
