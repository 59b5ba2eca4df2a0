"""The observability stack: Grafana, Prometheus, Jaeger, Loki and Promtail.

Grafana is public; Prometheus and Jaeger sit behind basic auth. Prometheus
scrapes every service of the apps declared before it that has a metrics path,
by its network alias, so it joins hule-network and HuleEdu's internal network.
Promtail reads nginx-proxy's access log from Docker and labels each line with
``vhost``, ``client_ip``, ``method`` and ``status`` (runbook 003).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.apps.huleedu import NETWORK as HULEEDU_NETWORK
from components.apps.observability.grafana import grafana_provisioning
from components.apps.observability.prometheus import prometheus_config
from components.apps.observability.promtail import promtail_config
from components.model.app import (
    SHARED_NETWORK,
    App,
    AppSpec,
    Generated,
    HttpProbe,
    Pull,
    Route,
    Service,
    Step,
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


GRAFANA_PASSWORD_RESET = (
    "grafana",
    "cli",
    "admin",
    "reset-admin-password",
    "--password-from-stdin",
)
JAEGER_DATA = "/tmp"
"""Jaeger 1.50+ runs as uid 10001, and a fresh named volume's root is owned by root:
badger's mkdir there fails. The image declares ``VOLUME /tmp`` (mode 1777), and
Docker copies a mount point's owner and mode from the image into a fresh volume
(moby container/container_unix.go copyExistingContents/copyOwnership), so the
volume mounted at /tmp is writable by 10001."""


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
                uploads=grafana_provisioning(),
                env={
                    "GF_SECURITY_ADMIN_USER": "admin",
                    "GF_SERVER_ROOT_URL": f"https://{site.hostname('grafana')}/",
                    "GF_USERS_ALLOW_SIGN_UP": "false",
                },
                secret_env={"GF_SECURITY_ADMIN_PASSWORD": Generated("grafana-admin-password")},
                volumes={"grafana-data": "/var/lib/grafana"},
                healthcheck=HttpProbe(3000, "/api/health", tool="wget"),
                stop_grace_seconds=30,
                metrics_path="/metrics",
                # GF_SECURITY_ADMIN_PASSWORD is applied only when Grafana creates its
                # admin user, on a fresh volume; an adopted grafana-data keeps the old
                # password. So the generated one is set again after every start.
                after_start=(
                    Step(
                        "reset-admin-password",
                        (
                            "grafana",
                            "cli",
                            "admin",
                            "reset-admin-password",
                            "--password-from-stdin",
                        ),
                        stdin=Generated("grafana-admin-password"),
                        rerun="container",
                    ),
                ),
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
                healthcheck=HttpProbe(9090, "/-/healthy", tool="wget"),
                stop_grace_seconds=60,
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
                    "BADGER_DIRECTORY_VALUE": f"{JAEGER_DATA}/data",
                    "BADGER_DIRECTORY_KEY": f"{JAEGER_DATA}/key",
                    "COLLECTOR_OTLP_ENABLED": "true",
                },
                volumes={"jaeger-data": JAEGER_DATA},
                healthcheck=HttpProbe(14269, "/", tool="wget"),
                stop_grace_seconds=30,
            ),
            Service(
                name="loki",
                container="loki",
                image=Pull(settings.loki_image),
                port=3100,
                networks=(SHARED_NETWORK,),
                volumes={"loki-data": "/loki"},
                healthcheck=HttpProbe(3100, "/ready", tool="wget"),
                stop_grace_seconds=30,
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
                healthcheck=HttpProbe(9080, "/ready", tool="bash"),
                stop_grace_seconds=30,
            ),
        ),
    )


SPEC = AppSpec("observability", Settings, declare)
