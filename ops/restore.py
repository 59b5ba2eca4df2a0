"""Restore a database or a volume on Hemma from the nightly restic snapshots.

    scripts/restore database DB [--snapshot ID] [--into NAME]
                                [--production --yes (--stop CONTAINER... | --keep-running)]
    scripts/restore volume NAME [--snapshot ID] [--into NAME] [--production --yes]

Run from the operator's machine; every step is one shell command sent over ssh.
The snapshot (``latest``: the latest complete nightly one) is always restored into
a scratch target first (``restore_DB`` or ``restore_NAME``), which must not exist
yet, so that step can never overwrite anything. The live database or volume is
replaced only with both --production and --yes: a database by the restored copy
taking its place, the live one kept whole as ``DB_before_STAMP``; a volume after a
copy of it has been kept on Hemma. The plan is printed in full before the first
command runs.

Standard library only, like the other operator tools.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from ops import remote
from ops.restore_plan import (
    _NAME,
    _SNAPSHOT,
    CACHE_DIR,
    DUMPS_DIR,
    ENV_FILE,
    KEEP_DIR,
    LIB,
    LOCK_FILE,
    POSTGRES,
    SNAPSHOT_TAG,
    SSH_OPTIONS,
    VOLUME_ROOT,
    WORK_DIR,
    Refused,
    Remote,
    Step,
    database_plan,
    kept_name,
    volume_plan,
)
from ops.rollout import SERVICE_LABEL

__all__ = [
    "DUMPS_DIR",
    "ENV_FILE",
    "SNAPSHOT_TAG",
    "VOLUME_ROOT",
    "Refused",
    "database_plan",
    "main",
    "volume_plan",
]


def ssh_argv(ssh_command: str, target: str, command: str) -> list[str]:
    return [*shlex.split(ssh_command), *SSH_OPTIONS, target, command]


Runner = Callable[[list[str]], int]


UNREACHABLE = 3
"""Exit status when Hemma could not be reached and nothing ran: not 1, "a command on
Hemma failed"."""


def run_plan(steps: Sequence[Step], ssh: Callable[[str], list[str]], runner: Runner) -> int:
    """Run the steps: 0 all passed, 1 one failed, ``UNREACHABLE`` when the first could
    not even reach Hemma (then nothing else is tried either)."""
    tried: set[str] = set()
    failed = False
    for number, step in enumerate(steps, 1):
        if (failed and not step.always) or (step.after is not None and step.after not in tried):
            continue
        print(f"==> {number}. {step.what}\n    {step.command}", flush=True)
        tried.add(step.what)
        code = runner(ssh(step.command))
        if code == remote.SSH_FAILED and len(tried) == 1:
            print(
                "hemma restore: cannot reach hemma over ssh (ssh exited 255 before the first "
                "step); nothing was run",
                file=sys.stderr,
                flush=True,
            )
            return UNREACHABLE
        if code != 0:
            print(f"hemma restore: step {number} failed", file=sys.stderr, flush=True)
            failed = True
    return 1 if failed else 0


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
                help="stopped while the restored copy takes the live database's place",
            )
            sub.add_argument(
                "--keep-running",
                action="store_true",
                help="swap the live database with no container stopped",
            )
        sub.add_argument("--docker", default="docker", help="docker on Hemma")
        sub.add_argument("--postgres", default=POSTGRES, help="the PostgreSQL container")
        sub.add_argument("--env", default=ENV_FILE, help="restic's env file on Hemma")
        sub.add_argument("--dumps", default=DUMPS_DIR, help="the dump directory in the snapshots")
        sub.add_argument("--volume-root", default=VOLUME_ROOT)
        sub.add_argument("--work", default=WORK_DIR, help="scratch space on Hemma")
        sub.add_argument("--keep", default=KEEP_DIR, help="where the live volume's copy is kept")
        sub.add_argument("--lib", default=LIB, help="the backup's installed files on Hemma")
        sub.add_argument("--cache", default=CACHE_DIR, help="restic's cache on Hemma")
        sub.add_argument("--lock", default=LOCK_FILE, help="the backup jobs' turn lock on Hemma")
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
    if kind == "database" and args.production:
        if not args.stop and not args.keep_running:
            raise Refused(
                f"name the containers that use {name} with --stop (the `containers` output "
                "lists each app's), or say --keep-running: an app writing during the "
                "overwrite loses what it wrote"
            )
        if args.stop and args.keep_running:
            raise Refused("--stop and --keep-running contradict each other")
    return str(into)


