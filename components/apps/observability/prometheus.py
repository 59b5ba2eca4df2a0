"""prometheus.yml: a pure function of the apps Prometheus scrapes.

Prometheus scrapes every service that declares a metrics path, by its
container name, so it must share a network with each of them.
"""

from __future__ import annotations

from typing import Any

import yaml

from components.model.app import App


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


def prometheus_config(apps: tuple[App, ...]) -> str:
    jobs: list[dict[str, Any]] = [
        {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]},
        {"job_name": "grafana", "static_configs": [{"targets": ["grafana:3000"]}]},
        {"job_name": "loki", "static_configs": [{"targets": ["loki:3100"]}]},
        {"job_name": "jaeger", "static_configs": [{"targets": ["jaeger:14269"]}]},
    ]
    for job, target, path in scrape_targets(apps):
        jobs.append(
            {"job_name": job, "metrics_path": path, "static_configs": [{"targets": [target]}]}
        )
    config = {
        "global": {"scrape_interval": "30s", "evaluation_interval": "30s"},
        "scrape_configs": jobs,
    }
    return yaml.safe_dump(config, sort_keys=False)
