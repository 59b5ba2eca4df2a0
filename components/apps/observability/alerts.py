"""Hemma's alerts: the Prometheus rules, their promtool tests, and the blackbox and
Alertmanager configuration they need.

The backup, drill and host rules read the textfile metrics the host scripts in
components/backups write; the endpoint rules read blackbox-exporter's probes of
the public URLs. Pure renderers: the standard library and PyYAML only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from components.apps.observability.drift_alerts import (
    DEFAULT_STALE_HOURS,
    drift_cases,
    drift_rules,
)
from components.apps.observability.rule import Case, Rule
from components.apps.observability.rule import case as _case

BLACKBOX_JOB = "blackbox-http"
BLACKBOX_EXPORTER = "blackbox_exporter:9115"
RULES_PATH = "/etc/prometheus/hemma-alerts.yml"
RECEIVER = "hemma"
STALE_WEEKLY_DAYS = 8
"""The drill and the check run weekly (backups.drillSchedule, backups.checkSchedule)."""


def public_urls_checked(public_urls: Sequence[str]) -> list[str]:
    """The URLs go into PromQL string literals as they are: no quote, backslash or space."""
    for url in public_urls:
        if not re.match(r"^https?://[^\s\"\\]+$", url):
            raise ValueError(f"not a public URL: {url!r}")
    return list(public_urls)


def rules(
    public_urls: Sequence[str],
    backup_max_age_hours: int = 26,
    drift_stale_hours: int = DEFAULT_STALE_HOURS,
) -> list[Rule]:
    if backup_max_age_hours <= 0:
        raise ValueError("backup_max_age_hours must be positive")
    hours = backup_max_age_hours
    probe = f'probe_success{{job="{BLACKBOX_JOB}"}}'
    # A URL with no probe result at all (exporter or job gone) counts as down too;
    # absent() keeps the matcher's labels, so it alerts under the URL's instance.
    down = " or ".join(
        [f"{probe} == 0"]
        + [
            f'absent(probe_success{{job="{BLACKBOX_JOB}",instance="{url}"}})'
            for url in public_urls_checked(public_urls)
        ]
    )
    backups, host, endpoints = "hemma-backups", "hemma-host", "hemma-endpoints"
    # fmt: off
    return [
        Rule(backups, "BackupStale", "30m", "critical",
             f"No Hemma backup has succeeded in the last {hours} hours",
             f"time() - max(hemma_backup_last_success_timestamp_seconds) > {hours} * 3600"
             # absent_over_time: a missed scrape or a restart is not "no backups".
             " or absent_over_time(hemma_backup_last_success_timestamp_seconds[1h])"),
        # A night that failed fires the next morning, long before BackupStale would.
        Rule(backups, "BackupFailed", "10m", "warning",
             "The last nightly backup failed: the last complete snapshots were kept",
             "hemma_backup_last_run_success == 0"),
        # The backup disk did not mount, or the repository is gone: no job creates
        # one, so every job fails until the operator looks.
        Rule(backups, "BackupRepositoryUnavailable", "5m", "critical",
             "The backup repository is missing or refused (is the backup disk mounted?)",
             "hemma_backup_repository_ok == 0"),
        # The drill and the check run weekly: a week and a day without a good one
        # means one was missed or failed, or the timer is gone.
        Rule(backups, "RestoreDrillStale", "1h", "warning",
             f"No restore drill has succeeded in the last {STALE_WEEKLY_DAYS} days",
             f"time() - max(hemma_drill_last_success_timestamp_seconds)"
             f" > {STALE_WEEKLY_DAYS} * 86400"
             " or absent_over_time(hemma_drill_last_success_timestamp_seconds[1h])"),
        Rule(backups, "BackupCheckStale", "1h", "warning",
             f"No restic check has succeeded in the last {STALE_WEEKLY_DAYS} days",
             f"time() - max(hemma_backup_check_last_success_timestamp_seconds)"
             f" > {STALE_WEEKLY_DAYS} * 86400"
             " or absent_over_time(hemma_backup_check_last_success_timestamp_seconds[1h])"),
        Rule(backups, "RestoreDrillFailed", "10m", "warning",
             "The last restore drill failed: the backups may not restore",
             "hemma_drill_last_run_success == 0"),
        Rule(backups, "BackupCheckFailed", "10m", "warning",
             "restic check found the backup repository damaged or unreadable",
             "hemma_backup_check_last_run_success == 0"),
        Rule(host, "DiskAlmostFull", "15m", "warning",
             "{{ $labels.mountpoint }} is more than 85% full",
             "1 - hemma_filesystem_avail_bytes / (hemma_filesystem_size_bytes > 0) > 0.85"),
        Rule(host, "ContainerUnhealthy", "10m", "warning",
             "Container {{ $labels.name }} is not healthy",
             "hemma_container_healthy == 0"),
        Rule(host, "ContainerRestarting", "5m", "warning",
             "Container {{ $labels.name }} restarted more than twice in 15 minutes",
             "increase(hemma_container_restarts[15m]) > 2"),
        Rule(host, "SystemdUnitFailed", "5m", "warning",
             "systemd unit {{ $labels.unit }} has failed",
             "hemma_systemd_unit_failed == 1"),
        Rule(host, "HostMetricsStale", "15m", "warning",
             "Hemma's host metrics are missing, old or incomplete",
             "time() - max(hemma_host_metrics_last_run_timestamp_seconds) > 600"
             " or absent_over_time(hemma_host_metrics_last_run_timestamp_seconds[15m])"
             " or max by (source) (hemma_host_metrics_errors) > 0"),
        Rule(endpoints, "PublicEndpointDown", "5m", "critical",
             "{{ $labels.instance }} does not answer",
             down),
        Rule(endpoints, "CertificateExpiresSoon", "1h", "warning",
             "The TLS certificate of {{ $labels.instance }} expires in less than 14 days",
             "probe_ssl_earliest_cert_expiry - time() < 14 * 86400"),
        *drift_rules(drift_stale_hours),
    ]
    # fmt: on


def alert_rules(
    public_urls: Sequence[str],
    backup_max_age_hours: int = 26,
    drift_stale_hours: int = DEFAULT_STALE_HOURS,
) -> str:
    """The Prometheus rules file (rule_files:)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rule in rules(public_urls, backup_max_age_hours, drift_stale_hours):
        groups.setdefault(rule.group, []).append(
            {
                "alert": rule.alert,
                "expr": rule.expr,
                "for": rule.for_,
                "labels": {"severity": rule.severity},
                "annotations": {"summary": rule.summary},
            }
        )
    document = {"groups": [{"name": name, "rules": body} for name, body in groups.items()]}
    return yaml.safe_dump(document, sort_keys=False, width=1000)


