"""HuleEdu: its 17 services, Kafka, Redis, the localhost-only research services
(language tool on 127.0.0.1:8085, the DeBERTa offload server on 127.0.0.1:9000),
and the 13 databases owned by ``huleedu_user``.

Facts from runbooks 000 and 001: hostnames, container names, the routed ports,
the databases and the .env. Where they are silent (Dockerfile paths, the
internal port 8000, health and metrics paths) the entries say what they assume;
the README lists these for the operator to confirm.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.model.allowed.daemon import GpuDevice
from components.model.app import (
    HOST_GATEWAY,
    SHARED_NETWORK,
    App,
    AppSpec,
    Build,
    DatabasePassword,
    DatabaseUrl,
    Generated,
    HttpProbe,
    LocalPort,
    OperatorSecret,
    Pull,
    Route,
    SecretSource,
    Service,
    ShellProbe,
)
from components.model.site import Site
from components.model.values import (
    GroupId,
    Hostname,
    Image,
    LoginName,
    Placed,
    Port,
)

NETWORK = "huleedu_internal_network"
ALEMBIC_PROBE = "SELECT count(*) FROM alembic_version"
"""The services migrate with Alembic (an assumption the README lists)."""
KAFKA_CLUSTER_ID = "5L6g3nShT-eMCtK--X86sw"
"""apache/kafka's default CLUSTER_ID (docker/resources/common-scripts/configureDefaults)."""
"""All HuleEdu services, Kafka and Redis; Skriptoteket's runners join it for nlp_service."""


class Settings(Placed):
    """HuleEdu settings from the runbooks' .env (``hemma:huleedu``)."""

    smtp_host: Hostname = "mail.privateemail.com"
    smtp_port: Port = 587
    smtp_username: LoginName = "noreply@hule.education"
    offload_base_image: Image = "rocm/pytorch:latest"
    offload_torch_device: Annotated[str, Field(pattern=r"^(cpu|cuda(:[0-9]+)?)$")] = "cuda"
    offload_devices: list[GpuDevice] = Field(default_factory=lambda: ["/dev/kfd", "/dev/dri"])
    offload_groups: list[GroupId] = Field(default_factory=lambda: ["44", "109"])
    """The host's ``video`` and ``render`` group ids (``getent group video render``)."""
    kafka_image: Image = "apache/kafka:3.8.1"
    redis_image: Image = "redis:7.4-alpine"


DATABASES = (
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
SERVICES: dict[str, tuple[int, str | None, dict[str, SecretSource]]] = {
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
_ROUTES = {
    "api_gateway_service": "huleedu-api",
    "bff_teacher_service": "huleedu",
    "websocket_service": "huleedu-ws",
}
_GPU = {"nlp_service", "llm_provider_service"}


def declare(settings: Settings, site: Site, peers: tuple[App, ...]) -> App:
    gpu = f"http://{HOST_GATEWAY}:{site.llama_port}"
    common = {
        "ENVIRONMENT": "production",
        "HULEEDU_DB_USER": "huleedu_user",
        "HULEEDU_DB_HOST": site.postgres_host,
        "HULEEDU_DB_PORT": str(site.postgres_port),
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
    for name, (port, database, extra) in SERVICES.items():
        route_id = _ROUTES.get(name)
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
                    repository=f"huleedu-{name.replace('_', '-')}",
                    dockerfile=f"services/{name}/Dockerfile",
                ),
                port=port,
                # Routed services and those that reach shared-postgres join hule-network.
                networks=(NETWORK,) + ((SHARED_NETWORK,) if route_id or database else ()),
                route=Route(route_id, port) if route_id else None,
                env={**common, "SERVICE_NAME": name, "HTTP_PORT": str(port)}
                | ({"DATABASE_NAME": database} if database else {}),
                secret_env=secret_env,
                healthcheck=HttpProbe(port),
                metrics_path="/metrics",
                host_gateway=name in _GPU,
                # Stateless HTTP services: a routed one deploys beside its old copy.
                rollout="start-first" if route_id else "delete-first",
            )
        )
    services += [
        Service(
            name="language_tool_service",
            container="huleedu_language_tool_service",
            image=Build(
                repository="huleedu-language-tool-service",
                dockerfile="services/language_tool_service/Dockerfile",
            ),
            port=8085,
            networks=(NETWORK,),
            localhost_ports=(LocalPort(8085, 8085, tunnel_port=18085),),
            env={"ENVIRONMENT": "production", "HTTP_PORT": "8085"},
            healthcheck=HttpProbe(8085),
        ),
        Service(
            name="essay_embed_offload",
            container="huleedu_essay_embed_offload",
            image=Build(
                repository="huleedu-essay-embed-offload",
                dockerfile="scripts/ml_training/essay_scoring/offload/Dockerfile",
                args={"BASE_IMAGE": settings.offload_base_image},
            ),
            port=9000,
            networks=(NETWORK,),
            localhost_ports=(LocalPort(9000, 9000, tunnel_port=19000),),
            env={
                "OFFLOAD_HTTP_PORT": "9000",
                "OFFLOAD_TORCH_DEVICE": settings.offload_torch_device,
            },
            volumes={"huleedu_hf_cache": "/root/.cache/huggingface"},
            volume_backups={"huleedu_hf_cache": "skip"},
            healthcheck=HttpProbe(9000),
            stop_grace_seconds=30,
            devices=tuple(settings.offload_devices),
            # By number: a group name must exist in the image, or the container
            # cannot start; the host's video and render groups own /dev/kfd and /dev/dri.
            group_adds=tuple(settings.offload_groups) if settings.offload_devices else (),
        ),
        Service(
            name="kafka",
            container="huleedu_kafka",
            image=Pull(settings.kafka_image),
            port=9092,
            networks=(NETWORK,),
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
                # The image's own default, fixed here: the log directory is formatted
                # with it once, and a broker with another id refuses that data.
                "CLUSTER_ID": KAFKA_CLUSTER_ID,
            },
            volumes={"huleedu_kafka_data": "/var/lib/kafka/data"},
            # A live copy of a broker's log segments need not be consistent.
            volume_backups={"huleedu_kafka_data": "stop"},
            # The broker accepts connections: a JVM tool such as kafka-topics.sh needs
            # several seconds to start, longer than a health check may take.
            healthcheck=ShellProbe("bash -c 'exec 3<>/dev/tcp/127.0.0.1/9092'"),
            start_period=90,
            stop_grace_seconds=60,
        ),
        Service(
            name="redis",
            container="huleedu_redis",
            image=Pull(settings.redis_image),
            port=6379,
            networks=(NETWORK,),
            volumes={"huleedu_redis_data": "/data"},
            command=("redis-server", "--appendonly", "yes"),
            healthcheck=ShellProbe("redis-cli ping | grep -q PONG"),
            stop_grace_seconds=30,
        ),
    ]
    return App(
        name="huleedu",
        services=tuple(services),
        internal_network=NETWORK,
        database_role="huleedu_user",
        databases=DATABASES,
        generated=("jwt-secret", "internal-api-key"),
        drill_probes={database: ALEMBIC_PROBE for database in DATABASES},
    )


SPEC = AppSpec("huleedu", Settings, declare)
