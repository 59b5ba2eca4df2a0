"""A local PostgreSQL server and the stand-ins the host scripts meet on Hemma.

The stand-in ``docker`` is the one program these tests replace, and only because
this machine has no shared-postgres container: ``docker exec shared-postgres
pg_dump ...`` (and pg_restore, psql, createdb, dropdb) run the real PostgreSQL 15
tools against the real server below, which trusts local connections the way the
official image does. ``stop``/``start`` flip a container's recorded state and run
its hooks (an app that writes on shutdown and again after starting), ``inspect``
renders the few Go template fields the scripts ask for, and every call is logged
with whether restic's secrets were in its environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.postgres_server import PG_BIN, cluster, pg_tool

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "components" / "backups" / "files"
RESTIC = shutil.which("restic")


@dataclass
class Postgres:
    port: int

    def env(self) -> dict[str, str]:
        return {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": "postgres"}

    def sql(self, sql: str, db: str = "postgres") -> str:
        done = subprocess.run(
            [pg_tool("psql"), "-d", db, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def databases(self) -> set[str]:
        return set(self.sql("SELECT datname FROM pg_database").split())


def running_postgres() -> Iterator[Postgres]:
    """PostgreSQL 15 on 127.0.0.1 with trust auth, as the postgres user, in a temp dir."""
    with cluster("hemma-backups-pg-") as port:
        yield Postgres(port)


DOCKER = r"""#!@PYTHON@
import json, os, re, subprocess, sys, time
from pathlib import Path

STATE = Path("@STATE@")
TOOLS = {"pg_dump", "pg_restore", "psql", "createdb", "dropdb"}


def load():
    return json.loads(STATE.read_text())


def save(state):
    STATE.write_text(json.dumps(state))


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def field(obj, path):
    for key in path.split(".")[1:]:
        if obj is None:
            raise ValueError("nil pointer evaluating " + path)
        obj = obj[key]
    return obj


def text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return "<no value>" if value is None else str(value)


def render(template, obj):
    # Go's text/template, as far as the scripts use it: {{.A.B}} and {{if .A}}...{{end}}.
    template = re.sub(r"\{\{if (\.[\w.]+)\}\}(.*?)\{\{end\}\}",
                      lambda m: m.group(2) if field(obj, m.group(1)) else "", template)
    return re.sub(r"\{\{(\.[\w.]+)\}\}", lambda m: text(field(obj, m.group(1))), template)


def model(name, c):
    health = {"Status": c["health"]} if c.get("health") else None
    return {"Name": "/" + name, "RestartCount": c.get("restarts", 0),
            "State": {"Running": c["running"], "Health": health},
            "HostConfig": {"RestartPolicy": {"Name": c.get("policy", "no")}}}


def hook(c, event):
    for path, line in c.get("on_" + event, []):
        with open(path, "a") as f:
            f.write(line + "\n")


state = load()
args = sys.argv[1:]
with open(STATE.parent / "docker.log", "a") as log:
    log.write(json.dumps({"argv": args, "time": time.time(),
        "secrets_in_env": any(k.startswith("RESTIC_PASSWORD") for k in os.environ)}) + "\n")
command, args = args[0], args[1:]
containers = state["containers"]

if command == "exec":
    stdin = subprocess.DEVNULL
    if args[0] == "-i":
        stdin, args = None, args[1:]
    name, tool, rest = args[0], args[1], args[2:]
    if name not in containers:
        fail("Error response from daemon: No such container: " + name)
    if not containers[name]["running"]:
        fail("Error response from daemon: container " + name + " is not running")
    if name != state["postgres"] or tool not in TOOLS:
        fail("OCI runtime exec failed: " + tool + ": executable file not found in $PATH")
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(state["port"]))
    sys.exit(subprocess.run([state["pg_bin"] + "/" + tool, *rest], stdin=stdin, env=env).returncode)

if command in ("stop", "start"):
    if args[0] == "-t":
        args = args[2:]
    missing = [n for n in args if n not in containers]
    for name in args:
        if name in containers:
            containers[name]["running"] = command == "start"
            hook(containers[name], command)
            print(name)
    save(state)
    if missing:
        fail("Error response from daemon: No such container: " + missing[0])
    sys.exit(0)

if command == "inspect":
    template, names = args[1], args[2:]
    code = 0
    for name in names:
        if name not in containers:
            print("Error: No such object: " + name, file=sys.stderr)
            code = 1
            continue
        try:
            print(render(template, model(name, containers[name])))
        except (ValueError, KeyError) as error:
            fail("template: " + str(error))
    sys.exit(code)

if command == "ps":
    everything = "-a" in args
    volume = next((a.split("=", 1)[1] for a in args if a.startswith("volume=")), None)
    for name, c in containers.items():
        if (everything or c["running"]) and (volume is None or volume in c.get("volumes", [])):
            print(name)
    sys.exit(0)

if command == "volume":
    path = Path(state["volume_root"]) / args[1]
    if args[0] == "inspect":
        sys.exit(0 if path.is_dir() else 1)
    if args[0] == "create":
        (path / "_data").mkdir(parents=True, exist_ok=True)
        print(args[1])
        sys.exit(0)

fail("stand-in docker: unsupported: " + " ".join(sys.argv[1:]))
"""


class Docker:
    """The stand-in docker executable and the state it keeps in a JSON file."""

    def __init__(self, where: Path, postgres: Postgres, volume_root: Path) -> None:
        where.mkdir(parents=True, exist_ok=True)
        self.path = where / "docker"
        self.state_file = where / "docker-state.json"
        self.log_file = where / "docker.log"
        self.state_file.write_text(
            json.dumps(
                {
                    "postgres": "shared-postgres",
                    "port": postgres.port,
                    "pg_bin": str(PG_BIN),
                    "volume_root": str(volume_root),
                    "containers": {"shared-postgres": {"running": True, "policy": "always"}},
                }
            )
        )
        self.path.write_text(
            DOCKER.replace("@PYTHON@", sys.executable).replace("@STATE@", str(self.state_file))
        )
        self.path.chmod(0o755)

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.state_file.read_text())
        return result

    def add(self, name: str, **container: Any) -> None:
        state = self.state()
        state["containers"][name] = {"running": True, "policy": "unless-stopped", **container}
        self.state_file.write_text(json.dumps(state))

    def calls(self) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]

    def commands(self, name: str) -> list[list[str]]:
        return [c["argv"] for c in self.calls() if c["argv"][0] == name]


def metrics(text: str) -> dict[str, str]:
    """Sample lines of a Prometheus text file: 'name{labels}' -> value."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = value
    return samples
