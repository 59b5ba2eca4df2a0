"""The config a plan runs with: the stack file, the command line, and placeholders.

The stack file holds every site value but none of the operator's: the SSH host
key is pinned on the operator's machine and the secrets are encrypted with a
passphrase only they hold. A plan anyone can run fills each of those with an
obvious placeholder marked secret, so the program sees the shape of a real
config and nothing real. Values reach the program as the CLI passes them:
strings, objects as JSON text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from components.config.stack import SECRET_KEYS, StackConfig, object_keys

PLACEHOLDER_PREFIX = "hemma-plan-placeholder-"
HOST_KEY = "sshHostKey"
OPERATOR_KEYS = frozenset({HOST_KEY, *SECRET_KEYS})
"""Keys whose values only the operator holds (README: "the values only the operator
holds")."""

_HOST_KEY_BLOB = (
    b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"hemma-plan-placeholder-host-key!"
)
PLACEHOLDER_HOST_KEY = "ssh-ed25519 " + base64.b64encode(_HOST_KEY_BLOB).decode()
"""Well-formed (the config checks the key type inside the blob), and not a key."""


OPERATOR_SETTINGS = {
    # Where the backups go is the operator's to choose (the stack file asks for it
    # before the first up); not a secret, so not marked.
    "backups.repository": "/srv/hemma-plan-placeholder/restic",
}
"""Settings inside an object key that the stack file leaves to the operator, filled
when the program's config model has them and the stack file does not set them."""


class InputError(Exception):
    """Bad command-line input or stack file: one line per problem."""


def placeholder(key: str) -> str:
    if key == HOST_KEY:
        return PLACEHOLDER_HOST_KEY
    return f"{PLACEHOLDER_PREFIX}{key}"


def cli_value(value: Any) -> str:
    """A stack-file value as the CLI hands it to the program."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


@dataclass
class PlanConfig:
    values: dict[str, str]
    """Key (without the namespace) -> value as the CLI passes it."""
    secret_keys: set[str]
    placeholders: list[str] = field(default_factory=list)
    """Keys filled with a placeholder."""
    left_unset: list[str] = field(default_factory=list)
    """Operator-held keys whose value is an object: left at the program's default."""


def _project(root: Path) -> dict[str, Any]:
    path = root / "Pulumi.yaml"
    if not path.is_file():
        raise InputError(f"{root}: no Pulumi.yaml")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "name" not in data:
        raise InputError(f"{path}: has no project name")
    return data


def project_name(root: Path) -> str:
    return str(_project(root)["name"])


def project_defaults(root: Path, namespace: str) -> dict[str, str]:
    """The defaults Pulumi.yaml's ``config`` block declares, which the CLI hands the
    program for every key the stack file leaves unset."""
    defaults: dict[str, str] = {}
    for name, spec in (_project(root).get("config") or {}).items():
        key = str(name).removeprefix(f"{namespace}:")
        if ":" in key:
            continue
        if isinstance(spec, dict):
            for field_name in ("value", "default"):
                if field_name in spec:
                    defaults[key] = cli_value(spec[field_name])
                    break
        elif spec is not None:
            defaults[key] = cli_value(spec)
    return defaults


def stack_file(root: Path, stack: str) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def read_stack_file(path: Path, namespace: str) -> tuple[dict[str, str], set[str]]:
    """The stack file's keys of the project's namespace, and those stored encrypted.

    Other namespaces (``pulumi:disable-default-providers``) are the engine's, not the
    program's.
    """
    if not path.is_file():
        raise InputError(f"{path.name}: no such stack file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise InputError(yaml_problem(path.name, error)) from None
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise InputError(f"{path.name}: config must be a mapping")
    prefix = f"{namespace}:"
    values: dict[str, str] = {}
    encrypted: set[str] = set()
    for name, value in config.items():
        if not str(name).startswith(prefix):
            continue
        key = str(name).removeprefix(prefix)
        if isinstance(value, dict) and "secure" in value:
            encrypted.add(key)
        else:
            values[key] = cli_value(value)
    return values, encrypted


def yaml_problem(name: str, error: yaml.YAMLError) -> str:
    """``FILE:LINE:COLUMN: not YAML: what`` in one line."""
    mark = getattr(error, "problem_mark", None)
    where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    return f"{where}: not YAML: {problem}" + (f" ({context})" if context else "")


def assignments(pairs: Iterable[str], namespace: str, option: str) -> dict[str, str]:
    """``KEY=VALUE`` words (``KEY`` with or without ``NAMESPACE:``)."""
    result: dict[str, str] = {}
    problems = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.removeprefix(f"{namespace}:")
        if not sep or not key:
            problems.append(f"{option} {pair.split('=')[0]!r}: expected KEY=VALUE")
        elif ":" in key:
            problems.append(f"{option} {key}: only {namespace}: keys reach the program")
        else:
            result[key] = value
    if problems:
        raise InputError("\n".join(problems))
    return result


def declares(path: str) -> bool:
    """Whether the config model has the (camelCase, dotted) key ``path``."""
    model: Any = StackConfig
    for part in path.split("."):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return False
        fields = {(spec.alias or name): spec for name, spec in model.model_fields.items()}
        if part not in fields:
            return False
        model = fields[part].annotation
    return True


def set_path(values: Mapping[str, str], path: str, value: str) -> str:
    """The top-level value with one field at ``path`` (``postgres.hostPort``) set, as
    ``pulumi config set --path`` does: the rest of the object stays as it is."""
    key, *fields = path.split(".")
    if any(not part for part in [key, *fields]):
        raise InputError(f"--config {path}: an empty part in the key path")
    try:
        current = json.loads(values.get(key, "{}"))
    except json.JSONDecodeError:
        raise InputError(f"--config {path}: {key} is not an object, so it has no fields") from None
    if not isinstance(current, dict):
        raise InputError(f"--config {path}: {key} is not an object, so it has no fields")
    node = current
    for part in fields[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InputError(f"--config {path}: {part} is not an object, so it has no fields")
        node = child
    node[fields[-1]] = value
    return json.dumps(current)


def _fill_setting(values: dict[str, str], path: str, value: str) -> bool:
    key, _, rest = path.partition(".")
    try:
        current = json.loads(values.get(key, "{}"))
    except json.JSONDecodeError:
        return False
    if not isinstance(current, dict) or rest in current or not declares(path):
        return False
    values[key] = json.dumps({**current, rest: value})
    return True


def plan_config(
    stack_values: Mapping[str, str],
    encrypted: set[str],
    overrides: Mapping[str, str],
    secrets: Mapping[str, str],
) -> PlanConfig:
    """The stack file's values, then ``--config``, then ``--secret``; every operator-held
    or encrypted key still without a value gets a placeholder marked secret."""
    values = dict(stack_values)
    for given in (overrides, secrets):
        for key, value in given.items():
            if "." in key:
                values[key.split(".", 1)[0]] = set_path(values, key, value)
            else:
                values[key] = value
    secret_keys = {key.split(".", 1)[0] for key in secrets}
    config = PlanConfig(values=values, secret_keys=secret_keys)
    structured = object_keys()
    for key in sorted(OPERATOR_KEYS | encrypted):
        if key in values:
            continue
        if key in structured:
            config.left_unset.append(key)
            continue
        values[key] = placeholder(key)
        secret_keys.add(key)
        config.placeholders.append(key)
    for path, value in OPERATOR_SETTINGS.items():
        if _fill_setting(values, path, value):
            config.placeholders.append(path)
    return config
