"""Config problems as the operator reads them: one line each, naming the key."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import pulumi
from pydantic import BaseModel

from components.config.stack import NAMESPACE, SECRET_KEYS, StackConfig


class ConfigError(pulumi.RunError):
    """Bad stack config. The CLI prints the message alone, without a traceback."""


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_@/-][A-Za-z0-9_.@/-]{0,127}")


def key_path(loc: tuple[int | str, ...]) -> str:
    """``('gpu', 'llama', 'args', 0)`` -> ``hemma:gpu.llama.args[0]``; a key that is not
    plain (a dict key the operator chose) is quoted, so no line end reaches the line."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        name = part if _PLAIN_KEY.fullmatch(part) else shown(part)
        path += f".{name}" if path else name
    return f"{NAMESPACE}:{path}"


NOT_JSON = "must be an object, and this is not JSON (or set one field: KEY.FIELD=VALUE)"
"""An object key's value the CLI handed over as text that is not JSON."""

_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "unknown config key",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "model_type": "must be an object",
}


SHOWN = 40
"""At most this many characters of a bad value are echoed."""


def shown(value: Any) -> str:
    """A value as an error line cites it: repr, cut to a short prefix."""
    text = repr(value)
    if len(text) <= SHOWN:
        return text
    return f"{text[:SHOWN]}... ({len(str(value))} characters)"


def redacted(line: str, secret_values: Iterable[str]) -> str:
    """``line`` with every secret value in it replaced, longest first."""
    for value in sorted(secret_values, key=len, reverse=True):
        if value:
            line = line.replace(value, "***")
    return line


MAX_LINE = 240
"""No line is longer: a long value is cited by a short prefix at most."""
_LINE_KEY = re.compile(
    re.escape(NAMESPACE) + r":(?P<key>[A-Za-z0-9_]+)(?:\.[A-Za-z0-9_@/-]+|\[[0-9]+\])*"
)


def _value_free(template: str) -> str:
    number = "-?[0-9]+"
    escaped = re.escape(template)
    for field in ("ge", "le", "max_length"):
        escaped = escaped.replace(rf"\{{{field}\}}", number)
    return escaped


_VALUE_FREE = re.compile(
    "|".join(_value_free(m) for m in _MESSAGES.values())
    + r"|unknown config key \(did you mean [A-Za-z0-9_:.\[\]@/-]+\?\)"
    + "|"
    + re.escape(NOT_JSON)
    + "|must be set as a secret \\(pulumi config set --secret [A-Za-z]+ \\.\\.\\.\\)"
)
"""Reasons that hold nothing of the value."""


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class ValueFree(str):
    """A problem line that holds nothing of any value (only key names and the
    program's own words): shown as it is, whatever is secret."""

    __slots__ = ()


def safe_line(line: str, secret_keys: Iterable[str], secret_values: Iterable[str]) -> str:
    """A problem line as it may be shown.

    A line about a key the operator set as a secret keeps its key path and a
    reason that holds nothing of the value; any other reason is replaced, since
    it may quote a fragment of the value (a bad weekday, a path). Every other
    line has the secret values taken out, and is cut to ``MAX_LINE``.
    """
    if isinstance(line, ValueFree):
        return str(line)
    found = _LINE_KEY.match(line)
    if found is not None and found["key"] in set(secret_keys):
        rest = line[found.end() :]
        path = found[0] if rest.startswith(": ") else f"{NAMESPACE}:{found['key']}"
        reason = rest[2:] if rest.startswith(": ") else ""
        if not _VALUE_FREE.fullmatch(reason):
            reason = f"invalid (not shown: {found['key']} is set as a secret)"
        return f"{path}: {reason}"
    line = redacted(line, secret_values)
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def safe_message(
    lines: Iterable[str], secret_keys: Iterable[str], secret_values: Iterable[str]
) -> str:
    """Safe lines, each once, in order."""
    keys = frozenset(secret_keys)
    return "\n".join(dict.fromkeys(safe_line(line, keys, secret_values) for line in lines))


def _bare(node: Any) -> Any:
    """A type without ``Optional``/``Annotated`` around it."""
    while typing.get_origin(node) in (typing.Union, types.UnionType, typing.Annotated):
        args = [a for a in typing.get_args(node) if a is not type(None)]
        node = args[0] if args else None
    return node


def _model_at(loc: tuple[int | str, ...]) -> Any:
    """The config model (or type) the key path ``loc`` leads to; None past its end."""
    node: Any = StackConfig
    for part in loc:
        node = _bare(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            fields = {(f.alias or name): f for name, f in node.model_fields.items()}
            if part not in fields:
                return None
            node = fields[str(part)].annotation
        elif typing.get_origin(node) in (dict, Mapping, typing.Mapping):
            node = typing.get_args(node)[1] if typing.get_args(node) else None
        elif typing.get_origin(node) in (list, tuple):
            node = typing.get_args(node)[0] if typing.get_args(node) else None
        else:
            return None
    return _bare(node)


def unknown_name(name: str, known: Iterable[str]) -> str:
    """What follows "no ... of that name": the nearest known name, else every one
    (the line may cut a long list; a near miss is what a typo needs)."""
    names = sorted(set(known))
    near = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if near:
        return f"(did you mean {near[0]}?)"
    return f"(known: {', '.join(names)})"


def nearest_key(loc: tuple[int | str, ...]) -> str | None:
    """The known key nearest an unknown one (``hostPrt`` -> ``hostPort``)."""
    model = _model_at(loc[:-1])
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    known = [f.alias or name for name, f in model.model_fields.items()]
    found = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    return found[0] if found else None


def problem_line(error: Mapping[str, Any], secrets: set[str]) -> str:
    """One pydantic error as ``hemma:KEY: what is wrong (got VALUE)``; never a secret value."""
    loc = tuple(error["loc"])
    if loc and loc[-1] == "[key]":
        # pydantic's loc for a bad dict key: (..., KEY, "[key]")
        reason = str(error["msg"]).removeprefix("Value error, ")
        line = f"{key_path(loc[:-2])}: the key {shown(loc[-2])} {reason}"
        # A variable's name, such as backupStorageEnv's, is shown even where the
        # values are secret: it is no value, and the operator must see which one.
        return ValueFree(line) if _NAME.fullmatch(str(loc[-2])) else line
    message = _MESSAGES.get(error["type"])
    if message is not None:
        message = message.format(**error.get("ctx", {}))
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    line = f"{key_path(loc)}: {message}"
    if error["type"] == "extra_forbidden" and (near := nearest_key(loc)):
        line += f" (did you mean {key_path((*loc[:-1], near))}?)"
    shows_value = error["type"] not in (
        "missing",
        "extra_forbidden",
        "hidden_value",
    ) and not isinstance(error.get("input"), (dict, list))
    if shows_value and str(loc[0]) not in secrets | SECRET_KEYS:
        line += f" (got {shown(error['input'])})"
    return line
