"""Fixtures that put a test module on ``side_engine``: ``from tests.parts.side import
engine, busybox_image, pg_image`` (what it uses) overrides the session's, for a module
that needs no sshd, no host port 80 or 443 and no first-engine address. Its tests
then run in the ``engine-side`` xdist group, beside the first engine's
(tests/conftest.py). The image fixtures come too: the session's cache their image per
worker, not per engine."""

from __future__ import annotations

import pytest

from tests.parts import images
from tests.parts.engine import Engine


@pytest.fixture(scope="module")
def engine(side_engine: Engine) -> Engine:
    return side_engine


@pytest.fixture(scope="module")
def busybox_image(engine: Engine) -> str:
    return images.build_busybox(engine)


@pytest.fixture(scope="module")
def pg_image(engine: Engine) -> str:
    return images.build_debian_pg(engine)


__all__ = ["busybox_image", "engine", "pg_image"]
