"""What runs on Hemma, as data: every app, its services and their wiring.

An ``App`` is a list of ``Service`` entries plus the PostgreSQL role and
databases the app owns and the secrets it generates. A ``Service`` says which
image it runs, its container name, networks, public route, localhost-only
ports, clear and secret env, volumes, health check and the migration to run
after a deploy. ``components/app.py`` turns each entry into containers that are
routed, networked, health-checked and restartable by construction.

Adding an app is adding one function here and listing it in ``apps``.

Facts from the runbooks are used as they are (container names, hostnames, ports,
databases, the HuleEdu .env). Where the runbooks are silent (Dockerfile paths,
internal ports of the HuleEdu services, health-check commands) the entries say
what they assume; the README lists these for the operator to confirm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.config import StackConfig

SHARED_NETWORK = "hule-network"
"""The network nginx-proxy, shared-postgres and every routed container share."""
HULEEDU_NETWORK = "huleedu_internal_network"
CLASSHUB_NETWORK = "classhub_internal_network"
HOST_GATEWAY = "host.docker.internal"


# --- the vocabulary -------------------------------------------------------------


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
    name: str
    services: tuple[Service, ...]
    internal_network: str | None = None
    database_role: str | None = None
    databases: tuple[str, ...] = ()
    generated: tuple[str, ...] = ()
    """Names of the app's generated secrets (``Generated(name)``)."""

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


# --- the apps --------------------------------------------------------------------------


def skriptoteket(config: StackConfig) -> App:
    gpu = f"http://{HOST_GATEWAY}"
    runner_tag = "skriptoteket-runner:hemma"
    return App(
        name="skriptoteket",
        database_role="skriptoteket",
        databases=("skriptoteket",),
        services=(
            Service(
                name="web",
                container="skriptoteket-web",
                image=Build(tag="skriptoteket-web:hemma"),
                port=8000,
                networks=(SHARED_NETWORK,),
                route=Route("skriptoteket", 8000),
                env={
                    "ENVIRONMENT": "production",
                    "ARTIFACTS_ROOT": "/app/.artifacts",
                    # nginx-proxy sends X-Forwarded-Proto; uvicorn (proxy headers on by
                    # default) trusts it only from the addresses in FORWARDED_ALLOW_IPS.
                    # Without it, redirects go to http:// (the runbooks' 307 problem).
                    "FORWARDED_ALLOW_IPS": "*",
                    "LLM_COMPLETIONS_URL": f"{gpu}:{config.gpu.llama.port}",
                    "TABBY_URL": f"{gpu}:{config.gpu.tabby.port}",
                    "RUNNER_IMAGE": runner_tag,
                    "RUNNER_NETWORK": HULEEDU_NETWORK,
                },
                secret_env={
                    "DATABASE_URL": DatabaseUrl("skriptoteket", scheme="postgresql+asyncpg")
                },
                volumes={"skriptoteket-artifacts": "/app/.artifacts"},
                healthcheck=http_probe(8000),
                metrics_path="/metrics",
                host_gateway=True,
                docker_socket="read-write",
                migration="pdm run db-upgrade",
                extra_images=(Build(tag=runner_tag, dockerfile="Dockerfile.runner"),),
            ),
        ),
    )


HULEEDU_DATABASES = (
    "huleedu_batch_conductor",
    "huleedu_batch_orchestrator",
    "huleedu_cj_assessment",
    "huleedu_class_management",
    "huleedu_content",
    "huleedu_email",
    "huleedu_entitlements",
    "huleedu_essay_lifecycle",
    "huleedu_file_service",
    "huleedu_identity",
    "huleedu_nlp",
    "huleedu_result_aggregator",
    "huleedu_spellchecker",
)

