"""The declared inputs, held against the providers' published schemas and read-back forms.

The schemas are the pinned providers' own (``tests/schemas/providers.json``,
derived from their Python SDKs, which codegen generates from each provider's
``schema.json``). A property the provider does not know, a value of the wrong
type or a missing required input fails here instead of in ``pulumi up``; a
value that the provider would read back in another form would show a diff on
every preview (``plan/readback.py`` says which and where from).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plan.readback import CONTAINER, canonical_duration, differences, read_back
from tests.harness import Program, run_program, site_config, with_classhub
from tests.host.test_units import MANAGED_GPU
from tests.schemas.providers import committed, derive

SCHEMA = committed()


def configurations() -> dict[str, dict[str, Any]]:
    managed = copy.deepcopy(site_config())
    managed["gpu"] = {**managed["gpu"], **MANAGED_GPU}
    return {
        "default": site_config(),
        "classhub": with_classhub(site_config()),
        "managed-gpu": managed,
    }


@pytest.fixture(scope="module", params=sorted(configurations()))
def program(request: pytest.FixtureRequest) -> Program:
    return run_program(configurations()[request.param])


def problems(spec: Any, value: Any, where: str) -> Iterator[str]:
    """Every way ``value`` breaks the schema type ``spec``."""
    if spec == "any" or value is None:
        return
    if spec == "string":
        if not isinstance(value, str):
            yield f"{where}: {value!r} is not a string"
    elif spec == "integer":
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not integral:
            yield f"{where}: {value!r} is not an integer"
    elif spec == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            yield f"{where}: {value!r} is not a number"
    elif spec == "boolean":
        if not isinstance(value, bool):
            yield f"{where}: {value!r} is not a boolean"
    elif "array" in spec:
        if not isinstance(value, list):
            yield f"{where}: {value!r} is not a list"
        else:
            for index, item in enumerate(value):
                yield from problems(spec["array"], item, f"{where}[{index}]")
    elif "map" in spec:
        if not isinstance(value, dict):
            yield f"{where}: {value!r} is not a map"
        else:
            for key, item in value.items():
                yield from problems(spec["map"], item, f"{where}.{key}")
    elif "enum" in spec:
        if value not in spec["enum"]:
            yield f"{where}: {value!r} is not one of {spec['enum']}"
    elif "oneOf" in spec:
        if all(list(problems(option, value, where)) for option in spec["oneOf"]):
            yield f"{where}: {value!r} fits none of {spec['oneOf']}"
    elif "ref" in spec:
        yield from object_problems(SCHEMA["types"][spec["ref"]], value, where)


def provider_config(schema: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """A provider's inputs as its configure reads them: the SDK sends every value that
    is not a string as its JSON text."""
    decoded = {}
    for name, value in inputs.items():
        spec = schema["properties"].get(name)
        if isinstance(value, str) and spec not in (None, "string"):
            value = json.loads(value)
        decoded[name] = value
    return decoded


def object_problems(schema: dict[str, Any], value: Any, where: str) -> Iterator[str]:
    if not isinstance(value, dict):
        yield f"{where}: {value!r} is not an object"
        return
    for name in schema["required"]:
        if value.get(name) is None:
            yield f"{where}: the required input {name} is missing"
    for name, item in value.items():
        if name not in schema["properties"]:
            yield f"{where}: the provider has no input {name}"
        else:
            yield from problems(schema["properties"][name], item, f"{where}.{name}")


def test_the_committed_schemas_are_those_of_the_pinned_providers() -> None:
    assert committed() == derive(), "regenerate: venv/bin/python -m tests.schemas.providers"
    assert SCHEMA["versions"] == {
        "pulumi-command": "1.2.1",
        "pulumi-docker": "5.2.0",
        "pulumi-postgresql": "3.18.2",
        "pulumi-random": "4.21.4",
    }


SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
UPSTREAM: dict[str, dict[str, set[str]]] = {
    # pulumi-command's own schema.json at the pinned tag: nothing may differ.
    "pulumi-command-v1.2.1.json": {},
    # pulumi-docker's newest schema.json in reach, before the pinned 5.2.0, which added
    # Container.deviceCgroupRules (kreuzwerker's device_cgroup_rules).
    "pulumi-docker-v5.1.0-24-g237b7899.json": {
        "docker:index/container:Container": {"deviceCgroupRules"}
    },
}
"""Trimmed copies of the providers' own schema.json (each file's ``source`` says where
from), with what the pinned SDK has that the copy's version did not."""
_UPSTREAM_SCALARS = {"string", "integer", "number", "boolean"}


