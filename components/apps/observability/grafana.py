"""Grafana's provisioning, as ``compose.observability.yaml`` mounts it: the datasources
and a dashboard, written into the container so that Grafana reads them at start.

Grafana reads ``/etc/grafana/provisioning/{datasources,dashboards}/*.yaml``; a
dashboard provider points at a folder of dashboard JSON files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

PROVISIONING = "/etc/grafana/provisioning"
DASHBOARDS = "/etc/grafana/dashboards/hemma"
DRIFT_STAMP = "hemma_drift_last_success_timestamp_seconds"

DATASOURCES = (
    {
        "name": "Prometheus",
        "uid": "prometheus",
        "type": "prometheus",
        "url": "http://prometheus:9090",
        "isDefault": True,
    },
    {"name": "Loki", "uid": "loki", "type": "loki", "url": "http://loki:3100"},
    {"name": "Jaeger", "uid": "jaeger", "type": "jaeger", "url": "http://jaeger:16686"},
    {
        "name": "Alertmanager",
        "uid": "alertmanager",
        "type": "alertmanager",
        "url": "http://alertmanager:9093",
        "jsonData": {"implementation": "prometheus", "handleGrafanaManagedAlerts": False},
    },
)


def datasources() -> str:
    entries = [{**source, "access": "proxy", "editable": False} for source in DATASOURCES]
    return yaml.safe_dump({"apiVersion": 1, "datasources": entries}, sort_keys=False)


def dashboard_provider() -> str:
    provider = {
        "name": "hemma",
        "folder": "Hemma",
        "type": "file",
        "disableDeletion": True,
        "allowUiUpdates": False,
        "options": {"path": DASHBOARDS},
    }
    return yaml.safe_dump({"apiVersion": 1, "providers": [provider]}, sort_keys=False)


def _panel(
    index: int, title: str, kind: str, source: str, expr: str | Mapping[str, str]
) -> dict[str, Any]:
    """One panel of one query, or of one query per legend. A Prometheus table shows
    the series of now, with their labels as columns: an instant query in table
    format (a range query would give one frame per series, and list what fired
    hours ago)."""
    queries = {"": expr} if isinstance(expr, str) else expr
    now = {"instant": True, "range": False, "format": "table"}
    targets = [
        {
            "refId": chr(ord("A") + i),
            "expr": e,
            **({"legendFormat": legend} if legend else {}),
            **(now if (kind, source) == ("table", "prometheus") else {}),
        }
        for i, (legend, e) in enumerate(queries.items())
    ]
    return {
        "id": index,
        "title": title,
        "type": kind,
        "datasource": {"type": source, "uid": source},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "targets": targets,
    }


def _hours_since(metric: str) -> str:
    return f"(time() - max({metric})) / 3600"


def overview_dashboard() -> str:
    """The server at a glance: what is up, what the edge serves, what the logs say."""
    panels = [
        _panel(0, "Scrape targets up", "stat", "prometheus", "sum(up) / count(up)"),
        _panel(1, "Targets down", "table", "prometheus", "up == 0"),
        _panel(
            2,
            "Requests by host (nginx-proxy)",
            "timeseries",
            "loki",
            'sum by (vhost) (count_over_time({container="/nginx-proxy"}[5m]))',
        ),
        _panel(
            3,
            "5xx by host (nginx-proxy)",
            "timeseries",
            "loki",
            'sum by (vhost) (count_over_time({container="/nginx-proxy", status=~"5.."}[5m]))',
        ),
        # The alert view: what fires now (Prometheus's own ALERTS series; Alerting,
        # with the Alertmanager datasource, groups the same alerts), and the backups' age.
        _panel(4, "Firing alerts", "table", "prometheus", 'ALERTS{alertstate="firing"}'),
        _panel(
            5,
            "Hours since the last good backup, drill and check",
            "stat",
            "prometheus",
            {
                job: _hours_since(f"hemma_{job}_last_success_timestamp_seconds")
                for job in ("backup", "drill", "backup_check")
            },
        ),
        # Drift: each thing that differs from the program, by the check that found it,
        # and how old each check's last good run is (scripts/drift and hemma-drift-check).
        _panel(
            6,
            "Drift: what differs from the program",
            "table",
            "prometheus",
            "hemma_drift_item == 1",
        ),
        _panel(
            7,
            "Hours since the last good drift check",
            "stat",
            "prometheus",
            {
                source: _hours_since(f'{DRIFT_STAMP}{{source="{source}"}}')
                for source in ("host", "operator")
            },
        ),
    ]
    dashboard = {
        "uid": "hemma-overview",
        "title": "Hemma overview",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "panels": panels,
    }
    return json.dumps(dashboard, indent=1, sort_keys=True) + "\n"


def grafana_provisioning() -> dict[str, str]:
    """Every provisioning file, by its path in the Grafana container."""
    return {
        f"{PROVISIONING}/datasources/hemma.yaml": datasources(),
        f"{PROVISIONING}/dashboards/hemma.yaml": dashboard_provider(),
        f"{DASHBOARDS}/overview.json": overview_dashboard(),
    }
