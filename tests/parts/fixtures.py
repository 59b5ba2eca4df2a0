"""Session fixtures for the real parts: a pytest plugin.

Register it once, from any test module or the top conftest::

    pytest_plugins = ["tests.parts.fixtures"]

``from tests.parts.fixtures import *`` works too. pytest then makes one fixture
definition per importing module; the parts are shared through a module-level
registry so each still starts once per session and stops after its last user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.parts import images
from tests.parts.engine import Engine, start_engine, start_second_engine, start_side_engine
from tests.parts.images import ServeImage
from tests.parts.ssh import SshServer, start_ssh_server
from tests.parts.tools import TIMINGS, timed

T = TypeVar("T")

# name -> [part, number of fixture instances holding it]
_RUNNING: dict[str, list[Any]] = {}


def _shared(name: str, start: Callable[[], T], stop: Callable[[T], None]) -> Iterator[T]:
    entry = _RUNNING.get(name)
    if entry is None:
        with timed(name):
            entry = _RUNNING[name] = [start(), 0]
    entry[1] += 1
    try:
        yield entry[0]
    finally:
        entry[1] -= 1
        if entry[1] == 0:
            del _RUNNING[name]
            stop(entry[0])


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """A private Docker engine (unix:// socket in a temp dir), removed at session end."""
    yield from _shared("engine", start_engine, Engine.stop)


@pytest.fixture(scope="session")
def second_engine() -> Iterator[Engine]:
    """Another private engine, running beside ``engine``: the second host of a stack
    placed on two. Its own bridge (host-gateway is 172.31.253.1), its own user
    networks (172.16.0.0/16), its own lock; removed at session end. Images are per
    engine: ``images.build_busybox(second_engine)`` and the like build them there."""
    yield from _shared("second_engine", start_second_engine, Engine.stop)


@pytest.fixture(scope="session")
def side_engine() -> Iterator[Engine]:
    """A third private engine, for the tests of the ``engine-side`` xdist group: a
    module that needs no sshd, no host port 80 or 443 and no first-engine address
    overrides ``engine`` (and its image fixtures) with it, and runs beside the first
    engine's tests instead of after them."""
    yield from _shared("side_engine", start_side_engine, Engine.stop)


@pytest.fixture(scope="session")
def busybox_image(engine: Engine) -> str:
    return images.build_busybox(engine)


@pytest.fixture(scope="session")
def serve_image(engine: Engine) -> ServeImage:
    """``serve_image()`` is the generic HTTP stand-in (port and health path from
    SERVE_PORT / SERVE_HEALTH_PATH or ``serve PORT PATH``); ``serve_image(tag, port,
    path)`` tags one with those baked in, e.g. under an image name the program uses."""
    images.build_serve(engine)

    def build(tag: str = images.SERVE, port: int = 8080, health_path: str = "/health") -> str:
        if tag == images.SERVE:
            return tag
        return images.serve_image(engine, tag, port, health_path)

    return build


@pytest.fixture(scope="session")
def pg_image(engine: Engine) -> str:
    """Debian bookworm with PostgreSQL 15 behaving like the official postgres image."""
    return images.build_debian_pg(engine)


@pytest.fixture(scope="session")
def ssh_server(engine: Engine) -> Iterator[SshServer]:
    """sshd on 127.0.0.1 whose test user's docker is ``engine`` and who has sudo."""
    yield from _shared("ssh", lambda: start_ssh_server(engine), SshServer.stop)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.write_sep("-", "hemma test parts: start-up times")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{name:<24} {seconds:6.1f}s")


__all__ = [
    "busybox_image",
    "engine",
    "pg_image",
    "second_engine",
    "serve_image",
    "side_engine",
    "ssh_server",
]
