"""The platform's parts of the stack config: the proxy, shared-postgres, the host's
logs, the GPU servers and the backups. Each is one object under its ``hemma:`` key."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from components.backups.restic import DUMPS_DIR, METRICS_DIR, VOLUME_ROOT
from components.model.allowed.daemon import ServiceName
from components.model.allowed.directories import DataDirectory, MetricsDirectory, VolumeRoot
from components.model.allowed.restic import ResticRepository
from components.model.values import (
    AbsolutePath,
    BodySize,
    BridgeAddress,
    Days,
    DockerHost,
    DockerName,
    EnvName,
    ExecutablePath,
    Flag,
    HostKey,
    Hostname,
    HtpasswdUser,
    Image,
    LoopbackAddress,
    Model,
    Number,
    Placed,
    Port,
    PrivateNetwork,
    Schedule,
    SshUser,
    UnitWord,
    matching,
)

LISTEN_FLAGS = frozenset({"--host", "--port", "-H", "-p"})
"""Flags a GPU server's args may not carry: where it listens is the program's."""

Keep = Annotated[int, Number, Field(ge=0, le=1000)]
RouteId = Annotated[
    str, AfterValidator(matching(re.compile(r"[a-z][a-z0-9-]{0,62}"), "not a route id"))
]
ImportKey = Annotated[
    str,
    AfterValidator(
        matching(re.compile(r"[a-z]+/[A-Za-z0-9_.-]{1,128}"), "must be KIND/NAME, e.g. volume/x")
    ),
]
ImportId = Annotated[
    str, AfterValidator(matching(re.compile(r"[A-Za-z0-9._:/@-]{1,256}"), "not an object ID"))
]


TUNNEL_PORT = 15432
"""Where the hemma stack's database tunnel listens on the operator's machine."""


FILTERING_NGINX_PROXY = (1, 9)
"""The first nginx-proxy whose docker-gen (0.16.0) reads ``DOCKER_CONTAINER_FILTERS``
(nginx-proxy 1.9.0 Dockerfile.alpine; docker-gen cmd/docker-gen/main.go)."""


def _filtering(image: str) -> str:
    """An nginx-proxy image tagged with an older version routes to a container whatever
    its health: a start-first deploy would send requests to the copy still starting."""
    repository, _, tag = image.partition("@")[0].rpartition(":")
    version = re.match(r"v?(\d+)\.(\d+)", tag)
    old = version is not None and (int(version[1]), int(version[2])) < FILTERING_NGINX_PROXY
    if repository.endswith("nginx-proxy") and old:
        raise ValueError(
            "nginx-proxy before 1.9 ignores DOCKER_CONTAINER_FILTERS: it would route "
            "to containers that are not healthy yet"
        )
    return image


class ProxyConfig(Model):
    """nginx-proxy and acme-companion (``hemma:proxy``)."""

    container_name: DockerName = "nginx-proxy"
    companion_container_name: DockerName = "acme-companion"
    image: Annotated[Image, AfterValidator(_filtering)] = "nginxproxy/nginx-proxy:1.11"
    companion_image: Image = "nginxproxy/acme-companion:2.4"
    default_max_body_size: BodySize = "10m"
    basic_auth_user: HtpasswdUser = "admin"
    trusted_network: PrivateNetwork = "172.16.0.0/12"
    """Where nginx-proxy's requests come from (Docker's bridge networks): apps trust
    X-Forwarded-* only from there, so a client cannot set its own address."""
    certs_volume: DockerName = "nginx-proxy-certs"
    html_volume: DockerName = "nginx-proxy-html"
    acme_volume: DockerName = "acme-companion-acme"
    vhost_volume: DockerName = "nginx-proxy-vhost"
    htpasswd_volume: DockerName = "nginx-proxy-htpasswd"
    """The per-host files (vhost.d, htpasswd): every ``up`` writes them."""


class PostgresConfig(Model):
    """shared-postgres (``hemma:postgres``)."""

    container_name: DockerName = "shared-postgres"
    image: Image = "postgres:16-alpine"
    host_port: Port = 5432
    """Published on Hemma's 127.0.0.1 only."""
    data_volume: DockerName = "shared-postgres-data"
    tunnel_port: Port = TUNNEL_PORT
    """Local end of ``ssh -L`` on the operator's machine, used by the PostgreSQL provider."""


class SmartLogsConfig(Model):
    """Retention of the host's incident and SMART logs (``hemma:smartLogs``)."""

    enabled: Flag = True
    schedule: Schedule = "daily"
    directory: DataDirectory = "/root/logs"
    keep_days: Days = 30


