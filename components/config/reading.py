"""Reading the stack's config: every ``hemma:`` key, validated, before any resource exists.

``pulumi up`` creates resources as the program registers them, so a bad value
found halfway through would leave a half-built server. ``load_config`` reads
every key, validates all of it against the model and the app catalog, and
stops the program with one line per problem, each naming its key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi.runtime
from pulumi.runtime import config as runtime_config
from pydantic import ValidationError

from components.config.checks import check_site
from components.config.errors import ConfigError, problem_line
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


def parse(values: Mapping[str, str], secrets: set[str] | None = None) -> StackConfig:
    """Validate raw config values; raise ConfigError with one line per problem."""
    secrets = set(secrets or ())
    structured = object_keys()
    problems: list[str] = []
    data: dict[str, Any] = {}
    for key, value in values.items():
        if key in structured and isinstance(value, str):
            try:
                data[key] = json.loads(value)
            except json.JSONDecodeError:
                problems.append(f"{NAMESPACE}:{key}: must be an object")
                continue
        else:
            data[key] = value
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
        problems.extend(check_site(config))
    if problems:
        raise ConfigError("\n".join(problems))
    assert config is not None
    return config


def load_config() -> StackConfig:
    """Read and validate the whole stack config. Call before declaring any resource."""
    values, secrets = raw_config()
    return parse(values, secrets)
