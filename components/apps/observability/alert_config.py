"""How alerts leave Prometheus and how the public URLs are probed: Alertmanager's
config and its receiver, blackbox-exporter's modules, and the scrape jobs and
``alerting:`` block prometheus.yml needs. Pure renderers: the standard library and
PyYAML only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from components.apps.observability.alerts import (
    BLACKBOX_EXPORTER,
    BLACKBOX_JOB,
    RECEIVER,
    RULES_PATH,
    public_urls_checked,
)


def blackbox_config() -> str:
    """blackbox-exporter's modules: an HTTPS GET that must answer 2xx, and a TLS handshake."""
    tls = {"insecure_skip_verify": False}
    modules = {
        "http_2xx": {
            "prober": "http",
            "timeout": "10s",
            "http": {"preferred_ip_protocol": "ip4", "fail_if_not_ssl": True, "tls_config": tls},
        },
        "tls_connect": {
            "prober": "tcp",
            "timeout": "10s",
            "tcp": {"preferred_ip_protocol": "ip4", "tls": True, "tls_config": tls},
        },
    }
    return yaml.safe_dump({"modules": modules}, sort_keys=False)


def prometheus_alerting(alertmanager_target: str, rules_path: str = RULES_PATH) -> dict[str, Any]:
    """The ``alerting:`` and ``rule_files:`` blocks to merge into prometheus.yml."""
    return {
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_target]}]}]},
        "rule_files": [rules_path],
    }


def blackbox_scrape_job(
    public_urls: Sequence[str], exporter: str = BLACKBOX_EXPORTER, module: str = "http_2xx"
) -> dict[str, Any]:
    """The scrape job probing each URL through the exporter, labelled by the URL."""
    return {
        "job_name": BLACKBOX_JOB,
        "metrics_path": "/probe",
        "params": {"module": [module]},
        "static_configs": [{"targets": public_urls_checked(public_urls)}],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": exporter},
        ],
    }


def blackbox_tls_job(hosts: Sequence[str], exporter: str = BLACKBOX_EXPORTER) -> dict[str, Any]:
    """A TLS handshake with each host's 443, for hosts whose pages need a login: the
    certificate's expiry is still measured."""
    for host in hosts:
        if not re.match(r"^[a-z0-9.-]+$", host):
            raise ValueError(f"not a hostname: {host!r}")
    return {
        "job_name": "blackbox-tls",
        "metrics_path": "/probe",
        "params": {"module": ["tls_connect"]},
        "static_configs": [{"targets": [f"{host}:443" for host in hosts]}],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": exporter},
        ],
    }


@dataclass(frozen=True)
class EmailReceiver:
    """Mail through a smarthost; the password stays in a file Alertmanager reads."""

    smarthost: str  # host:port
    sender: str
    to: str
    username: str
    password_file: str


@dataclass(frozen=True)
class WebhookReceiver:
    url: str


def alertmanager_config(receiver: EmailReceiver | WebhookReceiver | None) -> str:
    """alertmanager.yml: everything to one receiver, grouped by alert name. ``None`` is a
    receiver that sends nothing: alerts show in Alertmanager and Grafana only."""
    body: dict[str, Any]
    if receiver is None:
        body = {}
    elif isinstance(receiver, EmailReceiver):
        if not re.match(r"^[^\s:]+:[0-9]+$", receiver.smarthost):
            raise ValueError(f"smarthost is host:port, not {receiver.smarthost!r}")
        if not receiver.password_file.startswith("/"):
            raise ValueError("password_file must be an absolute path")
        body = {
            "email_configs": [
                {
                    "to": receiver.to,
                    "from": receiver.sender,
                    "smarthost": receiver.smarthost,
                    "auth_username": receiver.username,
                    "auth_password_file": receiver.password_file,
                    "require_tls": True,
                    "send_resolved": True,
                }
            ]
        }
    else:
        if not re.match(r"^https?://\S+$", receiver.url):
            raise ValueError(f"not a webhook URL: {receiver.url!r}")
        body = {"webhook_configs": [{"url": receiver.url, "send_resolved": True}]}
    document = {
        "route": {
            "receiver": RECEIVER,
            "group_by": ["alertname"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
        },
        "receivers": [{"name": RECEIVER, **body}],
    }
    return yaml.safe_dump(document, sort_keys=False)
