"""The doctor's drift checks: the textfile metrics the two drift checks leave on Hemma.

``drift:host`` reads ``hemma_drift_host.prom`` (the hemma-drift-check job: files,
grants, containers), ``drift:operator`` reads ``hemma_drift_operator.prom``
(``scripts/drift``'s refresh preview, pushed over ssh). Each says clean, what drifted,
that its last run failed, or that it is older than ``drift.staleAfterHours``.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable
from typing import Any

from ops import remote
from ops.backups import age, metrics_command, metrics_directory
from ops.checks import FAIL, OK, Check, Context, Outcome, over_ssh
from ops.outputs import BadInput

SOURCES = (
    ("host", "hemma_drift_host.prom", "the hemma-drift-check timer on Hemma"),
    ("operator", "hemma_drift_operator.prom", "scripts/drift install, on your machine"),
)
DEFAULT_STALE_HOURS = 36.0
NAMES_SHOWN = 3

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], value)


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample of a Prometheus text exposition."""
    found = []
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if not match or line.startswith("#"):
            continue
        name, _, body, value = match.group(1), match.group(2), match.group(3) or "", match[4]
        labels = {k: _unescape(v) for k, v in _LABEL.findall(body)}
        try:
            number = float(value)
        except ValueError:
            continue
        if math.isfinite(number):
            found.append((name, labels, number))
    return found


def _judge(file: str, installed_by: str) -> Callable[[remote.Answer, Context], Outcome]:
    def judge(answer: remote.Answer, ctx: Context) -> Outcome:
        now_text, _, body = answer.stdout.partition("\n")
        if answer.code != 0:
            said = remote.why(remote.Answer(answer.code, "", answer.stderr))
            reason = said.rpartition(": ")[2] or f"exit {answer.code}"
            return Outcome(FAIL, f"cannot read {file}: {reason} (set up by {installed_by})")
        try:
            now = float(now_text)
        except ValueError:
            return Outcome(FAIL, "unexpected answer from date +%s", final=True)
        found = samples(body)
        value = {name: v for name, _, v in found}
        stamp = "hemma_drift_last_success_timestamp_seconds"
        if "hemma_drift_check_success" not in value or stamp not in value:
            return Outcome(FAIL, f"no hemma_drift_check_success or {stamp} in the file", True)
        last = value[stamp]
        hours = max(0.0, (now - last) / 3600)
        since = f"last good check {age(hours)} ago" if last > 0 else "never succeeded"
        if value["hemma_drift_check_success"] != 1:
            return Outcome(FAIL, f"the last check could not run; {since}", final=True)
        limit = ctx.drift_max_age_hours
        if hours > limit:
            return Outcome(FAIL, f"{since}, over {limit:g} h", final=True)
        drifted = [
            f"{labels.get('kind', '?')} {labels.get('name', '?')}"
            for name, labels, v in found
            if name == "hemma_drift_item" and v == 1
        ]
        count = int(sum(v for name, _, v in found if name == "hemma_drift_items"))
        if count or drifted:
            shown = ", ".join(drifted[:NAMES_SHOWN])
            more = f" and {count - NAMES_SHOWN} more" if count > NAMES_SHOWN else ""
            return Outcome(FAIL, f"{count} drifted: {shown}{more}; {since}", final=True)
        return Outcome(OK, f"no drift; {since}")

    return judge


def drift_checks(data: dict[str, Any]) -> list[Check]:
    if not isinstance(data.get("backups"), dict) or "metricsDirectory" not in data["backups"]:
        raise BadInput("outputs have no backups.metricsDirectory: export them again (pulumi up)")
    directory = metrics_directory(data)
    found = []
    for rank, (source, file, installed_by) in enumerate(SOURCES):
        path = posixpath.join(directory, file)
        probe = over_ssh(metrics_command(path), _judge(file, installed_by))
        found.append(Check("drift", source, path, probe, needs_ssh=True, rank=rank))
    return found


def stale_hours(data: dict[str, Any]) -> float:
    """``drift.staleAfterHours`` from the outputs; outputs from before it, the default."""
    drift = data.get("drift")
    hours = drift.get("staleAfterHours") if isinstance(drift, dict) else None
    if hours is None:
        return DEFAULT_STALE_HOURS
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not hours > 0:
        raise BadInput(f"outputs drift.staleAfterHours should be a positive number, not {hours!r}")
    return float(hours)
