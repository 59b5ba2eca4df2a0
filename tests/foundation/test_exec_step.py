"""A migration step run for real, by bash, against a stand-in ``docker`` on PATH: it waits
for the container to run, runs the command in it once, then waits for it to be healthy;
a container that never runs or never gets healthy stops the ``up`` with a line that
says so."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.foundation.commands import HEALTH_TIMEOUT_SECONDS, as_command, exec_step

DOCKER = """#!/bin/sh
case "$1" in
  inspect)
    case "$3" in
      *Health*) cat "$STAND_IN/health" ;;
      *) cat "$STAND_IN/state" ;;
    esac ;;
  exec)
    shift
    for word in "$@"; do printf '%s\\0' "$word"; done >> "$STAND_IN/exec.log"
    cat > "$STAND_IN/stdin"
    exit "$(cat "$STAND_IN/exec-status")" ;;
esac
"""
"""Answers ``inspect`` with the state and health written in its directory, and records
each ``exec``'s argv (NUL-separated) and what it read on stdin; the exec exits with
the status written there."""


@dataclass
class Step:
    returncode: int
    stderr: str
    execs: list[list[str]]
    stdin: str


def run_step(
    tmp: Path,
    *,
    state: str = "true false",
    health: str = "healthy",
    stdin: str = "",
    status: int = 0,
    reads_stdin: bool = False,
    wait_healthy: bool = True,
    timeout: int = HEALTH_TIMEOUT_SECONDS,
) -> Step:
    stand_in = tmp / "stand in"  # a value with a space is still one word
    stand_in.mkdir(exist_ok=True)
    docker = stand_in / "docker"
    docker.write_text(DOCKER)
    docker.chmod(0o755)
    (stand_in / "state").write_text(state + "\n")
    (stand_in / "health").write_text(health + "\n")
    (stand_in / "exec-status").write_text(f"{status}\n")
    script = exec_step(
        str(docker),
        "skriptoteket-web",
        ("pdm", "run", "alembic upgrade head"),
        reads_stdin=reads_stdin,
        wait_healthy=wait_healthy,
        timeout=timeout,
    )
    done = subprocess.run(
        ["bash", "-c", as_command(script)],
        input=stdin, capture_output=True, text=True, timeout=20,
        env={**os.environ, "STAND_IN": str(stand_in)},
    )  # fmt: skip
    log = stand_in / "exec.log"
    words = log.read_text().split("\0")[:-1] if log.exists() else []
    execs = [words] if words else []
    read = (stand_in / "stdin").read_text() if (stand_in / "stdin").exists() else ""
    return Step(done.returncode, done.stderr, execs, read)


def test_a_running_container_gets_the_command_once_as_its_words(tmp_path: Path) -> None:
    step = run_step(tmp_path)
    assert step.returncode == 0, step.stderr
    assert step.execs == [["skriptoteket-web", "pdm", "run", "alembic upgrade head"]]


def test_a_container_that_never_runs_stops_the_step_before_the_command(tmp_path: Path) -> None:
    for state in ("false false", "true true"):  # stopped; restarting in a loop
        step = run_step(tmp_path, state=state, timeout=0)
        assert step.returncode == 1
        assert step.stderr == "skriptoteket-web is not running\n"
        assert step.execs == []


def test_a_container_that_never_gets_healthy_stops_the_step_after_the_command(
    tmp_path: Path,
) -> None:
    step = run_step(tmp_path, health="unhealthy", timeout=0)
    assert step.returncode == 1
    assert step.stderr == "skriptoteket-web is unhealthy, not healthy\n"
    assert step.execs == [["skriptoteket-web", "pdm", "run", "alembic upgrade head"]]


def test_a_step_that_does_not_wait_for_health_ends_after_the_command(tmp_path: Path) -> None:
    step = run_step(tmp_path, health="unhealthy", timeout=0, wait_healthy=False)
    assert step.returncode == 0, step.stderr
    assert len(step.execs) == 1


@pytest.mark.parametrize("reads_stdin", [True, False])
def test_only_a_step_that_reads_stdin_is_handed_it(tmp_path: Path, reads_stdin: bool) -> None:
    """A password travels on stdin (``docker exec -i``), never on the command line."""
    step = run_step(tmp_path, stdin="s3cret\n", reads_stdin=reads_stdin)
    assert step.returncode == 0, step.stderr
    assert step.execs[0][:1] == (["-i"] if reads_stdin else ["skriptoteket-web"])
    if reads_stdin:
        assert step.stdin == "s3cret\n"


def test_the_step_waits_five_minutes_for_its_container_by_default() -> None:
    assert HEALTH_TIMEOUT_SECONDS == 300
    assert "deadline=$((SECONDS + 300))\n" in exec_step("/snap/bin/docker", "web", ("true",))


def test_a_command_that_fails_stops_the_step_with_its_status(tmp_path: Path) -> None:
    """A failed migration fails the up, even though the container then gets healthy."""
    step = run_step(tmp_path, status=3)
    assert step.returncode == 3
    assert len(step.execs) == 1


def test_by_default_a_step_reads_no_stdin_and_waits_for_health() -> None:
    script = exec_step("/snap/bin/docker", "web", ("migrate",))
    assert script == exec_step(
        "/snap/bin/docker", "web", ("migrate",), reads_stdin=False, wait_healthy=True
    )
    assert '"$docker" exec "$container" migrate\n' in script
    assert 'until [ "$(health)" = healthy ]; do' in script
