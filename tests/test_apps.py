"""Every app's containers, as the runbooks run them on Hemma."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.catalog import App, Pull, Route, Service
from components.config import check_catalog
from components.observability_files import ACCESS_LOG_LABELS, NGINX_ACCESS_LOG
from tests.harness import Declared, Program, run_program, site_config, with_classhub

PASSWORD = "random:index/randomPassword:RandomPassword"
COMMAND = "command:remote:Command"
ROUTING_TABLE = {
    "skriptoteket.hule.education": ("skriptoteket-web", 8000, False),
    "huleedu.hule.education": ("huleedu_bff_teacher_service", 4101, False),
    "api.huleedu.hule.education": ("huleedu_api_gateway_service", 8080, False),
    "ws.huleedu.hule.education": ("huleedu_websocket_service", 8080, False),
    "grafana.hemma.hule.education": ("grafana", 3000, False),
    "prometheus.hemma.hule.education": ("prometheus", 9090, True),
    "jaeger.hemma.hule.education": ("jaeger", 16686, True),
}
HULEEDU_SERVICES = {
    "api_gateway_service", "bff_teacher_service", "websocket_service", "content_service",
    "essay_lifecycle_service", "nlp_service", "llm_provider_service", "cj_assessment_service",
    "batch_conductor_service", "batch_orchestrator_service", "class_management_service",
    "email_service", "entitlements_service", "file_service", "identity_service",
    "result_aggregator_service", "spellchecker_service",
}  # fmt: skip


@pytest.fixture
def program() -> Program:
    return run_program()


def env(container: Declared) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs.get("envs", []))


def networks(container: Declared) -> set[str]:
    return {n["name"] for n in container.inputs.get("networksAdvanced", [])}


def ports(container: Declared) -> list[tuple[str, int, int]]:
    return [(p["ip"], p["external"], p["internal"]) for p in container.inputs.get("ports", [])]


def uploads(container: Declared) -> dict[str, str]:
    return {u["file"]: u["content"] for u in container.inputs.get("uploads", [])}


# --- routing ----------------------------------------------------------------------


def test_the_routing_table_holds_exactly(program: Program) -> None:
    routed = {}
    for container in program.containers:
        variables = env(container)
        if "VIRTUAL_HOST" in variables:
            routed[variables["VIRTUAL_HOST"]] = (
                container.inputs["name"],
                int(variables["VIRTUAL_PORT"]),
            )
    assert routed == {host: (c, port) for host, (c, port, _) in ROUTING_TABLE.items()}
    assert program.outputs["routes"] == {
        host: {"container": c, "port": port, "basicAuth": auth}
        for host, (c, port, auth) in ROUTING_TABLE.items()
    }
    assert program.outputs["dnsRecords"] == sorted(ROUTING_TABLE)


def test_every_routed_container_shares_a_network_with_nginx_proxy(program: Program) -> None:
    proxy_networks = networks(program.container("nginx-proxy"))
    routed = [c for c in program.containers if "VIRTUAL_HOST" in env(c)]
    assert len(routed) == len(ROUTING_TABLE)
    for container in routed:
        assert networks(container) & proxy_networks, container.inputs["name"]
        variables = env(container)
        assert variables["VIRTUAL_HOST"] == variables["LETSENCRYPT_HOST"], container.inputs["name"]


def test_a_catalog_that_routes_a_container_off_hule_network_is_rejected() -> None:
    stray = App(
        name="stray",
        services=(
            Service(
                name="web",
                container="stray-web",
                image=Pull("nginx:1.27"),
                networks=("stray_internal",),
                route=Route("stray", 80),
                healthcheck=("true",),
            ),
        ),
        internal_network="stray_internal",
    )
    assert check_catalog((stray,)) == [
        "the stray app: stray-web is routed but not on hule-network: "
        "nginx-proxy could not reach it (502)"
    ]


def test_basic_auth_hosts_match_the_routing_table(program: Program) -> None:
    protected = {host for host, (_, _, auth) in ROUTING_TABLE.items() if auth}
    assert set(program.outputs["basicAuthCredentials"]) == protected


# --- what every container gets ------------------------------------------------------------


def test_no_port_but_80_and_443_binds_anything_but_localhost() -> None:
    program = run_program(with_classhub(site_config()))
    for container in program.containers:
        for ip, external, _ in ports(container):
            if external not in (80, 443):
                assert ip == "127.0.0.1", f"{container.inputs['name']} publishes {external}"


def test_every_container_has_a_healthcheck_a_restart_policy_and_waits_healthy() -> None:
    program = run_program(with_classhub(site_config()))
    for container in program.containers:
        name = container.inputs["name"]
        assert container.inputs["healthcheck"]["tests"][0] == "CMD-SHELL", name
        assert container.inputs["healthcheck"]["tests"][1], name
        assert container.inputs["restart"] == "unless-stopped", name
        assert container.delete_before_replace, name
        if ":hemma:app:App" in container.urn:
            assert container.inputs.get("wait") is True, f"{name}: migrations need it healthy"


def secret_values(program: Program, config: dict[str, Any]) -> set[str]:
    generated = {r.state["result"] for r in program.of_type(PASSWORD)}
    operator = {str(config[k]) for k in ("smtpPassword", "anthropicApiKey", "openaiApiKey")}
    return generated | operator


def test_every_secret_bearing_env_value_is_a_secret_output() -> None:
    """The engine sees a container's env as one property: any secret in it makes it secret
    in state and in diffs. Containers without secrets keep a readable env."""
    config = with_classhub(site_config())
    program = run_program(config)
    secrets = secret_values(program, config)
    with_secrets = 0
    for container in program.containers:
        values = container.inputs.get("envs", [])
        bearing = [v.split("=")[0] for v in values if any(s in v for s in secrets)]
        if bearing:
            with_secrets += 1
            assert container.secret_input("envs"), f"{container.inputs['name']}: {bearing}"
        else:
            assert not container.secret_input("envs"), container.inputs["name"]
    assert with_secrets >= 20


# --- Skriptoteket ---------------------------------------------------------------------------


def test_skriptoteket_web_reaches_its_database_by_the_runbook_url(program: Program) -> None:
    web = program.container("skriptoteket-web")
    password = next(
        r.inputs["password"]
        for r in program.of_type("postgresql:index/role:Role")
        if r.inputs["name"] == "skriptoteket"
    )
    assert env(web)["DATABASE_URL"] == (
        f"postgresql+asyncpg://skriptoteket:{password}@shared-postgres:5432/skriptoteket"
    )
    mounts = {v.get("volumeName"): v["containerPath"] for v in web.inputs["volumes"]}
    assert mounts["skriptoteket-artifacts"] == "/app/.artifacts"
    assert networks(web) == {"hule-network"}


def test_skriptoteket_redirects_stay_on_https(program: Program) -> None:
    """uvicorn reads FORWARDED_ALLOW_IPS from the env; the image keeps its serve command."""
    web = program.container("skriptoteket-web")
    assert env(web)["FORWARDED_ALLOW_IPS"] == "*"
    assert not web.inputs.get("command"), "the image's own serve command is kept"


def test_skriptoteket_reaches_the_host_gpu_servers(program: Program) -> None:
    web = program.container("skriptoteket-web")
    assert {"host": "host.docker.internal", "ip": "host-gateway"} in web.inputs["hosts"]
    assert env(web)["LLM_COMPLETIONS_URL"] == "http://host.docker.internal:8082"
    assert env(web)["TABBY_URL"] == "http://host.docker.internal:8083"


def test_the_runner_image_is_built_and_runners_join_the_huleedu_network(program: Program) -> None:
    web = program.container("skriptoteket-web")
    runner = program.named("skriptoteket-web-extra-image-0")
    assert runner.inputs["imageName"] == env(web)["RUNNER_IMAGE"] == "skriptoteket-runner:hemma"
    assert runner.inputs["build"]["dockerfile"].endswith("Dockerfile.runner")
    assert runner.urn in web.dependencies, "the runner image exists before web starts runners"
    assert env(web)["RUNNER_NETWORK"] == "huleedu_internal_network"
    sockets = [v for v in web.inputs["volumes"] if v.get("hostPath") == "/var/run/docker.sock"]
    assert sockets and not sockets[0].get("readOnly")


# --- HuleEdu ------------------------------------------------------------------------------------


def test_every_huleedu_service_runs_with_its_own_database(program: Program) -> None:
    containers = {c.inputs["name"]: c for c in program.containers}
    for service in HULEEDU_SERVICES:
        assert f"huleedu_{service}" in containers, service
    with_db = {
        env(c)["DATABASE_NAME"]
        for name, c in containers.items()
        if name.startswith("huleedu_") and "DATABASE_NAME" in env(c)
    }
    assert with_db == set(program.outputs["appDatabases"]["huleedu"]["databases"])
    content = containers["huleedu_content_service"]
    assert env(content)["ENVIRONMENT"] == "production"
    assert env(content)["HULEEDU_DB_USER"] == "huleedu_user"
    assert "shared-postgres" in env(content)["DATABASE_URL"]
    assert "hule-network" in networks(content), "it must reach shared-postgres"


def test_kafka_and_redis_are_on_the_internal_network_only(program: Program) -> None:
    for name in ("huleedu_kafka", "huleedu_redis"):
        container = program.container(name)
        assert networks(container) == {"huleedu_internal_network"}, name
        assert ports(container) == [], name


def test_huleedu_gets_the_runbook_env_and_secrets_only_where_needed(program: Program) -> None:
    gateway = env(program.container("huleedu_api_gateway_service"))
    generated = {r.name: r.state["result"] for r in program.of_type(PASSWORD)}
    assert gateway["JWT_SECRET_KEY"] == generated["huleedu-jwt-secret"]
    assert gateway["HULEEDU_INTERNAL_API_KEY"] == generated["huleedu-internal-api-key"]
    assert gateway["EMAIL_SMTP_HOST"] == "mail.privateemail.com"
    assert gateway["EMAIL_SMTP_PORT"] == "587"
    assert gateway["NLP_SERVICE_LOCAL_LLM_ENABLED"] == "true"
    with_llm_keys = {c.inputs["name"] for c in program.containers if "OPENAI_API_KEY" in env(c)}
    assert with_llm_keys == {"huleedu_llm_provider_service", "huleedu_cj_assessment_service"}
    with_smtp = {c.inputs["name"] for c in program.containers if "EMAIL_SMTP_PASSWORD" in env(c)}
    assert with_smtp == {"huleedu_email_service"}
    assert env(program.container("huleedu_email_service"))["EMAIL_SMTP_PASSWORD"] == (
        "test-smtp-password"
    )


def test_nlp_and_llm_provider_reach_the_host_gpu(program: Program) -> None:
    for name in ("huleedu_nlp_service", "huleedu_llm_provider_service"):
        hosts = program.container(name).inputs["hosts"]
        assert {"host": "host.docker.internal", "ip": "host-gateway"} in hosts, name


def test_the_research_services_listen_on_localhost_only(program: Program) -> None:
    assert ports(program.container("huleedu_language_tool_service")) == [("127.0.0.1", 8085, 8085)]
    offload = program.container("huleedu_essay_embed_offload")
    assert ports(offload) == [("127.0.0.1", 9000, 9000)]
    mounts = {v.get("volumeName"): v["containerPath"] for v in offload.inputs["volumes"]}
    assert mounts["huleedu_hf_cache"] == "/root/.cache/huggingface"
    assert [d["hostPath"] for d in offload.inputs["devices"]] == ["/dev/kfd", "/dev/dri"]
    assert env(offload)["OFFLOAD_TORCH_DEVICE"] == "cuda"
    assert env(offload)["OFFLOAD_HTTP_PORT"] == "9000"


def test_the_offload_device_is_configurable() -> None:
    config = copy.deepcopy(site_config())
    config["huleedu"] = {**config["huleedu"], "offloadTorchDevice": "cpu", "offloadDevices": []}
    offload = run_program(config).container("huleedu_essay_embed_offload")
    assert env(offload)["OFFLOAD_TORCH_DEVICE"] == "cpu"
    assert not offload.inputs.get("devices")


# --- observability -------------------------------------------------------------------------------


def test_grafana_gets_a_generated_admin_password(program: Program) -> None:
    grafana = program.container("grafana")
    generated = program.named("observability-grafana-admin-password").state["result"]
    assert env(grafana)["GF_SECURITY_ADMIN_PASSWORD"] == generated
    assert program.outputs["grafanaAdminPassword"] == generated
    assert "grafanaAdminPassword" in program.secret_outputs


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
    config = uploads(program.container("prometheus"))["/etc/prometheus/prometheus.yml"]
    path = tmp_path / "prometheus.yml"
    path.write_text(config)
    done = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


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


# --- Class Hub ------------------------------------------------------------------------------------


def test_class_hub_is_off_unless_enabled(program: Program) -> None:
    names = {c.inputs["name"] for c in program.containers}
    assert not {n for n in names if n.startswith(("classhub", "helper"))}
    assert "classhub" not in program.outputs["appDatabases"]


def test_class_hub_runs_behind_nginx_proxy_with_its_limits_and_shared_token() -> None:
    program = run_program(with_classhub(site_config()))
    web, helper = program.container("classhub_web"), program.container("helper_web")
    assert env(web)["VIRTUAL_HOST"] == "classhub.hule.education"
    assert env(helper)["VIRTUAL_HOST"] == "helper.classhub.hule.education"
    files = uploads(program.container("nginx-proxy"))
    assert "client_max_body_size 650m;" in files["/etc/nginx/vhost.d/classhub.hule.education"]
    assert "client_max_body_size 1m;" in files["/etc/nginx/vhost.d/helper.classhub.hule.education"]
    token = env(web)["CLASSHUB_INTERNAL_EVENTS_TOKEN"]
    assert token == env(helper)["CLASSHUB_INTERNAL_EVENTS_TOKEN"]
    assert token == program.named("classhub-internal-events-token").state["result"]
    assert env(helper)["HELPER_MAX_CONCURRENCY"] == "2"
    assert env(helper)["HELPER_QUEUE_MAX_WAIT_SECONDS"] == "10"
    assert env(helper)["HELPER_QUEUE_POLL_SECONDS"] == "0.2"
    assert env(helper)["HELPER_QUEUE_SLOT_TTL_SECONDS"] == "120"
    assert ports(program.container("classhub_ollama")) == [("127.0.0.1", 11434, 11434)]
    assert program.outputs["appDatabases"]["classhub"] == {
        "role": "classhub",
        "databases": ["classhub"],
    }
    assert "shared-postgres:5432/classhub" in env(web)["DATABASE_URL"]
    for name in ("classhub_minio", "classhub_redis", "classhub_ollama"):
        assert networks(program.container(name)) == {"classhub_internal_network"}, name


# --- migrations ---------------------------------------------------------------------------------


def test_migrations_run_after_deploy_and_again_only_on_a_new_image() -> None:
    program = run_program(with_classhub(site_config()))
    migrations = {m.name: m for m in program.of_type(COMMAND) if m.name.endswith("-migrate")}
    expected = {
        "skriptoteket-web-migrate": ("skriptoteket-web", "pdm run db-upgrade"),
        "classhub-classhub_web-migrate": ("classhub_web", "python manage.py migrate --noinput"),
        "classhub-helper_web-migrate": ("helper_web", "python manage.py migrate --noinput"),
    }
    assert set(migrations) == set(expected)
    for name, (container_name, command) in expected.items():
        migration = migrations[name]
        container = program.container(container_name)
        assert migration.inputs["create"] == f"/snap/bin/docker exec {container_name} {command}"
        assert container.urn in migration.dependencies, name
        assert migration.inputs["triggers"] == [container.inputs["image"]], name


# --- blast radius ---------------------------------------------------------------------------------


def declared_by_name(program: Program) -> dict[str, str]:
    return {r.name: f"{r.type} {r.inputs!r}" for r in program.declared}


def changed_between(before: Program, after: Program) -> set[str]:
    """Resources added, removed, or declared with other inputs or another type."""
    old, new = declared_by_name(before), declared_by_name(after)
    return {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}


def test_a_new_image_replaces_that_service_and_its_migration_only() -> None:
    before = run_program()
    config = {**site_config(), "imageOverrides": {"skriptoteket-web": "skriptoteket-web:rollback"}}
    after = run_program(config)
    assert changed_between(before, after) == {
        "skriptoteket-web-image",
        "skriptoteket-web",
        "skriptoteket-web-migrate",
    }


def test_an_env_change_replaces_that_container_only() -> None:
    before = run_program()
    config = {**site_config(), "extraEnv": {"huleedu_nlp_service": {"LOG_LEVEL": "debug"}}}
    after = run_program(config)
    assert changed_between(before, after) == {"huleedu-nlp_service"}
    assert env(after.container("huleedu_nlp_service"))["LOG_LEVEL"] == "debug"


# --- outputs --------------------------------------------------------------------------------------


def test_health_check_urls_public_and_internal(program: Program) -> None:
    checks = program.outputs["healthChecks"]
    assert checks["public"]["skriptoteket.hule.education"] == (
        "https://skriptoteket.hule.education/healthz"
    )
    assert checks["public"]["api.huleedu.hule.education"] == (
        "https://api.huleedu.hule.education/healthz"
    )
    assert set(checks["public"]) == set(ROUTING_TABLE)
    assert checks["internal"]["huleedu_content_service"] == "http://content_service:8000/healthz"


def test_ssh_tunnels_for_the_localhost_only_services(program: Program) -> None:
    tunnels = {
        name: (t["localPort"], t["remote"]) for name, t in program.outputs["sshTunnels"].items()
    }
    assert tunnels == {
        "huleedu_language_tool_service": (18085, "127.0.0.1:8085"),
        "huleedu_essay_embed_offload": (19000, "127.0.0.1:9000"),
        "llama-server": (8082, "172.17.0.1:8082"),
        "tabby": (8083, "172.17.0.1:8083"),
    }
    assert program.outputs["sshTunnels"]["huleedu_language_tool_service"]["command"] == (
        "ssh -N -L 18085:127.0.0.1:8085 paunchygent@hemma.hule.education"
    )


# --- health checks, run -----------------------------------------------------------------------


@pytest.mark.tools
def test_every_health_check_command_passes_shellcheck(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is required (apt-get install shellcheck)"
    program = run_program(with_classhub(site_config()))
    commands = sorted({c.inputs["healthcheck"]["tests"][1] for c in program.containers})
    scripts = []
    for index, command in enumerate(commands):
        script = tmp_path / f"check-{index}.sh"
        # Docker runs CMD-SHELL with /bin/sh -c.
        script.write_text(f"#!/bin/sh\n{command}\n")
        scripts.append(str(script))
    done = subprocess.run([shellcheck, *scripts], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.tools
def test_the_bash_probe_tells_ready_from_not_ready(tmp_path: Path) -> None:
    """Promtail's image has neither curl nor wget; its probe speaks HTTP through bash."""
    import http.server
    import socketserver
    import threading

    from components.catalog import bash_probe

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
            ready = subprocess.run(["sh", "-c", bash_probe(port, "/ready")[0]], timeout=10)
            not_ready = subprocess.run(["sh", "-c", bash_probe(port, "/starting")[0]], timeout=10)
        finally:
            server.shutdown()
    assert ready.returncode == 0
    assert not_ready.returncode != 0


def test_services_of_one_app_may_share_a_volume_but_two_apps_may_not() -> None:
    def app(name: str, *services: str) -> App:
        return App(
            name=name,
            services=tuple(
                Service(
                    name=service,
                    container=f"{name}-{service}",
                    image=Pull("busybox:1.37"),
                    volumes={"shared-data": "/data"},
                    healthcheck=("true",),
                )
                for service in services
            ),
        )

    assert check_catalog((app("one", "writer", "reader"),)) == []
    assert check_catalog((app("one", "writer", "reader"), app("two", "thief"))) == [
        "the two app: volume 'shared-data' is already used by the one app"
    ]
