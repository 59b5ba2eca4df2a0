"""The ops tests' sample outputs, and the tools themselves, hold to the stack's real contract.

SAMPLE is cut from tests/golden/outputs-default.json; here it is validated against
components/outputs.schema.json, so it cannot drift into a shape the stack never
exports. The golden outputs of every configuration must be usable as they are,
and the metrics the doctor reads must be the ones the host jobs write.
"""

from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ops import backups, doctor, outputs, tunnel
from tests.ops.helpers import GOLDEN, JOBS, ROOT, SAMPLE, SCHEMA, golden, sample

CONFIGURATIONS = sorted(p.stem.removeprefix("outputs-") for p in GOLDEN.glob("outputs-*.json"))
SCRIPTS = sorted((ROOT / "components" / "backups" / "files").glob("*.sh"))


def errors(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    found = validator.iter_errors(document)
    return sorted(f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found)


def test_the_sample_is_valid_stack_outputs() -> None:
    assert errors(SAMPLE) == []
    assert errors(sample()) == []
    assert SAMPLE["schemaVersion"] == outputs.SCHEMA_VERSION


def test_the_schema_would_catch_a_sample_of_an_old_design() -> None:
    stale = copy.deepcopy(SAMPLE)
    stale["backups"] = {"enabled": False, "directory": "/var/backups/hemma", "keepDays": 14}
    del stale["sshPort"]
    found = errors(stale)
    assert "/: 'sshPort' is a required property" in found
    assert "/backups: 'metricsDirectory' is a required property" in found
    assert "/backups: Additional properties are not allowed ('keepDays' was unexpected)" in found


def test_there_are_golden_outputs_to_check() -> None:
    assert "default" in CONFIGURATIONS and len(CONFIGURATIONS) >= 2


@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_the_doctor_builds_every_check_from_the_real_outputs(name: str) -> None:
    data = golden(name)
    outputs.check_schema(data)
    found = doctor.build(data, {})
    kinds = [c.kind for c in found]
    assert kinds.count("https") == kinds.count("cert") == len(data["healthChecks"]["public"])
    assert kinds.count("internal") == len(data["healthChecks"]["internal"])
    tunnels = [c.name for c in found if c.kind == "tunnel"]
    forwards = [*data["sshTunnels"], *([outputs.POSTGRES] if data["postgresTunnel"] else [])]
    assert sorted(tunnels) == sorted(f"tunnel:{name}" for name in forwards)
    backup = [c for c in found if c.kind == "backup"]
    assert [c.name for c in backup] == ["backup:last", "backup:drill", "backup:check"]
    assert all(c.needs_ssh for c in backup) == data["backups"]["enabled"]
    metrics = data["backups"]["metricsDirectory"]
    assert [c.target for c in backup] == [f"{metrics}/{job}.prom" for job in JOBS]
    if data["sshTarget"] is not None:  # null for a stack with no sshd to reach
        assert outputs.ssh_port(data, None) == data["sshPort"]


def without_options(words: list[str]) -> list[str]:
    """An ssh command line without its ``-o NAME=VALUE`` pairs and ``-n`` (stdin)."""
    kept: list[str] = []
    for word in words:
        if kept and kept[-1] == "-o":
            kept.pop()
        elif word != "-n":
            kept.append(word)
    return kept


@pytest.mark.parametrize("port", [None, 2222])
@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_each_tunnel_is_the_command_the_stack_exports(name: str, port: int | None) -> None:
    data = golden(name)
    if data["sshTarget"] is None:
        pytest.skip("a stack with no sshd to reach exports no tunnels")
    if port is not None:  # what the stack exports with sshPort 2222 (tests/test_outputs.py)
        data["sshPort"] = port
        for entry in data["sshTunnels"].values():
            entry["command"] = entry["command"].replace("ssh -N ", f"ssh -N -p {port} ", 1)
        data["postgresTunnel"] = data["postgresTunnel"].replace("ssh -N ", f"ssh -N -p {port} ")
    target, ssh_port = data["sshTarget"], outputs.ssh_port(data, None)
    groups = tunnel.commands(data, [], target, False, ssh_port)
    exported = {name: entry["command"] for name, entry in data["sshTunnels"].items()}
    exported[outputs.POSTGRES] = data["postgresTunnel"]
    assert sorted(name for g in groups for name, _, _ in g.forwards) == sorted(exported)
    for group in groups:
        # One ssh per machine holds its forwards: each is the exported command's -L.
        words = without_options(group.argv)
        for name, local, address in group.forwards:
            command = shlex.split(exported[name])
            assert command[-3:-1] == ["-L", f"{local}:{address}"]
            at = words.index("-L")
            assert command[:-3] + command[-1:] == words[:at] + words[-1:], name


def scripts_writing(file: str) -> list[Path]:
    return [script for script in SCRIPTS if f'"$metrics/{file}"' in script.read_text()]


@pytest.mark.parametrize("job", backups.JOBS, ids=lambda job: job.short)
def test_the_doctor_reads_the_metrics_a_host_job_writes(job: backups.Job) -> None:
    assert job.file == f"{job.prefix}.prom"  # what tests/ops/helpers.write_metrics assumes
    assert job.prefix in JOBS
    (script,) = scripts_writing(job.file)
    text = script.read_text()
    for metric in ("last_success_timestamp_seconds", "last_run_success"):
        assert f'echo "{job.prefix}_{metric} ' in text, f"{script.name} writes no {metric}"
    # The doctor reads it without sudo: the job leaves it world-readable.
    assert "chmod 0644" in text
