"""The stack's configuration: one model of every ``hemma:`` key.

The platform's keys are declared here; each app's settings come from its own
module (``components/apps``) and join the model under the app's key, so
adding an app adds its settings without touching this file.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    PrivateAttr,
    create_model,
    model_validator,
)

from components.apps import APPS
from components.foundation.containers import DEFAULT_LOG_OPTS
from components.model.app import App, AppSpec
from components.model.site import Site
from components.model.values import (
    AbsolutePath,
    BodySize,
    BridgeAddress,
    Days,
    DockerHost,
    DockerName,
    Email,
    EnvName,
    EnvValue,
    Flag,
    HostKey,
    Hostname,
    HtpasswdUser,
    Image,
    LogOptName,
    LogOptValue,
    LoopbackAddress,
    Model,
    Port,
    PrivateKeyText,
    PrivateNetwork,
    Schedule,
    Secret,
    SourcePath,
    SshUser,
    UnitName,
    UnitWord,
    matching,
)

NAMESPACE = "hemma"
PUBLIC_PORTS = {80: "nginx-proxy (HTTP)", 443: "nginx-proxy (HTTPS)"}
"""The only ports published on a public address."""
SECRET_KEYS = frozenset({"sshPrivateKey", "smtpPassword", "anthropicApiKey", "openaiApiKey"})
"""Keys that must be set with ``pulumi config set --secret``."""
POSTGRES_PORT = 5432
"""shared-postgres's port inside hule-network (the image's own)."""

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

S = TypeVar("S", bound=Model)
LISTEN_FLAGS = frozenset({"--host", "--port", "-H", "-p"})
"""Flags a GPU server's args may not carry: where it listens is the program's."""


class ProxyConfig(Model):
    """nginx-proxy and acme-companion (``hemma:proxy``)."""

    container_name: DockerName = "nginx-proxy"
    companion_container_name: DockerName = "acme-companion"
    image: Image = "nginxproxy/nginx-proxy:1.6"
    companion_image: Image = "nginxproxy/acme-companion:2.4"
    default_max_body_size: BodySize = "10m"
    basic_auth_user: HtpasswdUser = "admin"
    trusted_network: PrivateNetwork = "172.16.0.0/12"
    """Where nginx-proxy's requests come from (Docker's bridge networks): apps trust
    X-Forwarded-* only from there, so a client cannot set its own address."""
    certs_volume: DockerName = "nginx-proxy-certs"
    html_volume: DockerName = "nginx-proxy-html"
    acme_volume: DockerName = "acme-companion-acme"


class PostgresConfig(Model):
    """shared-postgres (``hemma:postgres``)."""

    container_name: DockerName = "shared-postgres"
    image: Image = "postgres:16-alpine"
    host_port: Port = 5432
    """Published on Hemma's 127.0.0.1 only."""
    data_volume: DockerName = "shared-postgres-data"
    tunnel_port: Port = 15432
    """Local end of ``ssh -L`` on the operator's machine, used by the PostgreSQL provider."""


class SmartLogsConfig(Model):
    """Retention of the host's incident and SMART logs (``hemma:smartLogs``)."""

    enabled: Flag = True
    schedule: Schedule = "daily"
    directory: AbsolutePath = "/root/logs"
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
    executable: AbsolutePath | None = None
    args: list[UnitWord] = Field(default_factory=list)
    """Arguments after the executable; ``--host`` and ``--port`` are the program's."""
    environment: dict[EnvName, UnitWord] = Field(default_factory=dict)
    """``Environment=`` of the unit, such as the ROCm variables."""
    working_directory: AbsolutePath | None = None
    user: SshUser | None = None
    """Runs the server; the SSH user when unset."""

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


class GpuConfig(Model):
    """The host GPU model servers (``hemma:gpu``); off on a machine without a GPU."""

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
    """Nightly pg_dump of every app database (``hemma:backups``)."""

    enabled: Flag = True
    schedule: Schedule = "*-*-* 03:15:00"
    directory: AbsolutePath = "/var/backups/hemma/postgres"
    keep_days: Days = 14


