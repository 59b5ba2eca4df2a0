"""``python -m plan``: the offline plan, and the diff of two plans.

    scripts/plan [--stack hemma] [--config KEY=VALUE ...] [--secret KEY=VALUE ...]
                 [--json FILE|-] [--quiet] [--policy]
    scripts/plan diff [--exit-code] [--full] [--stack ...] [--config ...] [--secret ...]
                      [OLD [NEW]]

OLD and NEW are plan files (``--json``), git revisions, or ``.``, the working tree
as it is (uncommitted edits too); OLD defaults to ``HEAD`` and NEW to ``.``. The
stack defaults to ``$HEMMA_STACK``, else ``hemma``. Exit status: 0 done (a diff
with changes too, unless ``--exit-code``: then 2), 1 bad config or input, 130
interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from plan import diff, downtime, outputs, report
from plan.document import FORMAT, document
from plan.revisions import is_revision, plan_of_revision
from plan.runner import Evaluation, ProgramError, evaluate
from plan.stackconfig import (
    InputError,
    PlanConfig,
    assignments,
    plan_config,
    project_defaults,
    project_name,
    read_stack_file,
    stack_file,
)

ROOT = Path(__file__).resolve().parents[1]
CHANGES = 2
INTERRUPTED = 130
VIOLATION = 3
"""``--policy``: a mandatory policy is violated."""
WORKING_TREE = "."
STACK_VARIABLE = "HEMMA_STACK"
CALLER_DIR = "HEMMA_PLAN_CWD"
"""Set by scripts/plan, which runs from the repo: where relative file names point."""


def _file(name: str) -> Path:
    path = Path(name)
    base = os.environ.get(CALLER_DIR)
    return path if path.is_absolute() or not base else Path(base) / path


class _Parser(argparse.ArgumentParser):
    """Bad arguments are bad input: exit 1, as a bad config does (2 means changes)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise InputError(f"{self.prog}: {message}")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        default=os.environ.get(STACK_VARIABLE) or "hemma",
        help=f"the stack file Pulumi.STACK.yaml (default: ${STACK_VARIABLE}, else hemma)",
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a config key as `pulumi config set` would (objects as JSON)",
    )
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a config key as a secret (`pulumi config set --secret`)",
    )


def make_config(
    root: Path, stack: str, configs: Sequence[str], secrets: Sequence[str]
) -> tuple[str, PlanConfig]:
    """The project name, and the config a plan of ``root`` runs with: Pulumi.yaml's
    defaults, the stack file, ``--config``, ``--secret``, then the placeholders."""
    project = project_name(root)
    values, encrypted = read_stack_file(stack_file(root, stack), project)
    defaults = {k: v for k, v in project_defaults(root, project).items() if k not in encrypted}
    config = plan_config(
        {**defaults, **values},
        encrypted,
        assignments(configs, project, "--config"),
        assignments(secrets, project, "--secret"),
    )
    return project, config


def make_evaluation(
    root: Path, stack: str, configs: Sequence[str], secrets: Sequence[str]
) -> tuple[Evaluation, PlanConfig]:
    """Run ``root``'s program with its stack file and the command line's config."""
    project, config = make_config(root, stack, configs, secrets)
    evaluation = evaluate(
        config.values, config.secret_keys, root=root, project=project, stack=stack
    )
    return evaluation, config


def make_plan(
    root: Path, stack: str, configs: Sequence[str], secrets: Sequence[str]
) -> dict[str, Any]:
    """Plan ``root``'s program with its stack file and the command line's config."""
    return document(*make_evaluation(root, stack, configs, secrets))


def _plan_main(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="scripts/plan",
        description="The plan anyone can run: no Pulumi CLI, no server. "
        "`scripts/plan diff --help`: what a change would do.",
    )
    _common(parser)
    parser.add_argument(
        "--json", metavar="FILE", help="write the full desired state here (- for stdout)"
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument(
        "--policy",
        action="store_true",
        help=f"run the policy pack's checks too; exit {VIOLATION} on a mandatory one",
    )
    args = parser.parse_args(argv)
    target = None if args.json in (None, "-") else _file(args.json)
    if target is not None and not target.parent.is_dir():
        raise InputError(f"--json {args.json}: no such directory {target.parent}")
    evaluation, config = make_evaluation(ROOT, args.stack, args.config, args.secret)
    plan = document(evaluation, config)
    violated = False
    if args.policy:
        # Only here: a checkout without the pack (policy/) still plans.
        try:
            from plan import policies
        except ImportError as error:
            raise InputError(f"--policy: the policy pack is not here ({error})") from None

        lines, violated = policies.report(policies.as_resources(evaluation.resources))
        sys.stderr.write("".join(f"{line}\n" for line in lines))
    text = json.dumps(plan, indent=2) + "\n"
    status = VIOLATION if violated else 0
    if args.json == "-":
        sys.stdout.write(text)
        return status
    if target is not None:
        try:
            target.write_text(text)
        except OSError as error:
            raise InputError(f"--json {args.json}: {error.strerror}") from None
    if not args.quiet:
        sys.stdout.write(report.render(plan))
    return status


def _load(argument: str, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    if argument == WORKING_TREE:
        return make_plan(ROOT, args.stack, args.config, args.secret), "the working tree"
    path = _file(argument)
    if path.is_file():
        try:
            plan = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{argument}: not a plan file: {error}") from None
        if not isinstance(plan, dict) or plan.get("format") != FORMAT or "resources" not in plan:
            raise InputError(f"{argument}: not a plan file (format {FORMAT})")
        return plan, argument
    if is_revision(ROOT, argument):
        plan_args = ["--stack", args.stack]
        plan_args += [f"--config={pair}" for pair in args.config]
        plan_args += [f"--secret={pair}" for pair in args.secret]
        return plan_of_revision(ROOT, argument, plan_args), f"{argument} (git revision)"
    raise InputError(f"{argument}: neither a plan file nor a git revision")


def _diff_main(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="scripts/plan diff",
        description="What pulumi up would create, replace, update or delete between two "
        "plans (plan files, git revisions, or . for the working tree), and why. With no "
        "argument: HEAD against the working tree (uncommitted edits too).",
    )
    _common(parser)
    parser.add_argument(
        "old", nargs="?", default="HEAD", help="plan file, git revision or . (default HEAD)"
    )
    parser.add_argument(
        "new", nargs="?", default=WORKING_TREE, help="plan file, git revision or . (default .)"
    )
    parser.add_argument(
        "--exit-code", action="store_true", help=f"exit {CHANGES} when anything changes"
    )
    parser.add_argument("--full", action="store_true", help="show every value and line whole")
    args = parser.parse_args(argv)
    _progress(f"planning {args.old}")
    old, old_label = _load(args.old, args)
    _progress(f"planning {args.new}")
    new, new_label = _load(args.new, args)
    comparison = diff.compare(old, new, full=args.full)
    edge = downtime.costs(comparison.changes, old, new)
    exported = outputs.changes(old, new, args.full)
    sys.stdout.write(diff.render(comparison, old_label, new_label, edge, exported))
    return CHANGES if args.exit_code and (comparison.changes or exported) else 0


def _progress(line: str) -> None:
    """A line on stderr while a diff plans, which takes seconds per side."""
    sys.stderr.write(f"plan diff: {line}...\n")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        if arguments[:1] == ["diff"]:
            return _diff_main(arguments[1:])
        return _plan_main(arguments)
    except (InputError, ProgramError) as error:
        sys.stderr.write(f"{error}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("plan: interrupted\n")
        return INTERRUPTED
