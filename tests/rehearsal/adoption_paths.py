"""``pulumi config set --path PATH VALUE`` applied to a config dict.

PATH as pulumi sdk/go/common/resource/properties_path.go (parsePropertyPath) reads
it: ``a.b`` and ``a["b.c"]`` name object keys (a bare key runs up to the next ``.``
or ``[``); ``[N]`` is a list index, which these commands do not use. The value is
stored as the string typed: no command the survey prints sets a number or a boolean.
"""

from __future__ import annotations

import shlex
from typing import Any

CONFIG_SET = ["scripts/pulumi", "config", "set", "--path"]


def parse_path(path: str) -> list[str]:
    keys: list[str] = []
    rest = path
    while rest:
        if rest.startswith("["):
            if not rest.startswith('["'):
                raise ValueError(f"{path}: list indexes are not used here")
            i, key = 2, []
            while i < len(rest) and rest[i] != '"':
                if rest[i] == "\\" and rest[i + 1 : i + 2] == '"':
                    key.append('"')
                    i += 2
                    continue
                key.append(rest[i])
                i += 1
            if rest[i : i + 2] != '"]':
                raise ValueError(f"{path}: missing closing bracket")
            keys.append("".join(key))
            rest = rest[i + 2 :]
        else:
            end = min((p for p in (rest.find("."), rest.find("[")) if p >= 0), default=len(rest))
            keys.append(rest[:end])
            rest = rest[end:]
        if rest.startswith("."):
            rest = rest[1:]
            if not rest:
                raise ValueError(f"{path}: ends with a dot")
    if not keys or any(k == "" for k in keys):
        raise ValueError(f"{path}: empty key")
    return keys


def set_path(config: dict[str, Any], path: str, value: str) -> None:
    """Set ``value`` at ``path``, making objects on the way, as ``--path`` does."""
    *parents, last = parse_path(path)
    node = config
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[last] = value


def printed_commands(text: str) -> list[list[str]]:
    """The ``scripts/pulumi config set --path`` lines of the survey's output."""
    commands = []
    for line in text.splitlines():
        if line.startswith("scripts/pulumi "):
            words = shlex.split(line)
            assert words[:4] == CONFIG_SET and len(words) == 6, line
            commands.append(words)
    return commands


def apply_commands(config: dict[str, Any], commands: list[list[str]]) -> dict[str, Any]:
    for command in commands:
        set_path(config, command[4], command[5])
    return config
