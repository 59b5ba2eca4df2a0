"""The stack's configuration: one validated model, read before any resource exists.

``pulumi up`` creates resources as the program registers them, so a bad value
found halfway through would leave a half-built server. ``load_config`` reads
every ``hemma:`` key, validates all of it against the model and the app catalog,
and stops the program with one line per problem, each naming its key.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from components.adoption import KINDS, import_key
from components.calendar import CalendarError
from components.calendar import validate as validate_calendar
from components.catalog import SHARED_NETWORK, App

NAMESPACE = "hemma"
PUBLIC_PORTS = {80: "nginx-proxy (HTTP)", 443: "nginx-proxy (HTTPS)"}
"""The only ports published on a public address."""


class ConfigError(pulumi.RunError):
    """Bad stack config. The CLI prints the message alone, without a traceback."""


# --- value types -----------------------------------------------------------

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?:{_LABEL}\.)+[a-z][a-z0-9-]{{0,61}}[a-z0-9]$")
_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@(.+)$")
_DOCKER_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
_IMAGE_RE = re.compile(
    r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._/-][a-z0-9]+)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_SIZE_RE = re.compile(r"^[0-9]+[kKmMgG]?$")
_SSH_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_HTPASSWD_USER_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HOST_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)


def _check(pattern: re.Pattern[str], message: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(message)
        return value

    return check


def _hostname(value: str) -> str:
    if len(value) > 253 or not _HOSTNAME_RE.match(value):
        raise ValueError("not a valid hostname")
    return value


def _email(value: str) -> str:
    match = _EMAIL_RE.match(value)
    if not match or not _HOSTNAME_RE.match(match.group(1)):
        raise ValueError("not a valid email address")
    return value


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return value


def _image(value: str) -> str:
    if not _IMAGE_RE.match(value):
        raise ValueError("not a valid image reference")
    last = value.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        raise ValueError("must pin a tag or digest, e.g. postgres:16-alpine")
    return value


def _docker_host(value: str) -> str:
    if not value.startswith(("ssh://", "tcp://", "unix://")) or value.endswith("//"):
        raise ValueError("must be a Docker host URL: ssh://HOST, tcp://HOST:PORT or unix:///PATH")
    return value


def _host_key(value: str) -> str:
    parts = value.split()
    if len(parts) != 2 or parts[0] not in _HOST_KEY_TYPES:
        raise ValueError("must be a public host key 'TYPE BASE64', as ssh-keyscan prints it")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("host key is not valid base64") from None
    name_length = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + name_length].decode("ascii", "replace") != parts[0]:
        raise ValueError(f"host key data does not hold a {parts[0]} key")
    return value


def _schedule(value: str) -> str:
    try:
        return validate_calendar(value)
    except CalendarError as error:
        raise ValueError(f"not a systemd OnCalendar expression: {error}") from None


def _absolute_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value) or "//" in value:
        raise ValueError("must be an absolute path without spaces")
    return value


def _unit_name(value: str) -> str:
    if not re.match(r"^[A-Za-z0-9:_.@-]+\.(service|socket|target|mount)$", value):
        raise ValueError("must be a systemd unit name such as docker.service")
    return value


def _bind_address(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("must be an IP address") from None
    if address.is_unspecified or address.is_global:
        raise ValueError("would listen on a public address; use the docker0 or loopback address")
    return value


def _argument(value: str) -> str:
    if not value or any(c in value for c in "\n\\$%;"):
        raise ValueError("must be a plain argument (no newline, backslash, $, % or ;)")
    return value


Hostname = Annotated[str, AfterValidator(_hostname)]
Email = Annotated[str, AfterValidator(_email)]
Port = Annotated[int, AfterValidator(_port)]
Image = Annotated[str, AfterValidator(_image)]
DockerName = Annotated[str, AfterValidator(_check(_DOCKER_NAME_RE, "not a valid Docker name"))]
BodySize = Annotated[
    str, AfterValidator(_check(_SIZE_RE, "must be an nginx size such as 1m or 650m"))
]
SshUser = Annotated[str, AfterValidator(_check(_SSH_USER_RE, "not a valid user name"))]
HtpasswdUser = Annotated[
    str, AfterValidator(_check(_HTPASSWD_USER_RE, "must be letters, digits, '.', '_' or '-'"))
]
DockerHost = Annotated[str, AfterValidator(_docker_host)]
HostKey = Annotated[str, AfterValidator(_host_key)]
Secret = Annotated[str, Field(min_length=1)]
Schedule = Annotated[str, AfterValidator(_schedule)]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]
UnitName = Annotated[str, AfterValidator(_unit_name)]
BindAddress = Annotated[str, AfterValidator(_bind_address)]
Argument = Annotated[str, AfterValidator(_argument)]
Days = Annotated[int, Field(ge=1, le=3650)]
AbsoluteOrRelativePath = Annotated[str, Field(min_length=1, pattern=r"^[^\s]+$")]
EnvValue = Annotated[str, Field(pattern=r"^[^\n]*$")]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


# --- the model -------------------------------------------------------------


class ProxyConfig(_Model):
    """nginx-proxy and acme-companion (``hemma:proxy``)."""

    container_name: DockerName = "nginx-proxy"
    companion_container_name: DockerName = "acme-companion"
    image: Image = "nginxproxy/nginx-proxy:1.6"
    companion_image: Image = "nginxproxy/acme-companion:2.4"
    default_max_body_size: BodySize = "10m"
    basic_auth_user: HtpasswdUser = "admin"
    certs_volume: DockerName = "nginx-proxy-certs"
    html_volume: DockerName = "nginx-proxy-html"
    acme_volume: DockerName = "acme-companion-acme"


class PostgresConfig(_Model):
    """shared-postgres (``hemma:postgres``)."""

    container_name: DockerName = "shared-postgres"
    image: Image = "postgres:16-alpine"
    host_port: Port = 5432
    """Published on Hemma's 127.0.0.1 only."""
    data_volume: DockerName = "shared-postgres-data"
    tunnel_port: Port = 15432
    """Local end of ``ssh -L`` on the operator's machine, used by the PostgreSQL provider."""


