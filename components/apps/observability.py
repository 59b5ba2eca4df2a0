"""The observability stack: Grafana, Prometheus, Jaeger, Loki and Promtail.

Grafana is public; Prometheus and Jaeger sit behind basic auth. Prometheus
scrapes every service of the apps declared before it that has a metrics path,
by its network alias, so it joins hule-network and HuleEdu's internal network.
Promtail reads nginx-proxy's access log from Docker and labels each line with
``vhost``, ``client_ip``, ``method`` and ``status`` (runbook 003).
"""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from pydantic import Field

from components.apps.huleedu import NETWORK as HULEEDU_NETWORK
from components.model.app import (
    SHARED_NETWORK,
    App,
    AppSpec,
    Generated,
    Pull,
    Route,
    Service,
    bash_probe,
    wget_probe,
)
from components.model.site import Site
from components.model.values import Image, Model


class Settings(Model):
    """Grafana, Prometheus, Jaeger, Loki and Promtail (``hemma:observability``)."""

    grafana_image: Image = "grafana/grafana:11.4.0"
    prometheus_image: Image = "prom/prometheus:v2.55.1"
    jaeger_image: Image = "jaegertracing/all-in-one:1.64.0"
    loki_image: Image = "grafana/loki:3.3.2"
    promtail_image: Image = "grafana/promtail:3.3.2"
    prometheus_retention: Annotated[str, Field(pattern=r"^[0-9]+(d|w|y|h)$")] = "30d"


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


def promtail_config(proxy: str) -> str:
    """Promtail reads nginx-proxy's access log from Docker and labels each line."""
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


def declare(settings: Settings, site: Site, peers: tuple[App, ...]) -> App:
    prometheus_yml = prometheus_config(peers)
    promtail_yml = promtail_config(site.proxy_container)
    return App(
        name="observability",
        generated=("grafana-admin-password",),
        services=(
            Service(
                name="grafana",
                container="grafana",
                image=Pull(settings.grafana_image),
                port=3000,
                networks=(SHARED_NETWORK,),
                route=Route("grafana", 3000, health_path="/api/health"),
                env={
                    "GF_SECURITY_ADMIN_USER": "admin",
                    "GF_SERVER_ROOT_URL": f"https://{site.hostname('grafana')}/",
                    "GF_USERS_ALLOW_SIGN_UP": "false",
                },
                secret_env={"GF_SECURITY_ADMIN_PASSWORD": Generated("grafana-admin-password")},
                volumes={"grafana-data": "/var/lib/grafana"},
                healthcheck=wget_probe(3000, "/api/health"),
                health_path="/api/health",
                metrics_path="/metrics",
            ),
            Service(
                name="prometheus",
                container="prometheus",
                image=Pull(settings.prometheus_image),
                port=9090,
                networks=(SHARED_NETWORK, HULEEDU_NETWORK),
                route=Route("prometheus", 9090, basic_auth=True, health_path="/-/healthy"),
                volumes={"prometheus-data": "/prometheus"},
                uploads={"/etc/prometheus/prometheus.yml": prometheus_yml},
                command=(
                    "--config.file=/etc/prometheus/prometheus.yml",
                    "--storage.tsdb.path=/prometheus",
                    f"--storage.tsdb.retention.time={settings.prometheus_retention}",
                    f"--web.external-url=https://{site.hostname('prometheus')}/",
                ),
                healthcheck=wget_probe(9090, "/-/healthy"),
                health_path="/-/healthy",
                metrics_path="/metrics",
            ),
            Service(
                name="jaeger",
                container="jaeger",
                image=Pull(settings.jaeger_image),
                port=16686,
                networks=(SHARED_NETWORK, HULEEDU_NETWORK),
                route=Route("jaeger", 16686, basic_auth=True, health_path="/"),
                env={
                    "SPAN_STORAGE_TYPE": "badger",
                    "BADGER_EPHEMERAL": "false",
                    "BADGER_DIRECTORY_VALUE": "/badger/data",
                    "BADGER_DIRECTORY_KEY": "/badger/key",
                    "COLLECTOR_OTLP_ENABLED": "true",
                },
                volumes={"jaeger-data": "/badger"},
                healthcheck=wget_probe(14269, "/"),
                health_path="/",
            ),
            Service(
                name="loki",
                container="loki",
                image=Pull(settings.loki_image),
                port=3100,
                networks=(SHARED_NETWORK,),
                volumes={"loki-data": "/loki"},
                healthcheck=wget_probe(3100, "/ready"),
                health_path="/ready",
                metrics_path="/metrics",
            ),
            Service(
                name="promtail",
                container="promtail",
                image=Pull(settings.promtail_image),
                port=9080,
                networks=(SHARED_NETWORK,),
                volumes={"promtail-positions": "/var/lib/promtail"},
                uploads={"/etc/promtail/config.yml": promtail_yml},
                command=("-config.file=/etc/promtail/config.yml",),
                docker_socket="read-only",
                healthcheck=bash_probe(9080, "/ready"),
                health_path="/ready",
            ),
        ),
    )


SPEC = AppSpec("observability", Settings, declare)