class GpuServerConfig(Model):
    """One GPU model server on the host.

    The running hand-made unit is left alone until ``manage`` is set with its real
    command line, environment and working directory, copied from
    ``systemctl cat llama-server-rocm.service tabby.service``.
    """

    manage: Flag = False
    """Install and keep this server's unit; until then only its port is used."""
    port: Port
    executable: ExecutablePath | None = None
    args: list[UnitWord] = Field(default_factory=list)
    """Arguments after the executable; ``--host`` and ``--port`` are the program's."""
    environment: dict[EnvName, UnitWord] = Field(default_factory=dict)
    """``Environment=`` of the unit, such as the ROCm variables."""
    working_directory: AbsolutePath | None = None
    user: SshUser | None = None
    """Runs the server; the SSH user when unset."""
    run_as_root: Flag = False
    """Let ``user`` (or the SSH user) be root: a server that listens on a port should
    not be, so this says it on purpose."""

    @model_validator(mode="after")
    def _managed_needs_a_command(self) -> GpuServerConfig:
        if self.manage and self.executable is None:
            raise ValueError("a managed server needs its executable (from the running unit)")
        for arg in self.args:
            flag = arg.split("=", 1)[0]
            if flag in LISTEN_FLAGS:
                raise ValueError(
                    f"args may not set {flag}: the server listens where gpu.bindAddress says"
                )
        return self


class GpuConfig(Placed):
    """The host GPU model servers (``hemma:gpu``); off on a machine without a GPU.
    ``host`` is the machine they run on, and the containers that call them too."""

    enabled: Flag = True
    """Containers call the servers (host.docker.internal) and tunnels reach them."""
    bind_address: LoopbackAddress = "127.0.0.1"
    """Where a managed server listens: loopback, so the runbooks' ``curl localhost:8082``
    checks and the SSH tunnels keep working."""
    relay_address: BridgeAddress | None = "172.17.0.1"
    """docker0's address, where host.docker.internal points in the containers: a
    socket-activated relay there forwards to the loopback-bound server."""
    llama: GpuServerConfig = GpuServerConfig(port=8082)
    tabby: GpuServerConfig = GpuServerConfig(port=8083)


class BackupsConfig(Model):
    """Every database and data volume, off the box and encrypted (``hemma:backups``):
    a nightly restic snapshot, restic's own check, and a restore drill."""

    enabled: Flag = True
    repository: ResticRepository | None = None
    """The restic repository: another disk (``/mnt/...``), ``sftp:HOST:/PATH``,
    ``s3:https://HOST/BUCKET``, ``rest:https://...``. Its password is ``resticPassword``."""
    system_disk: Flag = False
    """A local repository may sit on the system disk (the filesystem of /). Off, the
    repository's one-time creation and every job refuse it there: that is where a
    backup disk that did not mount leaves its mount point."""
    schedule: Schedule = "*-*-* 03:15:00"
    keep_daily: Annotated[int, Number, Field(ge=1, le=1000)] = 7
    """Daily snapshots kept; at least one, so a prune never leaves the newest alone."""
    keep_weekly: Keep = 4
    keep_monthly: Keep = 12
    check_schedule: Schedule = "Sat *-*-* 05:00:00"
    drill_schedule: Schedule = "Sun *-*-* 05:00:00"
    drill_sample: Annotated[int, Number, Field(ge=0, le=1000)] = 20
    """Volume files the drill restores and compares with the live ones."""
    dumps_directory: DataDirectory = DUMPS_DIR
    volume_root: VolumeRoot = VOLUME_ROOT
    """Where the daemon keeps named volumes (the snap's, on Hemma)."""
    metrics_directory: MetricsDirectory = METRICS_DIR
    """The host jobs' textfile metrics; node-exporter serves them. Under /var/snap,
    because the snap's daemon can bind-mount only some host directories."""


class HostConfig(Model):
    """A further machine (``hemma:hosts.NAME``), reached as Hemma is: key auth over SSH
    with its host key pinned, its Docker through ``docker system dial-stdio``."""

    ssh_host: Hostname
    ssh_port: Port = 22
    ssh_user: SshUser
    ssh_host_key: HostKey
    """As ``ssh-keyscan -t ed25519 HOST`` prints it, checked on another channel."""
    docker_host: DockerHost
    """``ssh://ALIAS`` of an ``~/.ssh/config`` entry for it, as ``dockerHost`` is Hemma's."""
    docker_path: ExecutablePath = "/usr/bin/docker"
    """The docker CLI where the units and steps call it: Debian's docker.io by default."""
    docker_service: ServiceName = "docker.service"
    volume_root: VolumeRoot = "/var/lib/docker/volumes"
    """Where its daemon keeps named volumes."""
    metrics_directory: MetricsDirectory = "/var/lib/hemma/metrics"
    """Its host jobs' textfile metrics."""


class DriftConfig(Model):
    """The host's drift check (``hemma:drift``): files, grants and containers changed by
    hand where ``pulumi refresh`` does not look."""

    schedule: Schedule = "hourly"
    stale_after_hours: Annotated[int, Number, Field(ge=1, le=24 * 14)] = 36
    """How old the last successful check may be before it counts as stale (the alerts)."""
