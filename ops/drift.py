"""Does Hemma still match the stack? The operator's half of the drift check.

    python -m ops.drift                 # refresh preview, print what drifted, push metrics
    python -m ops.drift --no-push       # the same, and leave Hemma's metrics alone
    python -m ops.drift install [--on-calendar daily] [--passphrase-file FILE]
    python -m ops.drift uninstall

The check runs ``scripts/pulumi refresh --preview-only --expect-no-changes --json``:
read-only (the state is not written), through the same SSH checks and tunnel as
every other Pulumi command. Pulumi reads every resource back from its provider and
compares it with the state. With ``--expect-no-changes`` it ends with
``NoChangesExpectedError`` when something differs
(pkg/cmd/pulumi/operations/refresh.go), which exits 7, ``ExitNoChanges``
(pkg/cmd/pulumi/cmd/exit_codes.go, since v3.226.0); older CLIs exit non-zero and
say "no changes were expected ... but changes were proposed". With ``--json`` a
preview prints one JSON digest (pkg/backend/display/json.go ``ShowPreviewDigest``):
a resource the refresh found changed is a step with op ``update`` and a
``detailedDiff``, one found gone a step with op ``delete``. Values the state marks
secret arrive as ``[secret]`` (json.go ``stateForJSONOutput``, ``MassageSecrets``);
a list holding one is ``[secret]`` whole. A value nobody marked secret, such as an
env entry added on Hemma by hand, is printed as it is; the pushed metrics carry
only URNs.

Exit status, as ``terraform plan -detailed-exitcode``: 0 clean, 2 drift, 1 the check
could not run. The result goes to Hemma as textfile metrics
(``hemma_drift_operator.prom`` in the metrics directory), so an alert fires there
on drift and when no check has succeeded for a while.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ops import backups, remote
from ops.outputs import ROOT, BadInput, load

CLEAN, ERROR, DRIFT = 0, 1, 2
EXIT_NO_CHANGES = 7
NO_CHANGES_EXPECTED = "no changes were expected"
REFRESH = ("refresh", "--preview-only", "--expect-no-changes", "--json", "--non-interactive")
DRIFTED_OPS = frozenset({"update", "delete", "replace", "create", "create-replacement"})
METRICS_FILE = "hemma_drift_operator.prom"
ITEMS_SHOWN = 20
"""Drifted resources named one by one in the metrics; the rest are counted."""
REFRESH_TIMEOUT = 1800.0
PUSH_TIMEOUT = 60.0
SHOWN = 100
SECRET = "[secret]"
"""What Pulumi's digest holds in place of a secret value, or of a value holding one."""


@dataclass
class Drifted:
    op: str
    name: str
    type: str
    urn: str
    details: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def headline(self) -> str:
        line = f"{self.op} {self.name} ({self.type})"
        return line + (": " + ", ".join(self.keys) if self.keys else "")


@dataclass
class Result:
    status: int
    drifted: list[Drifted]
    error: str = ""


def _shown(value: Any, full: bool) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if full or len(text) <= SHOWN else text[: SHOWN - 3] + "..."


_PATH_PART = re.compile(r'\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|\.?([^.\[]+)')


def value_at(data: Any, path: str) -> Any:
    """The value at a property path of a detailed diff (``ports[0].external``)."""
    for index, quoted, plain in _PATH_PART.findall(path):
        if data == SECRET:
            return SECRET
        if index and isinstance(data, list):
            position = int(index)
            data = data[position] if position < len(data) else None
        elif isinstance(data, dict):
            data = data.get(quoted or plain or index)
        else:
            return None
    return data


def _outputs(state: Any) -> Mapping[str, Any]:
    if not isinstance(state, dict):
        return {}
    found = state.get("outputs") or {}
    return found if isinstance(found, dict) else {}


def drifted_step(step: Mapping[str, Any], full: bool = False) -> Drifted | None:
    op = str(step.get("op", ""))
    if op not in DRIFTED_OPS:
        return None
    urn = str(step.get("urn", ""))
    parts = urn.split("::")
    name, type_ = (parts[-1], parts[-2].rpartition("$")[2]) if len(parts) >= 4 else (urn, "?")
    diff = step.get("detailedDiff") or {}
    keys = sorted(diff) if isinstance(diff, dict) else []
    keys = keys or sorted(str(k) for k in step.get("diffReasons") or [])
    old, new = _outputs(step.get("oldState")), _outputs(step.get("newState"))
    details = []
    if op == "delete":
        details.append("gone from Hemma: scripts/pulumi up --refresh creates it again")
    for key in keys:
        was, now = value_at(old, key), value_at(new, key)
        details.append(f"{key}: {_shown(was, full)} -> {_shown(now, full)}")
    return Drifted(op, name, type_, urn, details, keys)


