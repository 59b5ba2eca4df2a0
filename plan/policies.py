"""The policy pack's checks, run over the plan: ``scripts/plan --policy``.

The same functions the pack hands the Pulumi policy engine (``policy/validators.py``),
over every resource the program declares, with the values as the engine would see
them (secrets unmasked, in memory only). A mandatory violation makes the plan exit
3 (``cli.VIOLATION``); an advisory one is printed and passes, as ``pulumi preview
--policy-pack policy`` treats them.
"""

from __future__ import annotations

from collections.abc import Iterable

from plan.runner import Registered, unwrap
from policy.validators import RESOURCE_POLICIES, STACK_POLICIES, Resource, violations

LEVELS = {name: level for name, (_, level) in {**RESOURCE_POLICIES, **STACK_POLICIES}.items()}


def as_resources(registered: Iterable[Registered]) -> list[Resource]:
    """Custom resources as the pack sees them: type, name, inputs, protect."""
    return [
        Resource(r.type, r.name, unwrap(r.raw_inputs), r.protect) for r in registered if r.custom
    ]


def report(resources: list[Resource]) -> tuple[list[str], bool]:
    """The lines to print, and whether a mandatory policy is violated."""
    found = violations(resources)
    lines = [
        f"{LEVELS[name]} {name}: {problem}"
        for name, problems in sorted(found.items())
        for problem in problems
    ]
    passed = len(LEVELS) - len(found)
    lines.append(f"Policies: {passed} of {len(LEVELS)} pass over {len(resources)} resources")
    return lines, any(LEVELS[name] == "mandatory" for name in found)