class SkriptoteketCleanupConfig(_Model):
    """The Skriptoteket cleanup timers (``hemma:skriptoteketCleanup``)."""

    enabled: bool = True
    sandbox_snapshots_schedule: Schedule = "hourly"
    login_events_schedule: Schedule = "daily"
    session_files_schedule: Schedule = "hourly"


class SmartLogsConfig(_Model):
    """Retention of the host's incident and SMART logs (``hemma:smartLogs``)."""

    enabled: bool = True
    schedule: Schedule = "daily"
    directory: AbsolutePath = "/root/logs"
    keep_days: Days = 30


class GpuServerConfig(_Model):
    executable: AbsolutePath
    model: Argument
    port: Port
    args: list[Argument] = Field(default_factory=list)


class GpuConfig(_Model):
    """The host GPU model servers (``hemma:gpu``); off on a machine without a GPU."""

    enabled: bool = True
    bind_address: BindAddress = "172.17.0.1"
    """docker0's address: what host.docker.internal resolves to in the containers."""
    user: SshUser | None = None
    """Runs the servers; the SSH user when unset."""
    llama: GpuServerConfig = GpuServerConfig(
        executable="/opt/llama.cpp/build/bin/llama-server",
        model="/srv/models/Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf",
        port=8082,
        args=["--n-gpu-layers", "999", "--ctx-size", "32768"],
    )
    tabby: GpuServerConfig = GpuServerConfig(
        executable="/usr/local/bin/tabby",
        model="Qwen2.5-Coder-1.5B",
        port=8083,
        args=["--device", "rocm"],
    )


class BackupsConfig(_Model):
    """Nightly pg_dump of every app database (``hemma:backups``)."""

    enabled: bool = True
    schedule: Schedule = "*-*-* 03:15:00"
    directory: AbsolutePath = "/var/backups/hemma/postgres"
    keep_days: Days = 14


class ClassHubConfig(_Model):
    """Class Hub (``hemma:classHub``); its hostnames are ``hostnames.classhub`` and
    ``hostnames.classhub-helper``."""

    enabled: bool = False
    retention_schedule: Schedule = "daily"
    submission_retention_days: Days = 90
    student_event_retention_days: Days = 180
    max_body_size: BodySize = "650m"
    helper_max_body_size: BodySize = "1m"
    helper_max_concurrency: Annotated[int, Field(ge=1, le=64)] = 2
    helper_queue_max_wait_seconds: Annotated[float, Field(gt=0, le=600)] = 10
    helper_queue_poll_seconds: Annotated[float, Field(gt=0, le=60)] = 0.2
    helper_queue_slot_ttl_seconds: Annotated[int, Field(ge=1, le=3600)] = 120
    ollama_model: Argument = "llama3.2:1b"
    ollama_image: Image = "ollama/ollama:0.5.7"
    minio_image: Image = "minio/minio:RELEASE.2025-01-20T14-49-07Z"
    redis_image: Image = "redis:7.4-alpine"


