"""Adopt the running hand-made server: the first ``pulumi up`` without losing data,
with a short outage and a way back (README, "Adopting the running hand-made server").

    scripts/adopt survey --plan plan.json          # read-only; prints the config to set
    scripts/adopt prepare --plan plan.json [--run] # the targeted up before the outage
    scripts/adopt admin-password [--dry-run]       # hand the old server the new password
    scripts/adopt swap --plan plan.json [--dry-run]
    scripts/pulumi up
    scripts/adopt ownership --plan plan.json [--apply] [--dry-run]
    scripts/adopt rollback [--dry-run]             # if up failed or the apps misbehave
    scripts/adopt finish [--dry-run]               # once the new server is verified

Every step prints what it will do before it does it. Exit status: 0 done, 1 a
command on Hemma failed (what ran before it is printed), 2 refused: unsafe or
unusable input, or a state the step must not act on (nothing was changed), 3 ssh
could not reach Hemma for the first command (nothing was run).
Standard library only, like the other operator tools.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Callable

from ops import remote
from ops.adopt import plan as adopt_plan
from ops.adopt import postgres as adopt_postgres
from ops.adopt import swap as adopt_swap
from ops.adopt.observe import observe
from ops.adopt.plan import Plan, read_plan
from ops.adopt.postgres import Pulumi
from ops.adopt.shell import Failed, Hemma, Refused, Unreachable, name, say, step
from ops.adopt.survey import survey
from ops.outputs import ROOT, BadInput, ssh_port, user_path

DEFAULT_PULUMI = "scripts/pulumi"
UNREACHABLE = 3
"""Exit status when ssh could not reach Hemma and nothing was run."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--ssh", metavar="TARGET", help="(default: $HEMMA_SSH or hemma)")
    common.add_argument("--ssh-port", metavar="PORT", default="22", help="(default: 22)")
    common.add_argument(
        "--plan", metavar="FILE", help="scripts/plan --json output (default: make one)"
    )
    common.add_argument(
        "--pulumi", metavar="CMD", default=DEFAULT_PULUMI, help="(default: scripts/pulumi)"
    )
    common.add_argument("--docker", default="docker", help="the docker CLI on Hemma (docker)")
    parser = argparse.ArgumentParser(
        prog="adopt", description="Adopt the running hand-made Hemma server, step by step."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="STEP")
    helps = {
        "survey": "read-only: compare Hemma with the plan, print the config to set",
        "prepare": "the targeted up that builds and pulls every image before the outage",
        "admin-password": "give the running shared-postgres the generated admin password",
        "swap": "stop the hand-made containers (restart no, stop, rename), right before up",
        "ownership": "list (--apply: fix) objects in adopted databases not owned by the app",
        "rollback": "the hand-made containers back, with their old passwords",
        "finish": "remove the -pre-hemma containers and the record",
    }
    for command, text in helps.items():
        p = sub.add_parser(command, parents=[common], help=text, description=text)
        if command == "prepare":
            p.add_argument("--run", action="store_true", help="run it (default: print it)")
        if command == "ownership":
            p.add_argument("--apply", action="store_true", help="change the owners")
        if command not in {"survey", "prepare"}:
            p.add_argument("--dry-run", action="store_true", help="print the steps only")
        if command == "admin-password":
            p.add_argument("--postgres", metavar="NAME", help="(default: shared-postgres)")
            p.add_argument(
                "--force", action="store_true", help="even if a running app logs in as postgres"
            )
    return parser.parse_args(argv)


def hemma_of(args: argparse.Namespace) -> Hemma:
    try:
        target = remote.target(args.ssh)
        port = ssh_port({}, args.ssh_port)
    except (BadInput, remote.BadTarget) as error:
        raise Refused(str(error)) from None
    docker = args.docker
    if not docker or docker.startswith("-") or any(c.isspace() for c in docker):
        raise Refused(f"refusing --docker {docker!r}")
    return Hemma(target, port, docker)


def pulumi_of(args: argparse.Namespace) -> Pulumi:
    if args.pulumi == DEFAULT_PULUMI:
        return Pulumi([str(ROOT / "scripts" / "pulumi")], DEFAULT_PULUMI)
    words = shlex.split(args.pulumi)
    if not words:
        raise Refused("--pulumi is empty")
    if "/" in words[0] and not words[0].startswith("/"):
        words[0] = str(user_path(words[0]))
    return Pulumi(words, args.pulumi)


