"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres_server import Server, running_server

# The real parts (a private Docker engine, sshd, local images), started once per
# session by whichever test first asks for them (tests/parts/README.md).
pytest_plugins = ["tests.parts.fixtures"]


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """One real PostgreSQL server for the whole run, holding the declared model."""
    yield from running_server()
