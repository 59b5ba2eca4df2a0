"""The observability stack as runbook 002 runs it; its generated configs checked with the
tools that read them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.apps.observability.promtail import ACCESS_LOG_LABELS, NGINX_ACCESS_LOG
from tests.harness import Declared, Program, run_program


@pytest.fixture
def program() -> Program:
    return run_program()


def env(container: Declared) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs.get("envs", []))


def networks(container: Declared) -> set[str]:
    return {n["name"] for n in container.inputs.get("networksAdvanced", [])}


def uploads(container: Declared) -> dict[str, str]:
    return {u["file"]: u["content"] for u in container.inputs.get("uploads", [])}


ACCESS_LOG_LINES = [
    (
        'skriptoteket.hule.education 203.0.113.7 - - [23/Nov/2026:03:15:00 +0000] '
        '"GET /healthz HTTP/2.0" 200 2 "-" "curl/8.5.0" "172.18.0.5:8000"',
        {"vhost": "skriptoteket.hule.education", "client_ip": "203.0.113.7", "method": "GET",
         "status": "200"},
    ),
    (
        'prometheus.hemma.hule.education 198.51.100.2 - admin [23/Nov/2026:03:15:01 +0000] '
        '"POST /api/v1/query HTTP/1.1" 401 179 "-" "Mozilla/5.0" "-"',
        {"vhost": "prometheus.hemma.hule.education", "client_ip": "198.51.100.2",
         "method": "POST", "status": "401"},
    ),
]  # fmt: skip


def test_grafana_gets_a_generated_admin_password(program: Program) -> None:
    grafana = program.container("grafana")
    generated = program.named("observability-grafana-admin-password").state["result"]
    assert env(grafana)["GF_SECURITY_ADMIN_PASSWORD"] == generated
    assert program.outputs["grafanaAdminPassword"] == generated
    assert "grafanaAdminPassword" in program.secret_outputs


def test_grafanas_admin_password_is_set_again_after_every_start(program: Program) -> None:
    """GF_SECURITY_ADMIN_PASSWORD counts only when Grafana creates its admin user, on a
    fresh volume; an adopted grafana-data would keep the old password."""
    grafana = program.container("grafana")
    reset = program.named("observability-grafana-reset-admin-password")
    generated = program.named("observability-grafana-admin-password").state["result"]
    assert (
        '"$docker" exec -i "$container" grafana cli admin reset-admin-password '
        "--password-from-stdin" in reset.inputs["create"]
    )
    assert reset.inputs["stdin"] == generated
    assert reset.secret_input("stdin"), "the password travels on stdin, as a secret"
    assert generated not in reset.inputs["create"]
    assert reset.inputs["triggers"] == [grafana.id], "again when the container is new"


def test_grafana_is_provisioned_with_the_stacks_datasources_and_dashboard(
    program: Program,
) -> None:
    files = uploads(program.container("grafana"))
    sources = yaml.safe_load(files["/etc/grafana/provisioning/datasources/hemma.yaml"])
    urls = {s["name"]: s["url"] for s in sources["datasources"]}
    assert urls == {
        "Prometheus": "http://prometheus:9090",
        "Loki": "http://loki:3100",
        "Jaeger": "http://jaeger:16686",
        "Alertmanager": "http://alertmanager:9093",
    }
    providers = yaml.safe_load(files["/etc/grafana/provisioning/dashboards/hemma.yaml"])
    folder = providers["providers"][0]["options"]["path"]
    dashboard = json.loads(files[f"{folder}/overview.json"])
    assert dashboard["uid"] == "hemma-overview"
    used = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    assert used <= {s["uid"] for s in sources["datasources"]}


def test_jaeger_keeps_its_data_where_uid_10001_can_write_on_a_fresh_volume(
    program: Program,
) -> None:
    jaeger = program.container("jaeger")
    mounts = {v.get("volumeName"): v["containerPath"] for v in jaeger.inputs["volumes"]}
    assert mounts["jaeger-data"] == "/tmp", "the image's VOLUME /tmp: Docker copies its 1777"
    variables = env(jaeger)
    assert variables["BADGER_DIRECTORY_KEY"] == "/tmp/key"
    assert variables["BADGER_DIRECTORY_VALUE"] == "/tmp/data"


def test_each_observability_service_has_its_own_volume(program: Program) -> None:
    for name, volume in [
        ("grafana", "grafana-data"),
        ("prometheus", "prometheus-data"),
        ("jaeger", "jaeger-data"),
        ("loki", "loki-data"),
        ("promtail", "promtail-positions"),
    ]:
        mounted = {v.get("volumeName") for v in program.container(name).inputs["volumes"]}
        assert volume in mounted, name


@pytest.mark.tools
def test_the_prometheus_config_passes_promtool(program: Program, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (apt-get install prometheus)"
    # Every file the container gets under /etc/prometheus, at a private root: promtool
    # then reads the rules file prometheus.yml names, as Prometheus will.
    root = tmp_path / "etc" / "prometheus"
    root.mkdir(parents=True)
    for path, text in uploads(program.container("prometheus")).items():
        assert path.startswith("/etc/prometheus/"), path
        (root / path.removeprefix("/etc/prometheus/")).write_text(
            text.replace("/etc/prometheus/", f"{root}/")
        )
    done = subprocess.run(
        [promtool, "check", "config", str(root / "prometheus.yml")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rules = yaml.safe_load((root / "hemma-alerts.yml").read_text())
    count = sum(len(group["rules"]) for group in rules["groups"])
    assert count >= 10 and f"SUCCESS: {count} rules found" in done.stdout, done.stdout


def test_prometheus_scrapes_the_apps_metrics_on_networks_it_shares(program: Program) -> None:
    prometheus = program.container("prometheus")
    config = yaml.safe_load(uploads(prometheus)["/etc/prometheus/prometheus.yml"])
    targets = {
        target: job.get("metrics_path", "/metrics")
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets["skriptoteket-web:8000"] == "/metrics"
    assert targets["huleedu_content_service:8000"] == "/metrics"
    by_name = {c.inputs["name"]: c for c in program.containers}
    for target in targets:
        host = target.split(":")[0]
        if host in by_name:
            assert networks(by_name[host]) & networks(prometheus), target


def test_alertmanager_and_node_exporter_share_a_network_with_prometheus_and_grafana_only(
    program: Program,
) -> None:
    """blackbox-exporter stays on the proxy's bridge: its probes go to the proxy's
    published ports through host-gateway, which Docker < 28 drops from another bridge."""
    alerting = {"alertmanager", "node_exporter"}
    on_it = {
        c.inputs["name"]: networks(c)
        for c in program.containers
        if "observability_internal_network" in networks(c)
    }
    assert set(on_it) == alerting | {"prometheus", "grafana"}
    for name in alerting:
        assert on_it[name] == {"observability_internal_network"}, name
    assert "hule-network" in on_it["prometheus"] & on_it["grafana"]
    assert networks(program.container("blackbox_exporter")) == {"hule-network"}


@pytest.mark.parametrize(("line", "labels"), ACCESS_LOG_LINES)
def test_promtail_labels_nginx_proxy_access_logs(
    program: Program, line: str, labels: dict[str, str]
) -> None:
    promtail = program.container("promtail")
    config = yaml.safe_load(uploads(promtail)["/etc/promtail/config.yml"])
    job = config["scrape_configs"][0]
    assert job["docker_sd_configs"][0]["filters"] == [{"name": "name", "values": ["nginx-proxy"]}]
    stages = job["pipeline_stages"]
    expression = next(s["regex"]["expression"] for s in stages if "regex" in s)
    assert expression == NGINX_ACCESS_LOG
    label_stage = next(s["labels"] for s in stages if "labels" in s)
    assert set(label_stage) == set(ACCESS_LOG_LABELS) == set(labels)
    match = re.match(expression, line)
    assert match is not None
    assert {k: match.group(k) for k in labels} == labels
    sockets = [v for v in promtail.inputs["volumes"] if v.get("hostPath") == "/var/run/docker.sock"]
    assert sockets[0]["readOnly"] is True


@pytest.mark.tools
def test_the_bash_probe_tells_ready_from_not_ready(tmp_path: Path) -> None:
    """Promtail's image has neither curl nor wget; its probe speaks HTTP through bash."""
    import http.server
    import socketserver
    import threading

    from components.model.app import HttpProbe

    def probe(port: int, path: str) -> str:
        return HttpProbe(port, path, tool="bash").shell()

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/ready" else 503)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with socketserver.TCPServer(("127.0.0.1", 0), Ready) as server:
        port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            ready = subprocess.run(
                ["sh", "-c", HttpProbe(port, "/ready", tool="bash").shell()], timeout=10
            )
            not_ready = subprocess.run(
                ["sh", "-c", HttpProbe(port, "/starting", tool="bash").shell()], timeout=10
            )
        finally:
            server.shutdown()
    assert ready.returncode == 0
    assert not_ready.returncode != 0
