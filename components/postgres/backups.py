"""The nightly backup of every app database: a host job that dumps inside shared-postgres."""

from __future__ import annotations

from importlib import resources

from components.config.stack import StackConfig
from components.model.app import App
from components.model.host import HostFile, Job

BACKUP_SCRIPT = "/usr/local/lib/hemma/postgres-backup.sh"
BACKUP_CREDENTIALS = "/etc/hemma/postgres-backup.env"


def backup_script() -> str:
    return resources.files("components.postgres").joinpath("files/postgres-backup.sh").read_text()


def backup_databases(catalog: tuple[App, ...]) -> list[str]:
    """Every app database, in catalog order."""
    return [database for app in catalog for database in app.databases]


def backup_job(config: StackConfig, catalog: tuple[App, ...]) -> Job:
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
        exec_start=(tuple(args),),
        schedule=backups.schedule,
        requires=(config.docker_service,),
        extra_files=(HostFile(BACKUP_SCRIPT, backup_script(), mode="0755"),),
        secret_file=BACKUP_CREDENTIALS,
    )


def backup_credentials(password: str) -> str:
    """The root-only env file pg_dump reads inside the container."""
    return f"PGUSER=postgres\nPGPASSWORD={password}\n"
