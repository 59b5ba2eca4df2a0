"""The desired state as one JSON document, with no secret in it.

Shape (``FORMAT`` 1)::

    {
      "format": 1,
      "project": "hemma", "stack": "hemma",
      "placeholders": [config keys filled with placeholders],
      "leftUnset": [operator-held object keys left at their defaults],
      "config": {key: value as the program read it, secrets masked},
      "resources": [
        {"type", "name", "urn", "id", "custom", "parent", "provider",
         "inputs": {...},
         "options": {"protect", "retainOnDelete", "deleteBeforeReplace", "importId",
                     "ignoreChanges", "replaceOnChanges", "dependencies",
                     "propertyDependencies", "additionalSecretOutputs", "deletedWith",
                     "aliases"}}
      ],
      "outputs": {name: value},
      "secretOutputs": [names],
      "files": {
        "containers": {docker name: {path: {"content", "executable"}}},
        "hostUnits": {unit group: {path: {"mode", "content"}}}
      },
      "warnings": [a secret found where the program had not marked it]
    }

A container whose ``uploads`` input is secret, or a unit group whose install
command is, has the mark in place of its files; a unit file that travels on
stdin (a secret file) has the content ``[secret: from stdin]``. IDs are the
mocks' (deterministic, not the server's); ``[unknown]`` would stand for a value
only the engine knows, which a run under mocks does not leave.

Every secret (an input, an output, a config value, a file) is the string
``[secret:HASH]``: HASH is the first 12 hex digits of the SHA-256 of the value's
canonical JSON, so two plans of the same secret compare equal and a changed
secret shows as changed, while the value itself is never written. The
secrets a plan sees are placeholders and the mocks' stand-ins for generated
passwords, never the operator's; a value passed with ``--secret`` is hashed
unsalted, so a guessable one could be guessed from its hash: pass real secrets
only to ``pulumi``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import shlex
from collections.abc import Mapping
from typing import Any

from pulumi.runtime import rpc

from plan.envs import by_container, masked_entries, secret_env_names
from plan.perhost import per_host_files
from plan.readback import comparable
from plan.runner import Evaluation, Registered, unwrap
from plan.stackconfig import PlanConfig

FORMAT = 1
SECRET_PREFIX = "[secret"
UNKNOWN = "[unknown]"
CONTAINER = "docker:index/container:Container"
REMOTE_COMMAND = "command:remote:Command"
INSTALL_SUFFIX = "-install"
GENERATED = ("random:index/randomPassword:RandomPassword", "random:index/randomString:RandomString")
TRACED_LENGTH = 4
"""Secret values this long or longer are looked for, as the program traces them
(``components.config.reading``); shorter ones (a port, ``true``) match everything."""


def _leaves(value: Any) -> list[str]:
    """Every value in a config value (object keys name things, they hide nothing)."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    if value is None or isinstance(value, bool):
        return []
    return [str(value)]