class HuleEduConfig(_Model):
    """HuleEdu settings from the runbooks' .env (``hemma:huleedu``)."""

    smtp_host: Hostname = "mail.privateemail.com"
    smtp_port: Port = 587
    smtp_username: Annotated[str, Field(min_length=1)] = "noreply@hule.education"
    offload_base_image: Image = "rocm/pytorch:latest"
    offload_torch_device: Annotated[str, Field(pattern=r"^(cpu|cuda(:[0-9]+)?)$")] = "cuda"
    offload_devices: list[AbsolutePath] = Field(default_factory=lambda: ["/dev/kfd", "/dev/dri"])
    kafka_image: Image = "apache/kafka:3.8.1"
    redis_image: Image = "redis:7.4-alpine"


class ObservabilityConfig(_Model):
    """Grafana, Prometheus, Jaeger, Loki and Promtail (``hemma:observability``)."""

    grafana_image: Image = "grafana/grafana:11.4.0"
    prometheus_image: Image = "prom/prometheus:v2.55.1"
    jaeger_image: Image = "jaegertracing/all-in-one:1.64.0"
    loki_image: Image = "grafana/loki:3.3.2"
    promtail_image: Image = "grafana/promtail:3.3.2"
    prometheus_retention: Annotated[str, Field(pattern=r"^[0-9]+(d|w|y|h)$")] = "30d"


class StackConfig(_Model):
    acme_email: Email
    acme_staging: bool = False
    docker_host: DockerHost = "ssh://hemma"
    ssh_host: Hostname = "hemma.hule.education"
    ssh_user: SshUser
    ssh_port: Port = 22
    ssh_host_key: HostKey
    ssh_private_key: Secret
    proxy: ProxyConfig = ProxyConfig()
    postgres: PostgresConfig = PostgresConfig()
    hostnames: dict[str, Hostname]
    import_ids: dict[str, Annotated[str, Field(min_length=1)]] = Field(
        default_factory=dict, alias="import"
    )
    docker_path: AbsolutePath = "/snap/bin/docker"
    docker_service: UnitName = "snap.docker.dockerd.service"
    skriptoteket_cleanup: SkriptoteketCleanupConfig = SkriptoteketCleanupConfig()
    smart_logs: SmartLogsConfig = SmartLogsConfig()
    gpu: GpuConfig = GpuConfig()
    backups: BackupsConfig = BackupsConfig()
    class_hub: ClassHubConfig = ClassHubConfig()
    huleedu: HuleEduConfig = HuleEduConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    app_sources: dict[str, AbsoluteOrRelativePath] = Field(default_factory=dict)
    """App -> its source checkout on the operator's machine, for images built from source."""
    image_overrides: dict[str, Image] = Field(default_factory=dict)
    """Container -> image reference to run instead of its catalog image (pin, roll back)."""
    extra_env: dict[str, dict[str, EnvValue]] = Field(default_factory=dict)
    """Container -> extra clear env (tuning without a code change)."""

    def operator_secret(self, key: str) -> str | None:
        """An operator-held secret by its config key, e.g. ``openaiApiKey``."""
        if key not in SECRET_KEYS:
            raise KeyError(f"{key} is not an operator secret")
        name = next(n for n, f in type(self).model_fields.items() if f.alias == key)
        value: str | None = getattr(self, name)
        return value

    smtp_password: Secret | None = None
    anthropic_api_key: Secret | None = None
    openai_api_key: Secret | None = None


SECRET_KEYS = frozenset({"sshPrivateKey", "smtpPassword", "anthropicApiKey", "openaiApiKey"})
"""Keys that must be set with ``pulumi config set --secret``."""

_OBJECT_KEYS = frozenset(
    {
        "proxy",
        "postgres",
        "hostnames",
        "import",
        "skriptoteketCleanup",
        "smartLogs",
        "gpu",
        "backups",
        "classHub",
        "huleedu",
        "observability",
        "appSources",
        "imageOverrides",
        "extraEnv",
    }
)


# --- reading and reporting -------------------------------------------------


def raw_config() -> tuple[dict[str, str], set[str]]:
    """Every ``hemma:`` key as the CLI passed it (strings), and which are secret."""
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{NAMESPACE}:"
    values = {k[len(prefix) :]: v for k, v in merged.items() if k.startswith(prefix)}
    secret_names = set(runtime_config._SECRET_KEYS.get()) | set(
        runtime_config.get_config_secret_keys_env()
    )
    secrets = {k[len(prefix) :] for k in secret_names if k.startswith(prefix)}
    return values, secrets


def _key(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"{NAMESPACE}:{path}"


_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "unknown config key",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "model_type": "must be an object",
}


