"""The steps of a restore, as shell commands for Hemma: pure functions, every value
quoted. ``ops/restore.py`` prints and runs them.

Standard library only, like the other operator tools.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

# Where the host scripts put things; the same values as components/backups/restic.py.
ENV_FILE = "/etc/hemma/restic.env"
DUMPS_DIR = "/var/backups/hemma/dumps"
VOLUME_ROOT = "/var/snap/docker/common/var-lib-docker/volumes"
SNAPSHOT_TAG = "hemma-nightly"
WORK_DIR = "/var/tmp/hemma-restore"
KEEP_DIR = "/var/backups/hemma/before-restore"
POSTGRES = "shared-postgres"

SSH_OPTIONS = ("-o", "BatchMode=yes")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SNAPSHOT = re.compile(r"^(latest|[0-9a-f]{8,64})$")

# The restic env file is root-only: restic runs under sudo with it sourced, and the
# file's path is the only thing that travels.
_RESTIC = 'set -a; . "$1"; set +a; shift; exec restic "$@"'
_NEW_VOLUME = (
    'if "$1" volume inspect "$2" >/dev/null 2>&1; then '
    'echo "volume $2 exists: remove it first ($1 volume rm $2)" >&2; exit 1; fi; '
    'exec "$1" volume create "$2"'
)
_KEEP_DUMP = (
    'umask 077; mkdir -p "$(dirname "$4")" && '
    '"$1" exec "$2" pg_dump -U postgres --format=custom "$3" > "$4"'
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


def sh(script: str, *args: str) -> str:
    """``sh -c SCRIPT`` with its arguments as positional parameters, each quoted once."""
    return shlex.join(["sh", "-c", script, "sh", *args])


def restic(remote: Remote, snapshot: str, *args: str) -> str:
    tag = ["--tag", SNAPSHOT_TAG] if snapshot == "latest" else []
    return "sudo " + sh(_RESTIC, remote.env, "restore", snapshot, *tag, *args)


def _restore_from_snapshot(remote: Remote, snapshot: str, work: str, path: str, test: str) -> Step:
    return Step(
        f"restore {path} from snapshot {snapshot} into {work} on Hemma",
        " && ".join(
            [
                shlex.join(["sudo", "install", "-d", "-m", "0700", work]),
                restic(remote, snapshot, "--target", work, "--include", path),
                shlex.join(["sudo", "test", test, work + path]),
            ]
        ),
    )


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
    work = f"{remote.work}/{stamp}"
    dump = f"{work}{remote.dumps}/{db}.dump"
    pg_restore = [remote.docker, "exec", "-i", remote.postgres, "pg_restore", "-U", "postgres"]
    steps = [
        _restore_from_snapshot(remote, snapshot, work, f"{remote.dumps}/{db}.dump", "-s"),
        Step(
            f"create the scratch database {into} (fails if it exists)",
            shlex.join(
                [remote.docker, "exec", remote.postgres, "createdb", "-U", "postgres", into]
            ),
        ),
        Step(
            f"restore the dump into {into}",
            f"{shlex.join(['sudo', 'cat', dump])} | "
            + shlex.join([*pg_restore, "--no-owner", "--exit-on-error", "-d", into]),
        ),
    ]
    if production:
        kept = f"{remote.keep}/{db}-{stamp}.dump"
        last = ["--exit-on-error", "-d", db]
        stops, starts = _stop_start(remote, stop)
        steps += [
            Step(
                f"keep a dump of the live {db} in {kept}",
                "sudo " + sh(_KEEP_DUMP, remote.docker, remote.postgres, db, kept),
            ),
            *stops,
            Step(
                f"OVERWRITE the live database {db} (one transaction: all or nothing)",
                f"{shlex.join(['sudo', 'cat', dump])} | "
                + shlex.join(
                    [*pg_restore, "--clean", "--if-exists", "--single-transaction", *last]
                ),
            ),
            *starts,
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
        _restore_from_snapshot(remote, snapshot, work, live, "-d"),
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
