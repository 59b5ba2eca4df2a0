"""shared-postgres, its data and each app's login role and databases, as declared."""

from __future__ import annotations

from typing import Any

import pytest

from components.apps.huleedu import DATABASES as HULEEDU_DATABASES
from tests.harness import (
    Declared,
    Program,
    run_program,
    site_config,
)

VOLUME = "docker:index/volume:Volume"


ROLE = "postgresql:index/role:Role"


DATABASE = "postgresql:index/database:Database"


GRANT = "postgresql:index/grant:Grant"


@pytest.fixture
def program() -> Program:
    return run_program()


def volume_mounts(container: Declared) -> dict[str, dict[str, Any]]:
    return {v["containerPath"]: v for v in container.inputs["volumes"]}


def env(container: Declared) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs.get("envs", []))


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


def test_every_role_waits_for_a_healthy_server_and_the_provider_for_nothing(
    program: Program,
) -> None:
    """terraform-provider-postgresql connects only when a resource needs it
    (provider.go providerConfigure returns NewClient unconnected; Client.Connect in
    config.go). The roles wait for the container (and the databases for their owner
    role); the provider waits for nothing, because every ``up --target`` targets
    providers implicitly and one that waits for an untargeted container stops the run
    ("untargeted create", pulumi step_generator.go): the adoption's build-first
    ``up --target`` needs that."""
    provider = program.named("shared-postgres-provider")
    server = program.container("shared-postgres")
    assert server.urn not in provider.dependencies
    roles = program.of_type("postgresql:index/role:Role")
    assert roles
    for role in roles:
        assert server.urn in role.dependencies, role.name
    for database in program.of_type("postgresql:index/database:Database"):
        assert any(r.urn in database.dependencies for r in roles), database.name


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


def test_postgres_host_port_moves_the_published_port_and_the_tunnel() -> None:
    program = run_program({**site_config(), "postgres": {"hostPort": 5433}})
    server = program.container("shared-postgres")
    assert server.inputs["ports"] == [{"internal": 5432, "external": 5433, "ip": "127.0.0.1"}]
    assert ":127.0.0.1:5433 " in program.outputs["postgresTunnel"]


def test_the_data_volume_survives_anything(program: Program) -> None:
    volume = next(v for v in program.of_type(VOLUME) if v.inputs["name"] == "shared-postgres-data")
    assert volume.protect and volume.retain_on_delete
    mounts = volume_mounts(program.container("shared-postgres"))
    assert mounts["/var/lib/postgresql/data"]["volumeName"] == "shared-postgres-data"


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
