"""The services the alerts need: Alertmanager, blackbox-exporter and node-exporter.

None is published. Alertmanager's API takes silences from anyone who reaches it,
and node-exporter serves the host's disks, units and containers, so the apps'
containers must not reach them: the two are on ``observability_internal_network``
only, with Prometheus, which scrapes them and sends Alertmanager the alerts, and
Grafana, which reads Alertmanager. blackbox-exporter stays on hule-network, the
proxy's own bridge: from another bridge, a probe to a published port through
host-gateway is DNATed across bridges, and Docker before 28 drops that forward in
its DOCKER-ISOLATION chains (moby#38784; v20.10.24 libnetwork iptables.go's DNAT
rule excludes only the proxy's own bridge). blackbox-exporter
probes the public URLs through nginx-proxy's own published ports: each public
hostname resolves, inside it, to the host (host-gateway), so a probe needs no
way out of the home network and back (which a router may not allow).
node-exporter serves the textfile metrics the host jobs write (backups, the
drill, containers, units, disks); its other collectors would describe its own
container, not the host, and are off.
"""

from __future__ import annotations

from collections.abc import Sequence

from components.apps.observability.alert_config import (
    EmailReceiver,
    WebhookReceiver,
    alertmanager_config,
    blackbox_config,
)
from components.model.app import SHARED_NETWORK, HttpProbe, OperatorSecret, Pull, Service
from components.model.site import Site

NETWORK = "observability_internal_network"
SMTP_PASSWORD_FILE = "/etc/alertmanager/smtp-password"
TEXTFILE_DIR = "/textfile"


def receiver(
    email: str | None, webhook: str | None, smtp: tuple[str, int, str], operator: str
) -> EmailReceiver | WebhookReceiver | None:
    """A webhook when one is set; mail to ``email`` (the operator's) otherwise; nothing
    when there is no address at all (the local stack)."""
    if webhook:
        return WebhookReceiver(webhook)
    if not (email or operator):
        return None
    host, port, username = smtp
    return EmailReceiver(
        smarthost=f"{host}:{port}",
        sender=username,
        to=email or operator,
        username=username,
        password_file=SMTP_PASSWORD_FILE,
    )


def alerting_services(
    images: tuple[str, str, str],
    site: Site,
    public_hosts: Sequence[str],
    to: EmailReceiver | WebhookReceiver | None,
) -> tuple[Service, ...]:
    """Alertmanager, blackbox-exporter and node-exporter, by their images in that order."""
    alertmanager_image, blackbox_image, node_image = images
    mails = isinstance(to, EmailReceiver)
    return (
        Service(
            name="alertmanager",
            container="alertmanager",
            image=Pull(alertmanager_image),
            port=9093,
            networks=(NETWORK,),
            volumes={"alertmanager-data": "/alertmanager"},
            volume_backups={"alertmanager-data": "skip"},
            uploads={"/etc/alertmanager/alertmanager.yml": alertmanager_config(to)},
            secret_files=({SMTP_PASSWORD_FILE: OperatorSecret("smtpPassword")} if mails else {}),
            command=(
                "--config.file=/etc/alertmanager/alertmanager.yml",
                "--storage.path=/alertmanager",
            ),
            healthcheck=HttpProbe(9093, "/-/healthy", tool="wget"),
            stop_grace_seconds=30,
            metrics_path="/metrics",
        ),
        Service(
            name="blackbox_exporter",
            container="blackbox_exporter",
            image=Pull(blackbox_image),
            port=9115,
            networks=(SHARED_NETWORK,),
            uploads={"/etc/blackbox_exporter/config.yml": blackbox_config()},
            command=("--config.file=/etc/blackbox_exporter/config.yml",),
            gateway_names=tuple(sorted(set(public_hosts))),
            healthcheck=HttpProbe(9115, "/-/healthy", tool="wget"),
        ),
        Service(
            name="node_exporter",
            container="node_exporter",
            image=Pull(node_image),
            port=9100,
            networks=(NETWORK,),
            binds={site.metrics_dir: TEXTFILE_DIR},
            command=(
                "--collector.disable-defaults",
                "--collector.textfile",
                f"--collector.textfile.directory={TEXTFILE_DIR}",
            ),
            healthcheck=HttpProbe(9100, "/metrics", tool="wget"),
        ),
    )
