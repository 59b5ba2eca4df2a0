"""Which systemd units Hemma runs, as a pure function of config.

The apps' own jobs (Skriptoteket's cleanup timers, Class Hub's retention) come
from their modules; the platform adds the GPU model servers and the retention
of the host's incident and SMART logs. Each group can be switched off in config.
"""

from __future__ import annotations

from collections.abc import Sequence

from components.config.stack import StackConfig
from components.host.unit_files import UnitGroup, daemon_group, job_group, relay_group
from components.model.app import App
from components.model.host import Daemon, Job, Relay
from components.model.values import PLATFORM_HOST

GPU_GROUPS = ("render", "video")


def smart_logs_cleanup(config: StackConfig) -> Job:
    logs = config.smart_logs
    return Job(
        name="cleanup-smart-logs",
        description=f"Remove incident and SMART logs older than {logs.keep_days} days",
        what="incident and SMART log cleanup",
        exec_start=(
            (
                *("/usr/bin/find", logs.directory, "-type", "f"),
                *("(", "-name", "incident-*.log", "-o", "-path", f"{logs.directory}/smart/*", ")"),
                *("-mtime", f"+{logs.keep_days}", "-delete"),
            ),
        ),
        schedule=logs.schedule,
    )


def gpu_servers(config: StackConfig) -> list[Daemon]:
    """The servers the operator has handed over (``manage``), listening on loopback, on
    the machine ``gpu.host`` names (its docker unit, its SSH user by default)."""
    gpu = config.gpu
    machine = config.machines()[gpu.host]
    daemons = []
    for name, what, server in (
        ("llama-server-rocm", "llama.cpp server (ROCm)", gpu.llama),
        ("tabby", "Tabby code completion", gpu.tabby),
    ):
        if not server.manage or server.executable is None:
            continue
        listen = ("--host", gpu.bind_address, "--port", str(server.port))
        daemons.append(
            Daemon(
                name=name,
                description=f"{what} on {gpu.bind_address}:{server.port}",
                exec_start=(server.executable, *server.args, *listen),
                user=server.user or machine.ssh_user,
                after=(machine.docker_service,),
                groups=GPU_GROUPS,
                environment=tuple(sorted(server.environment.items())),
                working_directory=server.working_directory,
            )
        )
    return daemons


def gpu_relays(config: StackConfig) -> list[Relay]:
    """docker0 -> loopback for each managed server, so the containers reach it."""
    gpu = config.gpu
    if gpu.relay_address is None:
        return []
    return [
        Relay(
            name=f"hemma-relay-{name}",
            description=f"{name} for the containers: {gpu.relay_address}:{server.port}",
            listen=f"{gpu.relay_address}:{server.port}",
            target=f"{gpu.bind_address}:{server.port}",
        )
        for name, server in (("llama", gpu.llama), ("tabby", gpu.tabby))
        if server.manage
    ]


def host_unit_groups(
    config: StackConfig,
    catalog: tuple[App, ...],
    platform_jobs: Sequence[Job] = (),
    host: str = PLATFORM_HOST,
) -> list[UnitGroup]:
    """Every unit group machine ``host`` gets: the jobs of the apps placed there (the
    catalog as it sees it), Hemma's own, then the daemons where ``gpu.host`` says."""
    jobs = [job for app in catalog for job in app.jobs]
    if config.smart_logs.enabled and host == PLATFORM_HOST:
        jobs.append(smart_logs_cleanup(config))
    jobs += platform_jobs
    groups = [job_group(job) for job in jobs]
    if config.gpu.enabled and config.gpu.host == host:
        groups += [daemon_group(daemon) for daemon in gpu_servers(config)]
        groups += [relay_group(relay) for relay in gpu_relays(config)]
    return groups
