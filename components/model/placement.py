"""Which machine runs what: pure data, no Pulumi.

Hemma (``PLATFORM_HOST``) runs the platform: nginx-proxy, shared-postgres, the
backups and the drift check. Each app runs where its ``host`` says, and a single
service where ``hemma:serviceHosts`` moves it. A Docker network does not span
machines (each daemon has its own), so a service reaches by alias only what runs
on its own machine; ``reaches`` finds those references, for the config checks to
refuse the ones that would cross.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from components.model.app import App, DatabasePassword, DatabaseUrl, Service
from components.model.values import PLATFORM_HOST


@dataclass(frozen=True)
class Machine:
    """One machine: how SSH and Docker reach it, and its paths."""

    name: str
    ssh_host: str
    ssh_port: int
    ssh_user: str
    ssh_host_key: str
    docker_host: str
    docker_path: str
    docker_service: str
    volume_root: str
    metrics_directory: str

    @property
    def ssh_target(self) -> str:
        return f"{self.ssh_user}@{self.ssh_host}"


@dataclass(frozen=True)
class Placement:
    """Container -> machine, app -> machine, and the GPU servers' machine."""

    apps: Mapping[str, str]
    containers: Mapping[str, str]
    gpu: str = PLATFORM_HOST

    def of(self, container: str) -> str:
        """A container's machine; the platform's own containers are on Hemma."""
        return self.containers.get(container, PLATFORM_HOST)

    def hosts(self) -> list[str]:
        """Every machine something is placed on, Hemma first."""
        others = {*self.apps.values(), *self.containers.values(), self.gpu} - {PLATFORM_HOST}
        return [PLATFORM_HOST, *sorted(others)]

    def on(self, host: str, catalog: tuple[App, ...]) -> tuple[App, ...]:
        """The catalog as one machine sees it: each app with only the services placed
        there, and its host jobs where the app is. The databases stay with Hemma,
        where shared-postgres is."""
        seen = []
        for app in catalog:
            services = tuple(s for s in app.services if self.of(s.container) == host)
            jobs = app.jobs if self.apps.get(app.name, PLATFORM_HOST) == host else ()
            if host != PLATFORM_HOST:
                if not services and not jobs:
                    continue
                app = dataclasses.replace(
                    app, database_role=None, databases=(), drill_probes={}, drill_checks=()
                )
            seen.append(dataclasses.replace(app, services=services, jobs=jobs))
        return tuple(seen)


def names(text: str, alias: str, networks: Iterable[str] = ()) -> bool:
    """Whether ``text`` (an env value, an uploaded file, a command word) names ``alias``
    as a host: ``kafka:9092``, ``http://redis:6379/0``, ``loki`` alone, or
    ``redis.NETWORK`` for one of ``networks``. Docker's DNS resolves both forms, and
    case-blind (moby daemon/libnetwork/sandbox.go, network.go: ``strings.ToLower``)."""
    domain = "".join(f"|\\.{re.escape(network)}" for network in networks)
    pattern = rf"(?<![\w.-]){re.escape(alias)}(?:{domain})(?![\w.-])"
    return re.search(pattern, text, re.IGNORECASE) is not None


def texts(service: Service) -> Iterator[str]:
    """Everything of a service that may name another by its alias."""
    yield from service.env.values()
    yield from service.uploads.values()
    yield from service.command
    for step in service.after_start:
        yield from step.command


def uses_database(service: Service) -> bool:
    """Whether the service logs in to shared-postgres (its URL or its role's password)."""
    sources = [*service.secret_env.values(), *service.secret_files.values()]
    sources += [step.stdin for step in service.after_start if step.stdin]
    return any(isinstance(s, DatabaseUrl | DatabasePassword) for s in sources)
