"""The backup's host jobs, as data: what runs when, with which arguments and files.

- ``hemma-backup``: every night, a dump of every app database inside
  shared-postgres and one restic snapshot of the dumps and the data volumes,
  pruned by the keep policy (``files/hemma-backup.sh``);
- ``hemma-backup-check``: restic's own integrity check of the repository;
- ``hemma-restore-drill``: the latest snapshot's dumps restored into scratch
  databases, each app's probes run there, a sample of volume files compared;
- ``hemma-host-metrics``: every minute, the containers' health and restarts,
  failed units and disk use, as textfile metrics for the alerts.

Each writes Prometheus textfile metrics that node-exporter serves. The
repository's secrets reach Hemma once, as the root-only env file the backup
job installs from its command's stdin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from components.backups.install import RESTIC_FILES, restic_version_check, script_text
from components.backups.restic import (
    DRILL_SCRATCH,
    ENV_FILE,
    HOST_METRICS_SCRIPT,
    LIB,
    Keep,
    backup_argv,
    check_argv,
    drill_argv,
    host_metrics_argv,
)
from components.model.app import App
from components.model.host import HostFile, Job

PROBES_FILE = f"{LIB}/drill-probes"
CHECKS_FILE = f"{LIB}/drill-checks"
POLICIES = ("live", "stop", "skip")


@dataclass(frozen=True)
class BackupPlan:
    """What the backup covers and where things go, from the stack config."""

    docker: str
    docker_service: str
    postgres: str
    dumps: str
    metrics: str
    volume_root: str
    keep: Keep
    schedule: str
    check_schedule: str
    drill_schedule: str
    drill_sample: int
    databases: Sequence[str]
    volumes: Sequence[tuple[str, str, Sequence[str]]]
    """(Docker name, live | stop, containers to stop) for every volume backed up."""
    probes: Sequence[tuple[str, str]]
    checks: Sequence[tuple[str, str, Sequence[str]]] = ()
    """(database, container, argv) run against the restored copy."""


def backed_up_volumes(
    catalog: Sequence[App], names: Mapping[str, str], platform: Mapping[str, str]
) -> list[tuple[str, str, list[str]]]:
    """Every data volume and how it is taken: (Docker name, live | stop, containers).

    ``names`` maps an app volume to its Docker name; ``platform`` holds the proxy's
    volumes and their policies. A volume one service takes ``stop`` stops every
    service that asked so; a volume every user skips (a cache) is left out.
    """
    policies: dict[str, dict[str, str]] = {v: {"": p} for v, p in platform.items()}
    for app in catalog:
        for service in app.services:
            for volume in service.volumes:
                policy = service.volume_backups.get(volume, "live")
                if policy not in POLICIES:
                    raise ValueError(f"{service.container}: no backup policy {policy!r}")
                policies.setdefault(names.get(volume, volume), {})[service.container] = policy
    taken = []
    for name, users in sorted(policies.items()):
        stopping = sorted(c for c, p in users.items() if p == "stop" and c)
        if stopping:
            taken.append((name, "stop", stopping))
        elif any(p == "live" for p in users.values()):
            taken.append((name, "live", []))
    return taken


def databases_of(catalog: Sequence[App]) -> list[str]:
    """Every app database, in catalog order."""
    return [database for app in catalog for database in app.databases]


def drill_probes(catalog: Sequence[App]) -> list[tuple[str, str]]:
    return [(db, sql) for app in catalog for db, sql in sorted(app.drill_probes.items())]


def drill_checks(catalog: Sequence[App]) -> list[tuple[str, str, Sequence[str]]]:
    return [check for app in catalog for check in app.drill_checks]


def checks_file(checks: Sequence[tuple[str, str, Sequence[str]]]) -> str:
    """One check per line: DATABASE, CONTAINER and the argv, tab-separated."""
    lines = []
    for database, container, argv in checks:
        words = [database, container, *argv]
        if not argv or any(not w or any(c in w for c in "\t\n\r\0") for w in words):
            raise ValueError(f"a drill check of {database} in {container} cannot be written")
        lines.append("\t".join(words) + "\n")
    return "".join(lines)


def backup_jobs(plan: BackupPlan) -> list[Job]:
    requires = (plan.docker_service,)
    backup = backup_argv(
        plan.docker,
        plan.postgres,
        plan.dumps,
        ENV_FILE,
        plan.metrics,
        plan.volume_root,
        plan.keep,
        plan.databases,
        plan.volumes,
    )
    drill = drill_argv(
        plan.docker,
        plan.postgres,
        ENV_FILE,
        plan.metrics,
        DRILL_SCRATCH,
        plan.dumps,
        (),
        plan.drill_sample,
    )
    probes = "".join(f"{db}:{sql}\n" for db, sql in plan.probes)
    checks = checks_file(plan.checks)
    scripts = tuple(
        HostFile(path, script_text(path.rsplit("/", 1)[-1]), mode=mode)
        for path, mode in RESTIC_FILES.items()
    )
    # Each restic job checks restic on its own install: the three install in parallel.
    preflight = restic_version_check()
    return [
        Job(
            name="hemma-backup",
            description="Back up every database and data volume to the restic repository",
            what="the nightly backup",
            exec_start=(tuple(backup),),
            schedule=plan.schedule,
            requires=requires,
            extra_files=scripts,
            secret_file=ENV_FILE,
            preflight=preflight,
        ),
        Job(
            name="hemma-backup-check",
            description="Check the restic repository's integrity",
            what="the backup repository check",
            exec_start=(tuple(check_argv(ENV_FILE, plan.metrics)),),
            schedule=plan.check_schedule,
            preflight=preflight,
        ),
        Job(
            name="hemma-restore-drill",
            description="Restore the latest backup into scratch and check it",
            what="the restore drill",
            exec_start=((*drill, "--probes", PROBES_FILE, "--checks", CHECKS_FILE),),
            schedule=plan.drill_schedule,
            requires=requires,
            preflight=preflight,
            extra_files=(
                HostFile(PROBES_FILE, probes, mode="0644"),
                HostFile(CHECKS_FILE, checks, mode="0644"),
            ),
        ),
    ]


def host_metrics_job(docker: str, docker_service: str, metrics: str) -> Job:
    """Every minute: what the alerts about containers, units and disks read."""
    return Job(
        name="hemma-host-metrics",
        description="Write the containers' health, failed units and disk use as metrics",
        what="the host metrics",
        exec_start=(tuple(host_metrics_argv(docker, metrics)),),
        schedule="*:*:00",
        requires=(docker_service,),
        extra_files=(
            HostFile(HOST_METRICS_SCRIPT, script_text("hemma-host-metrics.sh"), mode="0755"),
        ),
    )
