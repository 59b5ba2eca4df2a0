"""The doctor's backup checks: the Prometheus textfile metrics the restic jobs leave on Hemma.

hemma-backup.sh, hemma-drill.sh and hemma-backup-check.sh (components/backups/files)
each rewrite one ``*.prom`` file in ``backups.metricsDirectory`` after every run,
mode 0644, so plain ``cat`` over ssh reads them without sudo.
"""

from __future__ import annotations

import math
import posixpath
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ops import remote
from ops.checks import FAIL, OK, Check, Context, Outcome, off, over_ssh
from ops.outputs import BadInput, need

DAY = 24.0  # hours


@dataclass(frozen=True)
class Job:
    short: str  # backup:SHORT in the report
    file: str
    prefix: str  # its metrics are PREFIX_last_success_timestamp_seconds, PREFIX_last_run_success
    what: str  # for the detail: "last run failed", "last drill failed", ...
    max_age_hours: float | None  # None: the doctor's --backup-max-age


JOBS = (
    Job("last", "hemma_backup.prom", "hemma_backup", "run", None),
    Job("drill", "hemma_drill.prom", "hemma_drill", "drill", 8 * DAY),
    Job("check", "hemma_backup_check.prom", "hemma_backup_check", "check", 8 * DAY),
)

# What shlex.quote leaves alone: a path made of these needs no quoting in any shell.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9_@%+=:,./-]*")


def metrics_command(path: str) -> str:
    # Hemma's own clock comes first, so the age does not depend on the operator's.
    return "date +%s; " + shlex.join(["cat", path])


def read_metrics(text: str) -> dict[str, float]:
    """The unlabelled samples of a Prometheus text exposition: name -> value."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0].startswith("#") or "{" in words[0]:
            continue
        try:
            value = float(words[1])
        except ValueError:
            continue
        if math.isfinite(value):
            found[words[0]] = value
    return found


def age(hours: float) -> str:
    return f"{hours:.1f} h" if hours < 2 * DAY else f"{hours / DAY:.1f} days"


def _limit(hours: float) -> str:
    return f"{hours:g} h" if hours < 2 * DAY else f"{hours / DAY:g} days"


def _judge(job: Job) -> Callable[[remote.Answer, Context], Outcome]:
    def judge(answer: remote.Answer, ctx: Context) -> Outcome:
        now_text, _, body = answer.stdout.partition("\n")
        if answer.code != 0:
            # cat says "cat: /DIR/FILE: No such file or directory"; the path is the target.
            said = remote.why(remote.Answer(answer.code, "", answer.stderr))
            reason = said.rpartition(": ")[2] or f"exit {answer.code}"
            return Outcome(FAIL, f"cannot read {job.file}: {reason}")
        try:
            now = float(now_text)
        except ValueError:
            return Outcome(FAIL, "unexpected answer from date +%s", final=True)
        metrics = read_metrics(body)
        success = f"{job.prefix}_last_run_success"
        stamp = f"{job.prefix}_last_success_timestamp_seconds"
        missing = [name for name in (success, stamp) if name not in metrics]
        if missing:
            return Outcome(FAIL, f"no {missing[0]} in the file", final=True)
        last = metrics[stamp]
        hours = max(0.0, (now - last) / 3600)
        since = f"last success {age(hours)} ago" if last > 0 else "never succeeded"
        if metrics[success] != 1:
            return Outcome(FAIL, f"last {job.what} failed; {since}", final=True)
        limit = ctx.backup_max_age_hours if job.max_age_hours is None else job.max_age_hours
        if last <= 0:
            return Outcome(FAIL, since, final=True)
        if hours > limit:
            return Outcome(FAIL, f"{since}, over {_limit(limit)}", final=True)
        return Outcome(OK, since)

    return judge


def metrics_directory(data: dict[str, Any]) -> str:
    directory: str = need(data, "backups.metricsDirectory", str)
    # A relative path means nothing on Hemma; a leading dash would be an option to cat.
    if not _PLAIN_PATH.fullmatch(directory):
        raise BadInput(
            "outputs backups.metricsDirectory should be an absolute path without spaces "
            f"or shell metacharacters, not {directory!r}"
        )
    return directory


def backup_checks(data: dict[str, Any]) -> list[Check]:
    if not need(data, "backups.enabled", bool):
        shown = data["backups"].get("metricsDirectory")
        return [
            Check(
                "backup",
                job.short,
                posixpath.join(shown, job.file) if isinstance(shown, str) else job.file,
                off("backups.enabled is false"),
                rank=rank,
            )
            for rank, job in enumerate(JOBS)
        ]
    directory = metrics_directory(data)
    found = []
    for rank, job in enumerate(JOBS):
        path = posixpath.join(directory, job.file)
        probe = over_ssh(metrics_command(path), _judge(job))
        found.append(Check("backup", job.short, path, probe, needs_ssh=True, rank=rank))
    return found
