"""Generated configuration for Prometheus and Promtail: pure functions of the catalog.

Prometheus scrapes every service that declares a metrics path, by its network
alias, so it must share a network with each of them (hule-network and the apps'
internal networks). Promtail reads nginx-proxy's access log from Docker and
labels each line with ``vhost``, ``client_ip``, ``method`` and ``status``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from components.catalog import App
    from components.config import StackConfig

NGINX_ACCESS_LOG = (
    r"^(?P<vhost>\S+) (?P<client_ip>\S+) - \S+ \[[^\]]*\] "
    r'"(?P<method>[A-Z]+) \S+ [^"]*" (?P<status>\d{3}) '
)
"""nginx-proxy's ``vhost`` log format:
``$host $remote_addr - $remote_user [$time_local] "$request" $status ...``."""

ACCESS_LOG_LABELS = ("vhost", "client_ip", "method", "status")


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


def promtail_config(config: StackConfig) -> str:
    proxy = config.proxy.container_name
    document = {
        "server": {"http_listen_port": 9080, "grpc_listen_port": 0},
        "positions": {"filename": "/var/lib/promtail/positions.yaml"},
        "clients": [{"url": "http://loki:3100/loki/api/v1/push"}],
        "scrape_configs": [
            {
                "job_name": "nginx-proxy",
                "docker_sd_configs": [
                    {
                        "host": "unix:///var/run/docker.sock",
                        "refresh_interval": "15s",
                        "filters": [{"name": "name", "values": [proxy]}],
                    }
                ],
                "relabel_configs": [
                    {
                        "source_labels": ["__meta_docker_container_name"],
                        "target_label": "container",
                    },
                ],
                "pipeline_stages": [
                    {"docker": {}},
                    {"regex": {"expression": NGINX_ACCESS_LOG}},
                    {"labels": {label: None for label in ACCESS_LOG_LABELS}},
                ],
            }
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)
