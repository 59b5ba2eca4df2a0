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
    HttpProbe,
    Route,
    Service,
    Step,
)
from components.model.host import Job
from components.model.rollout import in_service
from components.model.site import Site
from components.model.values import Flag, Placed, Schedule

CONTAINER = "skriptoteket-web"
ALEMBIC_PROBE = "SELECT count(*) FROM alembic_version"
RUNNER = Build(repository="skriptoteket-runner", dockerfile="Dockerfile.runner")
"""Started by skriptoteket-web for each tool run, by its stable tag: a new runner is
used from the next run on, without restarting the web container."""


class Settings(Placed):
    """The Skriptoteket cleanup timers (``hemma:skriptoteketCleanup``)."""

    enabled: Flag = True
    sandbox_snapshots_schedule: Schedule = "hourly"
    login_events_schedule: Schedule = "daily"
    session_files_schedule: Schedule = "hourly"


def cleanup_jobs(settings: Settings, site: Site) -> tuple[Job, ...]:
    """The runbooks' three cleanup timers: the CLI run inside skriptoteket-web."""
    if not settings.enabled:
        return ()
    cli = ("pdm", "run", "python", "-m", "skriptoteket.cli")
    jobs = [
        ("sandbox-snapshots", "sandbox snapshot", settings.sandbox_snapshots_schedule),
        ("login-events", "login events", settings.login_events_schedule),
        ("session-files", "session files", settings.session_files_schedule),
    ]
    found = []
    for slug, what, schedule in jobs:
        name = f"skriptoteket-{slug}-cleanup"
        # skriptoteket-web deploys start-first: found by its label, not its name.
        script = in_service(name, site.docker_path, CONTAINER, ("-e", "PYTHONPATH=/app/src"))
        found.append(
            Job(
                name=name,
                description=f"Skriptoteket {what} cleanup",
                what=f"{what} cleanup",
                exec_start=((script.path, *cli, f"cleanup-{slug}"),),
                schedule=schedule,
                requires=(site.docker_service,),
                extra_files=(script,),
            )
        )
    return tuple(found)


def declare(settings: Settings, site: Site, peers: tuple[App, ...]) -> App:
    gpu = f"http://{HOST_GATEWAY}"
    return App(
        name="skriptoteket",
        database_role="skriptoteket",
        databases=("skriptoteket",),
        jobs=cleanup_jobs(settings, site),
        # Alembic (pdm run db-upgrade) records the schema version in every database it
        # migrates: a restored copy without it is not Skriptoteket's.
        drill_probes={"skriptoteket": ALEMBIC_PROBE},
        services=(
            Service(
                name="web",
                container=CONTAINER,
                image=Build(repository="skriptoteket-web"),
                port=8000,
                networks=(SHARED_NETWORK,),
                route=Route("skriptoteket", 8000),
                env={
                    "ENVIRONMENT": "production",
                    "ARTIFACTS_ROOT": "/app/.artifacts",
                    # nginx-proxy sends X-Forwarded-Proto; uvicorn (proxy headers on by
                    # default) trusts it only from the addresses in FORWARDED_ALLOW_IPS.
                    # Without it, redirects go to http:// (the runbooks' 307 problem).
                    # Not "*": with it uvicorn takes the leftmost X-Forwarded-For entry,
                    # which the client writes; with the proxy's network it takes the
                    # rightmost untrusted one, which nginx-proxy appends
                    # (uvicorn/middleware/proxy_headers.py, get_trusted_client_host).
                    "FORWARDED_ALLOW_IPS": site.proxy_network,
                    "LLM_COMPLETIONS_URL": f"{gpu}:{site.llama_port}",
                    "TABBY_URL": f"{gpu}:{site.tabby_port}",
                    "RUNNER_IMAGE": RUNNER.stable_tag,
                    "RUNNER_NETWORK": HULEEDU_NETWORK,
                },
                secret_env={
                    "DATABASE_URL": DatabaseUrl("skriptoteket", scheme="postgresql+asyncpg")
                },
                volumes={"skriptoteket-artifacts": "/app/.artifacts"},
                # Each run writes its own artifact directory: two copies can share it.
                rollout="start-first",
                overlap_volumes=("skriptoteket-artifacts",),
                healthcheck=HttpProbe(8000),
                stop_grace_seconds=30,
                metrics_path="/metrics",
                host_gateway=True,
                docker_socket="read-write",
                after_start=(Step("migrate", ("pdm", "run", "db-upgrade")),),
                extra_images=(RUNNER,),
            ),
        ),
    )


SPEC = AppSpec("skriptoteket_cleanup", Settings, declare)
