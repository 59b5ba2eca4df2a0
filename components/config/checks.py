"""Rules that span keys and the app catalog: nothing may collide, nothing be missing.

They run after the model has validated every key on its own, and before any
resource is declared; each problem is one line that names the key (or the app)
it comes from.
"""

from __future__ import annotations

from typing import Any

from components.config.errors import unknown_name
from components.config.host_checks import host_checks
from components.config.placement_checks import placement_checks
from components.config.platform import TUNNEL_PORT
from components.config.stack import NAMESPACE, PUBLIC_PORTS, StackConfig
from components.foundation.adoption import KINDS, import_key
from components.model.app import SHARED_NETWORK, App, OperatorSecret, Service, network_names

REQUIRED_UNLESS_LOCAL = ("acmeEmail", "sshUser", "sshHostKey", "sshPrivateKey")
"""What reaches Hemma: required by every stack but the local one."""
PROXY_ENV_PREFIXES = ("VIRTUAL_", "LETSENCRYPT_", "ACME_")
PROXY_ENV = frozenset({"HTTPS_METHOD", "HSTS", "CERT_NAME", "NETWORK_ACCESS", "SSL_POLICY"})
"""What nginx-proxy and acme-companion read off a container: set by its route only."""


def check_where(config: StackConfig) -> list[str]:
    """What the server needs to be reached (Hemma over SSH), or what the local stack
    cannot have (host units, ACME, adoption)."""
    if not config.local:
        values = (config.acme_email, config.ssh_user, config.ssh_host_key, config.ssh_private_key)
        return [
            f"{NAMESPACE}:{key}: is required"
            for key, value in zip(REQUIRED_UNLESS_LOCAL, values, strict=True)
            if not value
        ]
    problems = []
    if not config.docker_host.startswith("unix://"):
        problems.append(
            f"{NAMESPACE}:dockerHost: the local stack runs on this machine's Docker, "
            f"unix:///PATH (got {config.docker_host!r})"
        )
    if config.backups.enabled:
        problems.append(
            f"{NAMESPACE}:backups.enabled: the local stack installs no host units, and the "
            "backups are host units: set it to false"
        )
    if config.import_ids:
        problems.append(f"{NAMESPACE}:import: the local stack adopts nothing")
    if config.postgres.host_port == TUNNEL_PORT:
        # scripts/pulumi for hemma would find the laptop's database on its tunnel port.
        problems.append(
            f"{NAMESPACE}:postgres.hostPort: {TUNNEL_PORT} is the hemma stack's "
            "database tunnel on this machine (postgres.tunnelPort): give the local stack "
            "its own, such as 25432"
        )
    return problems


