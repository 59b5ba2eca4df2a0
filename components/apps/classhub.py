"""Class Hub (runbook 004): ``classhub_web`` and ``helper_web`` behind nginx-proxy,
Ollama on 127.0.0.1:11434, MinIO and Redis on its internal network, its
database on shared-postgres, the retention timer and the orphan-upload report.
Off unless enabled.

It sits behind nginx-proxy instead of the runbook's Caddy. The helper is served
at ``/helper/`` on the Class Hub host, as the runbook serves it (its smoke check
is ``/helper/healthz``), through nginx-proxy's ``VIRTUAL_PATH``; the path's own
location file carries the helper's 1 MB limit, the host's file the 650 MB one.
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
    HttpProbe,
    LocalPort,
    Pull,
    Route,
    SecretSource,
    Service,
    ShellProbe,
    Step,
)
from components.model.host import HostFile, Job
from components.model.rollout import in_service
from components.model.site import Site
from components.model.values import (
    Argument,
    BodySize,
    Count,
    Days,
    Flag,
    Image,
    Placed,
    Schedule,
    Seconds,
)

NETWORK = "classhub_internal_network"
WEB_CONTAINER = "classhub_web"
HELPER_PATH = "/helper/"
MIGRATE = ("python", "manage.py", "migrate", "--noinput")
CHECK = ("python", "manage.py", "check")


class Settings(Placed):
    """Class Hub (``hemma:classHub``); its hostname is ``hostnames.classhub``."""

    enabled: Flag = False
    keep_data: Flag = False
    """With ``enabled: false``: keep declaring the app's volumes, role and database
    (protected), so that switching Class Hub off removes its containers only."""
    retention_schedule: Schedule = "daily"
    orphan_uploads_schedule: Schedule = "weekly"
    submission_retention_days: Days = 90
    student_event_retention_days: Days = 180
    max_body_size: BodySize = "650m"
    helper_max_body_size: BodySize = "1m"
    helper_max_concurrency: Annotated[Count, Field(le=64)] = 2
    helper_queue_max_wait_seconds: Seconds = 10
    helper_queue_poll_seconds: Annotated[Seconds, Field(le=60)] = 0.2
    helper_queue_slot_ttl_seconds: Count = 120
    ollama_model: Argument = "llama3.2:1b"
    ollama_image: Image = "ollama/ollama:0.5.7"
    minio_image: Image = "minio/minio:RELEASE.2025-01-20T14-49-07Z"
    redis_image: Image = "redis:7.4-alpine"


def manage_py(job: str, site: Site) -> tuple[tuple[str, ...], HostFile]:
    """Django's manage.py in classhub_web, as the host job ``job`` runs it: classhub_web
    deploys start-first, so the job finds it by its label, not its name."""
    script = in_service(job, site.docker_path, WEB_CONTAINER)
    return (script.path, "python", "manage.py"), script


def retention_job(settings: Settings, site: Site) -> Job:
    """The runbook's retention commands in classhub_web, on a timer."""
    manage, script = manage_py("classhub-retention", site)
    submissions, events = settings.submission_retention_days, settings.student_event_retention_days
    return Job(
        name="classhub-retention",
        description="Class Hub retention: prune old submissions and student events",
        what="Class Hub retention",
        exec_start=(
            (*manage, "prune_submissions", "--older-than-days", str(submissions)),
            (*manage, "prune_student_events", "--older-than-days", str(events)),
        ),
        schedule=settings.retention_schedule,
        requires=(site.docker_service,),
        extra_files=(script,),
    )


def orphan_uploads_job(settings: Settings, site: Site) -> Job:
    """The runbook's orphan-upload scavenger, as a report: deleting orphans is a
    decision the runbook leaves to a person who has read the report."""
    manage, script = manage_py("classhub-orphan-uploads", site)
    return Job(
        name="classhub-orphan-uploads",
        description="Class Hub: report upload files that no database row refers to",
        what="the Class Hub orphan-upload report",
        exec_start=((*manage, "scavenge_orphan_uploads"),),
        schedule=settings.orphan_uploads_schedule,
        requires=(site.docker_service,),
        extra_files=(script,),
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
        jobs=(retention_job(settings, site), orphan_uploads_job(settings, site)),
        # The runbook's drill: restore into a temporary database, and both Django
        # services migrate and pass Django's checks against it.
        drill_probes={"classhub": "SELECT count(*) FROM django_migrations"},
        drill_checks=tuple(
            ("classhub", container, command)
            for container in (WEB_CONTAINER, "helper_web")
            for command in (MIGRATE, CHECK)
        ),
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
                image=Build(repository="classhub-web", dockerfile="classhub/Dockerfile"),
                port=8000,
                networks=networks,
                route=Route("classhub", 8000, max_body_size=settings.max_body_size),
                env={**django, "ALLOWED_HOSTS": site.hostname("classhub")},
                secret_env=secrets,
                volumes={"classhub-uploads": "/app/media"},
                healthcheck=HttpProbe(8000),
                stop_grace_seconds=30,
                after_start=(Step("migrate", MIGRATE),),
                # Django writes each upload to its own file: two copies can share them.
                rollout="start-first",
                overlap_volumes=("classhub-uploads",),
            ),
            Service(
                name="helper_web",
                container="helper_web",
                image=Build(repository="classhub-helper-web", dockerfile="helper/Dockerfile"),
                port=8000,
                networks=networks,
                route=Route(
                    "classhub",
                    8000,
                    max_body_size=settings.helper_max_body_size,
                    path=HELPER_PATH,
                    health_path=f"{HELPER_PATH}healthz",
                ),
                env={
                    **django,
                    **queue,
                    "ALLOWED_HOSTS": site.hostname("classhub"),
                    "OLLAMA_MODEL": settings.ollama_model,
                },
                secret_env=secrets,
                healthcheck=HttpProbe(8000, f"{HELPER_PATH}healthz"),
                after_start=(Step("migrate", MIGRATE),),
                rollout="start-first",
            ),
            Service(
                name="ollama",
                container="classhub_ollama",
                image=Pull(settings.ollama_image),
                port=11434,
                networks=(NETWORK,),
                localhost_ports=(LocalPort(11434, 11434),),
                volumes={"classhub-ollama": "/root/.ollama"},
                volume_backups={"classhub-ollama": "skip"},
                healthcheck=ShellProbe("ollama list >/dev/null"),
                stop_grace_seconds=30,
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
                volume_backups={"classhub-minio": "stop"},
                # The image carries mc and a static curl (minio/minio Dockerfile).
                healthcheck=ShellProbe("mc ready local >/dev/null 2>&1"),
                stop_grace_seconds=30,
            ),
            Service(
                name="redis",
                container="classhub_redis",
                image=Pull(settings.redis_image),
                port=6379,
                networks=(NETWORK,),
                volumes={"classhub-redis": "/data"},
                command=("redis-server", "--appendonly", "yes"),
                healthcheck=ShellProbe("redis-cli ping | grep -q PONG"),
                stop_grace_seconds=30,
            ),
        ),
    )


SPEC = AppSpec(
    "class_hub",
    Settings,
    declare,
    enabled=lambda settings: settings.enabled,
    retained=lambda settings: settings.keep_data,
)
