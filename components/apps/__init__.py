"""Every app Hemma can run, one module each, in the order they are declared.

Adding an app is one new module with a ``SPEC`` and one line here. The
observability app comes last: it scrapes the metrics of the apps before it.
"""

from __future__ import annotations

from typing import Any

from components.apps import classhub, huleedu, observability, skriptoteket
from components.model.app import AppSpec

APPS: tuple[AppSpec[Any], ...] = (
    skriptoteket.SPEC,
    huleedu.SPEC,
    classhub.SPEC,
    observability.SPEC,
)