# name -> (port, database, extra secret env). Every service reads the shared
# HuleEdu .env the runbooks list; secrets go only to the services that use them.
_HULEEDU_SERVICES: dict[str, tuple[int, str | None, dict[str, SecretSource]]] = {
    "api_gateway_service": (8080, None, {}),
    "bff_teacher_service": (4101, None, {}),
    "websocket_service": (8080, None, {}),
    "content_service": (8000, "huleedu_content", {}),
    "essay_lifecycle_service": (8000, "huleedu_essay_lifecycle", {}),
    "nlp_service": (8000, "huleedu_nlp", {}),
    "llm_provider_service": (
        8000,
        None,
        {
            "ANTHROPIC_API_KEY": OperatorSecret("anthropicApiKey"),
            "OPENAI_API_KEY": OperatorSecret("openaiApiKey"),
        },
    ),
    "cj_assessment_service": (
        8000,
        "huleedu_cj_assessment",
        {
            "ANTHROPIC_API_KEY": OperatorSecret("anthropicApiKey"),
            "OPENAI_API_KEY": OperatorSecret("openaiApiKey"),
        },
    ),
    "batch_conductor_service": (8000, "huleedu_batch_conductor", {}),
    "batch_orchestrator_service": (8000, "huleedu_batch_orchestrator", {}),
    "class_management_service": (8000, "huleedu_class_management", {}),
    "email_service": (
        8000,
        "huleedu_email",
        {"EMAIL_SMTP_PASSWORD": OperatorSecret("smtpPassword")},
    ),
    "entitlements_service": (8000, "huleedu_entitlements", {}),
    "file_service": (8000, "huleedu_file_service", {}),
    "identity_service": (8000, "huleedu_identity", {}),
    "result_aggregator_service": (8000, "huleedu_result_aggregator", {}),
    "spellchecker_service": (8000, "huleedu_spellchecker", {}),
}
_HULEEDU_ROUTES = {
    "api_gateway_service": "huleedu-api",
    "bff_teacher_service": "huleedu",
    "websocket_service": "huleedu-ws",
}
_HULEEDU_GPU = {"nlp_service", "llm_provider_service"}


