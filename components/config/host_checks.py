"""Checks across keys for what reaches the host: the backup storage's variables
against the repository's back-end, the GPU servers' users, the local stack's paths."""

from __future__ import annotations

from components.config.errors import ValueFree
from components.config.stack import NAMESPACE, StackConfig
from components.model.allowed.directories import LOCAL_ROOT
from components.model.allowed.restic import (
    FILE_VARIABLES,
    ROOT_FILES,
    STORAGE_ENV,
    parse_repository,
)


def host_checks(config: StackConfig) -> list[str]:
    return _storage_env(config) + _server_users(config) + _local_only(config)


def _storage_env(config: StackConfig) -> list[str]:
    """Each storage variable is one the repository's back-end reads."""
    repository = config.backups.repository
    if repository is None:
        return []
    backend = parse_repository(repository).backend
    problems: list[str] = [
        # The value is secret: the line names the variable and the rule only.
        ValueFree(
            f"{NAMESPACE}:backupStorageEnv.{name}: must name files under "
            f"{' or '.join(ROOT_FILES)} (root-only: restic reads them as root)"
        )
        for name, value in sorted(config.backup_storage_env.items())
        if name in FILE_VARIABLES
        and not all(
            f.startswith(ROOT_FILES) and ".." not in f and f == f.strip() for f in value.split(",")
        )
    ]
    return problems + [
        ValueFree(
            f"{NAMESPACE}:backupStorageEnv.{name}: the {backend} repository does not read "
            f"it (it is for {', '.join(sorted(STORAGE_ENV[name]))}); remove it"
        )
        for name in sorted(config.backup_storage_env)
        if backend not in STORAGE_ENV[name]
    ]


def _local_only(config: StackConfig) -> list[str]:
    metrics = config.backups.metrics_directory
    if config.local or not (metrics == LOCAL_ROOT or metrics.startswith(LOCAL_ROOT + "/")):
        return []
    return [
        f"{NAMESPACE}:backups.metricsDirectory: {LOCAL_ROOT} is for the local stack only: "
        "on Hemma a root job writes there (use the default)"
    ]


def _server_users(config: StackConfig) -> list[str]:
    """A managed GPU server listens on a port: it runs as root only when the operator
    says so."""
    problems = []
    for key, server in (("llama", config.gpu.llama), ("tabby", config.gpu.tabby)):
        machine = config.machines().get(config.gpu.host)
        user = server.user or (machine.ssh_user if machine else config.ssh_user)
        if server.manage and user == "root" and not server.run_as_root:
            where = "" if server.user else " (the SSH user, since user is unset)"
            problems.append(
                f"{NAMESPACE}:gpu.{key}.user: is root{where}; a server that listens on a "
                f"port runs as its own user, or set gpu.{key}.runAsRoot to true"
            )
    return problems
