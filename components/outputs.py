"""The stack outputs other tooling reads, as pure functions of config and catalog."""

from __future__ import annotations

from typing import Any

from components.config.stack import StackConfig
from components.model.app import App


def routing_table(config: StackConfig, catalog: tuple[App, ...]) -> dict[str, dict[str, Any]]:
    """Hostname -> the container and port nginx-proxy sends it to."""
    return {
        config.hostnames[service.route.id]: {
            "container": service.container,
            "port": service.route.port,
            "basicAuth": service.route.basic_auth,
        }
        for app in catalog
        for service in app.services
        if service.route
    }


def health_checks(config: StackConfig, catalog: tuple[App, ...]) -> dict[str, dict[str, str]]:
    """Public URLs, and internal ones as the runbooks probe them from inside the network."""
    public = {}
    internal = {}
    for app in catalog:
        for service in app.services:
            if service.route:
                host = config.hostnames[service.route.id]
                public[host] = f"https://{host}{service.route.health_path}"
            if service.health_path is not None and service.port:
                internal[service.container] = (
                    f"http://{service.name}:{service.port}{service.health_path}"
                )
    return {"public": public, "internal": internal}


def ssh_tunnels(config: StackConfig, catalog: tuple[App, ...]) -> dict[str, dict[str, Any]]:
    """How to reach each localhost-only service from the operator's machine."""
    target = f"{config.ssh_user}@{config.ssh_host}"
    tunnels: dict[str, tuple[int, str, int]] = {}
    for app in catalog:
        for service in app.services:
            for local in service.localhost_ports:
                tunnels[service.container] = (
                    local.tunnel_port or local.host_port,
                    "127.0.0.1",
                    local.host_port,
                )
    if config.gpu.enabled:
        for name, server in (("llama-server", config.gpu.llama), ("tabby", config.gpu.tabby)):
            tunnels[name] = (server.port, config.gpu.bind_address, server.port)
    return {
        name: {
            "localPort": local_port,
            "remote": f"{address}:{port}",
            "command": f"ssh -N -L {local_port}:{address}:{port} {target}",
        }
        for name, (local_port, address, port) in tunnels.items()
    }


def postgres_tunnel(config: StackConfig) -> str:
    """The ``ssh -L`` command that reaches shared-postgres from the operator's machine."""
    return (
        f"ssh -N -L {config.postgres.tunnel_port}:127.0.0.1:{config.postgres.host_port} "
        f"{config.ssh_user}@{config.ssh_host}"
    )


def backups(config: StackConfig, databases: list[str]) -> dict[str, Any]:
    """Where the nightly dumps go, how long they stay, and what they hold."""
    return {
        "enabled": config.backups.enabled,
        "directory": config.backups.directory,
        "keepDays": config.backups.keep_days,
        "schedule": config.backups.schedule,
        "databases": databases if config.backups.enabled else [],
    }