def prepare(plan: Plan, pulumi: Pulumi, run_it: bool) -> int:
    targets = adopt_plan.prepare_targets(plan)
    adopt_plan.check_urns(targets)
    images = [r for r in targets if adopt_plan.is_image(r)]
    built = [r for r in images if r.type == adopt_plan.LOCAL_COMMAND]
    parents = [r for r in targets if not r.custom]
    say(
        f"{len(images)} images ({len(built)} built on Hemma, {len(images) - len(built)} pulled), "
        f"the admin password, and their {len(parents)} parent components "
        "(the engine needs each target's parents targeted too)"
    )
    gaps = adopt_plan.untargeted_creates(plan, targets)
    if gaps:
        why = "; ".join(f"{r.name} depends on {d.name}" for r, d in gaps[:5])
        more = f"; and {len(gaps) - 5} more" if len(gaps) > 5 else ""
        hint = (
            ". The program must change first: every up --target targets the providers, so "
            "a provider may not depend on what this up does not create"
            if any(r.is_provider for r, _ in gaps)
            else ""
        )
        raise Refused(
            f"pulumi would stop this up with 'untargeted create': {why}{more}, which it "
            f"does not create{hint}"
        )
    argv = adopt_plan.up_command(pulumi.argv, targets)
    rest = argv[len(pulumi.argv) :]
    lines = [f"{pulumi.shown} {rest[0]}"]
    lines += [shlex.join(rest[i : i + 2]) for i in range(1, len(rest), 2)]
    text = " \\\n    ".join(lines)
    if not run_it:
        say(text)
        say("(printed only: --run runs it)")
        return 0
    step("run the targeted up:")
    say(text)
    done = subprocess.run(argv, check=False)
    if done.returncode != 0:
        raise Failed(f"the targeted up exited {done.returncode}: nothing was stopped")
    say("done: every image is on Hemma and the admin password exists; next: admin-password")
    return 0


def admin_password(args: argparse.Namespace) -> int:
    postgres = args.postgres or (read_plan(args.plan).postgres_container if args.plan else None)
    postgres = name(postgres or "shared-postgres", "postgres container")
    adopt_postgres.hand_over_admin_password(
        hemma_of(args), pulumi_of(args), postgres, args.dry_run, args.force
    )
    return 0


def dispatch(args: argparse.Namespace) -> int:
    commands: dict[str, Callable[[], int]] = {
        "survey": lambda: _survey(args),
        "prepare": lambda: prepare(read_plan(args.plan), pulumi_of(args), args.run),
        "admin-password": lambda: admin_password(args),
        "swap": lambda: adopt_swap.swap(
            hemma_of(args), read_plan(args.plan), pulumi_of(args), args.dry_run
        ),
        "ownership": lambda: adopt_postgres.ownership(
            hemma_of(args), read_plan(args.plan), args.apply, args.dry_run
        ),
        "rollback": lambda: adopt_swap.rollback(hemma_of(args), args.dry_run),
        "finish": lambda: adopt_swap.finish(hemma_of(args), args.dry_run),
    }
    return commands[args.command]()


def _survey(args: argparse.Namespace) -> int:
    plan = read_plan(args.plan)
    hemma = hemma_of(args)
    report = survey(plan, observe(hemma, plan.postgres_container), hemma.target)
    sys.stdout.write(report.text())
    if report.stops:
        raise Refused(
            f"{len(report.stops)} finding(s) marked STOP above stop the adoption until they "
            "are dealt with (swap refuses them too); nothing was changed"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return dispatch(args)
    except Refused as error:
        print(f"adopt {args.command}: refused: {error}", file=sys.stderr)
        return 2
    except Unreachable as error:
        print(f"adopt {args.command}: {error}", file=sys.stderr)
        return UNREACHABLE
    except Failed as error:
        print(f"adopt {args.command}: FAILED: {error}", file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError) as error:
        # An answer from Hemma or Pulumi in a shape the steps do not know.
        print(f"adopt {args.command}: FAILED: unexpected answer: {error!r}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
