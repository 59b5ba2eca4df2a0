"""Placement rules: every name a placement uses exists, and nothing reaches across
machines what only reaches within one.

A Docker network is one daemon's: a container on another machine is not on it,
whatever its name. So a service that names another by its alias (``kafka:9092``),
logs in to shared-postgres, is routed by nginx-proxy, or calls the GPU servers at
host.docker.internal must run on the machine of what it reaches. Until a network
spans machines (docs/scaling.md), such a placement stops the program here, in one
line that names both ends and the key that placed them apart.
"""

from __future__ import annotations

from collections.abc import Callable

from components.apps import APPS
from components.config.errors import unknown_name
from components.config.stack import NAMESPACE, StackConfig
from components.model.app import HOST_GATEWAY, App, Service
from components.model.placement import Placement, names, texts, uses_database
from components.model.values import PLATFORM_HOST


def _app_keys(config: StackConfig) -> dict[str, str]:
    """App name -> its settings' key (``classhub`` -> ``classHub``)."""
    keys = {}
    for spec, app in zip(APPS, config.apps(everything=True), strict=True):
        keys[app.name] = type(config).model_fields[spec.key].alias or spec.key
    return keys


def placement_checks(config: StackConfig) -> list[str]:
    """Every problem with the machines and what is placed on them, one line each."""
    keys = _app_keys(config)
    known = sorted(config.machines())
    problems = []
    if PLATFORM_HOST in config.hosts:
        problems.append(
            f"{NAMESPACE}:hosts.{PLATFORM_HOST}: is the server the top-level keys reach "
            "(sshHost, dockerHost, ...); name a further machine otherwise"
        )
    if config.local and config.hosts:
        problems.append(f"{NAMESPACE}:hosts: the local stack runs on this machine only")
    chosen = [(f"{keys[app]}.host", host) for app, host in _app_hosts(config).items()]
    chosen += [("gpu.host", config.gpu.host)]
    chosen += [(f"serviceHosts.{c}", host) for c, host in config.service_hosts.items()]
    for key, host in chosen:
        if host not in known:
            problems.append(
                f"{NAMESPACE}:{key}: no machine named {host!r} (known: {', '.join(known)}; "
                "add it under hosts)"
            )
    if problems:
        return problems
    catalog = config.apps()
    containers = {s.container for app in (*catalog, *config.retired_apps()) for s in app.services}
    for container in config.service_hosts:
        if container not in containers:
            hint = unknown_name(container, containers)
            problems.append(
                f"{NAMESPACE}:serviceHosts.{container}: no container of that name {hint}"
            )
    placement = config.placement()

    def key_of(app: App, service: Service) -> str:
        if service.container in config.service_hosts:
            return f"serviceHosts.{service.container}"
        return f"{keys[app.name]}.host"

    for app in catalog:
        for service in app.services:
            where = placement.of(service.container)
            if where == PLATFORM_HOST:
                continue
            line = f"{NAMESPACE}:{key_of(app, service)}: {service.container} (on {where})"
            problems += [f"{line} {reason}" for reason in _off_platform(config, service)]
    problems += _across(config, catalog, placement, key_of)
    problems += _jobs(config, catalog, placement, keys)
    return problems


def _texts(config: StackConfig, service: Service) -> list[str]:
    """What may name another service: the catalog's env, files and commands, and the
    operator's ``extraEnv``."""
    return [*texts(service), *config.extra_env.get(service.container, {}).values()]


def _app_hosts(config: StackConfig) -> dict[str, str]:
    return {
        app.name: config.settings(spec).host
        for spec, app in zip(APPS, config.apps(everything=True), strict=True)
    }