def huleedu(config: StackConfig) -> App:
    settings = config.huleedu
    gpu = f"http://{HOST_GATEWAY}:{config.gpu.llama.port}"
    common = {
        "ENVIRONMENT": "production",
        "HULEEDU_DB_USER": "huleedu_user",
        "HULEEDU_DB_HOST": config.postgres.container_name,
        "HULEEDU_DB_PORT": "5432",
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
        "REDIS_URL": "redis://redis:6379/0",
        "NLP_SERVICE_LOCAL_LLM_ENABLED": "true",
        "LLM_PROVIDER_SERVICE_LOCAL_LLM_ENABLED": "true",
        "LOCAL_LLM_BASE_URL": gpu,
        "EMAIL_SMTP_HOST": settings.smtp_host,
        "EMAIL_SMTP_PORT": str(settings.smtp_port),
        "EMAIL_SMTP_USERNAME": settings.smtp_username,
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4317",
    }
    shared_secrets: dict[str, SecretSource] = {
        "JWT_SECRET_KEY": Generated("jwt-secret"),
        "HULEEDU_INTERNAL_API_KEY": Generated("internal-api-key"),
    }
    services = []
    for name, (port, database, extra) in _HULEEDU_SERVICES.items():
        route_id = _HULEEDU_ROUTES.get(name)
        secret_env = dict(shared_secrets)
        if database:
            secret_env["HULEEDU_PROD_DB_PASSWORD"] = DatabasePassword()
            secret_env["DATABASE_URL"] = DatabaseUrl(database, scheme="postgresql+asyncpg")
        secret_env.update(extra)
        services.append(
            Service(
                name=name,
                container=f"huleedu_{name}",
                image=Build(
                    tag=f"huleedu-{name.replace('_', '-')}:hemma",
                    dockerfile=f"services/{name}/Dockerfile",
                ),
                port=port,
                # Routed services and those that reach shared-postgres join hule-network.
                networks=(HULEEDU_NETWORK,) + ((SHARED_NETWORK,) if route_id or database else ()),
                route=Route(route_id, port) if route_id else None,
                env={**common, "SERVICE_NAME": name, "HTTP_PORT": str(port)}
                | ({"DATABASE_NAME": database} if database else {}),
                secret_env=secret_env,
                healthcheck=http_probe(port),
                metrics_path="/metrics",
                host_gateway=name in _HULEEDU_GPU,
            )
        )
    services += [
        Service(
            name="language_tool_service",
            container="huleedu_language_tool_service",
            image=Build(
                tag="huleedu-language-tool-service:hemma",
                dockerfile="services/language_tool_service/Dockerfile",
            ),
            port=8085,
            networks=(HULEEDU_NETWORK,),
            localhost_ports=(LocalPort(8085, 8085, tunnel_port=18085),),
            env={"ENVIRONMENT": "production", "HTTP_PORT": "8085"},
            healthcheck=http_probe(8085),
        ),
        Service(
            name="essay_embed_offload",
            container="huleedu_essay_embed_offload",
            image=Build(
                tag="huleedu-essay-embed-offload:hemma",
                dockerfile="scripts/ml_training/essay_scoring/offload/Dockerfile",
                args={"BASE_IMAGE": settings.offload_base_image},
            ),
            port=9000,
            networks=(HULEEDU_NETWORK,),
            localhost_ports=(LocalPort(9000, 9000, tunnel_port=19000),),
            env={
                "OFFLOAD_HTTP_PORT": "9000",
                "OFFLOAD_TORCH_DEVICE": settings.offload_torch_device,
            },
            volumes={"huleedu_hf_cache": "/root/.cache/huggingface"},
            healthcheck=http_probe(9000),
            devices=tuple(settings.offload_devices),
            group_adds=("video", "render") if settings.offload_devices else (),
        ),
        Service(
            name="kafka",
            container="huleedu_kafka",
            image=Pull(settings.kafka_image),
            port=9092,
            networks=(HULEEDU_NETWORK,),
            env={
                "KAFKA_NODE_ID": "1",
                "KAFKA_PROCESS_ROLES": "broker,controller",
                "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
                "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:9092",
                "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
                "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
            },
            volumes={"huleedu_kafka_data": "/var/lib/kafka/data"},
            healthcheck=(
                "/opt/kafka/bin/kafka-topics.sh --bootstrap-server localhost:9092 --list",
            ),
            health_path=None,
        ),
        Service(
            name="redis",
            container="huleedu_redis",
            image=Pull(settings.redis_image),
            port=6379,
            networks=(HULEEDU_NETWORK,),
            volumes={"huleedu_redis_data": "/data"},
            command=("redis-server", "--appendonly", "yes"),
            healthcheck=("redis-cli ping | grep -q PONG",),
            health_path=None,
        ),
    ]
    return App(
        name="huleedu",
        services=tuple(services),
        internal_network=HULEEDU_NETWORK,
        database_role="huleedu_user",
        databases=HULEEDU_DATABASES,
        generated=("jwt-secret", "internal-api-key"),
    )


