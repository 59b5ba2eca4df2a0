"""Pulumi.yaml and the stack file, checked the way the CLI would check them."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import yaml

from components.config.stack import SECRET_KEYS
from tests.harness import ROOT, stack_file_config

SCHEMA = json.loads((ROOT / "tests" / "schemas" / "pulumi-project.schema.json").read_text())
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
CLI_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list}


def test_pulumi_yaml_passes_the_cli_schema() -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(PROJECT)


def test_the_schema_check_catches_an_object_typed_key() -> None:
    """The CLI has no `object` config type: declaring one fails every preview."""
    broken: dict[str, Any] = json.loads(json.dumps(PROJECT))
    broken["config"]["proxy"] = {"type": "object"}
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(broken))
    assert errors, "an object-typed config key must not pass the schema"


def test_project_runs_python_from_the_project_venv() -> None:
    assert PROJECT["name"] == "hemma"
    assert PROJECT["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": "venv"},
    }


def test_declared_keys_have_descriptions_and_defaults_of_their_type() -> None:
    for key, declaration in PROJECT["config"].items():
        assert declaration.get("description"), f"{key} has no description"
        if "default" in declaration:
            expected = CLI_TYPES[declaration["type"]]
            assert type(declaration["default"]) is expected, key


def test_stack_file_values_match_the_declared_types() -> None:
    values = stack_file_config()
    for key, declaration in PROJECT["config"].items():
        if key in values:
            assert type(values[key]) is CLI_TYPES[declaration["type"]], key


def test_stack_file_holds_no_secret_in_plain_text() -> None:
    """Committed, it holds none; on the operator's machine, only encrypted ones."""
    raw = yaml.safe_load((ROOT / "Pulumi.hemma.yaml").read_text())
    assert set(raw) <= {"config", "encryptionsalt", "secretsprovider", "encryptedkey"}
    for key, value in raw["config"].items():
        name = key.removeprefix("hemma:")
        if name in SECRET_KEYS:
            assert isinstance(value, dict) and set(value) == {"secure"}, f"{key} is in plain text"
    declared_secret = {k for k, d in PROJECT["config"].items() if d.get("secret")}
    assert declared_secret <= SECRET_KEYS


def test_readme_documents_every_config_key_and_output() -> None:
    from pydantic import BaseModel

    from components.config.stack import StackConfig
    from tests.test_main import OUTPUTS

    readme = (ROOT / "README.md").read_text()
    for field in StackConfig.model_fields.values():
        assert f"`{field.alias}" in readme, field.alias
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            for inner in nested.model_fields.values():
                assert f"{field.alias}.{inner.alias}" in readme, f"{field.alias}.{inner.alias}"
    for output in OUTPUTS:
        assert f"`{output}`" in readme, output


def test_the_stack_file_disables_the_default_docker_and_postgresql_providers() -> None:
    """The engine then fails a resource that lacks its explicit provider, instead of
    creating it on the operator's own Docker (DOCKER_HOST) or PostgreSQL (PGHOST)."""
    raw = yaml.safe_load((ROOT / "Pulumi.hemma.yaml").read_text())
    assert set(raw["config"]["pulumi:disable-default-providers"]) >= {"docker", "postgresql"}


def test_every_docker_and_postgresql_resource_names_its_explicit_provider() -> None:
    from tests.harness import run_program, site_config, with_classhub

    program = run_program(with_classhub(site_config()))
    providers = {r.urn for r in program.declared if r.type.startswith("pulumi:providers:")}
    packaged = [r for r in program.declared if r.type.split(":")[0] in ("docker", "postgresql")]
    assert packaged
    for resource in packaged:
        assert resource.provider.rsplit("::", 1)[0] in providers, resource.name
        assert "default_" not in resource.provider, resource.name
