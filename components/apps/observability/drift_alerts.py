"""The drift alerts: what differs from the program, and a drift check gone quiet.

Two checks write ``hemma_drift_*`` textfile metrics with a ``source`` label:
``host``, the hemma-drift-check job on Hemma (unit files and scripts, grants and
owners, containers nobody declared), and ``operator``, ``scripts/drift`` on the
operator's machine (a Pulumi refresh preview of every resource), pushed over SSH.
Each drifted thing is one ``hemma_drift_item`` series whose labels name it, so each
alert names what drifted.
"""

from __future__ import annotations

from components.apps.observability.rule import Case, Rule, case

SOURCES = ("host", "operator")
GROUP = "hemma-drift"
DEFAULT_STALE_HOURS = 36
"""The operator's check runs nightly (scripts/drift install): a missed night and a half."""


def drift_rules(stale_hours: int = DEFAULT_STALE_HOURS) -> list[Rule]:
    if stale_hours <= 0:
        raise ValueError("stale_hours must be positive")
    stamp = "hemma_drift_last_success_timestamp_seconds"
    # A check that never reported (no file to serve) is stale too; node-exporter serves
    # the last file on every scrape, so an hour without a sample means no file.
    # absent_over_time keeps the source label.
    absent = " or ".join(
        f'absent_over_time({stamp}{{source="{source}"}}[1h])' for source in SOURCES
    )
    # fmt: off
    return [
        Rule(GROUP, "DriftDetected", "5m", "warning",
             "{{ $labels.kind }} {{ $labels.name }} does not match the program "
             "(the {{ $labels.source }} drift check)",
             "hemma_drift_item == 1"),
        Rule(GROUP, "DriftCheckFailed", "30m", "warning",
             "The {{ $labels.source }} drift check could not run",
             "hemma_drift_check_success == 0"),
        Rule(GROUP, "DriftCheckStale", "30m", "warning",
             f"No {{{{ $labels.source }}}} drift check has succeeded in {stale_hours} hours",
             f"time() - max by (source) ({stamp}) > {stale_hours} * 3600 or {absent}"),
    ]
    # fmt: on


def drift_cases(stale_hours: int = DEFAULT_STALE_HOURS) -> dict[str, tuple[Case, ...]]:
    """For every drift alert: the cases that fire first, then the quiet one."""
    stamp = "hemma_drift_last_success_timestamp_seconds"
    host, operator = f'{stamp}{{source="host"}}', f'{stamp}{{source="operator"}}'
    # promtool's clock starts at 0: a success "before" it is a negative timestamp. At
    # the 2h evaluation, "recent" is an hour inside the limit, "stale" an hour past it.
    stale, recent = f"{-(stale_hours - 1) * 3600}x120", f"{-(stale_hours - 3) * 3600}x120"
    unit = "/etc/systemd/system/hemma-backup.service"
    item = f'hemma_drift_item{{source="host",kind="file",name="{unit}"}}'
    stranger = 'hemma_drift_item{source="host",kind="container",name="debug-shell"}'
    items = 'hemma_drift_items{source="host",kind="file"}'
    return {
        "DriftDetected": (
            case(
                "10m",
                {item: "1x20", stranger: "1x20"},
                {"source": "host", "kind": "file", "name": unit},
                {"source": "host", "kind": "container", "name": "debug-shell"},
            ),
            case("10m", {items: "0x20"}),
        ),
        "DriftCheckFailed": (
            case(
                "40m",
                {'hemma_drift_check_success{source="operator"}': "0x40"},
                {"source": "operator"},
            ),
            case("40m", {'hemma_drift_check_success{source="operator"}': "1x40"}),
        ),
        "DriftCheckStale": (
            case("2h", {host: stale, operator: recent}, {"source": "host"}),
            case("2h", {host: recent}, {"source": "operator"}),
            case("2h", {host: recent, operator: recent}),
        ),
    }