def check_site(config: StackConfig) -> list[str]:
    """Rules that span keys and the app catalog: nothing may collide, nothing be missing."""
    catalog = config.apps()
    problems: list[str] = check_where(config) + check_catalog(catalog)
    route_ids = [route.id for app in catalog for route in app.routes]
    every_app = config.apps(everything=True)
    known_routes = sorted({r.id for app in every_app for r in app.routes})

    for route_id in route_ids:
        if route_id not in config.hostnames:
            problems.append(
                f"{NAMESPACE}:hostnames.{route_id}: is required (no hostname for this route)"
            )
    for route_id in config.hostnames:
        if route_id not in known_routes:
            problems.append(
                f"{NAMESPACE}:hostnames.{route_id}: unknown route "
                + unknown_name(route_id, known_routes)
            )
    problems += _collisions(
        "hostname",
        [
            (f"{NAMESPACE}:hostnames.{route_id}", host)
            for route_id, host in config.hostnames.items()
            if route_id in route_ids
        ],
    )
    containers = {name: app for app in catalog for name in app.containers}
    problems += _collisions(
        "container name",
        [
            *((f"the {app.name} app", name) for app in catalog for name in app.containers),
            (f"{NAMESPACE}:proxy.containerName", config.proxy.container_name),
            (f"{NAMESPACE}:proxy.companionContainerName", config.proxy.companion_container_name),
            (f"{NAMESPACE}:postgres.containerName", config.postgres.container_name),
        ],
    )
    volumes = [
        (f"{NAMESPACE}:proxy.certsVolume", config.proxy.certs_volume),
        (f"{NAMESPACE}:proxy.htmlVolume", config.proxy.html_volume),
        (f"{NAMESPACE}:proxy.acmeVolume", config.proxy.acme_volume),
        (f"{NAMESPACE}:proxy.vhostVolume", config.proxy.vhost_volume),
        (f"{NAMESPACE}:proxy.htpasswdVolume", config.proxy.htpasswd_volume),
        (f"{NAMESPACE}:postgres.dataVolume", config.postgres.data_volume),
    ]
    # One entry per app volume: check_catalog already keeps two apps off one volume.
    owners: dict[str, str] = {}
    for app in catalog:
        for service in app.services:
            for volume in service.volumes:
                owners.setdefault(config.volume_name(volume), f"the {app.name} app")
    app_volumes = [(owner, volume) for volume, owner in owners.items()]
    problems += _collisions("volume name", [*app_volumes, *volumes])
    known = {*owners, *(volume for _, volume in volumes)}
    for at, volume in enumerate(config.adopt_as_is):
        if volume not in known:
            problems.append(
                f"{NAMESPACE}:adoptAsIs[{at}]: {volume!r} is no volume the stack declares"
            )
    problems += _collisions(
        "port",
        [
            *((owner, port) for port, owner in PUBLIC_PORTS.items()),
            *([] if config.local else [(f"{NAMESPACE}:sshPort", config.ssh_port)]),
            *(
                (f"the {app.name} app ({service.container})", local.host_port)
                for app in catalog
                for service in app.services
                for local in service.localhost_ports
            ),
            (f"{NAMESPACE}:postgres.hostPort", config.postgres.host_port),
            *(
                [
                    (f"{NAMESPACE}:gpu.llama.port", config.gpu.llama.port),
                    (f"{NAMESPACE}:gpu.tabby.port", config.gpu.tabby.port),
                ]
                if config.gpu.enabled
                else []
            ),
        ],
    )

    for key, container in sorted(missing_operator_secrets(config, catalog).items()):
        if not config.local:
            problems.append(
                f"{NAMESPACE}:{key}: is required by {container} "
                f"(pulumi config set --secret {key} ...)"
            )
    for app in catalog:
        if app.builds_from_source and app.name not in config.app_sources:
            problems.append(
                f"{NAMESPACE}:appSources.{app.name}: is required (the path of the app's "
                "source checkout, to build its images from)"
            )
    known_apps = {app.name for app in every_app}
    for app_name in config.app_sources:
        if app_name not in known_apps:
            problems.append(
                f"{NAMESPACE}:appSources.{app_name}: no app of that name "
                + unknown_name(app_name, known_apps)
            )
    for key, what in (("imageOverrides", config.image_overrides), ("extraEnv", config.extra_env)):
        for container in what:
            if container not in containers:
                hint = unknown_name(container, containers)
                problems.append(f"{NAMESPACE}:{key}.{container}: no container of that name {hint}")
    problems += host_checks(config)
    problems += placement_checks(config)
    services = {s.container: (app, s) for app in catalog for s in app.services}
    for container, variables in config.extra_env.items():
        if container not in services:
            continue
        app, service = services[container]
        owned = {*service.env, *service.secret_env}
        for name in sorted(variables):
            # Images that read NAME_FILE or NAME__FILE (postgres, Grafana) take it over NAME.
            base = name.removesuffix("__FILE") if name.endswith("__FILE") else name
            base = base.removesuffix("_FILE")
            if base != name and base in owned:
                problems.append(
                    f"{NAMESPACE}:extraEnv.{container}.{name}: the {app.name} app sets {base}, "
                    "which this would override; extraEnv cannot override it"
                )
            elif name in owned:
                problems.append(
                    f"{NAMESPACE}:extraEnv.{container}.{name}: the {app.name} app sets it; "
                    "extraEnv cannot override it"
                )
            elif name.startswith(PROXY_ENV_PREFIXES) or name in PROXY_ENV:
                problems.append(
                    f"{NAMESPACE}:extraEnv.{container}.{name}: nginx-proxy and acme-companion "
                    "read it; routes are the apps' own"
                )

    if config.backups.enabled:
        if config.backups.repository is None:
            problems.append(
                f"{NAMESPACE}:backups.repository: is required (a restic repository off this "
                "disk: /mnt/PATH, sftp:HOST:/PATH, s3:URL; or backups.enabled: false)"
            )
        if config.restic_password is None:
            problems.append(
                f"{NAMESPACE}:resticPassword: is required by the backups "
                "(pulumi config set --secret resticPassword ...)"
            )
    app_volumes_known = {v for app in every_app for s in app.services for v in s.volumes}
    for volume in config.volume_names:
        if volume not in app_volumes_known:
            problems.append(
                f"{NAMESPACE}:volumeNames.{volume}: no app volume of that name "
                + unknown_name(volume, app_volumes_known)
            )
    importable = {
        *(import_key("network", name) for name in network_names(catalog)),
        *(import_key("volume", name) for _, name in volumes),
        *(import_key("volume", name) for _, name in app_volumes),
        *(import_key("database", name) for app in catalog for name in app.databases),
        *(import_key("role", app.database_role) for app in catalog if app.database_role),
    }
    for key in config.import_ids:
        if key not in importable:
            problems.append(
                f"{NAMESPACE}:import.{key}: the stack declares nothing by that name to import "
                f"(keys are KIND/NAME, KIND one of {', '.join(KINDS)})"
            )
    return problems


