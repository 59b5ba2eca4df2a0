"""A real PostgreSQL server holding what the program declares.

The roles, databases and grants are the ones the program declares, turned into
the SQL that pulumi-postgresql runs for them (CREATE ROLE with explicit NO...
flags, CREATE DATABASE ... OWNER, REVOKE ALL PRIVILEGES ON DATABASE ... FROM
"public"). The server is the PostgreSQL 15 on this machine, started with
initdb and pg_ctl as the postgres user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.harness import Declared, Program, run_program

ADMIN_PASSWORD = "admin-test-password"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pg_tool(name: str) -> str:
    found = shutil.which(name) or str(PG_BIN / name)
    assert os.path.exists(found), f"{name} is required (apt-get install postgresql-15)"
    return found


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def role_sql(role: Declared) -> str:
    """CREATE ROLE as the provider writes it: every flag spelled out."""
    i = role.inputs
    flags = [
        ("SUPERUSER", i.get("superuser", False)),
        ("CREATEDB", i.get("createDatabase", False)),
        ("CREATEROLE", i.get("createRole", False)),
        ("INHERIT", i.get("inherit", True)),
        ("LOGIN", i.get("login", False)),
        ("REPLICATION", i.get("replication", False)),
        ("BYPASSRLS", i.get("bypassRowLevelSecurity", False)),
    ]
    options = " ".join(name if on else f"NO{name}" for name, on in flags)
    return (
        f"CREATE ROLE {quote_ident(i['name'])} WITH {options} CONNECTION LIMIT -1 "
        f"ENCRYPTED PASSWORD {quote_literal(i['password'])} VALID UNTIL 'infinity'"
    )


def database_sql(database: Declared) -> str:
    i = database.inputs
    return f"CREATE DATABASE {quote_ident(i['name'])} OWNER {quote_ident(i['owner'])}"


def grant_sql(grant: Declared) -> str:
    """A database grant with no privileges is the provider's revoke of all of them."""
    i = grant.inputs
    assert i["objectType"] == "database" and i["privileges"] == []
    return (
        f"REVOKE ALL PRIVILEGES ON DATABASE {quote_ident(i['database'])} "
        f"FROM {quote_ident(i['role'])}"
    )


@dataclass
class Server:
    port: int
    program: Program

    def psql(
        self, sql: str, user: str = "postgres", password: str = ADMIN_PASSWORD, db: str = "postgres"
    ) -> subprocess.CompletedProcess[str]:
        return self.psql_url(f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}", sql)

    def psql_url(self, url: str, sql: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [pg_tool("psql"), url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def admin(self, sql: str, db: str = "postgres") -> str:
        done = self.psql(sql, db=db)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def role_password(self, role: str) -> str:
        roles = self.program.of_type("postgresql:index/role:Role")
        return str(next(r for r in roles if r.inputs["name"] == role).inputs["password"])

    def as_role(self, role: str, db: str, sql: str) -> subprocess.CompletedProcess[str]:
        return self.psql(sql, user=role, password=self.role_password(role), db=db)


def as_postgres_user(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextlib.contextmanager
def cluster(prefix: str, password: str | None = None) -> Iterator[int]:
    """A PostgreSQL 15 cluster on 127.0.0.1, run by the postgres user from a temp dir;
    yields its port. With ``password`` the superuser has it and logins need SCRAM,
    without one every local login is trusted."""
    # Not under pytest's tmp dir: its parents are private to root, and the server
    # runs as the postgres user.
    base = Path(tempfile.mkdtemp(prefix=prefix))
    data, sockets, pwfile = base / "data", base / "sockets", base / "pwfile"
    sockets.mkdir()
    auth = ["-A", "trust"]
    if password is not None:
        pwfile.write_text(password + "\n")
        auth = ["-A", "scram-sha-256", f"--pwfile={pwfile}"]
    if os.geteuid() == 0:
        for path in (base, sockets, *([pwfile] if password is not None else [])):
            shutil.chown(path, "postgres")
        base.chmod(0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    initdb = [pg_tool("initdb"), "-D", str(data), "-U", "postgres", *auth, "--no-sync"]
    init = subprocess.run(as_postgres_user(initdb), capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off"
    pg_ctl = [pg_tool("pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", options]
    started = subprocess.run(
        as_postgres_user([*pg_ctl, "-w", "start"]), capture_output=True, text=True
    )
    assert started.returncode == 0, started.stderr + (base / "log").read_text()
    try:
        yield port
    finally:
        subprocess.run(as_postgres_user([*pg_ctl, "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def running_server() -> Iterator[Server]:
    """Start a server, apply the program's database model, yield, stop and clean up."""
    program = run_program()
    with cluster("hemma-postgres-", ADMIN_PASSWORD) as port:
        pg = Server(port=port, program=program)
        for role in program.of_type("postgresql:index/role:Role"):
            pg.admin(role_sql(role))
        for database in program.of_type("postgresql:index/database:Database"):
            pg.admin(database_sql(database))
        for grant in program.of_type("postgresql:index/grant:Grant"):
            pg.admin(grant_sql(grant))
        yield pg
