"""The stack outputs other tooling reads, as pure functions of config and catalog."""

from __future__ import annotations

from typing import Any

from components.backups.jobs import BackupPlan
from components.config.stack import StackConfig
from components.model.app import App, Route
from components.model.placement import Machine, Placement
from components.model.values import PLATFORM_HOST


def routing_table(config: StackConfig, catalog: tuple[App, ...]) -> dict[str, dict[str, Any]]:
    """Hostname -> the container and port nginx-proxy sends it to."""
    return {
        route_key(config, service.route): {
            "container": service.container,
            "port": service.route.port,
            "basicAuth": service.route.basic_auth,
        }
        for app in catalog
        for service in app.services
        if service.route
    }


def route_key(config: StackConfig, route: Route) -> str:
    """``host`` for a whole host, ``host/path/`` for a route on a path of it."""
    host = config.hostnames[route.id]
    return host if route.path == "/" else f"{host}{route.path}"


def dns_records(config: StackConfig, catalog: tuple[App, ...]) -> list[str]:
    """Every hostname that needs A and AAAA records pointing at Hemma."""
    return sorted({config.hostnames[route.id] for app in catalog for route in app.routes})


def health_checks(config: StackConfig, catalog: tuple[App, ...]) -> dict[str, Any]:
    """Public URLs, and each container's probe as the runbooks run it from inside the
    network (``docker exec CONTAINER PROBE...`` against the service's alias)."""
    public = {}
    internal: dict[str, dict[str, Any]] = {}
    for app in catalog:
        for service in app.services:
            if service.route:
                host = config.hostnames[service.route.id]
                scheme = "http" if config.local else "https"
                public[route_key(config, service.route)] = (
                    f"{scheme}://{host}{service.route.health_path}"
                )
            if service.healthcheck is not None:
                internal[service.container] = {
                    "url": service.healthcheck.url(service.name),
                    "probe": service.healthcheck.argv(service.name),
                    "host": config.placement().of(service.container),
                }
    return {"public": public, "internal": internal}


SCHEMA_VERSION = 3
"""The outputs' layout (components/outputs.schema.json); bumped on any change to it."""


def ssh_target(config: StackConfig) -> str | None:
    """``user@host`` that reaches Hemma, its port the ``sshPort`` output; None locally."""
    return None if config.local else f"{config.ssh_user}@{config.ssh_host}"


def _ssh_forward(machine: Machine, local_port: int, remote: str) -> str:
    port = "" if machine.ssh_port == 22 else f"-p {machine.ssh_port} "
    return f"ssh -N {port}-L {local_port}:{remote} {machine.ssh_target}"


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ssh_tunnels(config: StackConfig, catalog: tuple[App, ...]) -> dict[str, dict[str, Any]]:
    """How to reach each localhost-only service from the operator's machine (the local
    stack's are on this machine already)."""
    tunnels: dict[str, tuple[int, str, str]] = {}
    if config.local:
        return {}
    placement, machines = config.placement(), config.machines()
    for app in catalog:
        for service in app.services:
            for local in service.localhost_ports:
                tunnels[service.container] = (
                    local.tunnel_port or local.host_port,
                    _address("127.0.0.1", local.host_port),
                    placement.of(service.container),
                )
    if config.gpu.enabled:
        for name, server in (("llama-server", config.gpu.llama), ("tabby", config.gpu.tabby)):
            tunnels[name] = (
                server.port,
                _address(config.gpu.bind_address, server.port),
                config.gpu.host,
            )
    return {
        name: {
            "localPort": local_port,
            "remote": remote,
            "host": host,
            "command": _ssh_forward(machines[host], local_port, remote),
        }
        for name, (local_port, remote, host) in tunnels.items()
    }


def postgres_tunnel(config: StackConfig) -> str | None:
    """The ``ssh -L`` command that reaches shared-postgres from the operator's machine."""
    if config.local:
        return None
    remote = _address("127.0.0.1", config.postgres.host_port)
    return _ssh_forward(config.machines()[PLATFORM_HOST], config.postgres.tunnel_port, remote)


def backups(config: StackConfig, plan: BackupPlan) -> dict[str, Any]:
    """What the backups cover, where they go, and when they and their checks run."""
    backups = config.backups
    return {
        "host": PLATFORM_HOST,
        "enabled": backups.enabled,
        "repository": backups.repository if backups.enabled else None,
        "schedule": backups.schedule,
        "keep": {
            "daily": plan.keep.daily,
            "weekly": plan.keep.weekly,
            "monthly": plan.keep.monthly,
        },
        "checkSchedule": backups.check_schedule,
        "drillSchedule": backups.drill_schedule,
        "directory": plan.dumps,
        "metricsDirectory": plan.metrics,
        "databases": list(plan.databases) if backups.enabled else [],
        "volumes": {name: policy for name, policy, _ in plan.volumes} if backups.enabled else {},
    }


def drift(config: StackConfig, plan: BackupPlan) -> dict[str, Any]:
    """The two drift checks: where their metrics are, how often the host's runs, and
    when either counts as stale (scripts/doctor, the alerts)."""
    return {
        "schedule": config.drift.schedule,
        "staleAfterHours": config.drift.stale_after_hours,
        "metricsFiles": {
            "host": f"{plan.metrics}/hemma_drift_host.prom",
            "operator": f"{plan.metrics}/hemma_drift_operator.prom",
        },
    }


def hosts(config: StackConfig, placement: Placement) -> dict[str, dict[str, Any]]:
    """Each machine something runs on: how SSH and Docker reach it, and its paths."""
    machines = config.machines()
    return {
        host: {
            "sshTarget": None if config.local else machines[host].ssh_target,
            "sshPort": None if config.local else machines[host].ssh_port,
            "dockerHost": machines[host].docker_host,
            "dockerPath": machines[host].docker_path,
            "volumeRoot": machines[host].volume_root,
            "metricsDirectory": machines[host].metrics_directory,
        }
        for host in placement.hosts()
    }


def placement(config: StackConfig, catalog: tuple[App, ...], placed: Placement) -> dict[str, str]:
    """Container -> the machine it runs on, the platform's own containers included."""
    platform = {
        name: PLATFORM_HOST
        for name in (
            config.proxy.container_name,
            *([] if config.local else [config.proxy.companion_container_name]),
            config.postgres.container_name,
        )
    }
    running = {s.container for app in catalog for s in app.services}
    return {**platform, **{c: h for c, h in placed.containers.items() if c in running}}
