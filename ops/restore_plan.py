"""The steps of a restore, as shell commands for Hemma: pure functions, every value
quoted. ``ops/restore.py`` prints and runs them.

Standard library only, like the other operator tools.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

# Where the host scripts put things; the same values as components/backups/restic.py
# and jobs.py.
ENV_FILE = "/etc/hemma/restic.env"
DUMPS_DIR = "/var/backups/hemma/dumps"
VOLUME_ROOT = "/var/snap/docker/common/var-lib-docker/volumes"
LIB = "/usr/local/lib/hemma"
CACHE_DIR = "/var/cache/hemma-restic"
LOCK_FILE = "/run/lock/hemma-restic.lock"
LOCK_WAIT = 1800
"""Seconds a restore waits for a backup job to finish with the repository."""
SNAPSHOT_TAG = "hemma-nightly"
COMPLETE_TAG = "complete"
HOST = "hemma"
WORK_DIR = "/var/tmp/hemma-restore"
KEEP_DIR = "/var/backups/hemma/before-restore"
POSTGRES = "shared-postgres"
MAX_NAME = 63
"""PostgreSQL's longest database name (NAMEDATALEN - 1)."""

SSH_OPTIONS = ("-o", "BatchMode=yes")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SNAPSHOT = re.compile(r"^(latest|[0-9a-f]{8,64})$")

# The restic env file is root-only: restic runs under sudo with it sourced, and the
# file's path is the only thing that travels. It runs with the jobs' one cache, in
# its turn on the repository (flock, as the jobs take theirs), after clearing the
# stale locks a killed run left (restic unlock removes only those).
_RESTIC = (
    'set -a; . "$1"; set +a; RESTIC_CACHE_DIR=$2; export RESTIC_CACHE_DIR; shift 2; '
    'restic unlock >/dev/null 2>&1; exec restic "$@"'
)
_NEW_VOLUME = (
    'if "$1" volume inspect "$2" >/dev/null 2>&1; then '
    'echo "volume $2 exists: remove it first ($1 volume rm $2)" >&2; exit 1; fi; '
    'exec "$1" volume create "$2"'
)
# The app's drill probes (DB:SQL lines), run against the database now in place; a
# probe passes as in the drill: its first line is neither empty, 0 nor f.
_PROBES = (
    'status=0; n=0; while IFS= read -r line || [ -n "$line" ]; do case $line in "$3":*) '
    "n=$((n + 1)); "
    'if answer=$("$1" exec "$2" psql -U postgres -d "$3" -At -v ON_ERROR_STOP=1 '
    '-c "${line#*:}") && first=$(printf "%s\\n" "$answer" | head -n 1) && '
    '[ -n "$first" ] && [ "$first" != 0 ] && [ "$first" != f ]; '
    'then echo "probe $n on $3 passed"; else echo "probe $n on $3 failed" >&2; status=1; fi ;; '
    'esac; done < "$4"; [ "$n" -gt 0 ] || echo "no probes of $3 in $4"; exit "$status"'
)
_KEEP_TREE = 'umask 077; mkdir -p "$2" && cp -a "$1/." "$2/"'
_REPLACE_TREE = 'find "$1" -mindepth 1 -delete && cp -a "$2/." "$1/"'


class Refused(Exception):
    """The request is not safe or not valid: nothing has run on Hemma."""


@dataclass(frozen=True)
class Step:
    what: str
    command: str
    always: bool = False  # runs even after an earlier step failed
    after: str | None = None  # ...but only once the step with this `what` was tried


@dataclass(frozen=True)
class Remote:
    docker: str
    postgres: str
    env: str
    dumps: str
    volume_root: str
    work: str
    keep: str
    lib: str = LIB
    cache: str = CACHE_DIR
    lock: str = LOCK_FILE


def sh(script: str, *args: str) -> str:
    """``sh -c SCRIPT`` with its arguments as positional parameters, each quoted once."""
    return shlex.join(["sh", "-c", script, "sh", *args])


def restic(remote: Remote, snapshot: str, path: str, *args: str) -> str:
    """``restic restore``; ``latest`` is the latest complete nightly snapshot holding
    ``path`` (a night whose dump of a database failed keeps that database's older
    dump, and is tagged incomplete)."""
    latest = ["--tag", f"{SNAPSHOT_TAG},{COMPLETE_TAG}", "--host", HOST, "--path", path]
    where = latest if snapshot == "latest" else []
    turn = ["sudo", "flock", "-w", str(LOCK_WAIT), remote.lock]
    return (
        shlex.join(turn)
        + " "
        + sh(_RESTIC, remote.env, remote.cache, "restore", snapshot, *where, *args)
    )


def _restore_from_snapshot(
    remote: Remote, snapshot: str, work: str, path: str, within: str, test: str
) -> Step:
    """``path`` out of the snapshot that holds ``within`` (one of the snapshot's paths)."""
    return Step(
        f"restore {path} from snapshot {snapshot} into {work} on Hemma",
        " && ".join(
            [
                shlex.join(["sudo", "install", "-d", "-m", "0700", work]),
                restic(remote, snapshot, within, "--target", work, "--include", path),
                shlex.join(["sudo", "test", test, work + path]),
            ]
        ),
    )


def _psql(remote: Remote, database: str, *args: str, stdin: bool = False) -> list[str]:
    flags = ["-i"] if stdin else []
    return [
        remote.docker, "exec", *flags, remote.postgres,
        "psql", "-U", "postgres", "-d", database, "-q", "-At", "-v", "ON_ERROR_STOP=1", *args,
    ]  # fmt: skip


