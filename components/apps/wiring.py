"""What a service's container is told: its route, and the scripts of its steps."""

from __future__ import annotations

from collections.abc import Mapping

from components.foundation.commands import exec_step
from components.model.app import Service, Step


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
