"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres_server import Server, running_server

# The real parts (a private Docker engine, sshd, local images), started once per
# session by whichever test first asks for them (tests/parts/README.md).
pytest_plugins = ["tests.parts.fixtures"]

DAEMONS = frozenset({"engine", "second_engine", "side_engine", "ssh_server", "server", "postgres"})
"""Fixtures that start a daemon: a test that uses one, however indirectly, is a
``tools`` test, and the fast lane (``-m "not tools"``) leaves it out."""
ENGINE = frozenset({"engine", "second_engine", "ssh_server"})
"""The machine has room for one private engine (and its sshd) at a time, and one
second engine: with pytest-xdist (``-n 3 --dist loadgroup``, scripts/test) every test
that uses them runs in one worker, the rest beside it. A module that needs neither sshd nor host
ports 80/443 nor the first engine's bridge address runs on ``side_engine`` instead
(it overrides ``engine``), in a group of its own that may run beside that worker."""


# First: xdist's worker reads the xdist_group marks in its own hook of this name, to
# put the group into each test's id; a mark added after that is never seen.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if DAEMONS & used:
            item.add_marker(pytest.mark.tools)
        if "side_engine" in used:
            item.add_marker(pytest.mark.xdist_group("engine-side"))
        elif ENGINE & used:
            item.add_marker(pytest.mark.xdist_group("engine"))


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """One real PostgreSQL server for the whole run, holding the declared model."""
    yield from running_server()
