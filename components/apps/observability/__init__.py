"""The observability stack: Grafana, Prometheus, Jaeger, Loki and Promtail.

Grafana is public; Prometheus and Jaeger sit behind basic auth. Prometheus
scrapes every service of the apps declared before it that has a metrics path,
by its network alias, so it joins hule-network and HuleEdu's internal network;
it and Grafana also join the alerting services' network (``alerting.py``).
Promtail reads nginx-proxy's access log from Docker and labels each line with
``vhost``, ``client_ip``, ``method`` and ``status`` (runbook 003).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.apps.huleedu import NETWORK as HULEEDU_NETWORK
from components.apps.observability.alerting import NETWORK as ALERTING_NETWORK
from components.apps.observability.alerting import alerting_services, receiver
from components.apps.observability.alerts import RULES_PATH, alert_rules
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
from components.model.values import (
    Email,
    Hostname,
    Image,
    LoginName,
    Placed,
    Port,
    WebhookUrl,
)


class Settings(Placed):
    """Grafana, Prometheus, Jaeger, Loki and Promtail (``hemma:observability``)."""

    grafana_image: Image = "grafana/grafana:11.4.0"
    prometheus_image: Image = "prom/prometheus:v2.55.1"
    jaeger_image: Image = "jaegertracing/all-in-one:1.64.0"
    loki_image: Image = "grafana/loki:3.3.2"
    promtail_image: Image = "grafana/promtail:3.3.2"
    prometheus_retention: Annotated[str, Field(pattern=r"^[0-9]+(d|w|y|h)$")] = "30d"
    alertmanager_image: Image = "prom/alertmanager:v0.27.0"
    blackbox_image: Image = "prom/blackbox-exporter:v0.25.0"
    node_exporter_image: Image = "prom/node-exporter:v1.8.2"
    alert_email: Email | None = None
    """Where alerts are mailed; the ACME account's address (acmeEmail) when unset."""
    alert_webhook: WebhookUrl | None = None
    """A webhook that takes Alertmanager's JSON, instead of mail."""
    alert_smtp_host: Hostname = "mail.privateemail.com"
    alert_smtp_port: Port = 587
    alert_smtp_username: LoginName = "noreply@hule.education"
    """Sends the mail, with the password ``smtpPassword`` (HuleEdu's mail server)."""


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


OWN_ROUTES = (
    Route("grafana", 3000, health_path="/api/health"),
    Route("prometheus", 9090, basic_auth=True, health_path="/-/healthy"),
    Route("jaeger", 16686, basic_auth=True, health_path="/"),
)


def declare(settings: Settings, site: Site, peers: tuple[App, ...]) -> App:
    # A route whose hostname is missing is reported by the config checks; it is not
    # probed meanwhile.
    routes = [
        r for r in (*(r for app in peers for r in app.routes), *OWN_ROUTES) if site.hostname(r.id)
    ]
    probed = sorted({site.url(r.id, r.health_path) for r in routes if not r.basic_auth})
    certified = sorted({site.hostname(r.id) for r in routes if r.basic_auth})
    prometheus_yml = prometheus_config(peers, probed, certified)
    # Prometheus and Jaeger join HuleEdu's network, where its services send traces
    # and are scraped, when HuleEdu is declared.
    joined = {app.internal_network for app in peers}
    networks = (SHARED_NETWORK, *((HULEEDU_NETWORK,) if HULEEDU_NETWORK in joined else ()))
    promtail_yml = promtail_config(site.proxy_container)
    to = receiver(
        settings.alert_email,
        settings.alert_webhook,
        (settings.alert_smtp_host, settings.alert_smtp_port, settings.alert_smtp_username),
        site.operator_email,
    )
    images = (
        settings.alertmanager_image,
        settings.blackbox_image,
        settings.node_exporter_image,
    )
    hosts = [site.hostname(r.id) for r in routes]
    return App(
        name="observability",
        internal_network=ALERTING_NETWORK,
        generated=("grafana-admin-password",),
        services=(
            Service(
                name="grafana",
                container="grafana",
                image=Pull(settings.grafana_image),
                port=3000,
                networks=(SHARED_NETWORK, ALERTING_NETWORK),
                route=OWN_ROUTES[0],
                uploads=grafana_provisioning(),
                env={
                    "GF_SECURITY_ADMIN_USER": "admin",
                    "GF_SERVER_ROOT_URL": site.url("grafana"),
                    "GF_USERS_ALLOW_SIGN_UP": "false",
                },
                secret_env={"GF_SECURITY_ADMIN_PASSWORD": Generated("grafana-admin-password")},
                volumes={"grafana-data": "/var/lib/grafana"},
                # Grafana's SQLite database is copied while Grafana is stopped.
                volume_backups={"grafana-data": "stop"},
                healthcheck=HttpProbe(3000, "/api/health", tool="wget"),
                stop_grace_seconds=30,
                metrics_path="/metrics",
                # GF_SECURITY_ADMIN_PASSWORD is applied only when Grafana creates its
                # admin user, on a fresh volume; an adopted grafana-data keeps the old
                # password. So the generated one is set again after every start.
                after_start=(
                    Step(
                        "reset-admin-password",
                        GRAFANA_PASSWORD_RESET,
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
                networks=(*networks, ALERTING_NETWORK),
                route=OWN_ROUTES[1],
                volumes={"prometheus-data": "/prometheus"},
                volume_backups={"prometheus-data": "skip"},
                uploads={
                    "/etc/prometheus/prometheus.yml": prometheus_yml,
                    RULES_PATH: alert_rules(probed, drift_stale_hours=site.drift_stale_hours),
                },
                command=(
                    "--config.file=/etc/prometheus/prometheus.yml",
                    "--storage.tsdb.path=/prometheus",
                    f"--storage.tsdb.retention.time={settings.prometheus_retention}",
                    f"--web.external-url={site.url('prometheus')}",
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
                networks=networks,
                route=OWN_ROUTES[2],
                env={
                    "SPAN_STORAGE_TYPE": "badger",
                    "BADGER_EPHEMERAL": "false",
                    "BADGER_DIRECTORY_VALUE": f"{JAEGER_DATA}/data",
                    "BADGER_DIRECTORY_KEY": f"{JAEGER_DATA}/key",
                    "COLLECTOR_OTLP_ENABLED": "true",
                },
                volumes={"jaeger-data": JAEGER_DATA},
                volume_backups={"jaeger-data": "skip"},
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
                volume_backups={"loki-data": "skip"},
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
                volume_backups={"promtail-positions": "skip"},
                uploads={"/etc/promtail/config.yml": promtail_yml},
                command=("-config.file=/etc/promtail/config.yml",),
                docker_socket="read-only",
                healthcheck=HttpProbe(9080, "/ready", tool="bash"),
                stop_grace_seconds=30,
            ),
            *alerting_services(images, site, hosts, to),
        ),
    )


SPEC = AppSpec("observability", Settings, declare)
