"""Class Hub (runbook 004): ``classhub_web`` and ``helper_web`` behind nginx-proxy,
Ollama on 127.0.0.1:11434, MinIO and Redis on its internal network, its
database on shared-postgres and the retention timer. Off unless enabled.

It sits behind nginx-proxy instead of the runbook's Caddy, so the request-size
limits (650 MB for Class Hub, 1 MB for the helper) are per host.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.model.app import (
    SHARED_NETWORK,
    App,
    AppSpec,
    Build,
    DatabaseUrl,
    Generated,
    LocalPort,
    Pull,
    Route,
    SecretSource,
    Service,
    http_probe,
)
from components.model.host import Job
from components.model.site import Site
from components.model.values import Argument, BodySize, Days, Image, Model, Schedule

NETWORK = "classhub_internal_network"
WEB_CONTAINER = "classhub_web"


class Settings(Model):
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


def retention_job(settings: Settings, site: Site) -> Job:
    """The runbook's retention commands in classhub_web, on a timer."""
    manage = f"{site.docker_path} exec {WEB_CONTAINER} python manage.py"
    submissions, events = settings.submission_retention_days, settings.student_event_retention_days
    return Job(
        name="classhub-retention",
        description="Class Hub retention: prune old submissions and student events",
        what="Class Hub retention",
        exec_start=(
            f"{manage} prune_submissions --older-than-days {submissions}",
            f"{manage} prune_student_events --older-than-days {events}",
        ),
        schedule=settings.retention_schedule,
        requires=(site.docker_service,),
    )


def declare(settings: Settings, site: Site, peers: tuple[App, ...]) -> App:
    queue = {
        "HELPER_MAX_CONCURRENCY": str(settings.helper_max_concurrency),
        "HELPER_QUEUE_MAX_WAIT_SECONDS": f"{settings.helper_queue_max_wait_seconds:g}",
        "HELPER_QUEUE_POLL_SECONDS": f"{settings.helper_queue_poll_seconds:g}",
        "HELPER_QUEUE_SLOT_TTL_SECONDS": str(settings.helper_queue_slot_ttl_seconds),
    }
    django = {
        "DJANGO_DEBUG": "0",
        # Migrations run after each deploy (below), not at boot: no boot-time races.
        "RUN_MIGRATIONS_ON_START": "0",
        "REDIS_URL": "redis://redis:6379/0",
        "MINIO_ENDPOINT": "minio:9000",
        "OLLAMA_BASE_URL": "http://ollama:11434",
        "CLASSHUB_INTERNAL_EVENTS_URL": "http://classhub_web:8000/internal/events/",
        "CLASSHUB_SUBMISSION_RETENTION_DAYS": str(settings.submission_retention_days),
        "CLASSHUB_STUDENT_EVENT_RETENTION_DAYS": str(settings.student_event_retention_days),
    }
    secrets: dict[str, SecretSource] = {
        "DATABASE_URL": DatabaseUrl("classhub"),
        "DJANGO_SECRET_KEY": Generated("django-secret-key"),
        "CLASSHUB_INTERNAL_EVENTS_TOKEN": Generated("internal-events-token"),
        "MINIO_ACCESS_KEY": Generated("minio-root-user"),
        "MINIO_SECRET_KEY": Generated("minio-root-password"),
    }
    networks = (SHARED_NETWORK, NETWORK)
    return App(
        name="classhub",
        jobs=(retention_job(settings, site),),
        internal_network=NETWORK,
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
                container=WEB_CONTAINER,
                image=Build(tag="classhub-web:hemma", dockerfile="classhub/Dockerfile"),
                port=8000,
                networks=networks,
                route=Route("classhub", 8000, max_body_size=settings.max_body_size),
                env={**django, "ALLOWED_HOSTS": site.hostname("classhub")},
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
                route=Route("classhub-helper", 8000, max_body_size=settings.helper_max_body_size),
                env={
                    **django,
                    **queue,
                    "ALLOWED_HOSTS": site.hostname("classhub-helper"),
                    "OLLAMA_MODEL": settings.ollama_model,
                },
                secret_env=secrets,
                healthcheck=http_probe(8000),
                migration="python manage.py migrate --noinput",
            ),
            Service(
                name="ollama",
                container="classhub_ollama",
                image=Pull(settings.ollama_image),
                port=11434,
                networks=(NETWORK,),
                localhost_ports=(LocalPort(11434, 11434),),
                volumes={"classhub-ollama": "/root/.ollama"},
                healthcheck=("ollama list >/dev/null",),
                health_path="/api/tags",
            ),
            Service(
                name="minio",
                container="classhub_minio",
                image=Pull(settings.minio_image),
                port=9000,
                networks=(NETWORK,),
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
                image=Pull(settings.redis_image),
                port=6379,
                networks=(NETWORK,),
                volumes={"classhub-redis": "/data"},
                command=("redis-server", "--appendonly", "yes"),
                healthcheck=("redis-cli ping | grep -q PONG",),
                health_path=None,
            ),
        ),
    )


SPEC = AppSpec("class_hub", Settings, declare, enabled=lambda settings: settings.enabled)
