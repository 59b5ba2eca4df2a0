"""Restore a database or a volume on Hemma from the nightly restic snapshots.

    scripts/restore database DB [--snapshot ID] [--into NAME] [--stop CONTAINER]...
                                [--production --yes]
    scripts/restore volume NAME [--snapshot ID] [--into NAME] [--production --yes]

Run from the operator's machine; every step is one shell command sent over ssh.
The snapshot is always restored into a scratch target first (``restore_DB`` or
``restore_NAME``), which must not exist yet, so that step can never overwrite
anything. The live database or volume is replaced only with both --production
and --yes, after a copy of it has been kept on Hemma. The plan is printed in full
before the first command runs.

Standard library only, like the other operator tools.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

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
    steps.append(
        Step(
            f"remove {work}",
            shlex.join(["sudo", "rm", "-rf", work]),
            always=True,
            after=steps[0].what,
        )
    )
    return steps


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
    steps.append(
        Step(
            f"remove {work}",
            shlex.join(["sudo", "rm", "-rf", work]),
            always=True,
            after=steps[0].what,
        )
    )
    return steps


def ssh_argv(ssh_command: str, target: str, command: str) -> list[str]:
    return [*shlex.split(ssh_command), *SSH_OPTIONS, target, command]


Runner = Callable[[list[str]], int]


def run_plan(steps: Sequence[Step], ssh: Callable[[str], list[str]], runner: Runner) -> bool:
    tried: set[str] = set()
    failed = False
    for number, step in enumerate(steps, 1):
        if (failed and not step.always) or (step.after is not None and step.after not in tried):
            continue
        print(f"==> {number}. {step.what}\n    {step.command}", flush=True)
        tried.add(step.what)
        if runner(ssh(step.command)) != 0:
            print(f"hemma restore: step {number} failed", file=sys.stderr, flush=True)
            failed = True
    return not failed


def _run(argv: list[str]) -> int:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, check=False).returncode


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--ssh", default=argparse.SUPPRESS, metavar="TARGET", help="default: $HEMMA_SSH or hemma"
    )
    common.add_argument(
        "--ssh-command", default=argparse.SUPPRESS, metavar="CMD", help="default: ssh"
    )
    common.add_argument(
        "--dry-run", action="store_true", default=argparse.SUPPRESS, help="print the plan only"
    )
    main = argparse.ArgumentParser(
        prog="scripts/restore",
        description=__doc__,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = main.add_subparsers(dest="kind", required=True)
    for kind, what in (("database", "DB"), ("volume", "NAME")):
        sub = kinds.add_parser(kind, parents=[common])
        sub.add_argument("name", metavar=what)
        sub.add_argument("--snapshot", default="latest", metavar="ID")
        sub.add_argument(
            "--into", metavar="NAME", help=f"the scratch {kind} (default restore_{what})"
        )
        sub.add_argument(
            "--production", action="store_true", help=f"then overwrite the live {kind}"
        )
        sub.add_argument("--yes", action="store_true", help="confirms --production")
        if kind == "database":
            sub.add_argument(
                "--stop",
                action="append",
                default=[],
                metavar="CONTAINER",
                help="stopped while the live database is overwritten",
            )
        sub.add_argument("--docker", default="docker", help="docker on Hemma")
        sub.add_argument("--postgres", default=POSTGRES, help="the PostgreSQL container")
        sub.add_argument("--env", default=ENV_FILE, help="restic's env file on Hemma")
        sub.add_argument("--dumps", default=DUMPS_DIR, help="the dump directory in the snapshots")
        sub.add_argument("--volume-root", default=VOLUME_ROOT)
        sub.add_argument("--work", default=WORK_DIR, help="scratch space on Hemma")
        sub.add_argument("--keep", default=KEEP_DIR, help="where the live copy is kept")
    return main


def check(args: argparse.Namespace) -> str:
    """The scratch target's name, or Refused."""
    kind, name = args.kind, args.name
    if not _NAME.match(name):
        raise Refused(f"bad {kind} name: {name!r}")
    if not _SNAPSHOT.match(args.snapshot):
        raise Refused(f"bad snapshot: {args.snapshot!r} (latest or a snapshot id)")
    into = args.into or f"restore_{name}"
    if not _NAME.match(into):
        raise Refused(f"bad --into: {into!r}")
    if into == name:
        raise Refused(
            f"{name} is the live {kind}: restore into a scratch name, and add "
            "--production --yes to overwrite the live one after it"
        )
    if args.production != args.yes:
        raise Refused(f"overwriting the live {kind} {name} takes both --production and --yes")
    for container in getattr(args, "stop", []):
        if not _NAME.match(container):
            raise Refused(f"bad container name: {container!r}")
    return str(into)


def main(argv: Sequence[str] | None = None, runner: Runner = _run) -> int:
    args = parser().parse_args(argv)
    try:
        into = check(args)
    except Refused as refused:
        print(f"hemma restore: {refused}; nothing was run", file=sys.stderr)
        return 2
    target = getattr(args, "ssh", None) or os.environ.get("HEMMA_SSH") or "hemma"
    ssh_command = getattr(args, "ssh_command", "ssh")
    dry_run = getattr(args, "dry_run", False)

    def ssh(command: str) -> list[str]:
        return ssh_argv(ssh_command, target, command)

    remote = Remote(
        args.docker, args.postgres, args.env, args.dumps, args.volume_root, args.work, args.keep
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if args.kind == "database":
        steps = database_plan(
            remote, args.name, args.snapshot, into, args.production, args.stop, stamp
        )
    else:
        users: list[str] = []
        if args.production:
            # Read-only: which running containers hold the volume, to stop them for the copy.
            lookup = shlex.join(
                [args.docker, "ps", "--filter", f"volume={args.name}", "--format", "{{.Names}}"]
            )
            print(f"==> find the containers using {args.name}\n    {lookup}", flush=True)
            found = subprocess.run(
                ssh(lookup), stdin=subprocess.DEVNULL, capture_output=True, text=True
            )
            if found.returncode != 0:
                print(f"hemma restore: {found.stderr.strip()}", file=sys.stderr)
                return 1
            users = [line for line in found.stdout.split() if _NAME.match(line)]
        steps = volume_plan(remote, args.name, args.snapshot, into, args.production, users, stamp)

    print(
        f"hemma restore: {args.kind} {args.name} from snapshot {args.snapshot} on {target},"
        " in this order:"
    )
    for number, step in enumerate(steps, 1):
        print(f"  {number}. {step.what}{'  [always]' if step.always else ''}\n     {step.command}")
    if dry_run:
        return 0
    if not run_plan(steps, ssh, runner):
        return 1
    look = (
        f"{args.docker} exec {args.postgres} psql -U postgres -d {into} -c '\\dt'"
        if args.kind == "database"
        else f"sudo ls -la {args.volume_root}/{into}/_data"
    )
    drop = (
        f"{args.docker} exec {args.postgres} dropdb -U postgres {into}"
        if args.kind == "database"
        else f"{args.docker} volume rm {into}"
    )
    print(f"hemma restore: done. Look at {into}: ssh {target} {shlex.quote(look)}")
    print(f"hemma restore: drop it when done: ssh {target} {shlex.quote(drop)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
