"""Hemma's policy pack: ``pulumi preview --policy-pack policy``.

The checks live in ``validators.py``, importable and tested without a server;
this file only hands them to the Pulumi policy engine.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from validators import RESOURCE_POLICIES, STACK_POLICIES, Resource  # type: ignore[import-not-found]

LEVELS = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}


def resource_policy(name: str, check, level: str) -> ResourceValidationPolicy:  # type: ignore[no-untyped-def]
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        resource = Resource(args.resource_type, args.name, args.props, args.opts.protect)
        for problem in check(resource):
            report(problem, None)

    return ResourceValidationPolicy(
        name=name, description=check.__doc__ or name, validate=validate,
        enforcement_level=LEVELS[level],
    )  # fmt: skip


def stack_policy(name: str, check, level: str) -> StackValidationPolicy:  # type: ignore[no-untyped-def]
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        resources = [
            Resource(r.resource_type, r.name, r.props, r.opts.protect) for r in args.resources
        ]
        for problem in check(resources):
            report(problem, None)

    return StackValidationPolicy(
        name=name, description=check.__doc__ or name, validate=validate,
        enforcement_level=LEVELS[level],
    )  # fmt: skip


PolicyPack(
    name="hemma",
    policies=[
        *(resource_policy(n, c, lvl) for n, (c, lvl) in RESOURCE_POLICIES.items()),
        *(stack_policy(n, c, lvl) for n, (c, lvl) in STACK_POLICIES.items()),
    ],
)
