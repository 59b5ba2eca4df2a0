"""Reading the stack's config: every ``hemma:`` key, validated, before any resource exists.

``pulumi up`` creates resources as the program registers them, so a bad value
found halfway through would leave a half-built server. ``load_config`` reads
every key, validates all of it against the model and the app catalog, and
stops the program with one line per problem, each naming its key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pulumi.runtime
from pulumi.runtime import config as runtime_config
from pydantic import ValidationError

from components.config.checks import check_site, missing_operator_secrets
from components.config.errors import (
    NOT_JSON,
    ConfigError,
    problem_line,
    safe_line,
    safe_message,
)
from components.config.sources import absent_checkouts
from components.config.stack import NAMESPACE, SECRET_KEYS, StackConfig, object_keys


def raw_config() -> tuple[dict[str, str], set[str]]:
    """Every ``hemma:`` key as the CLI passed it (strings), and which are secret.

    The CLI's Python host hands the program its config and secret keys with
    ``set_all_config`` (from ``PULUMI_CONFIG`` and ``PULUMI_CONFIG_SECRET_KEYS``);
    ``pulumi.runtime.is_config_secret`` is the SDK's public way to ask.
    """
    prefix = f"{NAMESPACE}:"
    names = {*runtime_config.get_config_env(), *runtime_config.CONFIG.get()}
    values: dict[str, str] = {}
    secrets: set[str] = set()
    for name in names:
        if not name.startswith(prefix):
            continue
        key = name.removeprefix(prefix)
        values[key] = pulumi.runtime.get_config(name)
        if pulumi.runtime.is_config_secret(name):
            secrets.add(key)
    return values, secrets


MAX_RAW = 65536
"""Longer than any real value: the rest is a mistake, or an attack on the parser."""
MAX_DEPTH = 8
"""Deeper than any key of the model nests."""
TAINT_LENGTH = 4
"""Secret values at least this long are traced into resources and redacted from errors;
shorter ones (a port, ``true``) would match nearly everything."""


def _depth(value: Any, limit: int = MAX_DEPTH) -> int:
    if limit < 0:
        return MAX_DEPTH + 1
    if isinstance(value, dict):
        return 1 + max((_depth(v, limit - 1) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v, limit - 1) for v in value), default=0)
    return 0


def leaves(value: Any) -> Iterator[str]:
    """Every value in a config value (the keys of its objects name things: they are not
    what a secret hides)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def _decode(key: str, value: str, structured: frozenset[str]) -> tuple[Any, str | None]:
    """A raw CLI value as data, or the one line that says why it cannot be."""
    if len(value) > MAX_RAW:
        return None, f"{NAMESPACE}:{key}: is too long ({len(value)} characters)"
    if key not in structured:
        return value, None
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError:
        return None, f"{NAMESPACE}:{key}: {NOT_JSON}"
    except RecursionError:
        return None, f"{NAMESPACE}:{key}: is nested too deeply"
    except ValueError:  # a number with more digits than Python converts
        return None, f"{NAMESPACE}:{key}: holds a number too long to read"
    if decoded is None:
        return None, f"{NAMESPACE}:{key}: must be an object"
    if _depth(decoded) > MAX_DEPTH:
        return None, f"{NAMESPACE}:{key}: is nested too deeply"
    return decoded, None


def parse(values: Mapping[str, str], secrets: set[str] | None = None) -> StackConfig:
    """Validate raw config values; raise ConfigError with one line per problem.

    A line names its key and never holds a secret: every value of a key set with
    ``--secret`` is redacted from it, whichever check wrote it.
    """
    secrets = set(secrets or ())
    structured = object_keys()
    problems: list[str] = []
    data: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(value, str):
            data[key] = value
            continue
        decoded, problem = _decode(key, value, structured)
        if problem:
            problems.append(problem)
        else:
            data[key] = decoded
    secret_values = frozenset(
        leaf
        for key in secrets
        if key in data
        for leaf in leaves(data[key])
        if len(leaf) >= TAINT_LENGTH
    )
    for key in sorted(SECRET_KEYS & values.keys() - secrets):
        problems.append(
            f"{NAMESPACE}:{key}: must be set as a secret (pulumi config set --secret {key} ...)"
        )
    config: StackConfig | None = None
    if not problems:
        try:
            config = StackConfig.model_validate(data)
        except ValidationError as error:
            problems.extend(problem_line(e, secrets) for e in error.errors())
    if config is not None:
        if config.local:
            config.leave_out(absent_checkouts(config))
        problems.extend(check_site(config))
    if problems:
        raise ConfigError(safe_message(problems, secrets, secret_values))
    assert config is not None
    config.mark_secret(secret_values, frozenset(secrets))
    return config


def load_config() -> StackConfig:
    """Read and validate the whole stack config. Call before declaring any resource."""
    values, secrets = raw_config()
    config = parse(values, secrets)
    secret_keys, secret_values = config.secret_keys, config.secret_values
    for app, why in sorted(config.left_out.items()):
        if "appSources" in secret_keys:
            why = "its source checkout is not here (appSources is set as a secret)"
        line = f"{NAMESPACE}: the {app} app is left out: {why}"
        pulumi.log.warn(safe_line(line, secret_keys, secret_values))
    if config.local:
        for key, container in sorted(missing_operator_secrets(config, config.apps()).items()):
            pulumi.log.warn(f"{NAMESPACE}:{key}: not set; {container} runs without it")
    return config
