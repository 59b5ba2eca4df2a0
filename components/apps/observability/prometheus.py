"""prometheus.yml: a pure function of the apps Prometheus scrapes.

Prometheus scrapes every service that declares a metrics path, by its
container name, so it must share a network with each of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from components.apps.observability.alert_config import (
    blackbox_scrape_job,
    blackbox_tls_job,
    prometheus_alerting,
)
from components.model.app import App

ALERTMANAGER = "alertmanager:9093"
NODE_EXPORTER = "node_exporter:9100"
BLACKBOX = "blackbox_exporter:9115"


def scrape_targets(apps: tuple[App, ...]) -> list[tuple[str, str, str]]:
    """(job, target, metrics path) for every service that exposes metrics."""
    targets = []
    for app in apps:
        for service in app.services:
            if service.metrics_path and service.port:
                targets.append(
                    (
                        f"{app.name}-{service.name}",
                        f"{service.container}:{service.port}",
                        service.metrics_path,
                    )
                )
    return targets


def prometheus_config(
    apps: tuple[App, ...], probed: Sequence[str] = (), certified: Sequence[str] = ()
) -> str:
    """The scrape jobs, the alert rules and where alerts go.

    ``probed`` are the public health URLs blackbox-exporter fetches (up or down, and
    each certificate's expiry); ``certified`` are hosts behind basic auth, whose
    certificates it only checks with a TLS handshake (a fetch would get 401).
    """
    jobs: list[dict[str, Any]] = [
        {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]},
        {"job_name": "grafana", "static_configs": [{"targets": ["grafana:3000"]}]},
        {"job_name": "loki", "static_configs": [{"targets": ["loki:3100"]}]},
        {"job_name": "jaeger", "static_configs": [{"targets": ["jaeger:14269"]}]},
        {"job_name": "alertmanager", "static_configs": [{"targets": [ALERTMANAGER]}]},
        {"job_name": "node", "static_configs": [{"targets": [NODE_EXPORTER]}]},
    ]
    for job, target, path in scrape_targets(apps):
        jobs.append(
            {"job_name": job, "metrics_path": path, "static_configs": [{"targets": [target]}]}
        )
    if probed:
        jobs.append(blackbox_scrape_job(probed, exporter=BLACKBOX))
    if certified:
        jobs.append(blackbox_tls_job(certified, exporter=BLACKBOX))
    config = {
        "global": {"scrape_interval": "30s", "evaluation_interval": "30s"},
        **prometheus_alerting(ALERTMANAGER),
        "scrape_configs": jobs,
    }
    return yaml.safe_dump(config, sort_keys=False)
