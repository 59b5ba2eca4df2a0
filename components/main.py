"""The whole Hemma server, top to bottom: config, the edge, the database, the apps,
the host units, then the outputs other tooling reads."""

from __future__ import annotations

from typing import Any

import pulumi

from components import outputs
from components.apps.stack import AppStack, AppStackArgs
from components.apps.where import Elsewhere
from components.apps.wiring import DatabaseLogin
from components.backups.jobs import (
    BackupPlan,
    backed_up_volumes,
    backup_jobs,
    databases_of,
    drill_checks,
    drill_probes,
    host_metrics_job,
)
from components.backups.restic import Keep, restic_env
from components.config.errors import ConfigError, safe_message
from components.config.reading import load_config
from components.config.sources import source_digests
from components.config.stack import NAMESPACE, OPERATOR_SECRETS, POSTGRES_PORT, StackConfig
from components.foundation.containers import ContainerDefaults
from components.foundation.secrets import keep_config_secrets, secret_where_tainted
from components.host.drift import DRIFT_JOB, drift_group, manifest_holds_secret
from components.host.machines import places
from components.host.repository import backup_repository
from components.host.systemd_unit import SystemdUnit, SystemdUnitArgs
from components.host.unit_files import UnitGroup
from components.host.units import host_unit_groups
from components.model.app import SHARED_NETWORK, App
from components.model.values import PLATFORM_HOST
from components.postgres.server import SharedPostgres, SharedPostgresArgs
from components.proxy.nginx_files import host_policies, proxy_files
from components.proxy.stack import LOCAL_ADDRESSES, PUBLIC_ADDRESSES, ProxyStack, ProxyStackArgs

PLATFORM_VOLUME_BACKUPS = {"certs": "live", "acme": "live", "html": "skip"}
"""The proxy's volumes: the certificates and the ACME account are data; the
challenge files are not, nor are the per-host files, which every ``up`` writes.
shared-postgres's data is taken as dumps instead."""


def backup_plan(config: StackConfig, catalog: tuple[App, ...]) -> BackupPlan:
    backups, proxy = config.backups, config.proxy
    platform = {
        proxy.certs_volume: PLATFORM_VOLUME_BACKUPS["certs"],
        proxy.acme_volume: PLATFORM_VOLUME_BACKUPS["acme"],
        proxy.html_volume: PLATFORM_VOLUME_BACKUPS["html"],
        proxy.vhost_volume: "skip",
        proxy.htpasswd_volume: "skip",
    }
    return BackupPlan(
        docker=config.docker_path,
        docker_service=config.docker_service,
        postgres=config.postgres.container_name,
        dumps=backups.dumps_directory,
        metrics=backups.metrics_directory,
        volume_root=backups.volume_root,
        keep=Keep(backups.keep_daily, backups.keep_weekly, backups.keep_monthly),
        schedule=backups.schedule,
        check_schedule=backups.check_schedule,
        drill_schedule=backups.drill_schedule,
        drill_sample=backups.drill_sample,
        databases=databases_of(catalog),
        volumes=backed_up_volumes(catalog, config.volume_names, platform),
        probes=drill_probes(catalog),
        checks=drill_checks(catalog),
    )


def host_units(
    config: StackConfig, catalog: tuple[App, ...], host: str = PLATFORM_HOST
) -> list[UnitGroup]:
    """Every unit group of machine ``host``. Hemma gets the apps' jobs, the platform's,
    the backups, and last the drift check, whose manifest covers the files of all the
    others; a further machine, the jobs of the apps placed there and the GPU servers
    if ``gpu.host`` names it."""
    view = config.placement().on(host, catalog)
    if host != PLATFORM_HOST:
        return host_unit_groups(config, view, (), host)
    platform_jobs = [
        host_metrics_job(
            config.docker_path, config.docker_service, config.backups.metrics_directory
        )
    ]
    if config.backups.enabled:
        platform_jobs = [*backup_jobs(backup_plan(config, view)), *platform_jobs]
    groups = host_unit_groups(config, view, platform_jobs)
    return [*groups, drift_group(config, view, groups)]


