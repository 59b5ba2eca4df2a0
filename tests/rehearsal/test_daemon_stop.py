"""When the daemon itself stops the containers, each gets its declared grace.

A snap refresh, ``snap disable docker`` or a reboot stops dockerd, and dockerd
stops every container with that container's own ``StopTimeout``, 10 s when it is
unset (moby v20.10.24 ``container.StopTimeout``, ``daemon.shutdownContainer``); it
waits for the longest of them plus 5 s (``daemon.ShutdownTimeout``). The provider's
``destroy_grace_seconds`` plays no part there: it only times the provider's own
delete.

shared-postgres as the program declares it, replayed on the private engine
(``replay.plan_container``) with a stand-in that needs 11 s to shut down cleanly, as
PostgreSQL does for a checkpoint, beside the same container without a
``StopTimeout``: the engine is stopped and started again. The declared one finishes
its shutdown; the other is killed after 10 s, in the middle of it.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import run_program, site_config
from tests.parts.engine import Engine
from tests.parts.tools import wait_until
from tests.rehearsal.replay import DockerApi, plan_container

pytest_plugins = ["tests.parts.fixtures"]
pytestmark = pytest.mark.tools

SHUTDOWN_SECONDS = 11
# Started, and on SIGTERM a shutdown that takes longer than Docker's 10 s default.
APP = (
    "echo started >> /data/log; "
    f"trap 'echo stopping >> /data/log; sleep {SHUTDOWN_SECONDS}; echo clean >> /data/log;"
    " exit 0' TERM; while :; do sleep 1; done"
)


def started_times(log: Path, times: int) -> bool:
    return log.exists() and log.read_text().count("started") == times


@pytest.fixture
def api(engine: Engine) -> DockerApi:
    return DockerApi(engine.socket)


@pytest.fixture
def made(engine: Engine) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        engine.docker("rm", "--force", name, check=False)
        engine.docker("volume", "rm", "--force", name, check=False)


def test_the_daemon_gives_shared_postgres_its_grace_when_it_stops(
    engine: Engine, busybox_image: str, api: DockerApi, made: list[str], tmp_path: Path
) -> None:
    declared = run_program(site_config()).container("shared-postgres")
    assert declared.inputs["stopTimeout"] == declared.inputs["destroyGraceSeconds"] == 60
    plan = plan_container(declared, busybox_image, {}, 60, tmp_path)
    tag = secrets.token_hex(3)
    logs = {}
    for kind in ("declared", "unset"):
        name = f"hm-{kind}-{tag}"
        made.append(name)
        body = {
            **plan.create,
            "Cmd": ["sh", "-c", APP],
            "Healthcheck": {"Test": ["NONE"]},
            # Its own volume, and no published port: two of them run side by side.
            "HostConfig": {
                **plan.create["HostConfig"],
                "Binds": [f"{name}:/data:rw"],
                "PortBindings": {},
            },
        }
        if kind == "unset":
            body.pop("StopTimeout")
        api.call("POST", "/containers/create", body, query={"name": name})
        api.call("POST", f"/containers/{name}/start")
        logs[kind] = engine.root / "data" / "volumes" / name / "_data" / "log"
    assert api.inspect(made[0])["Config"]["StopTimeout"] == 60
    assert api.inspect(made[1])["Config"].get("StopTimeout") is None
    for kind, log in logs.items():
        wait_until(f"{kind} starts", functools.partial(started_times, log, 1), 20)

    engine.restart()

    # unless-stopped brings both back; the log says how each one went down.
    for kind, log in logs.items():
        wait_until(f"{kind} is back", functools.partial(started_times, log, 2), 30)
    assert logs["declared"].read_text() == "started\nstopping\nclean\nstarted\n"
    assert logs["unset"].read_text() == "started\nstopping\nstarted\n", (
        "without StopTimeout the daemon kills it at 10 s, mid-shutdown"
    )
