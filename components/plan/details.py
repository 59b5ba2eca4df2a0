"""How one input changed, in a few lines a person can read."""

from __future__ import annotations

import difflib
import json
from typing import Any

from components.plan.document import unit_files

SHOWN = 100
"""Longest value or line shown whole."""


def shown(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def _text_details(key: str, old: str, new: str) -> list[str]:
    """Changed lines of a long text; a unit file an install command carries (base64) is
    compared decoded, line by line."""
    old_files, new_files = unit_files(old), unit_files(new)
    if isinstance(old_files, dict) and isinstance(new_files, dict) and (old_files or new_files):
        lines: list[str] = []
        for path in sorted(set(old_files) | set(new_files)):
            before, after = old_files.get(path), new_files.get(path)
            if before == after:
                continue
            if before is None or after is None:
                lines.append(f"{key}: {'+' if before is None else '-'} file {path}")
                continue
            for line in _changed_lines(str(before["content"]), str(after["content"])):
                lines.append(f"{key}: {path}: {line}")
        old, new = _without_puts(old), _without_puts(new)
        return lines + [f"{key}: {line}" for line in _changed_lines(old, new)]
    return [f"{key}: {line}" for line in _changed_lines(old, new)]


def _without_puts(script: str) -> str:
    return "\n".join(line for line in script.splitlines() if not line.startswith("put "))


def _changed_lines(old: str, new: str, limit: int = 8) -> list[str]:
    changed = [
        line
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    shown = [line if len(line) <= SHOWN else line[: SHOWN - 3] + "..." for line in changed]
    if len(shown) > limit:
        return [*shown[:limit], f"... {len(shown) - limit} more changed lines"]
    return shown


def describe(key: str, old: Any, new: Any) -> list[str]:
    """A few lines on how one input changed."""
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old + new):
        return _text_details(key, old, new)
    if isinstance(old, list) and isinstance(new, list):
        old_items = [json.dumps(v, sort_keys=True) for v in old]
        new_items = [json.dumps(v, sort_keys=True) for v in new]
        removed = [v for v in old_items if v not in new_items]
        added = [v for v in new_items if v not in old_items]
        if removed or added:
            lines = [f"{key}: - {shown(json.loads(v))}" for v in removed[:5]]
            lines += [f"{key}: + {shown(json.loads(v))}" for v in added[:5]]
            hidden = len(removed) + len(added) - len(lines)
            return lines + ([f"{key}: ... {hidden} more"] if hidden > 0 else [])
        return [f"{key}: order changed"]
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for sub in sorted(set(old) | set(new)):
            if old.get(sub) != new.get(sub):
                lines += describe(f"{key}.{sub}", old.get(sub), new.get(sub))
        return lines[:8]
    if old is None:
        return [f"{key}: (unset) -> {shown(new)}"]
    if new is None:
        return [f"{key}: {shown(old)} -> (unset)"]
    return [f"{key}: {shown(old)} -> {shown(new)}"]
