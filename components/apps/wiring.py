"""What a service's container is told: its route, and the scripts of its steps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.foundation.commands import exec_step
from components.foundation.containers import Health
from components.foundation.drain import (
    START_FIRST_INTERVAL,
    START_FIRST_RETRIES,
    drain_script,
    drainable,
)
from components.model.app import DatabasePassword, DatabaseUrl, SecretSource, Service, Step
from components.model.rollout import SERVICE_LABEL

DOCKER_SOCKET = "/var/run/docker.sock"
DRAIN_TIMEOUT = 180
"""The new copy routed, the old one unhealthy (interval x retries) and out of nginx."""


def step_script(docker_path: str, step: Step, last: bool, docker_name: str) -> str:
    """A step run inside the container named ``docker_name``; the last one waits for it
    to be healthy."""
    return exec_step(
        docker_path,
        docker_name,
        step.command,
        reads_stdin=step.stdin is not None,
        wait_healthy=last,
    )


def route_env(service: Service, hostnames: Mapping[str, str], tls: bool = True) -> dict[str, str]:
    """What nginx-proxy and acme-companion read off a routed container."""
    if service.route is None:
        return {}
    host = hostnames[service.route.id]
    env = {"VIRTUAL_HOST": host, "VIRTUAL_PORT": str(service.route.port)}
    if tls:
        env["LETSENCRYPT_HOST"] = host
    if service.route.path != "/":
        env["VIRTUAL_PATH"] = service.route.path
    return env


def service_health(service: Service) -> Health:
    """The service's check; a start-first one's fails while it drains, and is run
    often enough that a drain takes seconds (``foundation/drain.py``)."""
    assert service.healthcheck is not None, f"{service.container} has no health check"
    command = service.healthcheck.shell()
    if service.rollout != "start-first":
        return Health(command, start_period=service.start_period)
    return Health(
        drainable(command),
        start_period=service.start_period,
        interval=START_FIRST_INTERVAL,
        retries=START_FIRST_RETRIES,
    )


def drain_for(docker_path: str, service: Service, proxy: str, docker_name: str) -> str:
    """The drain step of ``service``, whose new container is ``docker_name``."""
    return drain_script(
        docker_path, service.container, docker_name, proxy, SERVICE_LABEL, DRAIN_TIMEOUT
    )


def volume_args(
    service: Service, volumes: Mapping[str, pulumi.Input[str]]
) -> list[docker.ContainerVolumeArgs]:
    """The service's named volumes (app volume -> its Docker name), its read-only host
    paths, and the Docker socket when it needs it."""
    found = [
        docker.ContainerVolumeArgs(volume_name=volumes[v], container_path=path)
        for v, path in sorted(service.volumes.items())
    ]
    found += [
        docker.ContainerVolumeArgs(host_path=host, container_path=path, read_only=True)
        for host, path in sorted(service.binds.items())
    ]
    if service.docker_socket:
        found.append(
            docker.ContainerVolumeArgs(
                host_path=DOCKER_SOCKET,
                container_path=DOCKER_SOCKET,
                read_only=service.docker_socket == "read-only",
            )
        )
    return found


@dataclass(frozen=True)
class DatabaseLogin:
    """How an app logs in to shared-postgres."""

    role: str
    password: pulumi.Output[str]
    """Secret."""
    host: str
    """shared-postgres's name on hule-network."""
    port: int
    resource: pulumi.Resource
    """The role and databases, which must exist before the app's containers start."""


def database_secret(login: DatabaseLogin, source: SecretSource) -> pulumi.Output[str]:
    """The role's password, or ``SCHEME://role:password@shared-postgres:5432/DATABASE``."""
    if isinstance(source, DatabasePassword):
        return login.password
    assert isinstance(source, DatabaseUrl), source
    return pulumi.Output.secret(
        pulumi.Output.format(
            "{0}://{1}:{2}@{3}:{4}/{5}",
            source.scheme,
            login.role,
            login.password,
            login.host,
            login.port,
            source.database,
        )
    )
