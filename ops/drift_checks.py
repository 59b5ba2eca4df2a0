"""The doctor's drift checks: the textfile metrics the two drift checks leave on Hemma.

``drift:host`` reads ``hemma_drift_host.prom`` (the hemma-drift-check job: files,
grants, containers), ``drift:operator`` reads ``hemma_drift_operator.prom``
(``scripts/drift``'s refresh preview, pushed over ssh). Each says clean, what drifted,
that its last run failed, or that it is older than ``drift.staleAfterHours``.
"""

from __future__ import annotations

import base64
import binascii
import math
import posixpath
import re
import shlex
from collections.abc import Callable
from typing import Any

from ops import remote
from ops.backups import age, metrics_directory
from ops.checks import FAIL, OK, Check, Context, Outcome, over_ssh
from ops.outputs import BadInput

# source (drift:SOURCE), its file, and what writes it: short, so that the doctor's
# cell (90 characters) still shows it after "cannot read FILE: REASON".
SOURCES = (
    ("host", "hemma_drift_host.prom", "hemma-drift-check.timer"),
    ("operator", "hemma_drift_operator.prom", "scripts/drift install"),
)
DEFAULT_STALE_HOURS = 36.0
NAMES_SHOWN = 3

SUCCESS = "hemma_drift_check_success"
STAMP = "hemma_drift_last_success_timestamp_seconds"
ITEMS = "hemma_drift_items"
ITEM = "hemma_drift_item"

# NAME{LABELS} VALUE, the labels read by _labels. No timestamp: node-exporter skips
# a textfile that has one.
_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)")
# A label value escapes a backslash, a quote and a line end; nothing else.
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"(?:,|$)')
_ESCAPE = re.compile(r'\\([\\"n])')


def _unescape(value: str) -> str:
    return _ESCAPE.sub(lambda m: "\n" if m[1] == "n" else m[1], value)


def _labels(body: str) -> dict[str, str] | None:
    """``a="x",b="y\\"z"`` as a dict; None when it is not exactly a list of labels."""
    labels: dict[str, str] = {}
    at = 0
    while at < len(body):
        match = _LABEL.match(body, at)
        if match is None:
            return None
        labels[match[1]] = _unescape(match[2])
        at = match.end()
    return labels


def read_command(path: str) -> str:
    """Hemma's clock, then the file in base64: ssh's answer is read as text, where a
    carriage return (which a label value may hold) would become a line end."""
    return "date +%s; " + shlex.join(["base64", path])


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample of a Prometheus text exposition, NaN and
    infinities included. Lines end at ``\\n`` only, as Prometheus reads them: a carriage
    return or form feed in a label value is part of it. Any other line than a sample,
    a comment or a blank one is a ValueError: node-exporter would not read the file."""
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip(" \t")
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.fullmatch(line)
        labels = None if match is None else _labels(match[2] or "")
        value = None if match is None else _number(match[3])
        if match is None or labels is None or value is None:
            raise ValueError(f"line {number} of the file is not a Prometheus sample")
        found.append((match[1], labels, value))
    return found


def _shown(name: str, value: float) -> str:
    return f"{name} is {value:g} in the file"


def _judge(file: str, installed_by: str) -> Callable[[remote.Answer, Context], Outcome]:
    def judge(answer: remote.Answer, ctx: Context) -> Outcome:
        now_text, _, body = answer.stdout.partition("\n")
        if answer.code != 0:
            said = remote.why(remote.Answer(answer.code, "", answer.stderr))
            reason = said.rpartition(": ")[2] or f"exit {answer.code}"
            if reason == "No such file or directory":
                reason = "no such file"
            return Outcome(FAIL, f"cannot read {file}: {reason} (set up by {installed_by})")
        try:
            now = float(now_text)
        except ValueError:
            return Outcome(FAIL, "unexpected answer from date +%s", final=True)
        try:
            text = base64.b64decode(body).decode("utf-8", errors="replace")
        except binascii.Error:
            return Outcome(FAIL, "unexpected answer from base64", final=True)
        try:
            found = samples(text)
        except ValueError as error:
            return Outcome(FAIL, str(error), final=True)
        gauges = {name: v for name, _, v in found}
        for name in (SUCCESS, STAMP):
            if name not in gauges:
                return Outcome(FAIL, f"no {name} in the file", final=True)
            if not math.isfinite(gauges[name]):
                return Outcome(FAIL, _shown(name, gauges[name]), final=True)
        last = gauges[STAMP]
        hours = max(0.0, (now - last) / 3600)
        since = f"last good check {age(hours)} ago" if last > 0 else "never succeeded"
        if gauges[SUCCESS] != 1:
            return Outcome(FAIL, f"the last check could not run; {since}", final=True)
        limit = ctx.drift_max_age_hours
        if hours > limit:
            return Outcome(FAIL, f"{since}, over {limit:g} h", final=True)
        # One count per kind: a check that ran to the end wrote them all.
        counts = [v for name, _, v in found if name == ITEMS]
        if not counts:
            return Outcome(FAIL, f"no {ITEMS} in the file", final=True)
        for count in counts:
            if not (count >= 0 and count.is_integer()):
                return Outcome(FAIL, _shown(ITEMS, count), final=True)
        drifted = [
            f"{labels.get('kind', '?')} {labels.get('name', '?')}"
            for name, labels, v in found
            if name == ITEM and v == 1
        ]
        # The writers name 20 items of a kind and count them all; a file that names
        # more than it counts still has them all drifted.
        total = max(int(sum(counts)), len(drifted))
        if not total:
            return Outcome(OK, f"no drift; {since}")
        shown = drifted[:NAMES_SHOWN]
        listing = f": {', '.join(shown)}" if shown else ""
        more = total - len(shown)
        listing += f" and {more} more" if shown and more else ""
        return Outcome(FAIL, f"{total} drifted{listing}; {since}", final=True)

    return judge


def drift_checks(data: dict[str, Any]) -> list[Check]:
    if not isinstance(data.get("backups"), dict) or "metricsDirectory" not in data["backups"]:
        raise BadInput("outputs have no backups.metricsDirectory: export them again (pulumi up)")
    directory = metrics_directory(data)
    found = []
    for rank, (source, file, installed_by) in enumerate(SOURCES):
        path = posixpath.join(directory, file)
        probe = over_ssh(read_command(path), _judge(file, installed_by))
        found.append(Check("drift", source, path, probe, needs_ssh=True, rank=rank))
    return found


def stale_hours(data: dict[str, Any]) -> float:
    """``drift.staleAfterHours`` from the outputs; outputs from before it, the default."""
    drift = data.get("drift")
    if drift is None:
        return DEFAULT_STALE_HOURS
    if not isinstance(drift, dict):
        raise BadInput(f"outputs drift should be an object, not {drift!r}")
    hours = drift.get("staleAfterHours")
    if hours is None:
        return DEFAULT_STALE_HOURS
    number = isinstance(hours, int | float) and not isinstance(hours, bool)
    if not number or not math.isfinite(hours) or not hours > 0:
        raise BadInput(f"outputs drift.staleAfterHours should be a positive number, not {hours!r}")
    return float(hours)