def _line(error: Mapping[str, Any], secrets: set[str]) -> str:
    loc = tuple(error["loc"])
    message = _MESSAGES.get(error["type"])
    if message is not None:
        message = message.format(**error.get("ctx", {}))
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    line = f"{_key(loc)}: {message}"
    shows_value = error["type"] not in ("missing", "extra_forbidden") and not isinstance(
        error.get("input"), (dict, list)
    )
    if shows_value and str(loc[0]) not in secrets | SECRET_KEYS:
        line += f" (got {error['input']!r})"
    return line


def parse(values: Mapping[str, str], secrets: set[str] | None = None) -> StackConfig:
    """Validate raw config values; raise ConfigError with one line per problem."""
    secrets = set(secrets or ())
    problems: list[str] = []
    data: dict[str, Any] = {}
    for key, value in values.items():
        if key in _OBJECT_KEYS and isinstance(value, str):
            try:
                data[key] = json.loads(value)
            except json.JSONDecodeError:
                problems.append(f"{NAMESPACE}:{key}: must be an object")
                continue
        else:
            data[key] = value
    for key in sorted(SECRET_KEYS & values.keys() - secrets):
        problems.append(
            f"{NAMESPACE}:{key}: must be set as a secret (pulumi config set --secret {key} ...)"
        )
    config: StackConfig | None = None
    if not problems:
        try:
            config = StackConfig.model_validate(data)
        except ValidationError as error:
            problems.extend(_line(e, secrets) for e in error.errors())
    if config is not None:
        problems.extend(check_site(config))
    if problems:
        raise ConfigError("\n".join(problems))
    assert config is not None
    return config


def check_site(config: StackConfig) -> list[str]:
    """Rules that span keys and the app catalog: nothing may collide, nothing be missing."""
    from components.catalog import OperatorSecret, all_route_ids, apps

    catalog = apps(config)
    problems: list[str] = check_catalog(catalog)
    route_ids = [route.id for app in catalog for route in app.routes]
    known_routes = all_route_ids(config)

    for route_id in route_ids:
        if route_id not in config.hostnames:
            problems.append(
                f"{NAMESPACE}:hostnames.{route_id}: is required (no hostname for this route)"
            )
    for route_id in config.hostnames:
        if route_id not in known_routes:
            problems.append(
                f"{NAMESPACE}:hostnames.{route_id}: unknown route "
                f"(known: {', '.join(sorted(known_routes))})"
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
        (f"{NAMESPACE}:postgres.dataVolume", config.postgres.data_volume),
    ]
    # One entry per app volume: check_catalog already keeps two apps off one volume.
    owners: dict[str, str] = {}
    for app in catalog:
        for service in app.services:
            for volume in service.volumes:
                owners.setdefault(volume, f"the {app.name} app")
    app_volumes = [(owner, volume) for volume, owner in owners.items()]
    problems += _collisions("volume name", [*app_volumes, *volumes])
    problems += _collisions(
        "port",
        [
            *((owner, port) for port, owner in PUBLIC_PORTS.items()),
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

    for app in catalog:
        needed: dict[str, str] = {}
        for service in app.services:
            for source in service.secret_env.values():
                if isinstance(source, OperatorSecret):
                    needed.setdefault(source.key, service.container)
        for key, container in sorted(needed.items()):
            if config.operator_secret(key) is None:
                problems.append(
                    f"{NAMESPACE}:{key}: is required by {container} "
                    f"(pulumi config set --secret {key} ...)"
                )
        if app.builds_from_source and app.name not in config.app_sources:
            problems.append(
                f"{NAMESPACE}:appSources.{app.name}: is required (the path of the app's "
                "source checkout, to build its images from)"
            )
    enabled_apps = {app.name for app in catalog}
    for app_name in config.app_sources:
        if app_name not in enabled_apps:
            problems.append(f"{NAMESPACE}:appSources.{app_name}: no enabled app of that name")
    for key, what in (("imageOverrides", config.image_overrides), ("extraEnv", config.extra_env)):
        for container in what:
            if container not in containers:
                problems.append(f"{NAMESPACE}:{key}.{container}: no container of that name")

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


def _collisions(what: str, uses: list[tuple[str, Any]]) -> list[str]:
    """One line for each use of a value that an earlier use already claimed."""
    first: dict[Any, str] = {}
    problems = []
    for where, value in uses:
        if value in first:
            problems.append(f"{where}: {what} {value!r} is already used by {first[value]}")
        first.setdefault(value, where)
    return problems


def network_names(catalog: tuple[App, ...]) -> list[str]:
    internal = [app.internal_network for app in catalog if app.internal_network]
    return [SHARED_NETWORK, *internal]


def load_config() -> StackConfig:
    """Read and validate the whole stack config. Call before declaring any resource."""
    values, secrets = raw_config()
    return parse(values, secrets)
