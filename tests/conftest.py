"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres_server import Server, running_server

# The real parts (a private Docker engine, sshd, local images), started once per
# session by whichever test first asks for them (tests/parts/README.md).
pytest_plugins = ["tests.parts.fixtures"]

DAEMONS = frozenset({"engine", "ssh_server", "server", "postgres"})
"""Fixtures that start a daemon: a test that uses one, however indirectly, is a
``tools`` test, and the fast lane (``-m "not tools"``) leaves it out."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DAEMONS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.tools)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """One real PostgreSQL server for the whole run, holding the declared model."""
    yield from running_server()