RUNNING_FORMAT = '{{.Names}} {{.Label "' + SERVICE_LABEL + '"}}'


def containers_of(services: Sequence[str], listed: str) -> list[str]:
    """The running containers of each service in ``docker ps`` lines of RUNNING_FORMAT:
    those labelled with it (start-first, every copy), or else the name itself."""
    rows = [line.split(" ", 1) for line in listed.splitlines() if line.strip()]
    found: list[str] = []
    for service in services:
        labelled = [row[0] for row in rows if len(row) == 2 and row[1] == service]
        found += [name for name in labelled if _NAME.match(name)] or [service]
    return found


def main(argv: Sequence[str] | None = None, runner: Runner = _run) -> int:
    args = parser().parse_args(argv)
    try:
        into = check(args)
    except Refused as refused:
        print(f"hemma restore: {refused}; nothing was run", file=sys.stderr)
        return 2
    try:
        target = remote.target(getattr(args, "ssh", None))
    except remote.BadTarget as error:
        print(f"hemma restore: {error}; nothing was run", file=sys.stderr)
        return 2
    ssh_command = getattr(args, "ssh_command", "ssh")
    dry_run = getattr(args, "dry_run", False)

    def ssh(command: str) -> list[str]:
        return ssh_argv(ssh_command, target, command)

    hemma = Remote(
        args.docker,
        args.postgres,
        args.env,
        args.dumps,
        args.volume_root,
        args.work,
        args.keep,
        args.lib,
        args.cache,
        args.lock,
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    def read_only(what: str, lookup: list[str]) -> str | int:
        """A lookup's output, or the exit status to end with (nothing changed yet)."""
        command = shlex.join(lookup)
        print(f"==> {what}\n    {command}", flush=True)
        found = subprocess.run(
            ssh(command), stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
        if found.returncode == remote.SSH_FAILED:
            reason = (found.stderr.strip().splitlines() or ["ssh exited 255"])[-1]
            print(
                f"hemma restore: cannot reach {target} over ssh: {reason}; nothing was run",
                file=sys.stderr,
            )
            return UNREACHABLE
        if found.returncode != 0:
            print(f"hemma restore: {found.stderr.strip()}", file=sys.stderr)
            return 1
        return found.stdout

    if args.kind == "database":
        stop = list(args.stop)
        if args.production and stop:
            # Read-only: a start-first service's container is named SERVICE-DIGEST.
            listed = read_only(
                f"find the running containers of {', '.join(stop)}",
                [args.docker, "ps", "--filter", "status=running", "--format", RUNNING_FORMAT],
            )
            if isinstance(listed, int):
                return listed
            stop = containers_of(stop, listed)
        try:
            steps = database_plan(
                hemma, args.name, args.snapshot, into, args.production, stop, stamp
            )
        except Refused as refused:
            print(f"hemma restore: {refused}; nothing was run", file=sys.stderr)
            return 2
    else:
        users: list[str] = []
        if args.production:
            # Read-only: which running containers hold the volume, to stop them for the copy.
            listed = read_only(
                f"find the containers using {args.name}",
                [args.docker, "ps", "--filter", f"volume={args.name}", "--format", "{{.Names}}"],
            )
            if isinstance(listed, int):
                return listed
            users = [line for line in listed.split() if _NAME.match(line)]
        steps = volume_plan(hemma, args.name, args.snapshot, into, args.production, users, stamp)

    print(
        f"hemma restore: {args.kind} {args.name} from snapshot {args.snapshot} on {target},"
        " in this order:"
    )
    for number, step in enumerate(steps, 1):
        print(f"  {number}. {step.what}{'  [always]' if step.always else ''}\n     {step.command}")
    if dry_run:
        return 0
    status = run_plan(steps, ssh, runner)
    if status != 0:
        return status
    if args.kind == "database" and args.production:
        kept = kept_name(args.name, stamp)
        drop = f"{args.docker} exec {args.postgres} dropdb -U postgres {kept}"
        print(f"hemma restore: done. {args.name} is the restored copy; the old one is {kept}.")
        print("hemma restore: run the app's migration if its code is newer than the dump.")
        print(f"hemma restore: drop the old one when done: ssh {target} {shlex.quote(drop)}")
        return 0
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