def allow_connections(*databases: str) -> str:
    """SQL that lets connections into those of ``databases`` that exist (a swap that
    failed halfway leaves both refusing them; one that worked leaves no copy)."""
    names = ", ".join(f"'{_name(d)}'" for d in databases)
    return (
        "DO $$DECLARE d text; BEGIN FOR d IN SELECT datname FROM pg_database "
        f"WHERE datname IN ({names}) LOOP "
        "EXECUTE format('ALTER DATABASE %I ALLOW_CONNECTIONS true', d); END LOOP; END$$"
    )


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise Refused(f"bad database name: {value!r}")
    return value


def kept_name(db: str, stamp: str) -> str:
    """Where the live database goes when a restore takes its place."""
    name = f"{db}_before_{stamp.replace('T', '').rstrip('Z')}"
    if len(name) > MAX_NAME:
        raise Refused(f"{db}: the kept copy's name {name} is longer than {MAX_NAME} characters")
    return name


def _stop_start(remote: Remote, containers: Sequence[str]) -> tuple[list[Step], list[Step]]:
    if not containers:
        return [], []
    stop = Step(f"stop {', '.join(containers)}", shlex.join([remote.docker, "stop", *containers]))
    start = Step(
        f"start {', '.join(containers)} again",
        shlex.join([remote.docker, "start", *containers]),
        always=True,
        after=stop.what,
    )
    return [stop], [start]


def _cleanup(work: str, first: Step) -> Step:
    """The work directory goes whatever happened, once the first step has run."""
    return Step(
        f"remove {work}", shlex.join(["sudo", "rm", "-rf", work]), always=True, after=first.what
    )


def database_plan(
    remote: Remote,
    db: str,
    snapshot: str,
    into: str,
    production: bool,
    stop: Sequence[str],
    stamp: str,
) -> list[Step]:
    """Into the scratch ``into``; with ``production``, ``into`` then takes the live
    database's place and the live one is kept whole as ``DB_before_STAMP``."""
    work = f"{remote.work}/{stamp}"
    dump = f"{work}{remote.dumps}/{db}.dump"
    pg_restore = [remote.docker, "exec", "-i", remote.postgres, "pg_restore", "-U", "postgres"]
    create = (
        shlex.join(_psql(remote, "postgres", "-v", f"live={db}", "-v", f"copy={into}", stdin=True))
        + f" < {shlex.quote(remote.lib + '/hemma-create-copy.sql')}"
    )
    steps = [
        _restore_from_snapshot(
            remote, snapshot, work, f"{remote.dumps}/{db}.dump", remote.dumps, "-s"
        ),
        Step(f"create the scratch database {into} (fails if it exists)", create),
        Step(
            f"restore the dump into {into}",
            f"{shlex.join(['sudo', 'cat', dump])} | "
            + shlex.join([*pg_restore, "--no-owner", "--exit-on-error", "-d", into]),
        ),
    ]
    if production:
        kept = kept_name(db, stamp)
        stops, starts = _stop_start(remote, stop)
        swap = Step(
            f"put {into} in the place of {db}, keeping the live one as {kept}",
            shlex.join(
                _psql(
                    remote,
                    "postgres",
                    *("-v", f"live={db}", "-v", f"copy={into}", "-v", f"kept={kept}"),
                    stdin=True,
                )
            )
            + f" < {shlex.quote(remote.lib + '/hemma-swap-database.sql')}",
        )
        steps += [
            Step(
                f"hand {into} and everything in it to the owner of {db}",
                shlex.join(_psql(remote, into, "-v", f"live={db}", stdin=True))
                + f" < {shlex.quote(remote.lib + '/hemma-hand-over.sql')}",
            ),
            *stops,
            swap,
            Step(
                f"let connections into {db} and {into} again",
                shlex.join(_psql(remote, "postgres", "-c", allow_connections(db, into))),
                always=True,
                after=swap.what,
            ),
            *starts,
            Step(
                f"run the app's probes of {db}",
                sh(_PROBES, remote.docker, remote.postgres, db, f"{remote.lib}/drill-probes"),
            ),
        ]
    return [*steps, _cleanup(work, steps[0])]


def volume_plan(
    remote: Remote,
    name: str,
    snapshot: str,
    into: str,
    production: bool,
    users: Sequence[str],
    stamp: str,
) -> list[Step]:
    work = f"{remote.work}/{stamp}"
    live = f"{remote.volume_root}/{name}/_data"
    restored = f"{work}{live}"
    scratch = f"{remote.volume_root}/{into}/_data"
    steps = [
        _restore_from_snapshot(remote, snapshot, work, live, live, "-d"),
        Step(
            f"create the scratch volume {into} (fails if it exists)",
            sh(_NEW_VOLUME, remote.docker, into),
        ),
        Step(
            f"copy the restored files into {into}",
            shlex.join(["sudo", "cp", "-a", f"{restored}/.", f"{scratch}/"]),
        ),
    ]
    if production:
        kept = f"{remote.keep}/{name}-{stamp}"
        stops, starts = _stop_start(remote, users)
        steps += [
            *stops,
            Step(f"keep a copy of the live {name} in {kept}", "sudo " + sh(_KEEP_TREE, live, kept)),
            Step(f"OVERWRITE the live volume {name}", "sudo " + sh(_REPLACE_TREE, live, restored)),
            *starts,
        ]
    return [*steps, _cleanup(work, steps[0])]
