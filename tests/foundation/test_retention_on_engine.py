"""Built images stay on Hemma, the newest ``imageRetention`` of each repository: the
command that runs when a build is replaced, on the private engine's real CLI."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from components.foundation.builds import remove_command
from components.model.app import Build
from tests.parts.engine import Engine
from tests.parts.side import busybox_image, engine

pytest_plugins = ["tests.parts.fixtures"]
__all__ = ["busybox_image", "engine"]
pytestmark = pytest.mark.tools

REPOSITORY = "hemma-test/retention"


def build(engine: Engine, base: str, tag: str) -> str:
    """One image of the repository, distinct from the others (its own label)."""
    with tempfile.TemporaryDirectory(prefix="hemma-retention-") as context:
        (Path(context) / "Dockerfile").write_text(f"FROM {base}\nLABEL build={tag}\n")
        engine.docker("build", "--quiet", "--tag", f"{REPOSITORY}:{tag}", context)
    return engine.inspect(f"{REPOSITORY}:{tag}", "{{.Id}}")


def tags(engine: Engine) -> list[str]:
    listed = engine.docker("image", "ls", "--format", "{{.Tag}}", REPOSITORY)
    return listed.stdout.split()


def test_a_replaced_build_keeps_the_newest_tags_and_the_one_a_container_runs(
    engine: Engine, busybox_image: str
) -> None:
    engine.docker("image", "rm", "--force", *[f"{REPOSITORY}:{t}" for t in tags(engine)],
                  check=False)  # fmt: skip
    for number in range(1, 6):
        build(engine, busybox_image, f"digest{number}")
        # docker image ls orders by creation in whole seconds (moby v20.10.24
        # daemon/images/images.go byCreated); builds on Hemma are an up apart.
        time.sleep(1.1)
    engine.docker("tag", f"{REPOSITORY}:digest5", f"{REPOSITORY}:hemma")
    # A container still runs the oldest build, under its only tag.
    runner = engine.docker(
        "create", "--name", "hemma-retention-runner", f"{REPOSITORY}:digest1", "true"
    ).stdout.strip()
    try:
        command = remove_command(engine.host, Build(repository=REPOSITORY), keep=3)
        done = subprocess.run(
            ["sh", "-c", command], capture_output=True, text=True, env=engine.env(), timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert sorted(tags(engine)) == ["digest1", "digest3", "digest4", "digest5", "hemma"]
        assert "must force" in done.stderr or "conflict" in done.stderr, done.stderr
        # Again: nothing more goes (the kept ones and the one in use).
        subprocess.run(["sh", "-c", command], env=engine.env(), timeout=120, check=True)
        assert sorted(tags(engine)) == ["digest1", "digest3", "digest4", "digest5", "hemma"]
    finally:
        engine.docker("rm", "--force", runner, check=False)
        engine.docker("image", "rm", "--force", *[f"{REPOSITORY}:{t}" for t in tags(engine)],
                      check=False)  # fmt: skip
