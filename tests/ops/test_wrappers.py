"""scripts/doctor and scripts/tunnel: shellcheck-clean, and run from anywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.ops.helpers import ROOT, sample, statuses, write

WRAPPERS = [ROOT / "scripts" / "doctor", ROOT / "scripts" / "tunnel"]


def test_the_wrappers_pass_shellcheck_and_are_executable() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is required (apt-get install shellcheck)"
    done = subprocess.run([shellcheck, *map(str, WRAPPERS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    assert all(os.access(path, os.X_OK) for path in WRAPPERS)


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory outside the checkout, holding an outputs file."""
    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    write(cwd, sample(), "mine.json")
    return cwd


def run(wrapper: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / wrapper), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_scripts_tunnel_reads_a_path_relative_to_where_it_was_started(elsewhere: Path) -> None:
    done = run("tunnel", elsewhere, "--outputs", "mine.json", "--print", "--ssh", "me@h")
    assert done.returncode == 0, done.stderr
    assert " -L 19000:127.0.0.1:9000 " in done.stdout.splitlines()[0]
    assert done.stdout.splitlines()[0].endswith(" me@h")


def test_scripts_doctor_runs_the_doctor_and_passes_its_exit_status(elsewhere: Path) -> None:
    done = run("doctor", elsewhere, "--outputs", "mine.json", "--only", "backup")
    assert done.returncode == 0, done.stderr
    assert statuses(done.stdout) == dict.fromkeys(
        ["backup:last", "backup:drill", "backup:check"], "off"
    )
    done = run("doctor", elsewhere, "--outputs", "missing.json")
    assert done.returncode == 2
    assert done.stderr == "doctor: cannot read missing.json: No such file or directory\n"
