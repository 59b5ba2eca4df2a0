"""The nightly backups: what the unit runs, how the credentials arrive, and a dump restored
into a scratch database on a real PostgreSQL server."""

from __future__ import annotations

import copy
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.config.reading import parse
from components.config.stack import StackConfig
from components.foundation.commands import as_command
from components.host.unit_files import UnitGroup, install_script, remove_script
from components.main import host_units
from components.postgres.backups import (
    BACKUP_CREDENTIALS,
    BACKUP_SCRIPT,
    backup_credentials,
    backup_script,
)
from tests.harness import (
    OPERATOR_SECRETS,
    as_cli_value,
    run_program,
    site_config,
)
from tests.postgres_server import ADMIN_PASSWORD, PG_BIN, Server, pg_tool


def config_with(**overrides: Any) -> StackConfig:
    values = copy.deepcopy(site_config())
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return parse({k: as_cli_value(v) for k, v in values.items()}, OPERATOR_SECRETS)


def unit_groups(config: StackConfig) -> list[UnitGroup]:
    return host_units(config, config.apps())


def groups_by_name(config: StackConfig) -> dict[str, UnitGroup]:
    return {group.name: group for group in unit_groups(config)}


def file_of(group: UnitGroup, suffix: str) -> str:
    return next(f.content for f in group.files if f.path.endswith(suffix))


@dataclass
class Sandbox:
    root: Path
    bin: Path

    def run(self, script: str, stdin: str = "") -> list[str]:
        """Run ``script`` as the remote command would; return the systemctl calls."""
        log = self.bin / "systemctl.log"
        log.write_text("")
        env = {
            **os.environ,
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "HEMMA_ROOT": str(self.root),
        }
        done = subprocess.run(
            ["sh", "-c", as_command(script)], input=stdin, capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr
        return log.read_text().splitlines()

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def sudo_calls(self) -> list[str]:
        return (self.bin / "sudo.log").read_text().splitlines()


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text(
        '#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> "$(dirname "$0")/sudo.log"\n'
        '[ "$1" = -n ] || { echo "sudo must not prompt" >&2; exit 1; }\nshift\nexec "$@"\n'
    )
    (bin_dir / "systemctl").write_text(
        '#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> "$(dirname "$0")/systemctl.log"\n'
    )
    for stub in ("sudo", "systemctl"):
        (bin_dir / stub).chmod(0o755)
    root = tmp_path / "root"
    root.mkdir()
    return Sandbox(root=root, bin=bin_dir)


@dataclass
class BackupRun:
    directory: Path
    docker: Path
    credentials: Path
    server: Server

    def run(self, *databases: str, keep_days: int = 14) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PATH": f"{PG_BIN}:{os.environ['PATH']}",
            "PGPORT": str(self.server.port),
        }
        script = self.directory.parent / "postgres-backup.sh"
        script.write_text(backup_script())
        script.chmod(0o755)
        return subprocess.run(
            [
                str(script),
                str(self.docker),
                "shared-postgres",
                str(self.credentials),
                str(self.directory),
                str(keep_days),
                *databases,
            ],
            capture_output=True,
            text=True,
            env=env,
        )


@pytest.fixture
def backup(server: Server, tmp_path: Path) -> BackupRun:
    docker = tmp_path / "docker"
    # Stands in for `docker exec --env-file FILE CONTAINER CMD...`: runs CMD here
    # with FILE's variables, as the real one runs it in the container.
    docker.write_text(
        '#!/usr/bin/env bash\n[ "$1" = exec ] && [ "$2" = --env-file ] || exit 64\n'
        'set -a\n. "$3"\nset +a\nshift 4\nexec "$@"\n'
    )
    docker.chmod(0o755)
    credentials = tmp_path / "postgres-backup.env"
    credentials.write_text(backup_credentials(ADMIN_PASSWORD))
    credentials.chmod(0o600)
    return BackupRun(tmp_path / "dumps", docker, credentials, server)


