"""What every app's containers get, whatever the app: routing, networks, ports, health
checks, secrets, migrations and the blast radius of a change."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.apps import huleedu
from components.config.checks import check_catalog
from components.model.app import App, Pull, Route, Service, ShellProbe
from tests.harness import (
    Declared,
    Program,
    run_program,
    service_name,
    site_config,
    with_classhub,
)
from tests.sources import checkouts

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


@pytest.fixture
def program() -> Program:
    return run_program()


def env(container: Declared) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs.get("envs", []))


def networks(container: Declared) -> set[str]:
    return {n["name"] for n in container.inputs.get("networksAdvanced", [])}


def ports(container: Declared) -> list[tuple[str, int, int]]:
    return [(p["ip"], p["external"], p["internal"]) for p in container.inputs.get("ports", [])]


def secret_values(program: Program, config: dict[str, Any]) -> set[str]:
    generated = {r.state["result"] for r in program.of_type(PASSWORD)}
    operator = {str(config[k]) for k in ("smtpPassword", "anthropicApiKey", "openaiApiKey")}
    return generated | operator


def declared_by_name(program: Program) -> dict[str, str]:
    return {r.name: f"{r.type} {r.inputs!r}" for r in program.declared}


def changed_between(before: Program, after: Program) -> set[str]:
    """Resources added, removed, or declared with other inputs or another type."""
    old, new = declared_by_name(before), declared_by_name(after)
    return {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}


def test_the_routing_table_holds_exactly(program: Program) -> None:
    routed = {}
    for container in program.containers:
        variables = env(container)
        if "VIRTUAL_HOST" in variables:
            routed[variables["VIRTUAL_HOST"]] = (
                service_name(container),
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
                healthcheck=ShellProbe("true"),
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


def test_every_app_container_is_waited_for_until_healthy() -> None:
    """By the provider (``wait``) or, for a container with steps, by its last step: the
    migration runs before the health check must pass, then ``up`` waits for it."""
    program = run_program(with_classhub(site_config()))
    steps = [c for c in program.of_type(COMMAND) if c.urn.count("hemma:app:App$") == 1]
    waits = [c for c in steps if 'until [ "$(health)" = healthy ]' in c.inputs["create"]]
    waited_by_step = {urn for c in waits for urn in c.dependencies}
    for container in program.containers:
        if ":hemma:app:App" not in container.urn:
            continue
        name = container.inputs["name"]
        if container.inputs.get("wait") is True:
            assert container.urn not in waited_by_step, name
        else:
            assert container.urn in waited_by_step, f"{name}: nothing waits for it to be healthy"


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


def test_migrations_run_in_the_new_container_before_it_must_be_healthy() -> None:
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
        script = migration.inputs["create"]
        assert "docker=/snap/bin/docker" in script
        assert f"container={container_name}" in script
        assert f'"$docker" exec "$container" {command}' in script
        assert container.inputs["wait"] is False, f"{name}: the migration must not wait for health"
        assert container.urn in migration.dependencies, name
        assert migration.inputs["triggers"] == [container.inputs["image"]], "again on a new image"
        # A migration of a large database may run minutes: the step waits 300 s for the
        # container to run and then to turn healthy, as the provider's wait would.
        assert "deadline=$((SECONDS + 300))" in script, name
        assert container.inputs["waitTimeout"] == 300


def test_class_hubs_migrations_run_one_after_the_other() -> None:
    """The runbook migrates classhub_web, then helper_web, against the one database."""
    program = run_program(with_classhub(site_config()))
    web = program.named("classhub-classhub_web-migrate")
    helper = program.named("classhub-helper_web-migrate")
    assert web.urn in helper.dependencies


def test_a_new_image_replaces_that_service_and_its_migration_only() -> None:
    before = run_program()
    config = {**site_config(), "imageOverrides": {"skriptoteket-web": "skriptoteket-web:rollback"}}
    after = run_program(config)
    assert changed_between(before, after) == {
        "skriptoteket-web-image",
        "skriptoteket-web",
        "skriptoteket-web-migrate",
        # Start-first: a new name, and the new copy's drain of the old one.
        "skriptoteket-web-name",
        "skriptoteket-web-drain",
    }


def test_an_env_change_replaces_that_container_only() -> None:
    before = run_program()
    config = {**site_config(), "extraEnv": {"huleedu_nlp_service": {"LOG_LEVEL": "debug"}}}
    after = run_program(config)
    assert changed_between(before, after) == {"huleedu-nlp_service"}
    assert env(after.container("huleedu_nlp_service"))["LOG_LEVEL"] == "debug"


def edit_between_runs(tmp_path: Path, app: str, relative: str, text: str) -> set[str]:
    """What changes between two runs on one checkout when one file is edited in between."""
    checkout = tmp_path / app
    shutil.copytree(checkouts()[app], checkout)
    config = copy.deepcopy(site_config())
    config["appSources"] = {**config["appSources"], app: str(checkout)}
    before = run_program(config)
    (checkout / relative).write_text(text)
    return changed_between(before, run_program(config))


def test_an_edit_to_one_service_previews_as_that_service(tmp_path: Path) -> None:
    """Every HuleEdu image is built from the one checkout; a change to nlp_service's own
    files rebuilds and replaces nlp_service, and nothing else. The image tag is known
    at preview, so the preview names that container only."""
    changed = edit_between_runs(tmp_path, "huleedu", "services/nlp_service/__main__.py", "#2\n")
    assert changed == {"huleedu-nlp_service-image", "huleedu-nlp_service"}


def test_an_edit_to_a_file_no_image_copies_changes_nothing(tmp_path: Path) -> None:
    assert edit_between_runs(tmp_path, "skriptoteket", "docs/README.md", "edited\n") == set()


def test_an_edit_to_shared_code_rebuilds_every_image_that_copies_it(tmp_path: Path) -> None:
    changed = edit_between_runs(tmp_path, "huleedu", "libs/common/__init__.py", "x = 1\n")
    rebuilt = {name for name in changed if name.endswith("-image")}
    copying = {f"huleedu-{name}-image" for name in (*huleedu.SERVICES, "language_tool_service")}
    assert rebuilt == copying, "the offload image copies no shared code"


def test_health_check_urls_public_and_internal(program: Program) -> None:
    checks = program.outputs["healthChecks"]
    assert checks["public"]["skriptoteket.hule.education"] == (
        "https://skriptoteket.hule.education/healthz"
    )
    assert checks["public"]["api.huleedu.hule.education"] == (
        "https://api.huleedu.hule.education/healthz"
    )
    assert set(checks["public"]) == set(ROUTING_TABLE)
    content = checks["internal"]["huleedu_content_service"]
    assert content["url"] == "http://content_service:8000/healthz"
    assert content["probe"][:2] == ["python", "-c"], "the app images have Python, not curl"
    assert "http://content_service:8000/healthz" in content["probe"][2]
    assert checks["internal"]["huleedu_kafka"] == {
        "url": None,
        "probe": ["sh", "-c", "bash -c 'exec 3<>/dev/tcp/127.0.0.1/9092'"],
        "host": "hemma",
    }


def test_ssh_tunnels_for_the_localhost_only_services(program: Program) -> None:
    tunnels = {
        name: (t["localPort"], t["remote"]) for name, t in program.outputs["sshTunnels"].items()
    }
    assert tunnels == {
        "huleedu_language_tool_service": (18085, "127.0.0.1:8085"),
        "huleedu_essay_embed_offload": (19000, "127.0.0.1:9000"),
        "llama-server": (8082, "127.0.0.1:8082"),
        "tabby": (8083, "127.0.0.1:8083"),
    }
    assert program.outputs["sshTunnels"]["huleedu_language_tool_service"]["command"] == (
        "ssh -N -L 18085:127.0.0.1:8085 paunchygent@hemma.hule.education"
    )


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
                    healthcheck=ShellProbe("true"),
                )
                for service in services
            ),
        )

    assert check_catalog((app("one", "writer", "reader"),)) == []
    assert check_catalog((app("one", "writer", "reader"), app("two", "thief"))) == [
        "the two app: volume 'shared-data' is already used by the one app"
    ]
