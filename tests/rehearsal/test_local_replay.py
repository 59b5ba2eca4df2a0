"""The local stack (Pulumi.local.yaml) rehearsed on the real engine, as a newcomer's
laptop would run it: every container healthy by its own check, nginx-proxy routing
to each app, nothing answering on an address other than loopback, shared-postgres
reachable where the PostgreSQL provider connects, and the migrations run here with
this machine's docker CLI (local.Command with ``DOCKER_HOST``), not over SSH.

The fixtures and the health and routing tests are ``test_replay``'s, run against
this module's program.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.harness import Program, local_config, run_program
from tests.parts.engine import Engine
from tests.postgres_server import pg_tool
from tests.proxy.files import RELOAD_STEP, SETTLE_STEP
from tests.rehearsal.replay import Replayed
from tests.rehearsal.test_replay import (
    connects,
    exec_log,
    healthy,
    probes,
    public_addresses,
    published,
    site,
    standin_image,
    standins,
    test_every_container_runs_and_turns_healthy_by_its_declared_check,
    test_nginx_proxy_reaches_every_routed_container_on_its_virtual_port,
)

pytest_plugins = ["tests.parts.fixtures"]

__all__ = [
    "healthy",
    "probes",
    "site",
    "standin_image",
    "standins",
    "test_every_container_runs_and_turns_healthy_by_its_declared_check",
    "test_nginx_proxy_reaches_every_routed_container_on_its_virtual_port",
]

LOCAL_COMMAND = "command:local:Command"
DECLARED_SOCKET = "unix:///var/run/docker.sock"


@pytest.fixture(scope="module")
def program() -> Program:
    return run_program(local_config(), secret_keys=set())


def test_nothing_answers_on_an_address_other_than_loopback(healthy: Replayed) -> None:
    bindings = published(healthy.program)
    assert bindings and {b.ip for b in bindings} == {"127.0.0.1"}
    ports = sorted({b.port for b in bindings})
    assert {80, 443} <= set(ports)
    addresses = public_addresses()
    assert addresses, "this machine has no address besides loopback to try"
    answering = {(a, p) for a in addresses for p in ports if connects(a, p)}
    assert answering == set(), "the local stack is for this machine only"
    assert all(connects("127.0.0.1", p) for p in ports)


def test_the_database_provider_reaches_shared_postgres_where_it_connects(
    healthy: Replayed, program: Program
) -> None:
    (provider,) = program.of_type("pulumi:providers:postgresql")
    admin = program.named("shared-postgres-admin-password").state["result"]
    done = subprocess.run(
        [pg_tool("psql"), "-h", provider.inputs["host"], "-p", str(provider.inputs["port"]),
         "-U", provider.inputs["username"], "-d", "postgres", "-Atc", "SELECT current_user"],
        capture_output=True, text=True, env={**os.environ, "PGPASSWORD": admin}, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "postgres"


def test_the_migrations_run_here_with_this_machines_docker(
    healthy: Replayed, program: Program, engine: Engine, tmp_path: Path
) -> None:
    """Each step as pulumi-command's local.Command runs it: its create line through the
    shell, with the declared environment, the declared socket swapped for the test
    engine's (the only stand-in), and ``docker`` found on PATH. The proxy's two
    steps need a real nginx: tests/proxy/test_reload_on_engine.py runs them."""
    steps = [
        c
        for c in program.of_type(LOCAL_COMMAND)
        if (c.inputs.get("environment") or {}).get("DOCKER_HOST") == DECLARED_SOCKET
        and c.name not in (RELOAD_STEP, SETTLE_STEP)
        # A drain reads a real nginx-proxy's upstreams: test_start_first_on_engine.py.
        and not c.name.endswith("-drain")
    ]
    assert {s.name for s in steps} >= {"skriptoteket-web-migrate"}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").symlink_to(engine.client)
    problems = []
    for step in steps:
        create = step.inputs["create"]
        container = re.search(r"container=(\S+)", create)
        assert container, step.name
        name = container[1].strip("'")
        before = len(exec_log(healthy, name))
        env = {
            **os.environ,
            **step.inputs["environment"],
            "DOCKER_HOST": engine.host,
            "PATH": f"{bin_dir}:/usr/bin:/bin",
        }
        env.pop("DOCKER_CONTEXT", None)
        done = subprocess.run(
            ["/bin/sh", "-c", create], input=step.inputs.get("stdin") or "",
            capture_output=True, text=True, env=env, timeout=240,
        )  # fmt: skip
        if done.returncode != 0:
            problems.append(f"{step.name}: exit {done.returncode}: {done.stderr.strip()}")
        elif len(exec_log(healthy, name)) <= before:
            problems.append(f"{step.name}: nothing ran in {name}")
    assert not problems, "\n".join(problems)
