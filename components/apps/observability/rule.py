"""One alert rule, and one promtool case for it, as data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    group: str
    alert: str
    for_: str
    severity: str
    summary: str
    expr: str


# promtool input series (one sample a minute), when to evaluate, and the labels of
# each alert expected then; expecting no alert at all is the quiet case.
Case = tuple[str, dict[str, str], tuple[dict[str, str], ...]]


def case(eval_time: str, series: dict[str, str], *alerts: dict[str, str]) -> Case:
    return (eval_time, series, alerts)
