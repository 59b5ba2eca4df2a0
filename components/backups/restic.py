"""The restic env file and the argv of the backup, drill and host-metrics scripts.

Pure functions over the standard library. Each ``*_argv`` checks its inputs the way
the script would and returns a list for ``shlex.join`` in a unit's ExecStart, so a
mistake shows up when the program runs rather than at 03:15 on the host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

LIB = "/usr/local/lib/hemma"
BACKUP_SCRIPT = f"{LIB}/hemma-backup.sh"
DRILL_SCRIPT = f"{LIB}/hemma-drill.sh"
CHECK_SCRIPT = f"{LIB}/hemma-backup-check.sh"
HOST_METRICS_SCRIPT = f"{LIB}/hemma-host-metrics.sh"
REPOSITORY_SCRIPT = f"{LIB}/hemma-repository.sh"
RESTIC_LIB = f"{LIB}/hemma-restic.sh"
"""Sourced by the restic scripts, never run: how each of them reaches the repository."""
HAND_OVER_SQL = f"{LIB}/hemma-hand-over.sql"
SWAP_SQL = f"{LIB}/hemma-swap-database.sql"
CREATE_COPY_SQL = f"{LIB}/hemma-create-copy.sql"

ENV_FILE = "/etc/hemma/restic.env"
DUMPS_DIR = "/var/backups/hemma/dumps"
DRILL_SCRATCH = "/var/tmp/hemma-drill"
VOLUME_ROOT = "/var/snap/docker/common/var-lib-docker/volumes"
# The snap's daemon sees only some host directories; a textfile-collector container
# can bind-mount this one. Not /run: the backup's last-success time must outlive a reboot.
METRICS_DIR = "/var/snap/docker/common/hemma/metrics"
SNAPSHOT_TAG = "hemma-nightly"
HOST = "hemma"
CACHE_DIR = "/var/cache/hemma-restic"
"""restic's one cache, shared by the backup, the check and the drill."""
LOCK_FILE = "/run/lock/hemma-restic.lock"
"""The jobs take turns on the repository: each holds an flock on this file."""

POLICIES = ("live", "stop")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Docker's own rule for container and volume names; database names are kept to it
# too, since each becomes a file name (DB.dump) and a label.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# restic takes these from restic_env's own arguments; names that would change how
# the sourcing root shell itself behaves are refused outright.
RESERVED = frozenset(
    {
        "RESTIC_REPOSITORY",
        "RESTIC_REPOSITORY_FILE",
        "RESTIC_PASSWORD",
        "RESTIC_PASSWORD_FILE",
        "RESTIC_PASSWORD_COMMAND",
        "RESTIC_CACHE_DIR",
        "PATH",
        "IFS",
        "HOME",
        "ENV",
        "BASH_ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "CDPATH",
        "GLOBIGNORE",
        "PS4",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
    }
)


@dataclass(frozen=True)
class Keep:
    """restic forget's keep policy: nights, weeks and months of snapshots (from the
    config, ``backups.keepDaily``...: no default here to drift from it)."""

    daily: int
    weekly: int
    monthly: int


def shell_quote(value: str) -> str:
    """Single quotes keep everything literal; a quote inside closes, escapes, reopens."""
    return "'" + value.replace("'", "'\\''") + "'"


def restic_env(repository: str, password: str, extra: Mapping[str, str]) -> str:
    """The root-only (0600) env file the scripts read with ``set -a; . FILE; set +a``.

    ``extra`` holds the backend's variables (AWS_ACCESS_KEY_ID, B2_ACCOUNT_ID, ...).
    """
    if not repository:
        raise ValueError("the restic repository is empty")
    if not password:
        raise ValueError("the restic password is empty")
    lines = ["# restic's repository and its secrets: root-only, read with `set -a; . FILE`."]
    pairs = [("RESTIC_REPOSITORY", repository), ("RESTIC_PASSWORD", password)]
    for name, value in extra.items():
        if not _ENV_NAME.match(name):
            raise ValueError(f"not an environment variable name: {name!r}")
        if name in RESERVED:
            raise ValueError(f"{name} cannot be set through extra")
        pairs.append((name, value))
    for name, value in pairs:
        if "\0" in value:
            raise ValueError(f"{name} holds a NUL byte, which no environment can carry")
        lines.append(f"{name}={shell_quote(value)}")
    return "\n".join(lines) + "\n"


def _absolute(what: str, path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"{what} must be an absolute path: {path!r}")
    return path


def _name(what: str, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"bad {what} name: {name!r}")
    return name


def _count(what: str, value: int) -> str:
    if value < 0:
        raise ValueError(f"{what} cannot be negative: {value}")
    return str(value)


def _turns(cache: str, lock: str) -> list[str]:
    return ["--cache", _absolute("--cache", cache), "--lock", _absolute("--lock", lock)]


