"""Which systemd units Hemma runs, as a pure function of config.

The apps' own jobs (Skriptoteket's cleanup timers, Class Hub's retention) come
from their modules; the platform adds the GPU model servers and the retention
of the host's incident and SMART logs. Each group can be switched off in config.
"""

from __future__ import annotations

from collections.abc import Sequence

from components.config.stack import GpuServerConfig, StackConfig
from components.host.unit_files import UnitGroup, daemon_group, job_group
from components.model.app import App
from components.model.host import Daemon, Job

GPU_GROUPS = ("render", "video")


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


def host_unit_groups(
    config: StackConfig, catalog: tuple[App, ...], platform_jobs: Sequence[Job] = ()
) -> list[UnitGroup]:
    """Every unit group Hemma gets: the apps' jobs, the platform's, then the daemons."""
    jobs = [job for app in catalog for job in app.jobs]
    if config.smart_logs.enabled:
        jobs.append(smart_logs_cleanup(config))
    jobs += platform_jobs
    daemons = gpu_servers(config) if config.gpu.enabled else []
    return [job_group(job) for job in jobs] + [daemon_group(daemon) for daemon in daemons]