def restic_secrets(config: StackConfig) -> str:
    """The root-only env file the backup jobs read: the repository and its secrets."""
    return restic_env(
        config.backups.repository or "",
        config.restic_password or "",
        dict(config.backup_storage_env),
    )


def build(config: StackConfig, sources_required: bool = True) -> dict[str, Any]:
    """Declare every resource and return the stack outputs by name.

    ``sources_required=False`` lets the offline plan describe images whose source
    checkout is absent; ``pulumi up`` always needs them.
    """
    catalog = config.apps()
    retired = config.retired_apps()
    placement = config.placement()
    hemma_view = placement.on(PLATFORM_HOST, catalog)
    digests, problems = source_digests(config, catalog, required=sources_required)
    if problems:
        raise ConfigError(safe_message(problems, config.secret_keys, config.secret_values))
    # Everything that is rendered from config (unit files, nginx files) is rendered
    # before the first resource: a value that no validator caught stops the run here,
    # with nothing half-declared.
    try:
        groups = {
            host: [] if config.local else host_units(config, catalog, host)
            for host in placement.hosts()
        }
        policies = host_policies(config, catalog)
        proxy_files(policies, config.proxy.default_max_body_size)
        if config.backups.enabled:
            restic_secrets(config)
    except ValueError as error:
        line = f"{NAMESPACE}: cannot render the stack: {error}"
        raise ConfigError(safe_message([line], config.secret_keys, config.secret_values)) from None
    secret = keep_config_secrets(config.secret_values)
    defaults = ContainerDefaults(log_opts=config.log_opts)
    machines = places(config, catalog, placement, secret)
    hemma = machines[PLATFORM_HOST]
    on_hemma = hemma.opts.merge(secret)
    shell, networks = hemma.shell, hemma.networks
    elsewhere = {
        container: Elsewhere(
            host,
            (place := machines[host]).provider,
            place.shell,
            place.machine.docker_host,
            place.networks.by_name,
        )
        for container, host in placement.containers.items()
        if host != PLATFORM_HOST
    }
    shared_network = networks[SHARED_NETWORK]
    proxy = ProxyStack(
        "proxy",
        ProxyStackArgs(
            config=config.proxy,
            acme_email=None if config.local else config.acme_email,
            acme_staging=config.acme_staging,
            network=shared_network,
            shell=shell,
            hosts=policies,
            import_ids=config.import_ids,
            defaults=defaults,
            addresses=LOCAL_ADDRESSES if config.local else PUBLIC_ADDRESSES,
        ),
        opts=on_hemma,
    )
    postgres = SharedPostgres(
        "shared-postgres",
        SharedPostgresArgs(
            config.postgres, shared_network, config.import_ids, defaults, not config.local
        ),
        opts=on_hemma,
    )
    databases = {
        app.name: postgres.database_for(app.name, app.database_role, app.databases)
        for app in (*catalog, *retired)
        if app.database_role
    }

    # A value of a key set as a secret is found in resources by its text, which a
    # short value cannot be (it would match nearly anything): extraEnv is marked
    # secret as a whole instead.
    extra_env: dict[str, dict[str, pulumi.Input[str]]] = {
        container: {
            key: pulumi.Output.secret(value) if "extraEnv" in config.secret_keys else value
            for key, value in variables.items()
        }
        for container, variables in config.extra_env.items()
    }

    def app_stack(app: App, retire: bool = False) -> AppStack:
        db = databases.get(app.name)
        return AppStack(
            app.name,
            AppStackArgs(
                app=app,
                networks=networks.by_name,
                shell=shell,
                routed_after=proxy.reload,
                docker_host=config.docker_host,
                hostnames=config.hostnames,
                database=(
                    DatabaseLogin(
                        role=db.role_name,
                        password=db.password,
                        host=config.postgres.container_name,
                        port=POSTGRES_PORT,
                        resource=db,
                    )
                    if db
                    else None
                ),
                source=config.app_sources.get(app.name),
                digests=digests,
                operator_secrets={key: config.operator_secret(key) for key in OPERATOR_SECRETS},
                image_overrides=config.image_overrides,
                retention=config.image_retention,
                extra_env=extra_env,
                defaults=defaults,
                import_ids=config.import_ids,
                volume_names=config.volume_names,
                retired=retire,
                tls=not config.local,
                proxy_container=config.proxy.container_name,
                elsewhere=elsewhere,
            ),
            opts=on_hemma,
        )

    stacks = {app.name: app_stack(app) for app in catalog}
    for app in retired:
        app_stack(app, retire=True)
    proxy.settle([c for stack in stacks.values() for c in stack.containers.values()])
    units = [
        (
            host,
            SystemdUnit(
                group.name if host == PLATFORM_HOST else f"{host}-{group.name}",
                SystemdUnitArgs(
                    group,
                    ssh,
                    secret_content=(
                        pulumi.Output.secret(restic_secrets(config)) if group.secret_file else None
                    ),
                    secret_values=config.secret_values,
                    secret=group.name == DRIFT_JOB
                    and manifest_holds_secret(host_groups, config.secret_values),
                ),
                opts=secret,
            ),
        )
        for host, host_groups in groups.items()
        if (ssh := machines[host].shell.connection) is not None
        for group in host_groups
    ]
    backup_units = [
        u for host, u in units if host == PLATFORM_HOST and u.group_name == "hemma-backup"
    ]
    if backup_units and shell.connection is not None:
        backup_repository(
            "hemma-backup-repository",
            shell.connection,
            config.backups.repository or "",
            config.backups.system_disk,
            after=backup_units[0].install,
            opts=pulumi.ResourceOptions(parent=backup_units[0]).merge(secret),
        )

    routes = outputs.routing_table(config, catalog)
    return {
        "schemaVersion": outputs.SCHEMA_VERSION,
        "sshTarget": outputs.ssh_target(config),
        "sshPort": None if config.local else config.ssh_port,
        "networks": {name: network.name for name, network in networks.by_name.items()},
        "proxyPublicHosts": proxy.public_hosts,
        "routes": routes,
        "dnsRecords": outputs.dns_records(config, catalog),
        "healthChecks": outputs.health_checks(config, catalog),
        "sshTunnels": outputs.ssh_tunnels(config, catalog),
        "containers": {name: sorted(stack.containers) for name, stack in stacks.items()},
        "basicAuthCredentials": proxy.basic_auth,
        "grafanaAdminPassword": stacks["observability"].generated["grafana-admin-password"],
        "postgresAdminPassword": postgres.admin_password,
        "postgresTunnel": outputs.postgres_tunnel(config),
        "appDatabases": {
            app: {"role": db.role_name, "databases": db.database_names}
            for app, db in databases.items()
            if app in stacks
        },
        "appConnectionStrings": pulumi.Output.secret(
            pulumi.Output.from_input(
                {app: db.connection_strings for app, db in databases.items() if app in stacks}
            )
        ),
        "hostUnits": {
            unit_name: {
                "group": unit.group_name,
                "schedule": unit.schedule,
                "host": host,
            }
            for host, unit in units
            for unit_name in unit.units
        },
        "backups": outputs.backups(config, backup_plan(config, hemma_view)),
        "drift": outputs.drift(config, backup_plan(config, hemma_view)),
        "hosts": outputs.hosts(config, placement),
        "placement": outputs.placement(config, catalog, placement),
    }


def main() -> dict[str, Any]:
    """Validate all config before the first resource, then build and export."""
    config = load_config()
    exported = {
        name: secret_where_tainted(value, config.secret_values)
        for name, value in build(config).items()
    }
    for name, value in exported.items():
        pulumi.export(name, value)
    return exported
