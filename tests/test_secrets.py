"""Secrets stay secret: no secret value appears in plain text anywhere the program writes.

Every generated secret, every operator secret, and values of other keys the
operator set with ``--secret`` are given marked values. None may appear in a
resource input that is not marked secret (env entries, command strings, stdin,
uploaded files), in a plain stack output, or in an error line.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pulumi.runtime import rpc

from tests.harness import (
    OPERATOR_SECRETS,
    Program,
    run_expecting_error,
    run_program,
    site_config,
    with_classhub,
)
from tests.host.test_units import MANAGED_GPU

MARK = "MARKED"
OTHER_SECRET_KEYS = {"extraEnv", "gpu", "huleedu", "appSources"}
"""Keys an operator might set with --secret beyond the ones the program knows."""


def marked_config() -> dict[str, Any]:
    config = with_classhub(site_config())
    config["smtpPassword"] = f"{MARK}-smtp-password"
    config["anthropicApiKey"] = f"{MARK}-anthropic-key"
    config["openaiApiKey"] = f"{MARK}-openai-key"
    config["sshPrivateKey"] = f"-----BEGIN KEY-----\n{MARK}-ssh-key\n-----END KEY-----\n"
    config["extraEnv"] = {"grafana": {"GF_LOG_FILTERS": f"{MARK}-extra-env"}}
    gpu = copy.deepcopy(MANAGED_GPU)
    gpu["llama"]["args"] = [*gpu["llama"]["args"], "--api-key", f"{MARK}-gpu-arg"]
    gpu["llama"]["environment"] = {"LLAMA_TOKEN": f"{MARK}-gpu-env"}
    config["gpu"] = {**config["gpu"], **gpu}
    config["huleedu"] = {**config["huleedu"], "smtpUsername": f"{MARK}-smtp-user@hule.education"}
    return config


BASE64_WORD = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def decoded(text: str) -> str:
    """``text`` with every base64 word in it decoded too (unit files travel that way)."""
    parts = [text]
    for word in BASE64_WORD.findall(text):
        with contextlib.suppress(ValueError):
            parts.append(base64.b64decode(word, validate=True).decode("utf-8", "replace"))
    return "\n".join(parts)


def plain_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a raw (wire) input that is not inside a secret, decoded."""
    if rpc.is_rpc_secret(value):
        return
    if isinstance(value, str):
        yield path, decoded(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from plain_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from plain_strings(item, f"{path}[{index}]")


def secret_values(program: Program, config: dict[str, Any]) -> set[str]:
    generated = {
        r.state["result"]
        for r in program.declared
        if r.type in ("random:index/randomPassword:RandomPassword",)
    }
    return generated | {MARK}


def test_no_secret_appears_in_plain_text_in_any_input_or_output() -> None:
    config = marked_config()
    program = run_program(config, OPERATOR_SECRETS | OTHER_SECRET_KEYS)
    secrets = secret_values(program, config)
    leaks = [
        f"{resource.name}{path}"
        for resource in program.declared
        for path, text in plain_strings(resource.raw_inputs)
        if any(secret in text for secret in secrets)
    ]
    assert leaks == []
    plain_outputs = {k: v for k, v in program.outputs.items() if k not in program.secret_outputs}
    text = json.dumps(plain_outputs)
    assert not [s for s in secrets if s in text]


def test_a_value_of_a_key_set_as_secret_is_secret_where_it_lands() -> None:
    """The GPU args reach a unit file and its install command; extraEnv an env entry."""
    config = marked_config()
    program = run_program(config, OPERATOR_SECRETS | OTHER_SECRET_KEYS)
    install = program.named("llama-server-rocm-install")
    assert f"{MARK}-gpu-arg" in decoded(install.inputs["create"])
    assert install.secret_input("create")
    grafana = program.container("grafana")
    assert any(f"{MARK}-extra-env" in e for e in grafana.inputs["envs"])
    assert grafana.secret_input("envs")


def test_the_same_values_unmarked_stay_readable() -> None:
    """Marking follows the operator's --secret, not the program's guess."""
    config = marked_config()
    program = run_program(config, OPERATOR_SECRETS)
    assert not program.named("llama-server-rocm-install").secret_input("create")


def test_no_error_line_echoes_a_value_of_a_secret_key() -> None:
    config = marked_config()
    config["extraEnv"] = {"grafana": {"GF_LOG_FILTERS": f"{MARK}-bad\nvalue"}}
    config["hostnames"] = {**config["hostnames"], "jaeger": config["hostnames"]["grafana"]}
    message, program = run_expecting_error(config, OPERATOR_SECRETS | {"extraEnv", "hostnames"})
    assert MARK not in message
    assert config["hostnames"]["grafana"] not in message, "a collision line echoes the value"
    assert "hemma:extraEnv.grafana.GF_LOG_FILTERS" in message
    assert program.declared == []


def test_a_secret_only_a_unit_file_holds_makes_its_install_command_secret() -> None:
    """The unit files travel base64-encoded inside the install command, where the
    resource-wide marking cannot see them: the unit component looks itself."""
    config = site_config()
    config["dockerPath"] = f"/opt/{MARK}bin/docker"
    program = run_program(config, OPERATOR_SECRETS | {"dockerPath"})
    installs = [r for r in program.declared if r.name.endswith("-install")]
    holding = [r for r in installs if MARK in decoded(r.inputs["create"])]
    assert len(holding) >= 5
    assert [r.name for r in holding if not r.secret_input("create")] == []
    plain = run_program(config, OPERATOR_SECRETS)
    assert not plain.named(holding[0].name).secret_input("create"), "only when set as a secret"


def test_a_short_extra_env_value_of_a_secret_key_is_secret_too() -> None:
    config = site_config()
    config["extraEnv"] = {"jaeger": {"LOG_LEVEL": "MK1"}}
    program = run_program(config, OPERATOR_SECRETS | {"extraEnv"})
    jaeger = program.container("jaeger")
    assert "LOG_LEVEL=MK1" in jaeger.inputs["envs"] and jaeger.secret_input("envs")


def test_error_lines_of_a_secret_key_hold_no_fragment_of_its_value() -> None:
    config = site_config()
    config["backups"] = {**config["backups"], "schedule": f"{MARK}day,Mon *-*-* 03:15:00"}
    message, program = run_expecting_error(config, OPERATOR_SECRETS | {"backups"})
    assert message == "hemma:backups.schedule: invalid (not shown: backups is set as a secret)"
    assert program.declared == []


def test_a_secret_source_path_is_not_in_the_missing_dockerfile_line(tmp_path: Path) -> None:
    (tmp_path / f"{MARK}empty").mkdir()
    config = site_config()
    config["appSources"] = {**config["appSources"], "skriptoteket": str(tmp_path / f"{MARK}empty")}
    message, program = run_expecting_error(config, OPERATOR_SECRETS | {"appSources"})
    assert message.startswith("hemma:appSources.skriptoteket: ") and MARK not in message
    assert program.declared == []


def test_a_reserved_backup_variable_is_refused_by_its_key_without_its_value() -> None:
    config = site_config()
    config["backupStorageEnv"] = {"RESTIC_PASSWORD": f"{MARK}-restic"}
    message, program = run_expecting_error(config, OPERATOR_SECRETS | {"backupStorageEnv"})
    assert message == (
        "hemma:backupStorageEnv: the key 'RESTIC_PASSWORD' is set by backups.repository "
        "and resticPassword; remove it here"
    )
    assert program.declared == []


def test_a_backup_variable_that_would_steer_the_root_shell_is_refused_by_its_key() -> None:
    config = site_config()
    config["backupStorageEnv"] = {"BASH_ENV": "/tmp/x.sh"}
    message, _ = run_expecting_error(config, OPERATOR_SECRETS | {"backupStorageEnv"})
    assert message.startswith(
        "hemma:backupStorageEnv: the key 'BASH_ENV' is not a variable restic's storage"
    )
