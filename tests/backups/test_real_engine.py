"""The host scripts against a real Docker engine (tests/parts: a private dockerd).

What the stand-in docker of standins.py only imitates is checked here with the
real CLI and daemon: the Go templates the scripts hand to ``docker inspect``, the
health states Docker reports, and a ``stop`` volume copied while its container is
really stopped and started again afterwards.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.backups.restic import host_metrics_argv
from tests.backups.conftest import Hemma
from tests.backups.standins import FILES, metrics
from tests.parts.engine import Engine
from tests.parts.side import busybox_image, engine
from tests.parts.tools import wait_until

pytestmark = pytest.mark.tools

__all__ = ["busybox_image", "engine"]


class Containers:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tag = secrets.token_hex(3)
        self.names: list[str] = []
        self.volumes: list[str] = []

    def run(self, what: str, *args: str) -> str:
        name = f"hm-{what}-{self.tag}"
        self.names.append(name)
        self.engine.docker("run", "--detach", "--name", name, *args)
        return name

    def state(self, name: str, template: str) -> str:
        return self.engine.inspect(name, template)


@pytest.fixture
def containers(engine: Engine) -> Iterator[Containers]:
    made = Containers(engine)
    yield made
    if made.names:
        engine.docker("rm", "--force", *made.names, check=False)
    for volume in made.volumes:
        engine.docker("volume", "rm", "--force", volume, check=False)


def docker_for(engine: Engine, where: Path) -> str:
    """The real CLI aimed at the private engine, as /snap/bin/docker is at Hemma's."""
    env = engine.env()
    path = where / "docker"
    path.write_text(
        "#!/bin/sh\n"
        f"export DOCKER_HOST='{env['DOCKER_HOST']}' DOCKER_CONFIG='{env['DOCKER_CONFIG']}'\n"
        f'exec {engine.client} "$@"\n'
    )
    path.chmod(0o755)
    return str(path)


def test_host_metrics_read_real_inspect_output(
    engine: Engine, busybox_image: str, containers: Containers, tmp_path: Path
) -> None:
    keep = ("--restart", "unless-stopped")
    fast = ("--health-interval", "1s", "--health-retries", "1")
    sleeper = (busybox_image, "sleep", "300")
    healthy = containers.run("healthy", *keep, "--health-cmd", "true", *fast, *sleeper)
    sick = containers.run("sick", *keep, "--health-cmd", "false", *fast, *sleeper)
    plain = containers.run("plain", *keep, *sleeper)
    stopped = containers.run("stopped", *keep, *sleeper)
    one_off = containers.run("one-off", busybox_image, "true")
    engine.docker("stop", "--time", "1", stopped)
    engine.wait_for(healthy, "{{.State.Health.Status}}", "healthy", timeout=30)
    engine.wait_for(sick, "{{.State.Health.Status}}", "unhealthy", timeout=30)
    wait_until("one-off", lambda: containers.state(one_off, "{{.State.Running}}") == "false", 10)

    argv = host_metrics_argv(
        docker_for(engine, tmp_path),
        str(tmp_path / "metrics"),
        script=str(FILES / "hemma-host-metrics.sh"),
    )
    done = subprocess.run(["bash", *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    samples = metrics((tmp_path / "metrics" / "hemma_host.prom").read_text())
    assert samples['hemma_host_metrics_errors{source="docker"}'] == "0", done.stderr

    def value(metric: str, name: str) -> str:
        return samples[f'{metric}{{name="{name}"}}']

    assert value("hemma_container_healthy", healthy) == "1"
    assert value("hemma_container_healthy", sick) == "0"
    assert value("hemma_container_healthy", plain) == "1", "no health check: running counts"
    assert value("hemma_container_healthy", stopped) == "0"
    assert value("hemma_container_running", stopped) == "0"
    assert value("hemma_container_restarts", plain) == "0"
    assert not any(one_off in key for key in samples)


def test_a_stop_volume_is_copied_while_its_container_is_really_stopped(
    engine: Engine, busybox_image: str, containers: Containers, hemma: Hemma
) -> None:
    volume = f"hm-media-{containers.tag}"
    containers.volumes.append(volume)
    app = (
        "echo started >> /data/log; trap 'echo stopping >> /data/log; exit 0' TERM; "
        "while :; do sleep 1; done"
    )
    web = containers.run(
        "web",
        "--restart",
        "unless-stopped",
        "-v",
        f"{volume}:/data",
        busybox_image,
        "sh",
        "-c",
        app,
    )
    volume_root = engine.root / "data" / "volumes"
    log = volume_root / volume / "_data" / "log"
    wait_until("the app's first line", lambda: log.exists() and log.read_text() == "started\n", 10)

    hemma.docker.path = Path(docker_for(engine, hemma.root))
    hemma.volume_root = volume_root
    done = hemma.backup(databases=(), volumes=((volume, "stop", (web,)),))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"stopping {web} for the snapshot" in done.stdout
    assert containers.state(web, "{{.State.Running}}") == "true"
    snapshot = hemma.restic("dump", "latest", str(log))
    assert snapshot.stdout == "started\nstopping\n", "copied after a clean stop, before the start"
    wait_until("the restart", lambda: log.read_text() == "started\nstopping\nstarted\n", 10)