def _off_platform(config: StackConfig, service: Service) -> list[str]:
    """What a service cannot have away from Hemma, where the platform is."""
    reasons = []
    if service.route:
        reasons.append(
            f"is routed, and {config.proxy.container_name} (on {PLATFORM_HOST}) routes only "
            "to containers of its own daemon: keep it on hemma"
        )
    postgres = config.postgres.container_name
    if uses_database(service) or any(names(t, postgres) for t in _texts(config, service)):
        reasons.append(
            f"logs in to {postgres} (on {PLATFORM_HOST}), and a Docker network does not "
            "span machines: keep it on hemma"
        )
    reasons += [
        f"has volume {volume!r}, which import.volume/{name} adopts on {PLATFORM_HOST}: "
        "keep it on hemma"
        for volume in sorted(service.volumes)
        if f"volume/{(name := config.volume_name(volume))}" in config.import_ids
    ]
    if config.backups.enabled:
        reasons += [
            f"has volume {volume!r}, which the nightly backup takes ({policy}), and the "
            f"backups run on {PLATFORM_HOST} only: keep it on hemma"
            for volume in sorted(service.volumes)
            if (policy := service.volume_backups.get(volume, "live")) != "skip"
        ]
    return reasons


def _across(
    config: StackConfig,
    catalog: tuple[App, ...],
    placement: Placement,
    key_of: Callable[[App, Service], str],
) -> list[str]:
    """A service that reaches another by alias, or the GPU servers, from another machine."""
    problems = []
    services = [(app, s) for app in catalog for s in app.services]
    volume_hosts: dict[str, tuple[str, str]] = {}
    reach: dict[tuple[str, str], list[str]] = {}
    for app, service in services:
        here = placement.of(service.container)
        key = key_of(app, service)
        if service.host_gateway and config.gpu.enabled and here != placement.gpu:
            problems.append(
                f"{NAMESPACE}:{key if here != PLATFORM_HOST else 'gpu.host'}: "
                f"{service.container} (on {here}) calls the GPU servers "
                f"at {HOST_GATEWAY}, which run on {placement.gpu} (gpu.host): place them "
                "on one machine"
            )
        for volume in sorted(service.volumes):
            first = volume_hosts.setdefault(volume, (service.container, here))
            if first[1] != here:
                problems.append(
                    f"{NAMESPACE}:{key}: {service.container} (on {here}) shares volume "
                    f"{volume!r} with {first[0]} (on {first[1]}): a volume is one machine's"
                )
        for other_app, other in services:
            there = placement.of(other.container)
            shared = sorted(set(service.networks) & set(other.networks))
            if other is service or there == here or not shared:
                continue
            alias = next(
                (
                    a
                    for a in (other.name, other.container)
                    if any(names(t, a, shared) for t in _texts(config, service))
                ),
                None,
            )
            if alias is None:
                continue
            # The line goes to the key that moved one end off Hemma.
            if here == PLATFORM_HOST:
                moved = (key_of(other_app, other), f"{other.container} (on {there}) is reached")
                reach.setdefault(moved, []).append(f"{service.container} (on {here})")
            else:
                moved = (key, f"{service.container} (on {here}) reaches")
                reach.setdefault(moved, []).append(f"{other.container} (on {there}) as {alias!r}")
    for (key, what), ends in reach.items():
        by = " from" if what.endswith("reached") else ""
        problems.append(
            f"{NAMESPACE}:{key}: {what} by name{by} {', '.join(ends)}, and a Docker network "
            "does not span machines: place them on one"
        )
    return problems


def _jobs(
    config: StackConfig, catalog: tuple[App, ...], placement: Placement, keys: dict[str, str]
) -> list[str]:
    """An app's host jobs run where the app is; they may call only containers there.
    A job names its container on its command line or in the script it runs."""
    problems = []
    for app in catalog:
        here = placement.apps.get(app.name, PLATFORM_HOST)
        for job in app.jobs:
            said = [word for command in job.exec_start for word in command]
            said += [file.content for file in job.extra_files]
            for service in app.services:
                there = placement.of(service.container)
                if there != here and any(names(text, service.container) for text in said):
                    moved = service.container in config.service_hosts
                    key = f"serviceHosts.{service.container}" if moved else f"{keys[app.name]}.host"
                    problems.append(
                        f"{NAMESPACE}:{key}: the {app.name} app's job {job.name} (on {here}) "
                        f"runs docker exec in {service.container} (on {there}): keep them on "
                        "one machine"
                    )
    return problems