def volume_spec(name: str, policy: str, containers: Sequence[str]) -> str:
    """``NAME:live`` or ``NAME:stop:C1,C2`` as the backup script reads it."""
    _name("volume", name)
    if policy not in POLICIES:
        raise ValueError(f"volume {name}: the policy is live or stop, not {policy!r}")
    if policy == "live":
        if containers:
            raise ValueError(f"volume {name}: a live volume stops no containers")
        return f"{name}:live"
    if not containers:
        raise ValueError(f"volume {name}: name the containers to stop")
    return f"{name}:stop:" + ",".join(_name("container", c) for c in containers)


def backup_argv(
    docker: str,
    postgres: str,
    dumps: str,
    env: str,
    metrics: str,
    volume_root: str,
    keep: Keep,
    databases: Sequence[str],
    volumes: Sequence[tuple[str, str, Sequence[str]]],
    *,
    script: str = BACKUP_SCRIPT,
    host: str = HOST,
    stop_timeout: int = 120,
    cache: str = CACHE_DIR,
    lock: str = LOCK_FILE,
) -> list[str]:
    """The backup's command line; ``volumes`` are (name, "live" | "stop", containers)."""
    if len(set(databases)) != len(databases):
        raise ValueError("a database is listed twice")
    names = [name for name, _, _ in volumes]
    if len(set(names)) != len(names):
        raise ValueError("a volume is listed twice")
    argv = [
        _absolute("the script", script),
        "--docker",
        docker,
        "--postgres",
        _name("container", postgres),
        "--dumps",
        _absolute("--dumps", dumps),
        "--env",
        _absolute("--env", env),
        "--metrics",
        _absolute("--metrics", metrics),
        "--volume-root",
        _absolute("--volume-root", volume_root),
        *_turns(cache, lock),
        "--keep-daily",
        _count("keep.daily", keep.daily),
        "--keep-weekly",
        _count("keep.weekly", keep.weekly),
        "--keep-monthly",
        _count("keep.monthly", keep.monthly),
        "--host",
        _name("host", host),
        "--stop-timeout",
        _count("stop_timeout", stop_timeout),
    ]
    for database in databases:
        argv += ["--database", _name("database", database)]
    for name, policy, containers in volumes:
        argv += ["--volume", volume_spec(name, policy, containers)]
    return argv


def drill_argv(
    docker: str,
    postgres: str,
    env: str,
    metrics: str,
    scratch: str,
    dumps: str,
    probes: Sequence[tuple[str, str]],
    sample: int,
    *,
    script: str = DRILL_SCRIPT,
    host: str = HOST,
    cache: str = CACHE_DIR,
    lock: str = LOCK_FILE,
) -> list[str]:
    """The drill's command line; ``probes`` are (database, SQL) pairs, in order, and
    ``sample`` how many volume files it restores and compares (``backups.drillSample``)."""
    argv = [
        _absolute("the script", script),
        "--docker",
        docker,
        "--postgres",
        _name("container", postgres),
        "--env",
        _absolute("--env", env),
        "--metrics",
        _absolute("--metrics", metrics),
        "--scratch",
        _absolute("--scratch", scratch),
        "--dumps",
        _absolute("--dumps", dumps),
        *_turns(cache, lock),
        "--sample",
        _count("sample", sample),
        "--host",
        _name("host", host),
    ]
    for database, sql in probes:
        if not sql.strip():
            raise ValueError(f"the probe for {database} has no SQL")
        argv += ["--probe", f"{_name('database', database)}:{sql}"]
    return argv


def check_argv(
    env: str,
    metrics: str,
    *,
    script: str = CHECK_SCRIPT,
    cache: str = CACHE_DIR,
    lock: str = LOCK_FILE,
) -> list[str]:
    """restic check's command line: the same repository, cache and turns as the backup."""
    return [
        _absolute("the script", script),
        "--env",
        _absolute("--env", env),
        "--metrics",
        _absolute("--metrics", metrics),
        *_turns(cache, lock),
    ]


def repository_init_argv(
    env: str,
    *,
    system_disk: bool,
    script: str = REPOSITORY_SCRIPT,
    cache: str = CACHE_DIR,
    lock: str = LOCK_FILE,
) -> list[str]:
    """The one step that creates the repository (``hemma-repository.sh init``)."""
    argv = [_absolute("the script", script), "init", "--env", _absolute("--env", env)]
    argv += _turns(cache, lock)
    return [*argv, "--system-disk"] if system_disk else argv


def host_metrics_argv(docker: str, metrics: str, *, script: str = HOST_METRICS_SCRIPT) -> list[str]:
    return [
        _absolute("the script", script),
        "--docker",
        docker,
        "--metrics",
        _absolute("--metrics", metrics),
    ]
