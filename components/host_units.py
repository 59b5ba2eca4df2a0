"""Which systemd units Hemma runs, as a pure function of config.

The cleanup timers are the runbooks' unit files; the GPU servers, the SMART-log
retention, the Class Hub retention and the database backups follow the same
pattern. Each group can be switched off in config.
"""

from __future__ import annotations

import shlex
from importlib import resources

from components.catalog import App
from components.config import GpuServerConfig, StackConfig
from components.unit_files import Daemon, HostFile, Job, UnitGroup

SKRIPTOTEKET_CONTAINER = "skriptoteket-web"
CLASSHUB_CONTAINER = "classhub_web"
BACKUP_SCRIPT = "/usr/local/lib/hemma/postgres-backup.sh"
BACKUP_CREDENTIALS = "/etc/hemma/postgres-backup.env"
GPU_GROUPS = ("render", "video")


def backup_script() -> str:
    return resources.files("components").joinpath("files/postgres-backup.sh").read_text()


def skriptoteket_cleanup(config: StackConfig) -> list[Job]:
    """The runbooks' three cleanup timers: the CLI run inside skriptoteket-web."""
    cleanup = config.skriptoteket_cleanup
    cli = (
        f"{config.docker_path} exec -e PYTHONPATH=/app/src {SKRIPTOTEKET_CONTAINER} "
        "pdm run python -m skriptoteket.cli"
    )
    jobs = [
        ("sandbox-snapshots", "sandbox snapshot", cleanup.sandbox_snapshots_schedule),
        ("login-events", "login events", cleanup.login_events_schedule),
        ("session-files", "session files", cleanup.session_files_schedule),
    ]
    return [
        Job(
            name=f"skriptoteket-{slug}-cleanup",
            description=f"Skriptoteket {what} cleanup",
            what=f"{what} cleanup",
            exec_start=(f"{cli} cleanup-{slug}",),
            schedule=schedule,
            requires=(config.docker_service,),
        )
        for slug, what, schedule in jobs
    ]


def smart_logs_cleanup(config: StackConfig) -> Job:
    logs = config.smart_logs
    return Job(
        name="cleanup-smart-logs",
        description=f"Remove incident and SMART logs older than {logs.keep_days} days",
        what="incident and SMART log cleanup",
        exec_start=(
            f"/usr/bin/find {logs.directory} -type f ( -name incident-*.log -o "
            f"-path {logs.directory}/smart/* ) -mtime +{logs.keep_days} -delete",
        ),
        schedule=logs.schedule,
    )


def _gpu_command(server: GpuServerConfig, *head: str, bind: str) -> str:
    listen = ["--host", bind, "--port", str(server.port)]
    return " ".join([server.executable, *head, "--model", server.model, *listen, *server.args])


def gpu_servers(config: StackConfig) -> list[Daemon]:
    gpu = config.gpu
    user = gpu.user or config.ssh_user
    return [
        Daemon(
            name="llama-server-rocm",
            description=f"llama.cpp server (ROCm) on port {gpu.llama.port}",
            exec_start=_gpu_command(gpu.llama, bind=gpu.bind_address),
            user=user,
            after=(config.docker_service,),
            groups=GPU_GROUPS,
        ),
        Daemon(
            name="tabby",
            description=f"Tabby code completion on port {gpu.tabby.port}",
            exec_start=_gpu_command(gpu.tabby, "serve", bind=gpu.bind_address),
            user=user,
            after=(config.docker_service,),
            groups=GPU_GROUPS,
        ),
    ]


def classhub_retention(config: StackConfig) -> Job:
    hub = config.class_hub
    manage = f"{config.docker_path} exec {CLASSHUB_CONTAINER} python manage.py"
    return Job(
        name="classhub-retention",
        description="Class Hub retention: prune old submissions and student events",
        what="Class Hub retention",
        exec_start=(
            f"{manage} prune_submissions --older-than-days {hub.submission_retention_days}",
            f"{manage} prune_student_events --older-than-days {hub.student_event_retention_days}",
        ),
        schedule=hub.retention_schedule,
        requires=(config.docker_service,),
    )


def backup_databases(catalog: tuple[App, ...]) -> list[str]:
    return [database for app in catalog for database in app.databases]


def postgres_backups(config: StackConfig, catalog: tuple[App, ...]) -> Job:
    backups = config.backups
    args = [
        BACKUP_SCRIPT,
        config.docker_path,
        config.postgres.container_name,
        BACKUP_CREDENTIALS,
        backups.directory,
        str(backups.keep_days),
        *backup_databases(catalog),
    ]
    return Job(
        name="hemma-postgres-backup",
        description="Dump every app database on shared-postgres",
        what="the database backups",
        exec_start=(shlex.join(args),),
        schedule=backups.schedule,
        requires=(config.docker_service,),
        extra_files=(HostFile(BACKUP_SCRIPT, backup_script(), mode="0755"),),
        secret_file=BACKUP_CREDENTIALS,
    )


def backup_credentials(password: str) -> str:
    """The root-only env file pg_dump reads inside the container."""
    return f"PGUSER=postgres\nPGPASSWORD={password}\n"


def host_unit_groups(config: StackConfig, catalog: tuple[App, ...]) -> list[UnitGroup]:
    """Every unit group Hemma gets with this config."""
    jobs: list[Job] = []
    daemons: list[Daemon] = []
    if config.skriptoteket_cleanup.enabled:
        jobs += skriptoteket_cleanup(config)
    if config.smart_logs.enabled:
        jobs.append(smart_logs_cleanup(config))
    if config.class_hub.enabled:
        jobs.append(classhub_retention(config))
    if config.backups.enabled:
        jobs.append(postgres_backups(config, catalog))
    if config.gpu.enabled:
        daemons += gpu_servers(config)
    return [job.group() for job in jobs] + [daemon.group() for daemon in daemons]