def judge(code: int | None, stdout: str, stderr: str, full: bool = False) -> Result:
    """What a ``refresh --preview-only --expect-no-changes --json`` run means."""
    if code is None:
        return Result(ERROR, [], f"the refresh did not finish in {REFRESH_TIMEOUT:.0f} s")
    digest: Any = None
    try:
        start = stdout.find("{")
        digest = json.loads(stdout[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        digest = None
    steps = digest.get("steps") if isinstance(digest, dict) else None
    drifted = [d for s in steps or [] if (d := drifted_step(s, full)) is not None]
    said = NO_CHANGES_EXPECTED in stderr or NO_CHANGES_EXPECTED in stdout
    if code == 0 and not drifted:
        return Result(CLEAN, [])
    if code == 0 or code == EXIT_NO_CHANGES or said:
        if not drifted:
            unknown = Drifted("update", "(not listed)", "?", "", ["run scripts/pulumi refresh"])
            drifted = [unknown]
        return Result(DRIFT, drifted)
    # A resource that fails to refresh has its error under its URN; the engine then
    # adds "error: preview failed" with none (deploy/deployment_executor.go).
    errors, of_resource = [], []
    if isinstance(digest, dict):
        for diagnostic in digest.get("diagnostics") or []:
            if isinstance(diagnostic, dict) and diagnostic.get("severity") == "error":
                message = str(diagnostic.get("message", "")).strip()
                errors.append(message)
                if diagnostic.get("urn"):
                    of_resource.append(f"{str(diagnostic['urn']).split('::')[-1]}: {message}")
    why = (of_resource or errors[-1:] or [remote.why(remote.Answer(code, "", stderr))])[0]
    return Result(ERROR, drifted, f"pulumi exited {code}: {why or 'no message'}")


def report(result: Result) -> str:
    if result.status == CLEAN:
        return "drift: none; Hemma matches the state\n"
    if result.status == ERROR:
        return f"drift: the check could not run: {result.error}\n"
    lines = [f"drift: {len(result.drifted)} resource(s) differ from the state", ""]
    for drifted in result.drifted:
        lines.append(drifted.headline())
        lines += [f"    {detail}" for detail in drifted.details]
    lines += [
        "",
        "scripts/pulumi up --refresh puts them back as the program says (a plain up compares",
        "with the state only and changes nothing); to keep a change, make it in the program",
        "or Pulumi.hemma.yaml first (README, Drift).",
    ]
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    """A label value in the Prometheus text format: backslash, quote, newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(result: Result, now: float, last_success: float | None = None) -> str:
    """The operator's textfile metrics; ``last_success`` is kept by Hemma on a failure."""
    ok = result.status != ERROR
    source = 'source="operator"'
    # One URN can hold two resources (a replaced one pending deletion beside the new);
    # the digest then gives both one step, and a series twice spoils the whole file.
    names = list(dict.fromkeys(d.urn or d.name for d in result.drifted)) if ok else []
    lines = [
        "# HELP hemma_drift_check_success Whether the last drift check ran to the end.",
        "# TYPE hemma_drift_check_success gauge",
        f"hemma_drift_check_success{{{source}}} {int(ok)}",
        "# HELP hemma_drift_check_last_run_timestamp_seconds When the drift check last ran.",
        "# TYPE hemma_drift_check_last_run_timestamp_seconds gauge",
        f"hemma_drift_check_last_run_timestamp_seconds{{{source}}} {now:.0f}",
        "# HELP hemma_drift_last_success_timestamp_seconds When a drift check last ran to the end.",
        "# TYPE hemma_drift_last_success_timestamp_seconds gauge",
        f"hemma_drift_last_success_timestamp_seconds{{{source}}} "
        f"{(now if ok else (last_success or 0)):.0f}",
    ]
    if ok:
        lines += [
            "# HELP hemma_drift_items What differs from the program, by kind.",
            "# TYPE hemma_drift_items gauge",
            f'hemma_drift_items{{{source},kind="resource"}} {len(names)}',
            "# HELP hemma_drift_item One thing that differs from the program.",
            "# TYPE hemma_drift_item gauge",
        ]
        shown = names[:ITEMS_SHOWN]
        if len(names) > ITEMS_SHOWN:
            shown.append(f"... and {len(names) - ITEMS_SHOWN} more")
        lines += [
            f'hemma_drift_item{{{source},kind="resource",name="{_label(n)}"}} 1' for n in shown
        ]
    return "\n".join(lines) + "\n"


# Hemma keeps the last success of a failed run from the file it replaces, and swaps
# the file in whole (node-exporter never serves half of one).
PUSH_SCRIPT = r"""set -eu
umask 022
file="$1/hemma_drift_operator.prom"
tmp="$1/.hemma_drift_operator.prom.$$"
trap 'rm -f "$tmp" "$tmp.new"' EXIT
cat > "$tmp"
stamp=hemma_drift_last_success_timestamp_seconds
if grep -q '^hemma_drift_check_success{source="operator"} 0$' "$tmp" && [ -f "$file" ]; then
  old=$(grep "^$stamp{" "$file" | tail -n 1 || true)
  if [ -n "$old" ]; then
    awk -v old="$old" -v stamp="$stamp{" 'index($0, stamp) == 1 { print old; next } { print }' \
      "$tmp" > "$tmp.new"
    mv -f "$tmp.new" "$tmp"
  fi
fi
chmod 0644 "$tmp"
mv -f "$tmp" "$file"
trap - EXIT
"""


def push_argv(ssh_command: str, target: str, directory: str) -> list[str]:
    """ssh, without -n (the metrics go on its stdin), running the push as root."""
    script = shlex.join(["sh", "-c", PUSH_SCRIPT, "push", directory])
    return [
        *shlex.split(ssh_command),
        *("-o", "BatchMode=yes", "-o", f"ConnectTimeout={remote.CONNECT_TIMEOUT}"),
        target,
        f"sudo -n {script}",
    ]


def push(text: str, ssh_command: str, target: str, directory: str) -> str:
    """'' when Hemma has the metrics, else why not."""
    answer = remote.run(push_argv(ssh_command, target, directory), PUSH_TIMEOUT, stdin=text)
    if answer.code == 0:
        return ""
    return f"cannot push the metrics to {target}: {answer.why()}"


def refresh(argv: Sequence[str], full: bool = False) -> Result:
    try:
        done = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
            errors="replace", timeout=REFRESH_TIMEOUT, check=False,
        )  # fmt: skip
    except FileNotFoundError:
        return Result(ERROR, [], f"cannot run {argv[0]}: not found")
    except subprocess.TimeoutExpired:
        return judge(None, "", "")
    return judge(done.returncode, done.stdout, done.stderr, full)


def check(args: argparse.Namespace) -> int:
    result = refresh([str(ROOT / "scripts" / "pulumi"), *REFRESH], args.full)
    sys.stdout.write(report(result))
    if args.no_push:
        return result.status
    try:
        directory = args.metrics_dir or backups.metrics_directory(load(args.outputs))
        target = remote.target(args.ssh)
    except (BadInput, remote.BadTarget) as error:
        print(f"drift: the metrics were not pushed: {error}", file=sys.stderr)
        return ERROR
    failed = push(metrics(result, time.time()), args.ssh_command, target, directory)
    if failed:
        print(f"drift: {failed}", file=sys.stderr)
        return ERROR
    print(f"drift: metrics pushed to {target}:{directory}/{METRICS_FILE}")
    return result.status


def main(argv: Sequence[str] | None = None) -> int:
    from ops import drift_timer

    parser = argparse.ArgumentParser(prog="scripts/drift", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("check", help="the default: check now, print, push the metrics")
    for where in (parser, run):
        where.add_argument("--no-push", action="store_true", help="leave Hemma's metrics alone")
        where.add_argument("--full", action="store_true", help="values whole, not cut")
        where.add_argument("--outputs", metavar="FILE", help="stack outputs JSON")
        where.add_argument("--metrics-dir", metavar="DIR", help="Hemma's textfile directory")
        where.add_argument("--ssh", metavar="TARGET", help="Hemma's ssh alias (hemma)")
        where.add_argument("--ssh-command", default="ssh", help=argparse.SUPPRESS)
    drift_timer.add_commands(sub)
    args = parser.parse_args(argv)
    if args.command in (None, "check"):
        return check(args)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
