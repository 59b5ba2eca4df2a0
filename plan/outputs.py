"""How the stack outputs change between two plans, and what that asks of the operator.

Other tooling reads the outputs, so each change is shown; ``dnsRecords`` lists the
hostnames that need an A/AAAA record pointing at Hemma, so a hostname that comes or
goes there is a DNS record to add or remove by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plan.details import describe

DNS_OUTPUT = "dnsRecords"


def _hosts(plan: Mapping[str, Any]) -> set[str]:
    records = plan.get("outputs", {}).get(DNS_OUTPUT)
    return {str(h) for h in records} if isinstance(records, list) else set()


def changes(old_plan: Mapping[str, Any], new_plan: Mapping[str, Any], full: bool) -> list[str]:
    """One line or more per changed output, then one line per DNS record to add or
    remove."""
    old, new = old_plan.get("outputs", {}), new_plan.get("outputs", {})
    lines: list[str] = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) == new.get(name):
            continue
        lines += describe(name, old.get(name), new.get(name), full)
    before, after = _hosts(old_plan), _hosts(new_plan)
    lines += [f"DNS: add an A/AAAA record for {host} (to Hemma)" for host in sorted(after - before)]
    lines += [f"DNS: remove the record for {host}" for host in sorted(before - after)]
    return lines
