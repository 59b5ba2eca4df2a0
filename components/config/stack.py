"""The stack's configuration: one model of every ``hemma:`` key.

The platform's keys are declared here; each app's settings come from its own
module (``components/apps``) and join the model under the app's key, so
adding an app adds its settings without touching this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Self, TypeVar

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    create_model,
)

from components.apps import APPS
from components.config.platform import (
    BackupsConfig,
    DriftConfig,
    GpuConfig,
    HostConfig,
    ImportId,
    ImportKey,
    PostgresConfig,
    ProxyConfig,
    RouteId,
    SmartLogsConfig,
)
from components.foundation.containers import DEFAULT_LOG_OPTS
from components.model.allowed.daemon import LogOpts, ServiceName
from components.model.allowed.restic import StorageEnvName
from components.model.app import App, AppSpec
from components.model.placement import Machine, Placement
from components.model.site import Site
from components.model.values import (
    PLATFORM_HOST,
    DockerHost,
    DockerName,
    Email,
    EnvName,
    EnvValue,
    ExecutablePath,
    Flag,
    HostKey,
    HostName,
    Hostname,
    Image,
    Model,
    Placed,
    Port,
    PrivateKeyText,
    Secret,
    SourcePath,
    SshUser,
)

NAMESPACE = "hemma"
PUBLIC_PORTS = {80: "nginx-proxy (HTTP)", 443: "nginx-proxy (HTTPS)"}
"""The only ports published on a public address."""
SECRET_KEYS = frozenset(
    {
        "sshPrivateKey",
        "smtpPassword",
        "anthropicApiKey",
        "openaiApiKey",
        "resticPassword",
        "backupStorageEnv",
    }
)
"""Keys that must be set with ``pulumi config set --secret``."""
OPERATOR_SECRETS = SECRET_KEYS - {"sshPrivateKey", "backupStorageEnv"}
"""The secrets that become an app's env or file, by their config key."""
POSTGRES_PORT = 5432
"""shared-postgres's port inside hule-network (the image's own)."""

S = TypeVar("S", bound=Placed)


