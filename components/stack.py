"""The whole Hemma server: config first, then every component, then the outputs."""

from __future__ import annotations

from typing import Any

import pulumi

from components.app import AppStack
from components.catalog import SHARED_NETWORK, App, apps
from components.config import StackConfig, load_config, network_names
from components.host_units import backup_credentials, backup_databases, host_unit_groups
from components.networks import Networks
from components.nginx_files import HostPolicy
from components.providers import docker_provider, ssh_connection
from components.proxy import ProxyStack
from components.shared_postgres import SharedPostgres
from components.systemd_unit import SystemdUnit


def host_policies(config: StackConfig, catalog: tuple[App, ...]) -> list[HostPolicy]:
    """What the edge enforces for every routed hostname in the catalog."""
    return [
        HostPolicy(
            hostname=config.hostnames[route.id],
            max_body_size=route.max_body_size or config.proxy.default_max_body_size,
            basic_auth=route.basic_auth,
        )
        for app in catalog
        for route in app.routes
    ]


def routing_table(config: StackConfig, catalog: tuple[App, ...]) -> dict[str, dict[str, Any]]:
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


def build(config: StackConfig) -> dict[str, Any]:
    """Declare every resource and return the stack outputs by name."""
    catalog = apps(config)
    docker = docker_provider(config)
    on_hemma = pulumi.ResourceOptions(providers={"docker": docker})
    connection = ssh_connection(config)

    networks = Networks("networks", network_names(catalog), config.import_ids, opts=on_hemma)
    proxy = ProxyStack(
        "proxy",
        config.proxy,
        acme_email=config.acme_email,
        acme_staging=config.acme_staging,
        network=networks[SHARED_NETWORK],
        hosts=host_policies(config, catalog),
        import_ids=config.import_ids,
        opts=on_hemma,
    )
    postgres = SharedPostgres(
        "shared-postgres",
        config.postgres,
        network=networks[SHARED_NETWORK],
        import_ids=config.import_ids,
        opts=on_hemma,
    )
    databases = {
        app.name: postgres.database_for(app.name, app.database_role, app.databases)
        for app in catalog
        if app.database_role
    }
    stacks = {
        app.name: AppStack(
            app, config, networks.by_name, databases.get(app.name), connection, opts=on_hemma
        )
        for app in catalog
    }
    units = [
        SystemdUnit(
            group,
            connection,
            secret_content=(
                postgres.admin_password.apply(backup_credentials) if group.secret_file else None
            ),
        )
        for group in host_unit_groups(config, catalog)
    ]

    grafana = stacks["observability"].generated["grafana-admin-password"]
    routes = routing_table(config, catalog)
    return {
        "networks": {name: network.name for name, network in networks.by_name.items()},
        "proxyPublicHosts": proxy.public_hosts,
        "routes": routes,
        "dnsRecords": sorted(routes),
        "healthChecks": health_checks(config, catalog),
        "sshTunnels": ssh_tunnels(config, catalog),
        "containers": {name: sorted(stack.containers) for name, stack in stacks.items()},
        "basicAuthCredentials": proxy.basic_auth,
        "grafanaAdminPassword": grafana,
        "postgresAdminPassword": postgres.admin_password,
        "postgresTunnel": (
            f"ssh -N -L {config.postgres.tunnel_port}:127.0.0.1:{config.postgres.host_port} "
            f"{config.ssh_user}@{config.ssh_host}"
        ),
        "appDatabases": {
            app: {"role": db.role_name, "databases": db.database_names}
            for app, db in databases.items()
        },
        "appConnectionStrings": pulumi.Output.secret(
            pulumi.Output.all(**{app: db.connection_strings for app, db in databases.items()})
        ),
        "hostUnits": {
            unit_name: {"group": unit.group_name, "schedule": unit.schedule}
            for unit in units
            for unit_name in unit.units
        },
        "backups": {
            "enabled": config.backups.enabled,
            "directory": config.backups.directory,
            "keepDays": config.backups.keep_days,
            "schedule": config.backups.schedule,
            "databases": backup_databases(catalog) if config.backups.enabled else [],
        },
    }


def main() -> dict[str, Any]:
    """Validate all config before the first resource, then build and export."""
    config = load_config()
    outputs = build(config)
    for name, value in outputs.items():
        pulumi.export(name, value)
    return outputs