def test_backups_dump_every_app_database_with_credentials_from_a_root_only_file() -> None:
    program = run_program()
    backups = program.outputs["backups"]
    assert backups["directory"] == "/var/backups/hemma/postgres"
    assert backups["keepDays"] == 14
    assert len(backups["databases"]) == 14
    group = groups_by_name(config_with())["hemma-postgres-backup"]
    service = file_of(group, ".service")
    assert f"ExecStart={BACKUP_SCRIPT} /snap/bin/docker shared-postgres {BACKUP_CREDENTIALS}" in (
        service
    )
    assert "PGPASSWORD" not in service
    assert group.secret_file == BACKUP_CREDENTIALS


def test_the_backup_credentials_arrive_on_stdin_as_a_root_only_file(sandbox: Sandbox) -> None:
    group = groups_by_name(config_with())["hemma-postgres-backup"]
    secret = backup_credentials("s3cret")
    sandbox.run(install_script(group), stdin=secret)
    credentials = sandbox.path(BACKUP_CREDENTIALS)
    assert credentials.read_text() == secret
    assert oct(credentials.stat().st_mode & 0o777) == "0o600"
    script = sandbox.path(BACKUP_SCRIPT)
    assert script.read_text() == backup_script()
    assert os.access(script, os.X_OK)
    assert (
        sandbox.run(install_script(group), stdin=secret)[0] == "enable hemma-postgres-backup.timer"
    )
    sandbox.run(remove_script(group))
    assert not credentials.exists() and not script.exists()


@pytest.mark.tools
def test_a_nightly_dump_restores_into_a_scratch_database(backup: BackupRun) -> None:
    server = backup.server
    created = server.as_role(
        "skriptoteket",
        "skriptoteket",
        "CREATE TABLE IF NOT EXISTS tools (name text); "
        "INSERT INTO tools VALUES ('essay-grader'), ('word-counter');",
    )
    assert created.returncode == 0, created.stderr

    done = backup.run("skriptoteket", "huleedu_content")
    assert done.returncode == 0, done.stderr
    dumps = sorted(backup.directory.iterdir())
    assert [d.name.split("-")[0] for d in dumps] == ["huleedu_content", "skriptoteket"]
    assert all(d.suffix == ".dump" for d in dumps)
    assert all(d.read_bytes().startswith(b"PGDMP") for d in dumps), "custom (compressed) format"
    assert oct(dumps[0].stat().st_mode & 0o777) == "0o600"

    server.admin("DROP DATABASE IF EXISTS restore_drill")
    server.admin("CREATE DATABASE restore_drill")
    dump = next(d for d in dumps if d.name.startswith("skriptoteket-"))
    restored = subprocess.run(
        [
            pg_tool("pg_restore"),
            "--no-owner",
            "-h",
            "127.0.0.1",
            "-p",
            str(server.port),
            "-U",
            "postgres",
            "-d",
            "restore_drill",
            str(dump),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": ADMIN_PASSWORD},
    )
    assert restored.returncode == 0, restored.stderr
    rows = server.admin("SELECT string_agg(name, ',' ORDER BY name) FROM tools", db="restore_drill")
    assert rows == "essay-grader,word-counter"


@pytest.mark.tools
def test_old_dumps_are_pruned_only_after_a_fully_good_run(backup: BackupRun) -> None:
    backup.directory.mkdir(parents=True)
    old = backup.directory / "skriptoteket-20200101T000000Z.dump"
    old.write_bytes(b"PGDMP old")
    month_ago = time.time() - 30 * 86400
    os.utime(old, (month_ago, month_ago))

    failed = backup.run("skriptoteket", "no_such_database")
    assert failed.returncode != 0
    assert "pg_dump of no_such_database failed" in failed.stderr
    assert old.exists(), "a failing run keeps the old dumps"
    assert not list(backup.directory.glob("*.partial"))

    assert backup.run("skriptoteket").returncode == 0
    assert not old.exists()
