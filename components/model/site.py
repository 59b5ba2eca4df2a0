"""The platform facts an app may use, and nothing else of the stack's config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Site:
    """Read-only: apps describe themselves against it and cannot change it."""

    hostnames: Mapping[str, str]
    """Route id -> public hostname (``hemma:hostnames``)."""
    postgres_host: str
    """shared-postgres's name on hule-network."""
    postgres_port: int
    docker_path: str
    """The docker CLI as systemd units call it on Hemma."""
    docker_service: str
    """The unit that runs Docker; host jobs that use docker require it."""
    proxy_container: str
    """nginx-proxy's container name (Promtail reads its access log)."""
    proxy_network: str
    """The network nginx-proxy's requests come from, as a CIDR."""
    operator_email: str
    """Where mail for the operator goes (the ACME account's address)."""
    metrics_dir: str
    """Where the host jobs write Prometheus textfile metrics."""
    llama_port: int
    """Port of the host's llama.cpp server, reached at host.docker.internal."""
    tabby_port: int
    drift_stale_hours: int = 36
    """How old a drift check's last success may be before its alert fires
    (``hemma:drift.staleAfterHours``)."""
    scheme: str = "https"
    """How the public hostnames are served: ``https`` on Hemma, ``http`` on the local
    stack (no ACME)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hostnames", MappingProxyType(dict(self.hostnames)))

    def url(self, route_id: str, path: str = "/") -> str:
        """The public URL of a route's path, as browsers reach it."""
        return f"{self.scheme}://{self.hostname(route_id)}{path}"

    def hostname(self, route_id: str) -> str:
        """The hostname of a route, or "" while the config lacks it (reported as an error)."""
        return self.hostnames.get(route_id, "")