def observability(config: StackConfig, prometheus_yml: str, promtail_yml: str) -> App:
    obs = config.observability
    return App(
        name="observability",
        generated=("grafana-admin-password",),
        services=(
            Service(
                name="grafana",
                container="grafana",
                image=Pull(obs.grafana_image),
                port=3000,
                networks=(SHARED_NETWORK,),
                route=Route("grafana", 3000, health_path="/api/health"),
                env={
                    "GF_SECURITY_ADMIN_USER": "admin",
                    "GF_SERVER_ROOT_URL": f"https://{config.hostnames.get('grafana', '')}/",
                    "GF_USERS_ALLOW_SIGN_UP": "false",
                },
                secret_env={"GF_SECURITY_ADMIN_PASSWORD": Generated("grafana-admin-password")},
                volumes={"grafana-data": "/var/lib/grafana"},
                healthcheck=wget_probe(3000, "/api/health"),
                health_path="/api/health",
                metrics_path="/metrics",
            ),
            Service(
                name="prometheus",
                container="prometheus",
                image=Pull(obs.prometheus_image),
                port=9090,
                networks=(SHARED_NETWORK, HULEEDU_NETWORK),
                route=Route("prometheus", 9090, basic_auth=True, health_path="/-/healthy"),
                volumes={"prometheus-data": "/prometheus"},
                uploads={"/etc/prometheus/prometheus.yml": prometheus_yml},
                command=(
                    "--config.file=/etc/prometheus/prometheus.yml",
                    "--storage.tsdb.path=/prometheus",
                    f"--storage.tsdb.retention.time={obs.prometheus_retention}",
                    f"--web.external-url=https://{config.hostnames.get('prometheus', '')}/",
                ),
                healthcheck=wget_probe(9090, "/-/healthy"),
                health_path="/-/healthy",
                metrics_path="/metrics",
            ),
            Service(
                name="jaeger",
                container="jaeger",
                image=Pull(obs.jaeger_image),
                port=16686,
                networks=(SHARED_NETWORK, HULEEDU_NETWORK),
                route=Route("jaeger", 16686, basic_auth=True, health_path="/"),
                env={
                    "SPAN_STORAGE_TYPE": "badger",
                    "BADGER_EPHEMERAL": "false",
                    "BADGER_DIRECTORY_VALUE": "/badger/data",
                    "BADGER_DIRECTORY_KEY": "/badger/key",
                    "COLLECTOR_OTLP_ENABLED": "true",
                },
                volumes={"jaeger-data": "/badger"},
                healthcheck=wget_probe(14269, "/"),
                health_path="/",
            ),
            Service(
                name="loki",
                container="loki",
                image=Pull(obs.loki_image),
                port=3100,
                networks=(SHARED_NETWORK,),
                volumes={"loki-data": "/loki"},
                healthcheck=wget_probe(3100, "/ready"),
                health_path="/ready",
                metrics_path="/metrics",
            ),
            Service(
                name="promtail",
                container="promtail",
                image=Pull(obs.promtail_image),
                port=9080,
                networks=(SHARED_NETWORK,),
                volumes={"promtail-positions": "/var/lib/promtail"},
                uploads={"/etc/promtail/config.yml": promtail_yml},
                command=("-config.file=/etc/promtail/config.yml",),
                docker_socket="read-only",
                healthcheck=bash_probe(9080, "/ready"),
                health_path="/ready",
            ),
        ),
    )


