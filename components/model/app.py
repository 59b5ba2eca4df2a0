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

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from components.model.host import Job
from components.model.rollout import Rollout
from components.model.site import Site
from components.model.values import Placed

SHARED_NETWORK = "hule-network"
"""The network nginx-proxy, shared-postgres and every routed container share."""
HOST_GATEWAY = "host.docker.internal"
"""What containers call the host by (the GPU servers listen there)."""
STABLE_TAG = "hemma"
"""The tag every image built from source also gets: the current build of it."""


@dataclass(frozen=True)
class Pull:
    """An image pulled from a registry by reference."""

    ref: str


@dataclass(frozen=True)
class Build:
    """An image built from the app's source checkout (``hemma:appSources.<app>``).

    It is tagged twice: ``REPOSITORY:<digest of what it is built from>``, which the
    container runs, and ``REPOSITORY:hemma``, the current one by a stable name.
    """

    repository: str
    dockerfile: str = "Dockerfile"
    context: str = "."
    args: Mapping[str, str] = field(default_factory=dict)

    @property
    def stable_tag(self) -> str:
        return f"{self.repository}:{STABLE_TAG}"


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
    """The public health URL's path on the host."""
    path: str = "/"
    """``VIRTUAL_PATH``: a route that serves only this path of its host."""

    @property
    def address(self) -> str:
        """How the routing table names the route: its host id, and its path if not /."""
        return self.id if self.path == "/" else f"{self.id}{self.path}"


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
class Step:
    """A command run inside a service's new container, before it has to be healthy.

    A migration is one: an app whose health check needs the new schema would
    never turn healthy if the migration waited for it (the runbooks' "500 on all
    routes"). The steps of an app run one after the other, in declaration order.
    """

    name: str
    command: tuple[str, ...]
    stdin: SecretSource | None = None
    """A secret the command reads on stdin, never on its command line."""
    rerun: str = "image"
    """``image``: again when the image changes (a migration); ``container``: again
    whenever the container is replaced (state the container's start resets)."""


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
    volume_backups: Mapping[str, str] = field(default_factory=dict)
    """Volume -> how the nightly backup takes it: ``live`` (the files as they are, the
    default), ``stop`` (this service stopped meanwhile) or ``skip`` (a cache)."""
    healthcheck: Probe | None = None
    """Every service has one: Docker runs it, and ``wait`` waits for it."""
    start_period: int = 60
    """Seconds before failed checks count against the container."""
    stop_grace_seconds: int = 20
    """Seconds between the stop signal and SIGKILL; at least 30 for a service that
    holds data (a named volume)."""
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
    secret_files: Mapping[str, SecretSource] = field(default_factory=dict)
    """Files written into the container whose content is a secret (path -> source)."""
    binds: Mapping[str, str] = field(default_factory=dict)
    """Host path -> path in the container, read-only (the host's textfile metrics)."""
    gateway_names: tuple[str, ...] = ()
    """Further names that resolve to the host (the public hostnames, for probes that
    must go through nginx-proxy's published ports without leaving the machine)."""
    command: tuple[str, ...] = ()
    after_start: tuple[Step, ...] = ()
    """Run inside the container once it has started, before it must be healthy."""
    extra_images: tuple[Image, ...] = ()
    """Images the service starts itself and that must be present on Hemma."""
    rollout: Rollout = "delete-first"
    """How a change replaces the container. ``delete-first``: the old one stops, then
    the new one starts (down from the stop until the new one is healthy).
    ``start-first``: the new one starts beside the old one under a new name, takes
    traffic once healthy, and the old one goes last. Only for a service that two
    copies of can run at once: no host port, and only ``overlap_volumes``."""
    overlap_volumes: tuple[str, ...] = ()
    """Volumes two copies of this service may use at the same time (uploaded files
    each copy writes whole); every other volume is single-writer."""


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
    drill_probes: Mapping[str, str] = field(default_factory=dict)
    """Database -> SQL the restore drill runs in the restored copy; it passes when it
    prints something other than 0, f or nothing (a table that must hold rows)."""
    drill_checks: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    """(database, container, argv): what the restore drill runs inside the running
    container against the restored copy (its ``DATABASE_URL`` pointed there), in
    order: the runbook's "both Django services migrate and boot"."""

    @property
    def containers(self) -> tuple[str, ...]:
        return tuple(service.container for service in self.services)

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(s.route for s in self.services if s.route)

    @property
    def builds_from_source(self) -> bool:
        return any(isinstance(s.image, Build) for s in self.services)


@dataclass(frozen=True)
class HttpProbe:
    """An HTTP GET that must answer 2xx, with the tool the image has."""

    port: int
    path: str = "/healthz"
    tool: str = "python"
    """``python`` (the app images: Python, no curl), ``wget`` (Alpine/BusyBox images)
    or ``bash`` (images with bash but neither curl nor wget, such as Promtail's)."""

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{self.path}"

    def argv(self, host: str = "127.0.0.1") -> list[str]:
        """The probe as a command line, for ``docker exec`` and for the health check."""
        url = self.url(host)
        if self.tool == "python":
            return [
                "python",
                "-c",
                f"import urllib.request; urllib.request.urlopen({url!r}, timeout=4)",
            ]
        if self.tool == "wget":
            return ["wget", "-q", "-O", "/dev/null", url]
        if self.tool == "bash":
            request = f"GET {self.path} HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n"
            script = (
                f"exec 3<>/dev/tcp/{host}/{self.port} && printf '{request}' >&3 "
                "&& head -n 1 <&3 | grep -q ' 2[0-9][0-9] '"
            )
            return ["bash", "-c", script]
        raise ValueError(f"unknown probe tool {self.tool!r}")

    def shell(self) -> str:
        """The ``CMD-SHELL`` health check: the probe against the container itself."""
        return shlex.join(self.argv())


@dataclass(frozen=True)
class ShellProbe:
    """A health check that is not HTTP: a shell command that exits 0 when healthy."""

    command: str

    def url(self, host: str = "127.0.0.1") -> None:
        return None

    def argv(self, host: str = "127.0.0.1") -> list[str]:
        return ["sh", "-c", self.command]

    def shell(self) -> str:
        return self.command


Probe = HttpProbe | ShellProbe


S = TypeVar("S", bound=Placed)


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


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
    retained: Callable[[S], bool] = _never
    """Whether a switched-off app keeps its data declared (``keepData``)."""


def network_names(apps: tuple[App, ...]) -> list[str]:
    """hule-network and every app's internal network, in declaration order."""
    return [SHARED_NETWORK, *(app.internal_network for app in apps if app.internal_network)]
