"""The database privilege model, applied to a real PostgreSQL server.

The roles, databases and grants are the ones the program declares, turned into
the SQL that pulumi-postgresql runs for them (CREATE ROLE with explicit
NO... flags, CREATE DATABASE ... OWNER, REVOKE ALL PRIVILEGES ON DATABASE ...
FROM "public"). The server is the PostgreSQL 15 on this machine; Hemma runs
16, and both have the change that matters here: PUBLIC lost CREATE on schema
public in 15.
"""

from __future__ import annotations

import pytest

from tests.postgres_server import Server

pytestmark = pytest.mark.tools


def app_databases(server: Server) -> dict[str, list[str]]:
    return {
        spec["role"]: spec["databases"] for spec in server.program.outputs["appDatabases"].values()
    }


def test_the_server_is_real_and_new_enough_for_the_public_schema_change(server: Server) -> None:
    assert int(server.admin("SHOW server_version_num")) >= 150000


def test_each_app_role_can_create_tables_in_each_of_its_databases(server: Server) -> None:
    for role, databases in app_databases(server).items():
        for database in databases:
            done = server.as_role(
                role,
                database,
                "CREATE TABLE hemma_probe (id int); INSERT INTO hemma_probe VALUES (1); "
                "SELECT count(*) FROM hemma_probe; DROP TABLE hemma_probe;",
            )
            assert done.returncode == 0, f"{role} in {database}: {done.stderr}"
            assert "1" in done.stdout.splitlines(), done.stdout


def test_an_app_role_cannot_connect_to_another_apps_database(server: Server) -> None:
    apps = app_databases(server)
    for role in apps:
        for other_role, databases in apps.items():
            if other_role == role:
                continue
            for database in databases:
                done = server.as_role(role, database, "SELECT 1")
                assert done.returncode != 0, f"{role} reached {database}"
                assert "permission denied for database" in done.stderr


def test_no_app_role_is_superuser_or_can_create_databases_or_roles(server: Server) -> None:
    for role, databases in app_databases(server).items():
        flags = server.as_role(
            role,
            databases[0],
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
            "WHERE rolname = current_user",
        )
        assert flags.stdout.strip() == "f|f|f", role
        assert server.as_role(role, databases[0], "CREATE DATABASE sneaky").returncode != 0
        assert server.as_role(role, databases[0], "CREATE ROLE sneaky").returncode != 0


def test_the_exported_connection_strings_work_against_the_server(server: Server) -> None:
    for databases in server.program.outputs["appConnectionStrings"].values():
        for database, url in databases.items():
            local = url.replace("@shared-postgres:5432/", f"@127.0.0.1:{server.port}/")
            done = server.psql_url(local, "SELECT current_database()")
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == database


def test_the_runbooks_grant_all_on_database_is_not_enough_on_postgres_15_and_later(
    server: Server,
) -> None:
    """What the runbooks do by hand: a role with GRANT ALL on a database it does not own."""
    server.admin("CREATE ROLE runbook_user LOGIN PASSWORD 'runbook-password'")
    server.admin("CREATE DATABASE runbook_db")
    server.admin("GRANT ALL PRIVILEGES ON DATABASE runbook_db TO runbook_user")
    done = server.psql(
        "CREATE TABLE t (id int)", user="runbook_user", password="runbook-password", db="runbook_db"
    )
    assert done.returncode != 0
    assert "permission denied for schema public" in done.stderr
