"""Config problems as the operator reads them: one line each, naming the key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from components.config.stack import NAMESPACE, SECRET_KEYS


class ConfigError(pulumi.RunError):
    """Bad stack config. The CLI prints the message alone, without a traceback."""


def key_path(loc: tuple[int | str, ...]) -> str:
    """``('gpu', 'llama', 'args', 0)`` -> ``hemma:gpu.llama.args[0]``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"{NAMESPACE}:{path}"


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
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "model_type": "must be an object",
}


def problem_line(error: Mapping[str, Any], secrets: set[str]) -> str:
    """One pydantic error as ``hemma:KEY: what is wrong (got VALUE)``; never a secret value."""
    loc = tuple(error["loc"])
    message = _MESSAGES.get(error["type"])
    if message is not None:
        message = message.format(**error.get("ctx", {}))
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    line = f"{key_path(loc)}: {message}"
    shows_value = error["type"] not in ("missing", "extra_forbidden") and not isinstance(
        error.get("input"), (dict, list)
    )
    if shows_value and str(loc[0]) not in secrets | SECRET_KEYS:
        line += f" (got {error['input']!r})"
    return line
