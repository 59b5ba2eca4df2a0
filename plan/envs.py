"""A container's env list in the plan, each entry shown or masked on its own.

The SDK sends a list that holds one secret Output as one secret input, so an app
container's whole ``envs`` would be one hash, and a plain ``LOG_LEVEL=debug`` beside
its secrets would show only as a new hash. The catalog says which variables of a
service are secret (``Service.secret_env``, and every ``extraEnv`` entry when the
operator set ``extraEnv`` as a secret): those entries are masked one by one, as
``NAME=[secret:HASH]``, and every other entry is shown as it is. A container the
catalog does not declare (shared-postgres, the proxy) keeps its list whole-masked.
The plan's scrub (``document.scrubbed``) still runs over the result: a known secret
value in an entry shown plainly is masked there, and the plan warns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.config.reading import parse
from components.model.rollout import declared_service
from plan.stackconfig import PlanConfig

EXTRA_ENV_KEY = "extraEnv"


def secret_env_names(config: PlanConfig) -> dict[str, frozenset[str]]:
    """Docker name -> the names of its env variables that are secret, for every
    container of every app the config can run."""
    stack = parse(config.values, set(config.secret_keys))
    extra_is_secret = EXTRA_ENV_KEY in config.secret_keys
    names: dict[str, frozenset[str]] = {}
    for app in stack.apps(everything=True):
        for service in app.services:
            secret = set(service.secret_env)
            if extra_is_secret:
                secret |= set(stack.extra_env.get(service.container, {}))
            names[service.container] = frozenset(secret)
    return names


def masked_entries(entries: list[Any], secret: frozenset[str], mark: Any) -> list[Any]:
    """``entries`` (``NAME=VALUE``) with the value of each secret name replaced by
    ``mark(value)``; an entry that is no ``NAME=VALUE`` string is masked whole."""
    shown: list[Any] = []
    for entry in entries:
        if not isinstance(entry, str) or "=" not in entry:
            shown.append(mark(entry))
            continue
        name, _, value = entry.partition("=")
        shown.append(f"{name}={mark(value)}" if name in secret else entry)
    return shown


def by_container(
    names: Mapping[str, frozenset[str]], inputs: Mapping[str, Any]
) -> frozenset[str] | None:
    """The secret names of a catalog container (a start-first one by its service);
    None for any other."""
    service = declared_service(inputs)
    return None if service is None else names.get(service)
