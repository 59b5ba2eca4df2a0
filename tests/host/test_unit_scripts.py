"""The install and removal scripts of the host units run for real, by bash, in a root of
their own with stand-in ``sudo`` and ``systemctl`` on PATH; and what a unit file may
hold. What the operator relies on: a file that cannot be installed stops the ``up``
before any unit is enabled or restarted, a removal that fails says so, and no value
can add a line to a unit file."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.foundation.commands import as_command
from components.host.unit_files import (
    exec_line,
    install_script,
    job_group,
    remove_script,
    unit,
)
from components.model.host import HostFile, Job

SUDO = """#!/usr/bin/env bash
[ "$1" = -n ] || { echo "sudo must not prompt" >&2; exit 1; }
shift
if [ -e "$STAND_IN/fail-$1" ]; then echo "$1: Permission denied" >&2; exit 1; fi
exec "$@"
"""
SYSTEMCTL = '#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> "$STAND_IN/systemctl.log"\n'


@dataclass
class Run:
    returncode: int
    stderr: str
    systemctl: list[str]


class Host:
    """A root and a temporary directory whose paths hold a space, as any path may."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "host root"
        self.root.mkdir()
        self.tmp = tmp / "tmp dir"
        self.tmp.mkdir()
        self.bin = tmp / "bin"
        self.bin.mkdir()
        for name, text in (("sudo", SUDO), ("systemctl", SYSTEMCTL)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)

    def failing(self, command: str) -> None:
        (self.bin / f"fail-{command}").touch()

    def run(self, script: str, stdin: str = "") -> Run:
        log = self.bin / "systemctl.log"
        log.unlink(missing_ok=True)
        done = subprocess.run(
            ["sh", "-c", as_command(script)], input=stdin, capture_output=True, text=True,
            timeout=20,
            env={**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}",
                 "HEMMA_ROOT": str(self.root), "TMPDIR": str(self.tmp), "STAND_IN": str(self.bin)},
        )  # fmt: skip
        calls = log.read_text().splitlines() if log.exists() else []
        return Run(done.returncode, done.stderr, calls)

    def read(self, path: str) -> str | None:
        target = self.root / path.lstrip("/")
        return target.read_text() if target.exists() else None

    def mode(self, path: str) -> int:
        return (self.root / path.lstrip("/")).stat().st_mode & 0o777


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def job(schedule: str = "daily", **fields: object) -> Job:
    return Job(
        name="hemma-backup",
        description="Hemma backup",
        what="the backup",
        exec_start=(("/usr/local/lib/hemma/hemma-backup.sh", "--env", "/etc/hemma/restic.env"),),
        schedule=schedule,
        **fields,  # type: ignore[arg-type]
    )


SERVICE = "/etc/systemd/system/hemma-backup.service"
TIMER = "/etc/systemd/system/hemma-backup.timer"


def test_the_units_are_installed_enabled_and_restarted(host: Host) -> None:
    group = job_group(job(secret_file="/etc/hemma/restic.env"))
    run = host.run(install_script(group), stdin="RESTIC_PASSWORD='x'\n")
    assert run.returncode == 0, run.stderr
    assert run.systemctl == [
        "daemon-reload",
        "enable hemma-backup.timer",
        "restart hemma-backup.timer",
    ]
    assert host.read(SERVICE) == group.files[0].content
    assert host.read(TIMER) == group.files[1].content
    assert host.read("/etc/hemma/restic.env") == "RESTIC_PASSWORD='x'\n"
    assert host.mode("/etc/hemma/restic.env") == 0o600
    assert list(host.tmp.iterdir()) == [], "nothing staged stays behind"


def test_installing_again_unchanged_restarts_nothing_and_leaves_nothing_behind(
    host: Host,
) -> None:
    group = job_group(job())
    assert host.run(install_script(group)).returncode == 0
    again = host.run(install_script(group))
    assert again.returncode == 0, again.stderr
    assert again.systemctl == ["enable hemma-backup.timer", "start hemma-backup.timer"]
    assert list(host.tmp.iterdir()) == []


def test_an_empty_file_is_installed_empty_and_the_secret_still_reaches_its_file(
    host: Host,
) -> None:
    """stdin carries the secret file's content; an empty file before it must not read it."""
    empty = HostFile("/usr/local/lib/hemma/empty.conf", "")
    group = job_group(job(extra_files=(empty,), secret_file="/etc/hemma/restic.env"))
    run = host.run(install_script(group), stdin="RESTIC_PASSWORD='x'\n")
    assert run.returncode == 0, run.stderr
    assert host.read("/usr/local/lib/hemma/empty.conf") == ""
    assert host.read("/etc/hemma/restic.env") == "RESTIC_PASSWORD='x'\n"


def test_a_file_that_cannot_be_installed_stops_before_any_unit_is_touched(host: Host) -> None:
    host.failing("install")
    run = host.run(install_script(job_group(job())))
    assert run.returncode != 0
    assert "install: Permission denied" in run.stderr
    assert run.systemctl == [], "no daemon-reload, enable or restart"
    assert host.read(SERVICE) is None


def test_a_removal_that_cannot_delete_a_unit_fails_and_says_so(host: Host) -> None:
    group = job_group(job())
    assert host.run(install_script(group)).returncode == 0
    host.failing("rm")
    run = host.run(remove_script(group))
    assert run.returncode != 0
    assert "rm: Permission denied" in run.stderr
    assert run.systemctl == ["disable --now hemma-backup.timer hemma-backup.service"]


def test_a_removal_deletes_every_file_under_the_root_it_is_given(host: Host) -> None:
    group = job_group(job(secret_file="/etc/hemma/restic.env"))
    assert host.run(install_script(group), stdin="x\n").returncode == 0
    run = host.run(remove_script(group))
    assert run.returncode == 0, run.stderr
    assert [host.read(p) for p in (SERVICE, TIMER, "/etc/hemma/restic.env")] == [None] * 3
    assert run.systemctl[-1] == "daemon-reload"


@pytest.mark.parametrize(
    ("schedule", "description"),
    [
        ("daily", "Run the backup daily"),
        ("*-*-* 03:15", "Run the backup at *-*-* 03:15"),
        ("03:15", "Run the backup at 03:15"),
        ("Mon *-*-*", "Run the backup at Mon *-*-*"),
    ],
)
def test_the_timer_says_when_it_runs(schedule: str, description: str) -> None:
    """What ``systemctl list-timers`` shows beside the timer."""
    timer = job_group(job(schedule)).files[1].content
    assert f"\nDescription={description}\n" in timer


def test_an_exec_line_starts_with_an_absolute_path() -> None:
    """A relative program would be looked up on systemd's PATH, or refused by it."""
    for words in (["restic", "backup"], []):
        with pytest.raises(ValueError, match="an Exec line starts with an absolute path"):
            exec_line(words)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ExecStart", "/bin/true\nExecStartPre=/bin/sh -c id"),
        ("Description", "backup\rUser=root"),
        ("Description", "50%h"),
        ("Description", "a\0b"),
        ("Exec Start", "/bin/true"),
        ("User=root\nExecStart", "/bin/true"),
    ],
)
def test_no_key_or_value_can_add_a_line_or_a_specifier_to_a_unit_file(key: str, value: str) -> None:
    with pytest.raises(ValueError, match="cannot be written into a unit file"):
        unit([("Service", [(key, value)])])
