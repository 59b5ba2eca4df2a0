"""The hand-made server of the runbooks, on the private engine, and the rehearsal's tools.

Made the way the operator made it: ``hule-network`` by hand, volumes that compose
named after its project (with its ``com.docker.compose.*`` labels),
``shared-postgres`` with ``restart: always`` and an admin password of its own, the
databases and ``huleedu_user`` of runbook 001 (``CREATE DATABASE``, ``CREATE USER
... WITH PASSWORD``, ``GRANT ALL PRIVILEGES ON DATABASE``), rows in a table the
admin made and in one the app role made, an nginx-proxy with certificates, and app
containers that log in with DATABASE_URL or a user/password pair.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from components.apps.huleedu import DATABASES as HULEEDU_DATABASES
from tests.harness import ROOT
from tests.parts.engine import Engine
from tests.parts.ssh import SshServer
from tests.rehearsal.replay import DockerApi, remove_network

POSTGRES = "shared-postgres"
NETWORK = "hule-network"
OLD_ADMIN = "hand-made-admin-2024"
OLD_PASSWORDS = {"huleedu_user": "hand made huleedu", "skriptoteket": "it's a \\ secret"}
"""The app roles' hand-made passwords: a space, a quote and a backslash on the way."""
PG_VOLUME = "infrastructure_postgres_data"
CERTS_VOLUME = "infrastructure_certs"
ARTIFACTS_VOLUME = "skriptoteket_artifacts"
COMPOSE_VOLUMES = {
    PG_VOLUME: ("infrastructure", "postgres_data"),
    CERTS_VOLUME: ("infrastructure", "certs"),
    ARTIFACTS_VOLUME: ("skriptoteket", "artifacts"),
}
IDLE = "trap 'exit 0' TERM; sleep 2147483647 & wait"
"""A stand-in app: waits, and stops at once on SIGTERM as a real server does."""
HAND_MADE_ROWS = ("first", "second", "third")
ARTIFACT = "/app/.artifacts/report.txt"
CERT = "/etc/nginx/certs/hule.education.crt"
UNDECLARED = "adminer"

RUNBOOK_SQL = "".join(
    [
        *(f"CREATE DATABASE {db};\n" for db in HULEEDU_DATABASES),
        f"CREATE USER huleedu_user WITH PASSWORD '{OLD_PASSWORDS['huleedu_user']}';\n",
        *(f"GRANT ALL PRIVILEGES ON DATABASE {db} TO huleedu_user;\n" for db in HULEEDU_DATABASES),
        "CREATE DATABASE skriptoteket;\n",
        "CREATE USER skriptoteket WITH PASSWORD E'it''s a \\\\ secret';\n",
        "GRANT ALL PRIVILEGES ON DATABASE skriptoteket TO skriptoteket;\n",
    ]
)
ADMIN_TABLES_SQL = """\
CREATE TABLE public.hand_made (id serial PRIMARY KEY, note text NOT NULL);
INSERT INTO public.hand_made (note) VALUES ('first'), ('second'), ('third');
CREATE VIEW public.hand_made_notes AS SELECT note FROM public.hand_made;
CREATE EXTENSION pg_stat_statements;
"""
APP_TABLES_SQL = """\
CREATE SCHEMA app;
CREATE TABLE app.events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, what text);
INSERT INTO app.events (what) VALUES ('signed up'), ('logged in');
"""


def database_url(role: str, password: str, database: str, scheme: str = "postgresql") -> str:
    quoted = urllib.parse.quote(password, safe="")
    return f"{scheme}://{role}:{quoted}@{POSTGRES}:5432/{database}"


def wait_ready(engine: Engine, container: str, timeout: float = 90) -> None:
    """Over TCP: the entrypoint's first server, which runs the init scripts, listens on
    the socket only, and stops before the real one starts (pg-entrypoint.sh)."""
    deadline = time.monotonic() + timeout
    while True:
        done = engine.docker(
            "exec", container, "pg_isready", "-h", "127.0.0.1", "-U", "postgres", check=False
        )
        if done.returncode == 0:
            return
        assert time.monotonic() < deadline, f"{container}: {done.stdout}{done.stderr}"
        time.sleep(0.3)


def admin_sql(engine: Engine, sql: str, database: str = "postgres", user: str = "postgres") -> str:
    done = engine.docker(
        "exec", "-i", POSTGRES, "psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1",
        "-U", user, "-d", database, input=sql,
    )  # fmt: skip
    return done.stdout.strip()