@pytest.mark.parametrize("file", sorted(UPSTREAM))
def test_the_sdk_derived_copy_matches_the_providers_own_schema_json(file: str) -> None:
    """The copy is read from the SDKs, which codegen writes from schema.json; where an
    upstream schema.json is at hand, the two agree (less what the pinned version added)."""
    upstream_file = json.loads((SCHEMAS / file).read_text())
    for token, upstream in upstream_file["resources"].items():
        derived = SCHEMA["resources"][token]
        new = UPSTREAM[file].get(token, set())
        assert sorted(set(derived["properties"]) - new) == sorted(upstream["inputProperties"])
        assert sorted(derived["required"]) == sorted(upstream["requiredInputs"]), token
        for name, spec in upstream["inputProperties"].items():
            if spec.get("type") in _UPSTREAM_SCALARS:
                assert derived["properties"][name] == spec["type"], f"{token}.{name}"
            elif spec.get("type") == "array":
                assert "array" in derived["properties"][name], f"{token}.{name}"
            elif spec.get("type") == "object" and "additionalProperties" in spec:
                assert "map" in derived["properties"][name], f"{token}.{name}"


def test_every_declared_resource_fits_its_providers_schema(program: Program) -> None:
    found: list[str] = []
    custom = [r for r in program.declared if not r.type.startswith("hemma:")]
    for resource in custom:
        assert resource.type in SCHEMA["resources"], f"{resource.type} is not in the schema copy"
        schema = SCHEMA["resources"][resource.type]
        inputs = resource.inputs
        if resource.type.startswith("pulumi:providers:"):
            inputs = provider_config(schema, inputs)
        found += object_problems(schema, inputs, f"{resource.name}")
    assert found == []


def test_the_checker_catches_what_it_is_for() -> None:
    schema = SCHEMA["resources"][CONTAINER]
    bad = {"image": "x", "healthchek": {}, "restart": 3, "ports": [{"internal": "80"}]}
    found = list(object_problems(schema, bad, "c"))
    assert "c: the provider has no input healthchek" in found
    assert "c: 3 is not a string" in " ".join(found).replace("c.restart", "c")
    assert any("ports[0].internal" in p for p in found)
    assert "c: the required input image is missing" in object_problems(schema, {}, "c")


def test_every_health_check_duration_is_written_as_the_provider_reads_it(
    program: Program,
) -> None:
    for container in program.containers:
        health = container.inputs["healthcheck"]
        for field in ("interval", "timeout", "startPeriod"):
            assert health[field] == canonical_duration(health[field]), (
                f"{container.inputs['name']}.{field}={health[field]!r} reads back as "
                f"{canonical_duration(health[field])!r}"
            )


@pytest.mark.parametrize("name", sorted(configurations()))
def test_a_second_up_changes_nothing(name: str) -> None:
    """Store what the providers read back after the first run; run again; no diff."""
    first = run_program(configurations()[name])
    stored = {r.urn: read_back(r.type, r.inputs) for r in first.declared}
    again = run_program(configurations()[name])
    changed = {
        r.urn: diff
        for r in again.declared
        if (diff := differences(r.type, stored[r.urn], r.inputs))
    }
    assert changed == {}


def test_the_steady_state_check_sees_a_duration_the_provider_rewrites() -> None:
    declared = {"image": "x", "healthcheck": {"tests": ["CMD", "true"], "startPeriod": "60s"}}
    stored = read_back(CONTAINER, declared)
    assert stored["healthcheck"]["startPeriod"] == "1m0s"
    assert differences(CONTAINER, stored, declared) == {
        "healthcheck": (stored["healthcheck"], declared["healthcheck"])
    }


def test_daemon_log_options_would_replace_every_container() -> None:
    """A daemon.json with its own log-opts merges them into each container's (the README
    says how to check); logOpts must then carry the same keys."""
    declared = {"image": "x", "logDriver": "json-file", "logOpts": {"max-size": "10m"}}
    stored = read_back(CONTAINER, declared, daemon_log_opts={"compress": "true"})
    assert "logOpts" in differences(CONTAINER, stored, declared)
    matching = {**declared, "logOpts": {"max-size": "10m", "compress": "true"}}
    assert (
        differences(CONTAINER, read_back(CONTAINER, matching, {"compress": "true"}), matching) == {}
    )
