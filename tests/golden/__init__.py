"""What the program declares today, pinned: every URN and every output, per configuration."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.harness import Program, site_config, with_classhub

GOLDEN = Path(__file__).resolve().parent
CONFIGS: dict[str, Callable[[], dict[str, Any]]] = {
    "default": site_config,
    "classhub": lambda: with_classhub(site_config()),
}


def urns_of(program: Program) -> list[str]:
    return sorted(r.urn for r in program.declared)


def outputs_of(program: Program) -> Any:
    """The outputs as JSON would hold them (mock secrets are deterministic)."""
    return json.loads(json.dumps(program.outputs, sort_keys=True))
