"""The vocabulary apps are described in: pure data, no Pulumi.

An ``App`` is a list of ``Service`` entries plus the PostgreSQL role and
databases it owns, the secrets it generates and the host jobs it runs. A
``Service`` says which image it runs, its container name, networks, public
route, localhost-only ports, clear and secret env, volumes, health check and
the migration to run after a deploy. ``components/apps/stack.py`` turns each
entry into containers that are routed, networked, health-checked and
restartable by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from components.model.host import Job
from components.model.site import Site
from components.model.values import Model

SHARED_NETWORK = "hule-network"
"""The network nginx-proxy, shared-postgres and every routed container share."""
HOST_GATEWAY = "host.docker.internal"
"""What containers call the host by (the GPU servers listen there)."""


@dataclass(frozen=True)
class Pull:
    """An image pulled from a registry by reference."""

    ref: str


@dataclass(frozen=True)
class Build:
    """An image built from the app's source checkout (``hemma:appSources.<app>``)."""

    tag: str
    dockerfile: str = "Dockerfile"
    context: str = "."
    args: Mapping[str, str] = field(default_factory=dict)


Image = Pull | Build


@dataclass(frozen=True)
class Route:
    """A public hostname served by nginx-proxy, and the port behind it."""

    id: str
    """Key of the hostname under ``hemma:hostnames``."""
    port: int
    basic_auth: bool = False
    max_body_size: str | None = None
    health_path: str = "/healthz"


@dataclass(frozen=True)
class LocalPort:
    """A port published on Hemma's 127.0.0.1 only, reached through an SSH tunnel."""

    port: int
    host_port: int
    tunnel_port: int | None = None
    """Local end on the operator's machine; the host port when unset."""


@dataclass(frozen=True)
class Generated:
    """A secret the app generates once (``RandomPassword``), shared by its services."""

    name: str


@dataclass(frozen=True)
class OperatorSecret:
    """A secret the operator sets with ``pulumi config set --secret KEY``."""

    key: str


@dataclass(frozen=True)
class DatabasePassword:
    """The app role's generated password."""


@dataclass(frozen=True)
class DatabaseUrl:
    """``SCHEME://role:password@shared-postgres:5432/DATABASE``."""

    database: str
    scheme: str = "postgresql"


SecretSource = Generated | OperatorSecret | DatabasePassword | DatabaseUrl


@dataclass(frozen=True)
class Service:
    """One container of an app, and everything it is wired to."""

    name: str
    """Also the network alias other services use."""
    container: str
    image: Image
    port: int | None = None
    """The port the service listens on inside its networks."""
    networks: tuple[str, ...] = ()
    route: Route | None = None
    localhost_ports: tuple[LocalPort, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, SecretSource] = field(default_factory=dict)
    volumes: Mapping[str, str] = field(default_factory=dict)
    """Docker volume name -> path in the container."""
    healthcheck: tuple[str, ...] = ()
    """A ``CMD-SHELL`` command; every service has one."""
    health_path: str | None = "/healthz"
    """HTTP path for the internal health-check URL; None for non-HTTP services."""
    metrics_path: str | None = None
    """Scraped by Prometheus when set."""
    host_gateway: bool = False
    """Adds ``host.docker.internal`` for services that call the host GPU servers."""
    devices: tuple[str, ...] = ()
    group_adds: tuple[str, ...] = ()
    docker_socket: str | None = None
    """Mount the Docker socket: "read-only" (log collection) or "read-write" (starts containers)."""
    uploads: Mapping[str, str] = field(default_factory=dict)
    """Files written into the container (path -> content), e.g. generated configs."""
    command: tuple[str, ...] = ()
    migration: str | None = None
    """Run inside the container after it is up, again whenever its image changes."""
    extra_images: tuple[Image, ...] = ()
    """Images the service starts itself and that must be present on Hemma."""


@dataclass(frozen=True)
class App:
    """One app on Hemma: its services, its database, its secrets and its host jobs."""

    name: str
    services: tuple[Service, ...]
    internal_network: str | None = None
    database_role: str | None = None
    databases: tuple[str, ...] = ()
    generated: tuple[str, ...] = ()
    """Names of the app's generated secrets (``Generated(name)``)."""
    jobs: tuple[Job, ...] = ()
    """Host jobs (systemd timers) the app needs, such as its cleanup commands."""

    @property
    def containers(self) -> tuple[str, ...]:
        return tuple(service.container for service in self.services)

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(s.route for s in self.services if s.route)

    @property
    def builds_from_source(self) -> bool:
        return any(isinstance(s.image, Build) for s in self.services)


def http_probe(port: int, path: str = "/healthz") -> tuple[str, ...]:
    """A health check with Python's stdlib: the app images have Python, not curl."""
    return (
        'python -c "import urllib.request; '
        f"urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=4)\"",
    )


def bash_probe(port: int, path: str) -> tuple[str, ...]:
    """For images with bash but neither curl nor wget (Promtail's Ubuntu image)."""
    request = f"GET {path} HTTP/1.0\\r\\n\\r\\n"
    return (
        f'bash -c \'exec 3<>/dev/tcp/127.0.0.1/{port} && printf "{request}" >&3 '
        '&& head -n 1 <&3 | grep -q " 200 "\'',
    )


def wget_probe(port: int, path: str) -> tuple[str, ...]:
    """For the Alpine/BusyBox based images of the observability stack."""
    return (f"wget -q -O /dev/null http://127.0.0.1:{port}{path} || exit 1",)


S = TypeVar("S", bound=Model)


def _always(_: Any) -> bool:
    return True


@dataclass(frozen=True)
class AppSpec(Generic[S]):
    """What an app module hands the stack: its settings and how it declares itself.

    The settings are read from ``hemma:<key in camelCase>`` and validated with
    the rest of the config before any resource exists.
    """

    key: str
    """The settings' field in the stack config (``class_hub`` is ``hemma:classHub``)."""
    settings: type[S]
    declare: Callable[[S, Site, tuple[App, ...]], App]
    """Settings, site and the apps declared before this one -> the app."""
    enabled: Callable[[S], bool] = _always


def network_names(apps: tuple[App, ...]) -> list[str]:
    """hule-network and every app's internal network, in declaration order."""
    return [SHARED_NETWORK, *(app.internal_network for app in apps if app.internal_network)]