def _cases(urls: Sequence[str], hours: int, drift_hours: int) -> dict[str, tuple[Case, ...]]:
    """For every alert: the cases that fire first, then the quiet one."""
    # Rules see a series only within five minutes of a sample: one a minute throughout.
    # promtool's clock starts at 0, so the stale backup succeeded "before" it started.
    stale, recent = f"{-(hours + 1) * 3600}x60", f"{-(hours - 1) * 3600}x60"
    backup = "hemma_backup_last_success_timestamp_seconds"
    drill = "hemma_drill_last_success_timestamp_seconds"
    check = "hemma_backup_check_last_success_timestamp_seconds"
    host_run = "hemma_host_metrics_last_run_timestamp_seconds"
    errors = 'hemma_host_metrics_errors{source="docker"}'
    avail = 'hemma_filesystem_avail_bytes{mountpoint="/"}'
    size = 'hemma_filesystem_size_bytes{mountpoint="/"}'
    a, b = [*urls, "https://example.test/", "https://other.example.test/"][:2]
    probe = 'probe_success{job="%s",instance="%s"}'
    up = {probe % (BLACKBOX_JOB, url): "1x20" for url in urls or [a]}
    a_down = {"job": BLACKBOX_JOB, "instance": a}
    without_a = {k: v for k, v in up.items() if k != probe % (BLACKBOX_JOB, a)}
    unit = 'hemma_systemd_unit_failed{unit="hemma-backup.service"}'
    failed = "hemma_systemd_units_failed"
    cert = f'probe_ssl_earliest_cert_expiry{{instance="{b}"}}'
    return {
        "BackupStale": (
            _case("40m", {backup: stale}, {}),
            _case("2h", {"hemma_backup_last_run_success": "0x5"}, {}),
            _case("40m", {backup: recent}),
        ),
        "BackupFailed": (
            _case("20m", {"hemma_backup_last_run_success": "0x30"}, {}),
            _case("20m", {"hemma_backup_last_run_success": "1x30"}),
        ),
        "BackupRepositoryUnavailable": (
            _case("20m", {"hemma_backup_repository_ok": "0x30"}, {}),
            _case("20m", {"hemma_backup_repository_ok": "1x30"}),
        ),
        "RestoreDrillStale": (
            _case("2h", {drill: f"{-9 * 86400}x120"}, {}),
            _case("2h", {"hemma_drill_last_run_success": "1x120"}, {}),
            _case("2h", {drill: f"{-2 * 86400}x120"}),
        ),
        "BackupCheckStale": (
            _case("2h", {check: f"{-9 * 86400}x120"}, {}),
            _case("2h", {"hemma_backup_check_last_run_success": "1x120"}, {}),
            _case("2h", {check: f"{-2 * 86400}x120"}),
        ),
        "RestoreDrillFailed": (
            _case(
                "20m",
                {'hemma_drill_last_run_success{instance="hemma"}': "0x30"},
                {"instance": "hemma"},
            ),
            _case("20m", {'hemma_drill_last_run_success{instance="hemma"}': "1x30"}),
        ),
        "BackupCheckFailed": (
            _case("20m", {"hemma_backup_check_last_run_success": "0x30"}, {}),
            _case("20m", {"hemma_backup_check_last_run_success": "1x30"}),
        ),
        "DiskAlmostFull": (
            _case("20m", {avail: "10x30", size: "100x30"}, {"mountpoint": "/"}),
            _case("20m", {avail: "50x30", size: "100x30"}),
        ),
        "ContainerUnhealthy": (
            _case("20m", {'hemma_container_healthy{name="grafana"}': "0x30"}, {"name": "grafana"}),
            _case("20m", {'hemma_container_healthy{name="grafana"}': "1x30"}),
        ),
        "ContainerRestarting": (
            _case("20m", {'hemma_container_restarts{name="loki"}': "0+1x30"}, {"name": "loki"}),
            _case("20m", {'hemma_container_restarts{name="loki"}': "3x30"}),
        ),
        "SystemdUnitFailed": (
            _case("10m", {unit: "1x20", failed: "1x20"}, {"unit": "hemma-backup.service"}),
            _case("10m", {failed: "0x20"}),
        ),
        "HostMetricsStale": (
            _case("40m", {host_run: "0x60", errors: "0x60"}, {}),
            _case("40m", {host_run: "0+60x60", errors: "1x60"}, {"source": "docker"}),
            _case("40m", {host_run: "0+60x60", errors: "0x60"}),
        ),
        "PublicEndpointDown": (
            _case("10m", {**without_a, probe % (BLACKBOX_JOB, a): "0x20"}, a_down),
            # No result at all for a URL is down too (only where alert_rules knows the URL).
            *((_case("10m", without_a, a_down),) if urls else ()),
            _case("10m", up),
        ),
        "CertificateExpiresSoon": (
            _case("2h", {cert: f"{10 * 86400}x180"}, {"instance": b}),
            _case("2h", {cert: f"{60 * 86400}x180"}),
        ),
        **drift_cases(drift_hours),
    }