class _StackConfig(Model):
    """The platform's keys. Each app's settings join it below, under the app's key."""

    acme_email: Email
    acme_staging: Flag = False
    docker_host: DockerHost = "ssh://hemma"
    ssh_host: Hostname = "hemma.hule.education"
    ssh_user: SshUser
    ssh_port: Port = 22
    ssh_host_key: HostKey
    ssh_private_key: PrivateKeyText
    proxy: ProxyConfig = ProxyConfig()
    postgres: PostgresConfig = PostgresConfig()
    hostnames: dict[RouteId, Hostname]
    import_ids: dict[ImportKey, ImportId] = Field(default_factory=dict, alias="import")
    docker_path: AbsolutePath = "/snap/bin/docker"
    docker_service: UnitName = "snap.docker.dockerd.service"
    smart_logs: SmartLogsConfig = SmartLogsConfig()
    gpu: GpuConfig = GpuConfig()
    backups: BackupsConfig = BackupsConfig()
    app_sources: dict[str, SourcePath] = Field(default_factory=dict)
    """App -> its source checkout on the operator's machine, for images built from source."""
    image_overrides: dict[DockerName, Image] = Field(default_factory=dict)
    """Container -> image reference to run instead of its catalog image (pin, roll back)."""
    extra_env: dict[DockerName, dict[EnvName, EnvValue]] = Field(default_factory=dict)
    """Container -> extra clear env (tuning without a code change)."""
    log_opts: dict[LogOptName, LogOptValue] = Field(default_factory=lambda: dict(DEFAULT_LOG_OPTS))
    """json-file log options of every container; must include the daemon's own defaults."""
    smtp_password: Secret | None = None
    anthropic_api_key: Secret | None = None
    openai_api_key: Secret | None = None

    _secret_values: frozenset[str] = PrivateAttr(default=frozenset())

    def mark_secret(self, values: frozenset[str]) -> None:
        """Record the values of every key the operator set as a secret."""
        self._secret_values = values

    @property
    def secret_values(self) -> frozenset[str]:
        """What must reach every resource, output and log only as a secret."""
        return self._secret_values

    def operator_secret(self, key: str) -> str | None:
        """An operator-held secret by its config key, e.g. ``openaiApiKey``."""
        if key not in SECRET_KEYS:
            raise KeyError(f"{key} is not an operator secret")
        name = next(n for n, f in type(self).model_fields.items() if f.alias == key)
        value: str | None = getattr(self, name)
        return value

    def settings(self, spec: AppSpec[S]) -> S:
        """An app's validated settings."""
        value: S = getattr(self, spec.key)
        return value

    def site(self) -> Site:
        """The platform facts apps may read."""
        return Site(
            hostnames=self.hostnames,
            postgres_host=self.postgres.container_name,
            postgres_port=POSTGRES_PORT,
            docker_path=self.docker_path,
            docker_service=self.docker_service,
            proxy_container=self.proxy.container_name,
            proxy_network=self.proxy.trusted_network,
            llama_port=self.gpu.llama.port,
            tabby_port=self.gpu.tabby.port,
        )

    def apps(self, everything: bool = False) -> tuple[App, ...]:
        """The apps this config runs, in declaration order; ``everything`` ignores switches."""
        site = self.site()
        declared: list[App] = []
        for spec in APPS:
            settings = self.settings(spec)
            if everything or spec.enabled(settings):
                declared.append(spec.declare(settings, site, tuple(declared)))
        return tuple(declared)

    def retired_apps(self) -> tuple[App, ...]:
        """Apps switched off whose data stays declared (their volumes, role, databases)."""
        site = self.site()
        return tuple(
            spec.declare(settings, site, ())
            for spec in APPS
            if not spec.enabled(settings := self.settings(spec)) and spec.retained(settings)
        )


def _app_settings() -> dict[str, Any]:
    return {spec.key: (spec.settings, Field(default_factory=spec.settings)) for spec in APPS}


if TYPE_CHECKING:
    StackConfig = _StackConfig
else:
    StackConfig = create_model("StackConfig", __base__=_StackConfig, **_app_settings())


def object_keys() -> frozenset[str]:
    """Keys whose value is an object or a list: the CLI hands them over as JSON text."""
    keys = set()
    for name, field in StackConfig.model_fields.items():
        annotation = field.annotation
        origin = getattr(annotation, "__origin__", None)
        structured = origin in (dict, list) or (
            isinstance(annotation, type) and issubclass(annotation, (BaseModel, dict, list))
        )
        if structured:
            keys.add(field.alias or name)
    return frozenset(keys)
