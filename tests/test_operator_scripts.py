"""The operator's two commands, run with stand-ins for ``pulumi`` and ``ssh`` on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import ROOT

pytestmark = pytest.mark.tools

SCRIPTS = [ROOT / "scripts" / "pulumi", ROOT / "scripts" / "test", ROOT / ".ci" / "run"]

STUB = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "{log}"
{body}
"""


def stub(bin_dir: Path, name: str, body: str = "exit 0") -> Path:
    log = bin_dir / f"{name}.log"
    path = bin_dir / name
    path.write_text(STUB.format(log=log, body=body))
    path.chmod(0o755)
    return log


def run_script(
    tmp_path: Path, docker_answers: bool
) -> tuple[subprocess.CompletedProcess[str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub(
        bin_dir,
        "pulumi",
        'case "$1" in config) exit 1;; esac; echo "PULUMI_BACKEND_URL=$PULUMI_BACKEND_URL"',
    )
    stub(
        bin_dir,
        "ssh",
        f'case "$*" in *"docker version"*) exit {0 if docker_answers else 1};; esac; exit 0',
    )
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PULUMI_CONFIG_PASSPHRASE": "test",
        "TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "pulumi"), "preview", "--diff"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return done, bin_dir


def test_every_script_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is required (apt-get install shellcheck)"
    done = subprocess.run([shellcheck, *map(str, SCRIPTS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_preview_uses_a_local_backend_opens_the_tunnel_and_targets_the_stack(
    tmp_path: Path,
) -> None:
    done, bin_dir = run_script(tmp_path, docker_answers=True)
    assert done.returncode == 0, done.stderr
    assert f"PULUMI_BACKEND_URL=file://{tmp_path}/.pulumi-hemma" in done.stdout
    pulumi_calls = (bin_dir / "pulumi.log").read_text().splitlines()
    assert "stack select hemma --create --non-interactive" in pulumi_calls
    assert pulumi_calls[-1] == "preview --diff --stack hemma"
    ssh_calls = (bin_dir / "ssh.log").read_text()
    assert "-L 15432:127.0.0.1:5432 hemma" in ssh_calls
    assert "-O exit hemma" in ssh_calls, "the tunnel is closed when the command ends"


def test_preview_stops_when_docker_needs_sudo(tmp_path: Path) -> None:
    done, bin_dir = run_script(tmp_path, docker_answers=False)
    assert done.returncode != 0
    assert "must reach the Docker socket without sudo" in done.stderr
    calls = (bin_dir / "pulumi.log").read_text().splitlines()
    assert not any(call.startswith("preview") for call in calls)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/test" in readme
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("bash scripts/test")