def classhub(config: StackConfig) -> App:
    hub = config.class_hub
    queue = {
        "HELPER_MAX_CONCURRENCY": str(hub.helper_max_concurrency),
        "HELPER_QUEUE_MAX_WAIT_SECONDS": f"{hub.helper_queue_max_wait_seconds:g}",
        "HELPER_QUEUE_POLL_SECONDS": f"{hub.helper_queue_poll_seconds:g}",
        "HELPER_QUEUE_SLOT_TTL_SECONDS": str(hub.helper_queue_slot_ttl_seconds),
    }
    django = {
        "DJANGO_DEBUG": "0",
        # Migrations run after each deploy (below), not at boot: no boot-time races.
        "RUN_MIGRATIONS_ON_START": "0",
        "REDIS_URL": "redis://redis:6379/0",
        "MINIO_ENDPOINT": "minio:9000",
        "OLLAMA_BASE_URL": "http://ollama:11434",
        "CLASSHUB_INTERNAL_EVENTS_URL": "http://classhub_web:8000/internal/events/",
        "CLASSHUB_SUBMISSION_RETENTION_DAYS": str(hub.submission_retention_days),
        "CLASSHUB_STUDENT_EVENT_RETENTION_DAYS": str(hub.student_event_retention_days),
    }
    secrets: dict[str, SecretSource] = {
        "DATABASE_URL": DatabaseUrl("classhub"),
        "DJANGO_SECRET_KEY": Generated("django-secret-key"),
        "CLASSHUB_INTERNAL_EVENTS_TOKEN": Generated("internal-events-token"),
        "MINIO_ACCESS_KEY": Generated("minio-root-user"),
        "MINIO_SECRET_KEY": Generated("minio-root-password"),
    }
    networks = (SHARED_NETWORK, CLASSHUB_NETWORK)
    return App(
        name="classhub",
        internal_network=CLASSHUB_NETWORK,
        database_role="classhub",
        databases=("classhub",),
        generated=(
            "django-secret-key",
            "internal-events-token",
            "minio-root-user",
            "minio-root-password",
        ),
        services=(
            Service(
                name="classhub_web",
                container="classhub_web",
                image=Build(tag="classhub-web:hemma", dockerfile="classhub/Dockerfile"),
                port=8000,
                networks=networks,
                route=Route("classhub", 8000, max_body_size=hub.max_body_size),
                env={**django, "ALLOWED_HOSTS": config.hostnames.get("classhub", "")},
                secret_env=secrets,
                volumes={"classhub-uploads": "/app/media"},
                healthcheck=http_probe(8000),
                migration="python manage.py migrate --noinput",
            ),
            Service(
                name="helper_web",
                container="helper_web",
                image=Build(tag="classhub-helper-web:hemma", dockerfile="helper/Dockerfile"),
                port=8000,
                networks=networks,
                route=Route("classhub-helper", 8000, max_body_size=hub.helper_max_body_size),
                env={
                    **django,
                    **queue,
                    "ALLOWED_HOSTS": config.hostnames.get("classhub-helper", ""),
                    "OLLAMA_MODEL": hub.ollama_model,
                },
                secret_env=secrets,
                healthcheck=http_probe(8000),
                migration="python manage.py migrate --noinput",
            ),
            Service(
                name="ollama",
                container="classhub_ollama",
                image=Pull(hub.ollama_image),
                port=11434,
                networks=(CLASSHUB_NETWORK,),
                localhost_ports=(LocalPort(11434, 11434),),
                volumes={"classhub-ollama": "/root/.ollama"},
                healthcheck=("ollama list >/dev/null",),
                health_path="/api/tags",
            ),
            Service(
                name="minio",
                container="classhub_minio",
                image=Pull(hub.minio_image),
                port=9000,
                networks=(CLASSHUB_NETWORK,),
                command=("server", "/data"),
                secret_env={
                    "MINIO_ROOT_USER": Generated("minio-root-user"),
                    "MINIO_ROOT_PASSWORD": Generated("minio-root-password"),
                },
                volumes={"classhub-minio": "/data"},
                healthcheck=(
                    "mc ready local >/dev/null 2>&1 || curl -fsS http://127.0.0.1:9000/minio/health/live",
                ),
                health_path="/minio/health/live",
            ),
            Service(
                name="redis",
                container="classhub_redis",
                image=Pull(hub.redis_image),
                port=6379,
                networks=(CLASSHUB_NETWORK,),
                volumes={"classhub-redis": "/data"},
                command=("redis-server", "--appendonly", "yes"),
                healthcheck=("redis-cli ping | grep -q PONG",),
                health_path=None,
            ),
        ),
    )


def apps(config: StackConfig) -> tuple[App, ...]:
    """Every app Hemma runs with this config."""
    from components.observability_files import prometheus_config, promtail_config

    enabled = [skriptoteket(config), huleedu(config)]
    if config.class_hub.enabled:
        enabled.append(classhub(config))
    scraped = tuple(enabled)
    return (
        *enabled,
        observability(config, prometheus_config(scraped), promtail_config(config)),
    )


def all_route_ids(config: StackConfig) -> list[str]:
    """Route ids of every app that can be enabled, for telling typos from disabled apps."""
    with_everything = config.model_copy(
        update={"class_hub": config.class_hub.model_copy(update={"enabled": True})}
    )
    return [route.id for app in apps(with_everything) for route in app.routes]
