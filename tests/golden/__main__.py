"""Regenerate the golden files: ``venv/bin/python -m tests.golden``.

Do it only for a change that means to add, remove or move resources, or to
change an output; the diff of the golden files is then part of the review.
"""

from __future__ import annotations

import json

from tests.golden import CONFIGS, GOLDEN, outputs_of, urns_of
from tests.harness import run_program

for name, config in CONFIGS.items():
    program = run_program(config())
    for kind, value in (("urns", urns_of(program)), ("outputs", outputs_of(program))):
        (GOLDEN / f"{kind}-{name}.json").write_text(
            json.dumps(value, indent=1, sort_keys=True) + "\n"
        )
    print(f"{name}: {len(program.declared)} resources")
