"""The stack outputs are a versioned contract: other tooling (scripts/doctor,
scripts/tunnel, the operator's own) reads them by ``schemaVersion``.

``components/outputs.schema.json`` describes version 1 exactly: every key, every
record's fields, no others. A change to the outputs' shape fails here until the
schema says it too, and a change to the schema fails until ``schemaVersion`` is
bumped and the new schema's digest pinned below.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from components import outputs
from tests.harness import Program, local_config, run_program, site_config, with_classhub

SCHEMA_FILE = Path(outputs.__file__).with_name("outputs.schema.json")
PINNED = {
    1: "5f5f0447732f380b4d60d16d6ea66eeb4060250cf5e94c9af9d6e84d8ab7541b",
    2: "650653edfab015cc26de620c872426b11beb69e0fadab78571c31d5dbdeb4b59",
    3: "b06203b201c4dbd25915122cf6e0a891ee17e1939375c47ef7b2c2379564bf07",
}
"""schemaVersion -> sha256 of its schema file, canonical JSON. Add a line per version;
never edit an old one."""


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return loaded


def digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def errors(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema())
    found = validator.iter_errors(document)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found)


def configurations() -> dict[str, dict[str, Any]]:
    base = site_config()
    no_gpu = copy.deepcopy(base)
    no_gpu["gpu"] = {**no_gpu.get("gpu", {}), "enabled": False}
    no_backups = copy.deepcopy(base)
    no_backups["backups"] = {**no_backups["backups"], "enabled": False}
    other_port = {**copy.deepcopy(base), "sshPort": 2222}
    return {
        "default": base,
        "classhub": with_classhub(base),
        "no gpu": no_gpu,
        "no backups": no_backups,
        "ssh on 2222": other_port,
        "local": local_config(),
        "local without checkouts": local_config(sources=False),
    }


@pytest.fixture(scope="module", params=sorted(configurations()))
def program(request: pytest.FixtureRequest) -> Program:
    local = request.param.startswith("local")
    return run_program(configurations()[request.param], secret_keys=set() if local else None)


def test_the_outputs_are_exactly_what_the_schema_describes(program: Program) -> None:
    assert errors(program.outputs) == []
    assert program.outputs["schemaVersion"] == outputs.SCHEMA_VERSION


def test_the_schema_names_every_output_and_which_are_secret(program: Program) -> None:
    described = schema()["properties"]
    assert set(schema()["required"]) == set(described) == set(program.outputs)
    secret = {k for k, v in described.items() if v.get("description", "").startswith("secret")}
    assert secret == program.secret_outputs


def test_the_schema_of_each_version_is_pinned() -> None:
    """Changing the schema without bumping schemaVersion fails here."""
    current = schema()
    assert current["properties"]["schemaVersion"] == {"const": outputs.SCHEMA_VERSION}
    assert outputs.SCHEMA_VERSION in PINNED, "pin the new version's digest in PINNED"
    assert digest(current) == PINNED[outputs.SCHEMA_VERSION], (
        "the outputs schema changed: bump SCHEMA_VERSION and pin the new digest"
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda o: o.update(newOutput=1),
        lambda o: o.pop("sshTarget"),
        lambda o: o["routes"]["grafana.hemma.hule.education"].update(tls=True),
        lambda o: o["routes"]["grafana.hemma.hule.education"].pop("basicAuth"),
        lambda o: o["backups"].update(keepDays=14),
        lambda o: o["sshTunnels"]["tabby"].update(localPort="8083"),
        lambda o: o.update(schemaVersion=outputs.SCHEMA_VERSION + 1),
    ],
    ids=[
        "a new output",
        "an output gone",
        "a new field in a record",
        "a field gone from a record",
        "an old key back",
        "a port as a string",
        "another version",
    ],
)
def test_a_changed_shape_is_caught(change: Any) -> None:
    changed = copy.deepcopy(run_program().outputs)
    assert errors(changed) == []
    change(changed)
    assert errors(changed) != []


def test_tunnel_commands_carry_a_port_other_than_22() -> None:
    program = run_program(configurations()["ssh on 2222"])
    for tunnel in program.outputs["sshTunnels"].values():
        assert tunnel["command"].startswith("ssh -N -p 2222 -L "), tunnel
    assert program.outputs["postgresTunnel"].startswith("ssh -N -p 2222 -L 15432:127.0.0.1:")
    assert program.outputs["sshPort"] == 2222
