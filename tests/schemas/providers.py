"""The providers' input schemas at the pinned versions, read from their Python SDKs.

Each provider's Python SDK on PyPI is generated from that provider's
``schema.json`` (pulumi codegen): every resource's ``*Args`` class names its
input properties (``pulumi.getter(name=...)``, the engine's camelCase names),
their types and which are required. ``derive()`` reads them back into a
trimmed schema of the resources this program declares; ``providers.json``
holds the result for the pinned versions, so that a version bump shows up as
a diff to review (``venv/bin/python -m tests.schemas.providers`` rewrites it).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import re
import typing
from collections.abc import Awaitable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import pulumi

HERE = Path(__file__).resolve().parent
SCHEMA_FILE = HERE / "providers.json"

RESOURCES = {
    "pulumi_docker": [
        "Provider",
        "Container",
        "Network",
        "Volume",
        "RemoteImage",
        "Image",
    ],
    "pulumi_command": ["remote.Command", "local.Command"],
    "pulumi_postgresql": ["Provider", "Role", "Database", "Grant"],
    "pulumi_random": ["RandomId", "RandomPassword", "RandomString"],
}
PACKAGES = {
    "pulumi_docker": "pulumi-docker",
    "pulumi_command": "pulumi-command",
    "pulumi_postgresql": "pulumi-postgresql",
    "pulumi_random": "pulumi-random",
}
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", Any: "any"}


def _token(cls: type) -> str:
    source = inspect.getsource(cls)
    match = re.search(r"__init__\(\s*'([^']+)'", source)
    if match is None:
        raise ValueError(f"no type token in {cls.__name__}")
    token = match.group(1)
    if cls.__name__ == "Provider":
        return f"pulumi:providers:{token}"
    return token


def _type_name(cls: type) -> str:
    return f"{cls.__module__.split('.')[0]}.{cls.__name__.removesuffix('Args')}"


def _spec(hint: Any, types: dict[str, Any]) -> Any:
    """A typing hint as a schema type: string, integer, {array: T}, {map: T}, {ref: NAME}."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        members = [
            a
            for a in typing.get_args(hint)
            if a is not type(None)
            and typing.get_origin(a) not in (Awaitable, pulumi.Output)
            and a is not pulumi.Output
            and not (isinstance(a, type) and issubclass(a, pulumi.Output))
            and not (isinstance(a, type) and a.__name__.endswith("ArgsDict"))
            and not (isinstance(a, type) and typing.is_typeddict(a))
        ]
        specs = [_spec(a, types) for a in members]
        unique = [s for i, s in enumerate(specs) if s not in specs[:i]]
        if len(unique) == 1:
            return unique[0]
        return {"oneOf": unique}
    if origin in (Sequence, list, tuple) or origin is typing.Sequence:
        return {"array": _spec(typing.get_args(hint)[0], types)}
    if origin in (Mapping, dict) or origin is typing.Mapping:
        return {"map": _spec(typing.get_args(hint)[1], types)}
    if hint in _SCALARS:
        return _SCALARS[hint]
    if isinstance(hint, type) and issubclass(hint, Enum):
        return {"enum": sorted(str(m.value) for m in hint)}
    if isinstance(hint, type) and hasattr(hint, "__init__") and hint.__name__.endswith("Args"):
        name = _type_name(hint)
        if name not in types:
            types[name] = {}
            types[name] = _object(hint, types)
        return {"ref": name}
    if isinstance(hint, typing.ForwardRef):
        raise ValueError(f"unresolved {hint}")
    return "any"


def _object(cls: type, types: dict[str, Any]) -> dict[str, Any]:
    """An input type or a resource's Args: its properties by engine name, and the required ones."""
    module = importlib.import_module(cls.__module__)
    namespace = {**vars(pulumi), **vars(importlib.import_module("pulumi.output")), **vars(module)}
    init = vars(cls)["__init__"]
    hints = typing.get_type_hints(init, namespace)
    signature = inspect.signature(init)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for python_name, parameter in signature.parameters.items():
        if python_name in ("self", "__self__") or parameter.kind is parameter.VAR_KEYWORD:
            continue
        prop = getattr(cls, python_name, None)
        engine_name = python_name
        if isinstance(prop, property) and prop.fget is not None:
            engine_name = getattr(prop.fget, "_pulumi_name", python_name)
        properties[engine_name] = _spec(hints[python_name], types)
        if parameter.default is inspect.Parameter.empty:
            required.append(engine_name)
    return {"properties": properties, "required": sorted(required)}


def derive() -> dict[str, Any]:
    """The trimmed schema of every resource the program declares, from the installed SDKs."""
    resources: dict[str, Any] = {}
    types: dict[str, Any] = {}
    versions: dict[str, str] = {}
    for package, names in RESOURCES.items():
        versions[PACKAGES[package]] = importlib.metadata.version(PACKAGES[package])
        root = importlib.import_module(package)
        for name in names:
            holder: Any = root
            for part in name.split("."):
                holder = getattr(holder, part)
            args = getattr(importlib.import_module(holder.__module__), f"{holder.__name__}Args")
            resources[_token(holder)] = _object(args, types)
    return {
        "source": (
            "Derived from the Python SDKs on PyPI at the pinned versions, which pulumi codegen "
            "generates from each provider's schema.json: tests/schemas/providers.py."
        ),
        "versions": versions,
        "resources": dict(sorted(resources.items())),
        "types": dict(sorted(types.items())),
    }


def committed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return data


if __name__ == "__main__":
    SCHEMA_FILE.write_text(json.dumps(derive(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SCHEMA_FILE}")