def secret_mark(value: Any) -> str:
    """What a secret value becomes: ``[secret:HASH]``."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(b"hemma-plan\0" + canonical.encode()).hexdigest()
    return f"[secret:{digest[:12]}]"


def is_masked(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SECRET_PREFIX) and value.endswith("]")


def masked(value: Any) -> Any:
    """A deserialized input with each secret replaced by its mark, as plain JSON."""
    if rpc.is_rpc_secret(value):
        return secret_mark(unwrap(value))
    if value == rpc.UNKNOWN:
        return UNKNOWN
    if isinstance(value, dict):
        return {str(k): masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        # The wire has only doubles: a port is 8000, not 8000.0.
        return int(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _options(resource: Registered) -> dict[str, Any]:
    return {
        "protect": resource.protect,
        "retainOnDelete": resource.retain_on_delete,
        "deleteBeforeReplace": resource.delete_before_replace,
        "importId": resource.import_id,
        "ignoreChanges": resource.ignore_changes,
        "replaceOnChanges": resource.replace_on_changes,
        "dependencies": resource.dependencies,
        "propertyDependencies": resource.property_dependencies,
        "additionalSecretOutputs": resource.additional_secret_outputs,
        "deletedWith": resource.deleted_with,
        "aliases": resource.aliases,
    }


def _inputs(
    resource: Registered, secret_env: Mapping[str, frozenset[str]] | None = None
) -> dict[str, Any]:
    """Masked inputs; a wholly secret input is hashed in the order-free form the diff
    compares (``readback.comparable``), so a reordered secret env list is no change.
    An app container's env list is masked entry by entry (``envs.py``), nginx-proxy's
    per-host files file by file (``perhost.py``)."""
    result: dict[str, Any] = {}
    for key, value in resource.raw_inputs.items():
        if rpc.is_rpc_secret(value):
            plain = comparable(resource.type, {key: unwrap(value)})[key]
            secret = by_container(secret_env or {}, unwrap(resource.raw_inputs))
            files = per_host_files(resource.name, plain, secret_mark) if key == "stdin" else None
            if resource.type == CONTAINER and key == "envs" and secret is not None:
                result[key] = masked_entries(list(plain or []), secret, secret_mark)
            elif files is not None:
                result[key] = files
            else:
                result[key] = secret_mark(plain)
        else:
            result[key] = masked(value)
    return result


def _resource(
    resource: Registered, secret_env: Mapping[str, frozenset[str]] | None = None
) -> dict[str, Any]:
    return {
        "type": resource.type,
        "name": resource.name,
        "urn": resource.urn,
        "id": resource.id,
        "custom": resource.custom,
        "parent": resource.parent,
        "provider": resource.provider,
        "inputs": _inputs(resource, secret_env),
        "options": _options(resource),
    }


def _upload_files(inputs: dict[str, Any]) -> dict[str, Any] | str:
    uploads = inputs.get("uploads")
    if is_masked(uploads):
        return str(uploads)
    files: dict[str, Any] = {}
    for upload in uploads or []:
        if not isinstance(upload, dict):
            continue
        path = str(upload.get("file"))
        content = upload.get("content")
        encoded = upload.get("contentBase64")
        if content is None and isinstance(encoded, str) and not is_masked(encoded):
            content = _decoded(encoded)
        elif content is None:
            content = encoded
        files[path] = {"content": content, "executable": bool(upload.get("executable"))}
    return files


def _decoded(encoded: str) -> str:
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return f"[undecodable base64, {len(encoded)} characters]"


def unit_files(create: Any) -> dict[str, Any] | str:
    """The files an install command writes: each ``put PATH MODE BASE64`` line decoded;
    a ``put PATH MODE`` without data takes its content from stdin (a secret file)."""
    if is_masked(create):
        return str(create)
    if not isinstance(create, str):
        return {}
    words = shlex.split(create)
    script = words[2] if len(words) == 3 and words[:2] == ["bash", "-c"] else create
    files: dict[str, Any] = {}
    for line in script.splitlines():
        if not line.startswith("put "):
            continue
        parts = shlex.split(line, comments=True)
        if len(parts) == 4:
            files[parts[1]] = {"mode": parts[2], "content": _decoded(parts[3])}
        elif len(parts) == 3:
            files[parts[1]] = {"mode": parts[2], "content": "[secret: from stdin]"}
    return files


def _files(resources: list[dict[str, Any]]) -> dict[str, Any]:
    containers: dict[str, Any] = {}
    units: dict[str, Any] = {}
    for resource in resources:
        inputs = resource["inputs"]
        if resource["type"] == CONTAINER:
            files = _upload_files(inputs)
            if files:
                name = inputs.get("name")
                containers[name if isinstance(name, str) else resource["name"]] = files
        elif resource["type"] == REMOTE_COMMAND and resource["name"].endswith(INSTALL_SUFFIX):
            group = resource["name"].removesuffix(INSTALL_SUFFIX)
            units[group] = unit_files(inputs.get("create"))
    return {"containers": containers, "hostUnits": units}


def known_secrets(evaluation: Evaluation, config: PlanConfig) -> set[str]:
    """Every secret value the run held: the secret config values (as the program traces
    them, ``components.config.reading``) and the generated passwords."""
    values: set[str] = set()
    for key in config.secret_keys:
        raw = config.values.get(key, "")
        try:
            decoded = json.loads(raw) if raw[:1] in ("{", "[") else raw
        except json.JSONDecodeError:
            decoded = raw
        values.update(_leaves(decoded))
    for resource in evaluation.resources:
        if resource.type in GENERATED and isinstance(resource.state.get("result"), str):
            values.add(resource.state["result"])
    return {value for value in values if len(value) >= TRACED_LENGTH}


def scrubbed(value: Any, secrets: list[str], where: str, found: list[str]) -> Any:
    """``value`` with any secret that reached it unmarked replaced by its mark.

    The program marks what holds a secret; this is the backstop that keeps a value
    it missed out of the plan, and names where it was found.
    """
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, secret_mark(secret))
                found.append(where)
        return value
    if isinstance(value, dict):
        return {k: scrubbed(v, secrets, f"{where}.{k}", found) for k, v in value.items()}
    if isinstance(value, list):
        return [scrubbed(v, secrets, f"{where}[{i}]", found) for i, v in enumerate(value)]
    return value


def document(evaluation: Evaluation, config: PlanConfig) -> dict[str, Any]:
    """The whole desired state of one run, secrets masked."""
    secret_env = secret_env_names(config)
    resources = [_resource(r, secret_env) for r in evaluation.resources]
    unscrubbed = {
        "format": FORMAT,
        "project": evaluation.project,
        "stack": evaluation.stack,
        "placeholders": sorted(config.placeholders),
        "leftUnset": sorted(config.left_unset),
        "config": {
            key: secret_mark(value) if key in config.secret_keys else value
            for key, value in sorted(config.values.items())
        },
        "resources": resources,
        "outputs": {
            name: secret_mark(value) if name in evaluation.secret_outputs else masked(value)
            for name, value in evaluation.outputs.items()
        },
        "secretOutputs": sorted(evaluation.secret_outputs),
        "files": _files(resources),
    }
    secrets = sorted(known_secrets(evaluation, config), key=len, reverse=True)
    found: list[str] = []
    plan: dict[str, Any] = scrubbed(unscrubbed, secrets, "plan", found)
    plan["warnings"] = [
        f"a secret value reached {where} unmarked; it is masked here" for where in found
    ]
    return plan
