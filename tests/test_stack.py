"""The foundation as the runbooks describe it, checked on what the program declares."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import Any

import pulumi
import pytest

from components.catalog import HULEEDU_DATABASES
from components.config import parse
from components.nginx_files import apr1
from components.providers import ssh_connection
from tests.harness import (
    OPERATOR_SECRETS,
    TEST_HOST_KEY,
    Declared,
    Program,
    as_cli_value,
    run_program,
    site_config,
)

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
ROLE = "postgresql:index/role:Role"
DATABASE = "postgresql:index/database:Database"
GRANT = "postgresql:index/grant:Grant"
PASSWORD = "random:index/randomPassword:RandomPassword"

PUBLIC_HOSTS = [
    "api.huleedu.hule.education",
    "grafana.hemma.hule.education",
    "huleedu.hule.education",
    "jaeger.hemma.hule.education",
    "prometheus.hemma.hule.education",
    "skriptoteket.hule.education",
    "ws.huleedu.hule.education",
]
OUTPUTS = {
    "networks",
    "proxyPublicHosts",
    "basicAuthCredentials",
    "postgresAdminPassword",
    "postgresTunnel",
    "appDatabases",
    "appConnectionStrings",
    "hostUnits",
    "backups",
    "routes",
    "dnsRecords",
    "healthChecks",
    "sshTunnels",
    "containers",
    "grafanaAdminPassword",
}
SECRET_OUTPUTS = {
    "basicAuthCredentials",
    "postgresAdminPassword",
    "appConnectionStrings",
    "grafanaAdminPassword",
}


@pytest.fixture
def program() -> Program:
    return run_program()


def uploads(container: Declared) -> dict[str, str]:
    return {u["file"]: u["content"] for u in container.inputs["uploads"]}


def volume_mounts(container: Declared) -> dict[str, dict[str, Any]]:
    return {v["containerPath"]: v for v in container.inputs["volumes"]}


def env(container: Declared) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs.get("envs", []))


def password_values(program: Program) -> set[str]:
    return {r.state["result"] for r in program.of_type(PASSWORD)}


# --- networks ----------------------------------------------------------------


def test_the_shared_and_internal_networks_exist_with_the_runbook_names(program: Program) -> None:
    names = sorted(n.inputs["name"] for n in program.of_type(NETWORK))
    assert names == ["hule-network", "huleedu_internal_network"]
    assert program.outputs["networks"] == {
        "hule-network": "hule-network",
        "huleedu_internal_network": "huleedu_internal_network",
    }


# --- providers ----------------------------------------------------------------


def test_docker_resources_go_to_hemma_over_ssh_not_the_local_daemon(program: Program) -> None:
    provider = program.named("hemma-docker")
    assert provider.inputs["host"] == "ssh://hemma"
    docker_resources = [r for r in program.declared if r.type.startswith("docker:index")]
    assert docker_resources
    for resource in docker_resources:
        assert resource.provider.startswith(provider.urn + "::"), resource.name


def test_postgres_is_managed_through_the_ssh_tunnel_without_tls(program: Program) -> None:
    provider = program.named("shared-postgres-provider")
    assert provider.inputs["host"] == "127.0.0.1"
    assert provider.inputs["port"] == "15432"
    assert provider.inputs["sslmode"] == "disable"
    assert provider.inputs["username"] == "postgres"
    assert provider.secret_input("password")
    postgres_resources = [r for r in program.declared if r.type.startswith("postgresql:index")]
    assert postgres_resources
    for resource in postgres_resources:
        assert resource.provider.startswith(provider.urn + "::"), resource.name


def test_the_postgres_provider_waits_for_a_healthy_server(program: Program) -> None:
    provider = program.named("shared-postgres-provider")
    server = program.container("shared-postgres")
    assert server.urn in provider.dependencies


@pulumi.runtime.test
def test_host_units_connect_with_a_secret_key_and_a_pinned_host_key() -> Awaitable[None]:
    config = parse({k: as_cli_value(v) for k, v in site_config().items()}, OPERATOR_SECRETS)
    connection = ssh_connection(config)
    assert connection.host == "hemma.hule.education"
    assert connection.user == "paunchygent"
    assert connection.port == 22
    assert connection.host_key == TEST_HOST_KEY
    private_key = connection.private_key
    assert isinstance(private_key, pulumi.Output)

    async def check() -> None:
        assert await private_key.is_secret(), "the SSH private key must stay a secret Output"

    return asyncio.ensure_future(check())


# --- the proxy stack -----------------------------------------------------------


def test_nginx_proxy_runs_the_runbook_image_with_socket_certs_and_html(program: Program) -> None:
    proxy = program.container("nginx-proxy")
    image = program.named("proxy-nginx-proxy-image")
    assert image.inputs["name"] == "nginxproxy/nginx-proxy:1.6"
    assert proxy.inputs["image"].startswith("sha256:"), "the container follows the pulled image ID"
    mounts = volume_mounts(proxy)
    assert mounts["/tmp/docker.sock"]["hostPath"] == "/var/run/docker.sock"
    assert mounts["/tmp/docker.sock"]["readOnly"] is True
    assert mounts["/etc/nginx/certs"]["volumeName"] == "nginx-proxy-certs"
    assert mounts["/usr/share/nginx/html"]["volumeName"] == "nginx-proxy-html"
    assert {"label": "com.github.nginx-proxy.nginx", "value": "true"} in proxy.inputs["labels"]
    assert [n["name"] for n in proxy.inputs["networksAdvanced"]] == ["hule-network"]


def test_acme_companion_finds_the_proxy_and_shares_its_volumes(program: Program) -> None:
    companion = program.container("acme-companion")
    assert program.named("proxy-acme-companion-image").inputs["name"] == (
        "nginxproxy/acme-companion:2.4"
    )
    mounts = volume_mounts(companion)
    assert mounts["/var/run/docker.sock"]["hostPath"] == "/var/run/docker.sock"
    assert mounts["/var/run/docker.sock"]["readOnly"] is True
    assert mounts["/etc/acme.sh"]["volumeName"] == "acme-companion-acme"
    for writable in ("/etc/nginx/certs", "/usr/share/nginx/html"):
        assert not mounts[writable].get("readOnly"), f"acme-companion must write {writable}"
    assert mounts["/etc/nginx/certs"]["volumeName"] == "nginx-proxy-certs"
    variables = env(companion)
    assert variables["DEFAULT_EMAIL"] == "admin@hule.education"
    assert variables["NGINX_PROXY_CONTAINER"] == "nginx-proxy"
    assert "ACME_CA_URI" not in variables


def test_staging_switches_acme_companion_to_the_staging_ca() -> None:
    program = run_program({**site_config(), "acmeStaging": True})
    assert "acme-staging" in env(program.container("acme-companion"))["ACME_CA_URI"]


def test_only_80_and_443_listen_on_a_public_address(program: Program) -> None:
    public = []
    for container in program.containers:
        for port in container.inputs.get("ports", []):
            if port.get("ip") != "127.0.0.1":
                public.append((container.inputs["name"], port["external"]))
    assert sorted(public) == [("nginx-proxy", 80), ("nginx-proxy", 443)]


def test_every_host_is_hardened_and_size_limited_on_the_proxy(program: Program) -> None:
    files = uploads(program.container("nginx-proxy"))
    assert "return 444" in files["/etc/nginx/hemma/edge-hardening.conf"]
    for host in [*PUBLIC_HOSTS, "default"]:
        snippet = files[f"/etc/nginx/vhost.d/{host}"]
        assert "include hemma/edge-hardening.conf;" in snippet, host
        assert "client_max_body_size 10m;" in snippet, host
    assert program.outputs["proxyPublicHosts"] == PUBLIC_HOSTS


def test_prometheus_and_jaeger_are_behind_basic_auth_with_a_generated_password(
    program: Program,
) -> None:
    proxy = program.container("nginx-proxy")
    files = uploads(proxy)
    protected = sorted(f.removeprefix("/etc/nginx/htpasswd/") for f in files if "htpasswd" in f)
    assert protected == ["jaeger.hemma.hule.education", "prometheus.hemma.hule.education"]
    assert proxy.secret_input("uploads"), "htpasswd content must reach the engine as a secret"
    credentials = program.outputs["basicAuthCredentials"]
    for host in protected:
        user, hashed = files[f"/etc/nginx/htpasswd/{host}"].strip().split(":", 1)
        _, _, salt, _ = hashed.split("$")
        assert user == credentials[host]["username"] == "admin"
        assert hashed == apr1(credentials[host]["password"], salt)


# --- shared-postgres -------------------------------------------------------------


def test_shared_postgres_is_postgres_16_on_hule_network_and_localhost_only(
    program: Program,
) -> None:
    server = program.container("shared-postgres")
    assert program.named("shared-postgres-image").inputs["name"] == "postgres:16-alpine"
    assert [n["name"] for n in server.inputs["networksAdvanced"]] == ["hule-network"]
    assert server.inputs["ports"] == [{"internal": 5432, "external": 5432, "ip": "127.0.0.1"}]
    assert server.inputs["healthcheck"]["tests"][1].startswith("pg_isready")
    assert server.inputs["wait"] is True
    assert server.secret_input("envs"), "POSTGRES_PASSWORD must reach the engine as a secret"
    assert env(server)["POSTGRES_PASSWORD"] == program.outputs["postgresAdminPassword"]


def test_the_data_volume_survives_anything(program: Program) -> None:
    volume = next(v for v in program.of_type(VOLUME) if v.inputs["name"] == "shared-postgres-data")
    assert volume.protect and volume.retain_on_delete
    mounts = volume_mounts(program.container("shared-postgres"))
    assert mounts["/var/lib/postgresql/data"]["volumeName"] == "shared-postgres-data"


def test_every_volume_is_protected_and_retained(program: Program) -> None:
    volumes = program.of_type(VOLUME)
    assert {v.inputs["name"] for v in volumes} >= {
        "shared-postgres-data",
        "nginx-proxy-certs",
        "nginx-proxy-html",
        "acme-companion-acme",
        "skriptoteket-artifacts",
        "huleedu_hf_cache",
        "grafana-data",
        "prometheus-data",
    }
    for volume in volumes:
        assert volume.protect and volume.retain_on_delete, volume.name


def test_every_container_restarts_rotates_logs_checks_health_and_replaces_cleanly(
    program: Program,
) -> None:
    assert program.containers
    for container in program.containers:
        name = container.inputs["name"]
        assert container.inputs["restart"] == "unless-stopped", name
        assert container.inputs["healthcheck"]["tests"], name
        assert container.inputs["logOpts"]["max-size"], name
        assert container.delete_before_replace, f"{name}: a fixed name needs delete-before-replace"


def test_each_app_has_one_login_role_that_is_nothing_more(program: Program) -> None:
    roles = {r.inputs["name"]: r for r in program.of_type(ROLE)}
    assert sorted(roles) == ["huleedu_user", "skriptoteket"]
    for name, role in roles.items():
        assert role.inputs["login"] is True, name
        assert role.inputs["superuser"] is False, name
        assert role.inputs["createDatabase"] is False, name
        assert role.inputs["createRole"] is False, name
        assert role.secret_input("password"), name
        assert role.protect, name


def test_the_runbook_databases_are_owned_by_their_app_role(program: Program) -> None:
    owners = {d.inputs["name"]: d.inputs["owner"] for d in program.of_type(DATABASE)}
    assert owners == {
        "skriptoteket": "skriptoteket",
        **{name: "huleedu_user" for name in HULEEDU_DATABASES},
    }
    assert len(HULEEDU_DATABASES) == 13
    assert program.outputs["appDatabases"] == {
        "skriptoteket": {"role": "skriptoteket", "databases": ["skriptoteket"]},
        "huleedu": {"role": "huleedu_user", "databases": list(HULEEDU_DATABASES)},
    }


def test_every_database_is_protected_and_keeps_its_locale(program: Program) -> None:
    for database in program.of_type(DATABASE):
        assert database.protect and database.retain_on_delete, database.name
        for replaces in ("template", "lcCollate", "lcCtype"):
            assert replaces not in database.inputs, (
                f"{database.name}: {replaces} drops the database"
            )


def test_connect_is_revoked_from_public_on_every_database(program: Program) -> None:
    revoked = {
        g.inputs["database"]
        for g in program.of_type(GRANT)
        if g.inputs["role"] == "public"
        and g.inputs["objectType"] == "database"
        and g.inputs["privileges"] == []
    }
    assert revoked == {d.inputs["name"] for d in program.of_type(DATABASE)}


def test_connection_strings_use_the_role_password_and_the_container_name(program: Program) -> None:
    strings = program.outputs["appConnectionStrings"]
    passwords = {r.inputs["name"]: r.inputs["password"] for r in program.of_type(ROLE)}
    assert strings["skriptoteket"] == {
        "skriptoteket": f"postgresql://skriptoteket:{passwords['skriptoteket']}"
        "@shared-postgres:5432/skriptoteket"
    }
    assert sorted(strings["huleedu"]) == sorted(HULEEDU_DATABASES)
    assert strings["huleedu"]["huleedu_nlp"] == (
        f"postgresql://huleedu_user:{passwords['huleedu_user']}@shared-postgres:5432/huleedu_nlp"
    )


# --- secrets and outputs ------------------------------------------------------------


def test_generated_passwords_are_long_url_safe_and_stable(program: Program) -> None:
    passwords = program.of_type(PASSWORD)
    assert sorted(p.name for p in passwords) == [
        "huleedu-internal-api-key",
        "huleedu-jwt-secret",
        "observability-grafana-admin-password",
        "proxy-basic-auth-jaeger.hemma.hule.education",
        "proxy-basic-auth-prometheus.hemma.hule.education",
        "shared-postgres-admin-password",
        "shared-postgres-huleedu-password",
        "shared-postgres-skriptoteket-password",
    ]
    for password in passwords:
        assert int(password.inputs["length"]) >= 32, password.name
        assert password.inputs["special"] is False, password.name
        assert "keepers" not in password.inputs, f"{password.name} would change with its keepers"
        assert re.fullmatch(r"[A-Za-z0-9]{32,}", password.state["result"]), password.name


def test_outputs_are_the_documented_contract_and_secrets_stay_secret(program: Program) -> None:
    assert set(program.outputs) == OUTPUTS
    assert program.exported == OUTPUTS
    assert program.secret_outputs == SECRET_OUTPUTS


def test_no_generated_secret_appears_in_a_plain_output(program: Program) -> None:
    plain = repr({k: v for k, v in program.outputs.items() if k not in program.secret_outputs})
    for value in password_values(program):
        assert value not in plain


def test_every_resource_belongs_to_a_component(program: Program) -> None:
    top_level = {
        r.type for r in program.declared if r.parent.endswith("pulumi:pulumi:Stack::hemma-hemma")
    }
    assert top_level == {
        "pulumi:providers:docker",
        "hemma:network:Networks",
        "hemma:proxy:ProxyStack",
        "hemma:database:SharedPostgres",
        "hemma:host:SystemdUnit",
        "hemma:app:App",
    }


def test_the_program_declares_the_same_resources_every_run() -> None:
    def declared(program: Program) -> list[tuple[str, str]]:
        return sorted((r.urn, repr(r.inputs)) for r in program.declared)

    assert declared(run_program()) == declared(run_program())


# --- adopting the hand-made server ------------------------------------------------------


def test_import_option_adopts_existing_objects_and_only_those() -> None:
    adopted = {
        "network/hule-network": "4f2a9c0e1b7d",
        "volume/shared-postgres-data": "shared-postgres-data",
        "role/huleedu_user": "huleedu_user",
        "database/skriptoteket": "skriptoteket",
    }
    program = run_program({**site_config(), "import": adopted})
    imported = {r.type: r for r in program.declared if r.import_id}
    assert {(t, r.import_id) for t, r in imported.items()} == {
        (NETWORK, "4f2a9c0e1b7d"),
        (VOLUME, "shared-postgres-data"),
        (ROLE, "huleedu_user"),
        (DATABASE, "skriptoteket"),
    }
    assert "password" in imported[ROLE].ignore_changes
    assert "owner" in imported[DATABASE].ignore_changes
    assert "labels" in imported[VOLUME].ignore_changes
    assert imported[VOLUME].protect, "an adopted volume is protected like any other"