def _summary(template: str, labels: dict[str, str]) -> str:
    """The summary as Prometheus renders it: these templates use only $labels."""
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m[1]], template)


def rules_tests(
    rules_file_name: str,
    public_urls: Sequence[str] = (),
    backup_max_age_hours: int = 26,
    drift_stale_hours: int = DEFAULT_STALE_HOURS,
) -> str:
    """A promtool test file (``promtool test rules``): every alert firing, then quiet.

    Pass the URLs and age ``alert_rules`` was given: a quiet endpoint case needs every
    URL's probe up.
    """
    urls = public_urls_checked(public_urls)
    by_alert = {r.alert: r for r in rules(urls, backup_max_age_hours, drift_stale_hours)}
    tests = []
    for alert, cases in _cases(urls, backup_max_age_hours, drift_stale_hours).items():
        rule = by_alert[alert]
        for eval_time, series, alerts in cases:
            expected = [
                {
                    "exp_labels": {**labels, "severity": rule.severity},
                    "exp_annotations": {"summary": _summary(rule.summary, labels)},
                }
                for labels in alerts
            ]
            tests.append(
                {
                    "interval": "1m",
                    "input_series": [{"series": k, "values": v} for k, v in series.items()],
                    "alert_rule_test": [
                        {"eval_time": eval_time, "alertname": alert, "exp_alerts": expected}
                    ],
                }
            )
    document = {"rule_files": [rules_file_name], "evaluation_interval": "1m", "tests": tests}
    return yaml.safe_dump(document, sort_keys=False, width=1000)
