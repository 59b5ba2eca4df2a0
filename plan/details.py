"""How one input changed, in a few lines a person can read."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from plan.document import unit_files

SHOWN = 100
"""Longest value or line shown whole."""


def shown(value: Any, full: bool = False) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if full or len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def _per_file(
    key: str,
    before: Mapping[str, Mapping[str, Any]],
    after: Mapping[str, Mapping[str, Any]],
    full: bool,
    fields: bool = False,
) -> list[str]:
    """Files by path: each added or removed one, then each changed text line by line
    (and, with ``fields``, each other changed field of a file)."""
    lines: list[str] = []
    for path in sorted(set(before) | set(after)):
        was, now = before.get(path), after.get(path)
        if was == now:
            continue
        if was is None or now is None:
            lines.append(f"{key}: {'+' if was is None else '-'} file {path}")
            continue
        old_text, new_text = was.get("content"), now.get("content")
        texts = isinstance(old_text, str) and isinstance(new_text, str)
        if not fields:
            old_text, new_text, texts = str(old_text), str(new_text), True
        if texts and old_text != new_text:
            changed = _changed_lines(str(old_text), str(new_text), full=full)
            lines += [f"{key}: {path}: {line}" for line in changed]
        if not fields:
            continue
        for field in sorted((set(was) | set(now)) - {"file", "content"}):
            if was.get(field) != now.get(field):
                lines.append(
                    f"{key}: {path}: {field} {shown(was.get(field), full)} -> "
                    f"{shown(now.get(field), full)}"
                )
        if old_text != new_text and not texts:
            lines.append(f"{key}: {path}: {shown(old_text, full)} -> {shown(new_text, full)}")
    return lines


def _uploads(key: str, old: list[Any], new: list[Any], full: bool) -> list[str] | None:
    """Files uploaded onto a container, compared by file name, text line by line; None
    when the lists are not uploads."""

    def by_file(items: list[Any]) -> dict[str, Any] | None:
        if not all(isinstance(i, dict) and isinstance(i.get("file"), str) for i in items):
            return None
        return {i["file"]: i for i in items}

    before, after = by_file(old), by_file(new)
    if before is None or after is None:
        return None
    return _per_file(key, before, after, full, fields=True)


def _text_details(key: str, old: str, new: str, full: bool = False) -> list[str]:
    """Changed lines of a long text; a unit file an install command carries (base64) is
    compared decoded, line by line."""
    old_files, new_files = unit_files(old), unit_files(new)
    if isinstance(old_files, dict) and isinstance(new_files, dict) and (old_files or new_files):
        lines = _per_file(key, old_files, new_files, full)
        old, new = _without_puts(old), _without_puts(new)
        return lines + [f"{key}: {line}" for line in _changed_lines(old, new, full=full)]
    return [f"{key}: {line}" for line in _changed_lines(old, new, full=full)]


def _without_puts(script: str) -> str:
    return "\n".join(line for line in script.splitlines() if not line.startswith("put "))


def _changed_lines(old: str, new: str, limit: int = 8, full: bool = False) -> list[str]:
    changed = [
        line
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    if full:
        return changed
    shown = [line if len(line) <= SHOWN else line[: SHOWN - 3] + "..." for line in changed]
    if len(shown) > limit:
        return [*shown[:limit], f"... {len(shown) - limit} more changed lines"]
    return shown


def describe(key: str, old: Any, new: Any, full: bool = False) -> list[str]:
    """A few lines on how one input changed (``full``: every line, every value whole)."""
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old + new):
        return _text_details(key, old, new, full)
    if isinstance(old, list) and isinstance(new, list):
        uploads = _uploads(key, old, new, full) if old or new else None
        if uploads is not None:
            return uploads
        old_items = [json.dumps(v, sort_keys=True) for v in old]
        new_items = [json.dumps(v, sort_keys=True) for v in new]
        removed = [v for v in old_items if v not in new_items]
        added = [v for v in new_items if v not in old_items]
        if removed or added:
            most = None if full else 5
            lines = [f"{key}: - {shown(json.loads(v), full)}" for v in removed[:most]]
            lines += [f"{key}: + {shown(json.loads(v), full)}" for v in added[:most]]
            hidden = len(removed) + len(added) - len(lines)
            return lines + ([f"{key}: ... {hidden} more"] if hidden > 0 else [])
        return [f"{key}: order changed"]
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for sub in sorted(set(old) | set(new)):
            if old.get(sub) != new.get(sub):
                lines += describe(f"{key}.{sub}", old.get(sub), new.get(sub), full)
        return lines if full else lines[:8]
    if old is None:
        return [f"{key}: (unset) -> {shown(new, full)}"]
    if new is None:
        return [f"{key}: {shown(old, full)} -> (unset)"]
    return [f"{key}: {shown(old, full)} -> {shown(new, full)}"]