class Memo(dict[tuple[bool, tuple[str, ...]], tuple[tuple[App, str], ...]]):
    """A config's declared apps, remembered: no part of the config's equality, and a
    deep copy of the config starts empty."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Memo)

    def __deepcopy__(self, memo: dict[int, Any]) -> Memo:
        return Memo()


class _StackConfig(Model):
    """The platform's keys. Each app's settings join it below, under the app's key."""

    local: Flag = False
    """The stack runs on the operator's own Docker (the ``local`` stack): no SSH, no
    host units, no ACME, the proxy on 127.0.0.1, apps without a checkout left out."""
    acme_email: Email | None = None
    """Required unless ``local``: acme-companion's account."""
    acme_staging: Flag = False
    docker_host: DockerHost = "ssh://hemma"
    ssh_host: Hostname = "hemma.hule.education"
    ssh_user: SshUser | None = None
    """Required unless ``local``."""
    ssh_port: Port = 22
    ssh_host_key: HostKey | None = None
    """Required unless ``local``."""
    ssh_private_key: PrivateKeyText | None = None
    """Required unless ``local``."""
    proxy: ProxyConfig = ProxyConfig()
    postgres: PostgresConfig = PostgresConfig()
    hostnames: dict[RouteId, Hostname]
    import_ids: dict[ImportKey, ImportId] = Field(default_factory=dict, alias="import")
    adopt_as_is: list[DockerName] = Field(default_factory=list)
    """Data volumes the adoption takes as they are, though the hand-made service keeps
    its data where the program does not look (``scripts/adopt survey`` names them):
    left to start empty on purpose, or filled by hand first."""
    docker_path: ExecutablePath = "/snap/bin/docker"
    docker_service: ServiceName = "snap.docker.dockerd.service"
    smart_logs: SmartLogsConfig = SmartLogsConfig()
    gpu: GpuConfig = GpuConfig()
    backups: BackupsConfig = BackupsConfig()
    drift: DriftConfig = DriftConfig()
    hosts: dict[HostName, HostConfig] = Field(default_factory=dict)
    """Further machines by name; ``hemma`` is the server the keys above reach."""
    service_hosts: dict[DockerName, HostName] = Field(default_factory=dict)
    """Container -> the machine it runs on, apart from its app's ``host``."""
    app_sources: dict[DockerName, SourcePath] = Field(default_factory=dict)
    """App -> its source checkout on the operator's machine, for images built from source."""
    image_overrides: dict[DockerName, Image] = Field(default_factory=dict)
    """Container -> image reference to run instead of its catalog image (pin, roll back)."""
    image_retention: Annotated[int, Field(ge=1, le=50)] = 3
    """Built images of each repository kept on Hemma, newest first: the way back for
    ``scripts/rollback`` without a rebuild."""
    extra_env: dict[DockerName, dict[EnvName, EnvValue]] = Field(default_factory=dict)
    """Container -> extra clear env (tuning without a code change)."""
    log_opts: LogOpts = Field(default_factory=lambda: dict(DEFAULT_LOG_OPTS))
    """json-file log options of every container; must include the daemon's own defaults."""
    smtp_password: Secret | None = None
    anthropic_api_key: Secret | None = None
    openai_api_key: Secret | None = None
    restic_password: Secret | None = None
    """Encrypts the backup repository; keep a copy outside Hemma and this machine."""
    backup_storage_env: dict[StorageEnvName, Secret] = Field(default_factory=dict)
    """The backup storage's own credentials, e.g. AWS_ACCESS_KEY_ID for S3."""
    volume_names: dict[DockerName, DockerName] = Field(default_factory=dict)
    """App volume -> the name it already has on Hemma (compose prefixes its project)."""

    _secret_values: frozenset[str] = PrivateAttr(default=frozenset())
    _secret_keys: frozenset[str] = PrivateAttr(default=frozenset())
    _left_out: dict[str, str] = PrivateAttr(default_factory=dict)
    _memo: Memo = PrivateAttr(default_factory=Memo)
    """The declared apps, by switch and left-out apps: declaring renders every
    generated file, and the checks ask for the apps many times. The fields are frozen;
    a copy starts with a memo of its own, since its update may differ."""

    def __copy__(self) -> Self:
        copied = super().__copy__()  # shares each private value: the memo too
        copied._memo = Memo()
        return copied

    def leave_out(self, apps: Mapping[str, str]) -> None:
        """Declare these apps as if switched off (the local stack, their checkout absent)."""
        self._left_out = dict(apps)

    @property
    def left_out(self) -> Mapping[str, str]:
        """App -> why it is left out: its source checkout is not here."""
        return self._left_out

    def mark_secret(self, values: frozenset[str], keys: frozenset[str] = frozenset()) -> None:
        """Record every key the operator set as a secret, and their values."""
        self._secret_values = values
        self._secret_keys = keys

    @property
    def secret_keys(self) -> frozenset[str]:
        """The top-level keys the operator set with ``--secret``."""
        return self._secret_keys

    @property
    def secret_values(self) -> frozenset[str]:
        """What must reach every resource, output and log only as a secret."""
        return self._secret_values

    def operator_secret(self, key: str) -> str | None:
        """An operator-held secret by its config key, e.g. ``openaiApiKey``."""
        if key not in OPERATOR_SECRETS:
            raise KeyError(f"{key} is not an operator secret")
        name = next(n for n, f in type(self).model_fields.items() if f.alias == key)
        value: str | None = getattr(self, name)
        return value

    def volume_name(self, volume: str) -> str:
        """An app volume's Docker name on Hemma."""
        return self.volume_names.get(volume, volume)

    def settings(self, spec: AppSpec[S]) -> S:
        """An app's validated settings."""
        value: S = getattr(self, spec.key)
        return value

    def machines(self) -> dict[str, Machine]:
        """Every machine by name, Hemma first (from the top-level keys)."""
        hemma = Machine(
            name=PLATFORM_HOST,
            ssh_host=self.ssh_host,
            ssh_port=self.ssh_port,
            ssh_user=self.ssh_user or "",
            ssh_host_key=self.ssh_host_key or "",
            docker_host=self.docker_host,
            docker_path=self.docker_path,
            docker_service=self.docker_service,
            volume_root=self.backups.volume_root,
            metrics_directory=self.backups.metrics_directory,
        )
        others = {
            name: Machine(name=name, **host.model_dump())
            for name, host in sorted(self.hosts.items())
            if name != PLATFORM_HOST
        }
        return {PLATFORM_HOST: hemma, **others}

    def placement(self) -> Placement:
        """Where each app, container and the GPU servers run; a retired app's too, whose
        volumes stay where they are."""
        placed = [*self._declared(), *self._retired()]
        return Placement(
            apps={app.name: host for app, host in placed},
            containers={
                service.container: self.service_hosts.get(service.container, host)
                for app, host in placed
                for service in app.services
            },
            gpu=self.gpu.host,
        )

    def site(self, host: str = PLATFORM_HOST) -> Site:
        """The platform facts apps may read, as the machine ``host`` has them."""
        machines = self.machines()
        machine = machines.get(host, machines[PLATFORM_HOST])
        return Site(
            hostnames=self.hostnames,
            postgres_host=self.postgres.container_name,
            postgres_port=POSTGRES_PORT,
            docker_path=machine.docker_path,
            docker_service=machine.docker_service,
            proxy_container=self.proxy.container_name,
            proxy_network=self.proxy.trusted_network,
            operator_email=self.acme_email or "",
            metrics_dir=machine.metrics_directory,
            llama_port=self.gpu.llama.port,
            tabby_port=self.gpu.tabby.port,
            drift_stale_hours=self.drift.stale_after_hours,
            scheme="http" if self.local else "https",
        )

    def apps(self, everything: bool = False) -> tuple[App, ...]:
        """The apps this config runs, in declaration order; ``everything`` ignores switches."""
        return tuple(app for app, _ in self._declared(everything))

    def _declared(self, everything: bool = False) -> list[tuple[App, str]]:
        """Each app this config runs and its machine; each app sees the site as its
        machine has it (the docker CLI of its host jobs)."""
        key = (everything, tuple(sorted(self._left_out)))
        if key not in self._memo:
            self._memo[key] = tuple(self._declare(everything))
        return list(self._memo[key])

    def _declare(self, everything: bool) -> list[tuple[App, str]]:
        declared: list[tuple[App, str]] = []
        for spec in APPS:
            settings = self.settings(spec)
            if everything or spec.enabled(settings):
                earlier = tuple(app for app, _ in declared)
                app = spec.declare(settings, self.site(settings.host), earlier)
                if everything or app.name not in self._left_out:
                    declared.append((app, settings.host))
        return declared

    def retired_apps(self) -> tuple[App, ...]:
        """Apps switched off whose data stays declared (their volumes, role, databases)."""
        return tuple(app for app, _ in self._retired())

    def _retired(self) -> list[tuple[App, str]]:
        return [
            (spec.declare(settings, self.site(settings.host), ()), settings.host)
            for spec in APPS
            if not spec.enabled(settings := self.settings(spec)) and spec.retained(settings)
        ]


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