def missing_operator_secrets(config: StackConfig, catalog: tuple[App, ...]) -> dict[str, str]:
    """Operator-held secret keys the catalog needs and the config lacks -> a container
    that reads it."""
    needed: dict[str, str] = {}
    for app in catalog:
        for service in app.services:
            sources = [*service.secret_env.values(), *service.secret_files.values()]
            for step in service.after_start:
                sources += [step.stdin] if step.stdin else []
            for source in sources:
                if isinstance(source, OperatorSecret):
                    needed.setdefault(source.key, service.container)
    return {k: c for k, c in needed.items() if config.operator_secret(k) is None}


def check_catalog(catalog: tuple[App, ...]) -> list[str]:
    """Rules every catalog must keep, whatever the config."""
    problems = []
    aliases: dict[tuple[str, str], str] = {}
    declared = {SHARED_NETWORK, *(app.internal_network for app in catalog if app.internal_network)}
    volume_owner: dict[str, str] = {}
    for app in catalog:
        for volume in sorted({v for service in app.services for v in service.volumes}):
            owner = volume_owner.setdefault(volume, app.name)
            if owner != app.name:
                problems.append(
                    f"the {app.name} app: volume {volume!r} is already used by the {owner} app"
                )
        for service in app.services:
            where = f"the {app.name} app: {service.container}"
            if service.route and SHARED_NETWORK not in service.networks:
                problems.append(
                    f"{where} is routed but not on {SHARED_NETWORK}: nginx-proxy could not "
                    "reach it (502)"
                )
            if not service.healthcheck:
                problems.append(f"{where} has no health check")
            problems += _start_first(where, service)
            for network in service.networks:
                if network not in declared:
                    problems.append(f"{where} is on {network}, which no app declares")
                key = (network, service.name)
                if key in aliases:
                    problems.append(
                        f"{where} has the alias {service.name!r} on {network}, "
                        f"already used by {aliases[key]}"
                    )
                aliases.setdefault(key, service.container)
    return problems


def _start_first(where: str, service: Service) -> list[str]:
    """Two copies overlap during a start-first deploy: neither may hold a host port
    (the second fails "port is already allocated") or write a single-writer volume."""
    if service.rollout != "start-first":
        return []
    problems = (
        []
        if service.route
        else [f"{where} is start-first but not routed: its drain waits on nginx-proxy"]
    )
    problems += [
        f"{where} is start-first but publishes host port {port.host_port}: two copies "
        "cannot hold it (delete-first)"
        for port in service.localhost_ports
    ]
    problems += [
        f"{where} is start-first but volume {volume!r} is single-writer (list it in "
        "overlap_volumes only if two copies may write it at once)"
        for volume in sorted(set(service.volumes) - set(service.overlap_volumes))
    ]
    problems += [
        f"{where} is start-first but its backup stops it for volume {volume!r} (by a "
        "name that changes with each deploy)"
        for volume, policy in sorted(service.volume_backups.items())
        if policy == "stop"
    ]
    return problems


def _collisions(what: str, uses: list[tuple[str, Any]]) -> list[str]:
    """One line for each use of a value that an earlier use already claimed."""
    first: dict[Any, str] = {}
    problems = []
    for where, value in uses:
        if value in first:
            problems.append(f"{where}: {what} {value!r} is already used by {first[value]}")
        first.setdefault(value, where)
    return problems