@dataclass
class HandMade:
    """What the operator built by hand; ``ids`` are the containers' IDs."""

    engine: Engine
    ids: dict[str, str] = field(default_factory=dict)
    restart: dict[str, str] = field(default_factory=dict)

    def run(self, name: str, restart: str, *args: str, image: str, command: list[str]) -> None:
        done = self.engine.docker(
            "run", "-d", "--name", name, "--restart", restart, "--network", NETWORK, *args,
            image, *command,
        )  # fmt: skip
        self.ids[name] = done.stdout.strip()
        self.restart[name] = restart

    def build(self, pg_image: str, busybox: str) -> None:
        docker = self.engine.docker
        docker("network", "create", NETWORK)
        for volume, (project, key) in COMPOSE_VOLUMES.items():
            docker(
                "volume", "create",
                "--label", f"com.docker.compose.project={project}",
                "--label", f"com.docker.compose.volume={key}",
                "--label", "com.docker.compose.version=2.29.1",
                volume,
            )  # fmt: skip
        compose = ["--label", "com.docker.compose.project=infrastructure"]
        self.run(
            POSTGRES, "always", *compose,
            "--label", f"com.docker.compose.service={POSTGRES}",
            "-e", f"POSTGRES_PASSWORD={OLD_ADMIN}",
            "-v", f"{PG_VOLUME}:/var/lib/postgresql/data",
            image=pg_image, command=[],
        )  # fmt: skip
        idle = ["sh", "-c", IDLE]
        self.run(
            "nginx-proxy", "always", *compose, "-v", f"{CERTS_VOLUME}:/etc/nginx/certs",
            image=busybox, command=idle,
        )  # fmt: skip
        self.run(
            "skriptoteket-web", "unless-stopped",
            "--label", "com.docker.compose.project=skriptoteket",
            "-e", "DATABASE_URL=" + database_url(
                "skriptoteket", OLD_PASSWORDS["skriptoteket"], "skriptoteket",
                "postgresql+asyncpg",
            ),
            "-v", f"{ARTIFACTS_VOLUME}:/app/.artifacts",
            image=busybox, command=idle,
        )  # fmt: skip
        self.run(
            "huleedu_content_service", "unless-stopped",
            "--label", "com.docker.compose.project=huleedu",
            "-e", "HULEEDU_DB_USER=huleedu_user",
            "-e", f"HULEEDU_DB_PASSWORD={OLD_PASSWORDS['huleedu_user']}",
            # Not a database login: must not be mistaken for one.
            "-e", "SMTP_USERNAME=skriptoteket", "-e", "SMTP_PASSWORD=mail-password",
            image=busybox, command=idle,
        )  # fmt: skip
        self.run(UNDECLARED, "always", image=busybox, command=idle)
        wait_ready(self.engine, POSTGRES)
        admin_sql(self.engine, RUNBOOK_SQL)
        admin_sql(self.engine, ADMIN_TABLES_SQL, "huleedu_content")
        admin_sql(self.engine, APP_TABLES_SQL, "huleedu_content", user="huleedu_user")
        docker("exec", "nginx-proxy", "sh", "-c", f"echo certificate > {CERT}")
        docker("exec", "skriptoteket-web", "sh", "-c", f"echo made by hand > {ARTIFACT}")

    def remove(self, others: set[str]) -> None:
        """Every container of these names (old, new, kept) and the rehearsal's volumes."""
        names = {*self.ids, *others}
        names |= {f"{n}-pre-hemma" for n in names}
        present = set(self.engine.docker("ps", "-a", "--format", "{{.Names}}").stdout.split())
        # A start-first container of one of these services: SERVICE-DIGEST.
        names |= {p for p in present if re.fullmatch(r"(.+)-[0-9a-f]{12}", p) and p[:-13] in names}
        if names & present:
            self.engine.docker("rm", "--force", *sorted(names & present), check=False)
        self.engine.docker("volume", "rm", "--force", *COMPOSE_VOLUMES, check=False)
        # After the rehearsal's daemon restart an endpoint may outlive its container;
        # a network left behind would stop the next replay.
        remove_network(DockerApi(self.engine.socket), NETWORK)


@dataclass
class Checkout:
    """A throwaway copy of this checkout."""

    root: Path

    @property
    def stack_file(self) -> Path:
        return self.root / "Pulumi.hemma.yaml"

    def run(
        self, script: str, *args: str, cwd: Path, env: Mapping[str, str], timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.root / "scripts" / script), *args],
            cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip


def make_checkout(base: Path) -> Checkout:
    root = base / "checkout"
    keep = shutil.ignore_patterns("__pycache__")
    for folder in ("components", "plan", "ops", "scripts"):
        shutil.copytree(ROOT / folder, root / folder, ignore=keep)
    for file in ("__main__.py", "Pulumi.yaml", "Pulumi.hemma.yaml", "requirements.txt"):
        shutil.copy(ROOT / file, root / file)
    return Checkout(root)


def standin_pulumi() -> str:
    """The ``--pulumi`` of the rehearsal (tests/rehearsal/adoption_pulumi.py)."""
    script = Path(__file__).resolve().parent / "adoption_pulumi.py"
    return f"{sys.executable} {script}"


def operator_env(
    ssh_server: SshServer, state: Path, plan: Path, stack_file: Path, admin: str
) -> dict[str, str]:
    """The operator's shell: ssh reaches the test sshd; the stand-in pulumi's files."""
    env = ssh_server.client_env()
    env.pop("DOCKER_HOST", None)
    env.update(
        HEMMA_VENV=str(ROOT / "venv"),
        ADOPTION_STATE=str(state),
        ADOPTION_PLAN=str(plan),
        ADOPTION_STACK_FILE=str(stack_file),
        ADOPTION_ADMIN_PASSWORD=admin,
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("PYTHONPATH", None)
    return env
