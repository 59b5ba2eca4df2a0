"""Skriptoteket: ``skriptoteket-web`` behind skriptoteket.hule.education, its runner
image, its database on shared-postgres and the runbooks' three cleanup timers."""

from __future__ import annotations

from components.apps.huleedu import NETWORK as HULEEDU_NETWORK
from components.model.app import (
    HOST_GATEWAY,
    SHARED_NETWORK,
    App,
    AppSpec,
    Build,
    DatabaseUrl,
    Route,
    Service,
    http_probe,
)
from components.model.host import Job
from components.model.site import Site
from components.model.values import Model, Schedule

CONTAINER = "skriptoteket-web"
RUNNER_IMAGE = "skriptoteket-runner:hemma"


class Settings(Model):
    """The Skriptoteket cleanup timers (``hemma:skriptoteketCleanup``)."""

    enabled: bool = True
    sandbox_snapshots_schedule: Schedule = "hourly"
    login_events_schedule: Schedule = "daily"
    session_files_schedule: Schedule = "hourly"


def cleanup_jobs(settings: Settings, site: Site) -> tuple[Job, ...]:
    """The runbooks' three cleanup timers: the CLI run inside skriptoteket-web."""
    if not settings.enabled:
        return ()
    cli = (
        f"{site.docker_path} exec -e PYTHONPATH=/app/src {CONTAINER} "
        "pdm run python -m skriptoteket.cli"
    )
    jobs = [
        ("sandbox-snapshots", "sandbox snapshot", settings.sandbox_snapshots_schedule),
        ("login-events", "login events", settings.login_events_schedule),
        ("session-files", "session files", settings.session_files_schedule),
    ]
    return tuple(
        Job(
            name=f"skriptoteket-{slug}-cleanup",
            description=f"Skriptoteket {what} cleanup",
            what=f"{what} cleanup",
            exec_start=(f"{cli} cleanup-{slug}",),
            schedule=schedule,
            requires=(site.docker_service,),
        )
        for slug, what, schedule in jobs
    )


def declare(settings: Settings, site: Site, peers: tuple[App, ...]) -> App:
    gpu = f"http://{HOST_GATEWAY}"
    return App(
        name="skriptoteket",
        database_role="skriptoteket",
        databases=("skriptoteket",),
        jobs=cleanup_jobs(settings, site),
        services=(
            Service(
                name="web",
                container=CONTAINER,
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
                    "LLM_COMPLETIONS_URL": f"{gpu}:{site.llama_port}",
                    "TABBY_URL": f"{gpu}:{site.tabby_port}",
                    "RUNNER_IMAGE": RUNNER_IMAGE,
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
                extra_images=(Build(tag=RUNNER_IMAGE, dockerfile="Dockerfile.runner"),),
            ),
        ),
    )


SPEC = AppSpec("skriptoteket_cleanup", Settings, declare)
