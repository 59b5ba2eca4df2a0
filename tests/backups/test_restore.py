"""scripts/restore: refusals, the plan it prints, and the commands it sends over ssh.

ssh is the one stand-in: it records its argv and either answers by itself or runs
the remote command here with /bin/sh, the way sshd hands it to a login shell. In
the second mode the commands meet the real restic repository, the real
PostgreSQL server (through the stand-in docker of standins.py) and real sudo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.backups import restic as host
from ops import restore
from tests.backups.conftest import Hemma
from tests.backups.standins import ROOT

pytestmark = pytest.mark.tools

SSH = """#!@PYTHON@
import json, os, sys
with open(os.environ["SSH_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
remote = sys.argv[-1]
if os.environ.get("SSH_MODE") == "local":
    os.execv("/bin/sh", ["sh", "-c", remote])
if " ps --filter volume=" in remote:
    print(os.environ.get("SSH_USERS", ""))
fail_on = os.environ.get("SSH_FAIL_ON")
sys.exit(1 if fail_on and fail_on in remote else 0)
"""


SSH_ARGS = ("--ssh", "hemma.test", "--ssh-command")
WRAPPER = ("bash", str(ROOT / "scripts" / "restore"))


def ssh_standin(where: Path) -> Path:
    path = where / "ssh"
    path.write_text(SSH.replace("@PYTHON@", sys.executable))
    path.chmod(0o755)
    return path


def scripts_restore(
    tmp_path: Path, *args: str, mode: str = "record", **env: str
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    log = tmp_path / "ssh.log"
    ssh = ssh_standin(tmp_path)
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "restore"), *args, *SSH_ARGS, f"{ssh} -p 2222"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SSH_LOG": str(log), "SSH_MODE": mode, **env},
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def printed_steps(stdout: str) -> list[str]:
    """The commands under each "==> N. what" line, in the order they ran."""
    lines = stdout.splitlines()
    return [lines[i + 1].strip() for i, line in enumerate(lines) if line.startswith("==> ")]


@pytest.mark.parametrize(
    "args",
    [
        ["database", "skriptoteket", "--production"],
        ["database", "skriptoteket", "--yes"],
        ["database", "skriptoteket", "--into", "skriptoteket", "--production", "--yes"],
        ["database", "skriptoteket", "--production", "--yes"],  # what keeps writing?
        ["database", "skriptoteket", "--production", "--yes", "--keep-running", "--stop", "x"],
        ["volume", "classhub-media", "--production"],
        ["volume", "classhub-media", "--into", "classhub-media"],
        ["database", "skriptoteket; rm -rf /"],
        ["database", "skriptoteket", "--snapshot", "$(reboot)"],
    ],
)
def test_refuses_without_both_flags_and_runs_nothing(tmp_path: Path, args: list[str]) -> None:
    done, calls = scripts_restore(tmp_path, *args)
    assert done.returncode == 2
    assert "nothing was run" in done.stderr
    assert calls == []


def test_a_scratch_restore_prints_the_plan_then_runs_exactly_it(tmp_path: Path) -> None:
    done, calls = scripts_restore(tmp_path, "database", "skriptoteket")
    assert done.returncode == 0, done.stderr
    plan_at, first_run_at = done.stdout.index("in this order:"), done.stdout.index("==> 1.")
    assert plan_at < first_run_at
    ran = printed_steps(done.stdout)
    assert [call[-1] for call in calls] == ran
    assert all(
        call[:6] == ["-p", "2222", "-o", "BatchMode=yes", "hemma.test", call[5]] for call in calls
    )
    assert all(command in done.stdout[plan_at:first_run_at] for command in ran)
    assert "createdb -U postgres restore_skriptoteket" in ran[1]
    assert ran[2].endswith(
        "pg_restore -U postgres --no-owner --exit-on-error -d restore_skriptoteket"
    )
    assert not any("--clean" in command or "-d skriptoteket" in command for command in ran)
    assert "--tag hemma-nightly" in ran[0]
    assert ran[-1].startswith("sudo rm -rf /var/tmp/hemma-restore/")


def test_production_stops_overwrites_and_always_starts_and_cleans_up(tmp_path: Path) -> None:
    done, calls = scripts_restore(
        tmp_path,
        "database",
        "skriptoteket",
        "--production",
        "--yes",
        "--stop",
        "skriptoteket-web",
        "--snapshot",
        "1a2b3c4d",
        SSH_FAIL_ON="--clean",
    )
    assert done.returncode == 1
    ran = [call[-1] for call in calls]
    assert ran == printed_steps(done.stdout)
    overwrite = next(i for i, c in enumerate(ran) if "--clean" in c)
    assert "pg_dump -U postgres --format=custom" in ran[overwrite - 2], "the live one is kept first"
    assert ran[overwrite - 1] == "docker stop skriptoteket-web"
    assert ran[overwrite].endswith(
        "pg_restore -U postgres --clean --if-exists --single-transaction --exit-on-error"
        " -d skriptoteket"
    )
    assert ran[overwrite + 1] == "docker start skriptoteket-web"
    assert ran[-1].startswith("sudo rm -rf ")
    assert "restore 1a2b3c4d --target" in ran[0] and "--tag" not in ran[0]


def test_an_early_failure_runs_only_the_cleanup(tmp_path: Path) -> None:
    done, calls = scripts_restore(
        tmp_path, "volume", "classhub-media", "--production", "--yes", SSH_FAIL_ON="restic"
    )
    assert done.returncode == 1
    ran = [call[-1] for call in calls]
    assert " ps --filter volume=classhub-media" in ran[0]
    assert len(ran) == 3 and "restic" in ran[1] and ran[2].startswith("sudo rm -rf ")


def test_the_defaults_match_the_host_scripts() -> None:
    assert restore.ENV_FILE == host.ENV_FILE
    assert restore.DUMPS_DIR == host.DUMPS_DIR
    assert restore.VOLUME_ROOT == host.VOLUME_ROOT
    assert restore.SNAPSHOT_TAG == host.SNAPSHOT_TAG


def local_args(hemma: Hemma) -> list[str]:
    return [
        "--docker",
        str(hemma.docker.path),
        "--env",
        str(hemma.env_file),
        "--dumps",
        str(hemma.dumps),
        "--volume-root",
        str(hemma.volume_root),
        "--work",
        str(hemma.root / "work"),
        "--keep",
        str(hemma.root / "kept"),
    ]


def test_a_database_restores_into_scratch_then_over_the_live_one(hemma: Hemma) -> None:
    pg = hemma.pg
    pg.sql("CREATE DATABASE tutoring")
    try:
        pg.sql("CREATE TABLE notes (id int); INSERT INTO notes VALUES (1), (2), (3)", db="tutoring")
        assert hemma.backup(databases=("tutoring",)).returncode == 0
        pg.sql("DELETE FROM notes WHERE id > 1", db="tutoring")

        scratch, _ = scripts_restore(
            hemma.root, "database", "tutoring", *local_args(hemma), mode="local"
        )
        assert scratch.returncode == 0, scratch.stdout + scratch.stderr
        assert pg.sql("SELECT count(*) FROM notes", db="restore_tutoring") == "3"
        assert pg.sql("SELECT count(*) FROM notes", db="tutoring") == "1", "live one untouched"

        again, _ = scripts_restore(
            hemma.root, "database", "tutoring", *local_args(hemma), mode="local"
        )
        assert again.returncode == 1, "an existing scratch database is never overwritten"
        assert "already exists" in again.stderr

        live, _ = scripts_restore(
            hemma.root,
            "database",
            "tutoring",
            "--into",
            "restore_tutoring_2",
            "--production",
            "--yes",
            "--keep-running",
            *local_args(hemma),
            mode="local",
        )
        assert live.returncode == 0, live.stdout + live.stderr
        assert pg.sql("SELECT count(*) FROM notes", db="tutoring") == "3"
        kept = list((hemma.root / "kept").glob("tutoring-*.dump"))
        assert len(kept) == 1 and kept[0].stat().st_size > 0
        assert not list((hemma.root / "work").iterdir()), "the work dir is removed"
    finally:
        for db in ("tutoring", "restore_tutoring", "restore_tutoring_2"):
            pg.sql(f"DROP DATABASE IF EXISTS {db}")


def test_a_volume_restores_into_scratch_then_over_the_live_one(hemma: Hemma) -> None:
    data = hemma.volume("classhub-media")
    (data / "photo 1.jpg").write_bytes(b"\xff\xd8 one")
    (data / "sub").mkdir()
    (data / "sub" / "two.txt").write_text("two\n")
    hemma.docker.add("classhub_web", volumes=["classhub-media"])
    assert hemma.backup(volumes=(("classhub-media", "live", ()),)).returncode == 0
    (data / "photo 1.jpg").unlink()
    (data / "junk").write_text("written after the snapshot")

    done, _ = scripts_restore(
        hemma.root,
        "volume",
        "classhub-media",
        "--production",
        "--yes",
        *local_args(hemma),
        mode="local",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for root in (data, hemma.volume_root / "restore_classhub-media" / "_data"):
        assert sorted(p.name for p in root.rglob("*")) == ["photo 1.jpg", "sub", "two.txt"]
        assert (root / "photo 1.jpg").read_bytes() == b"\xff\xd8 one"
    kept = next((hemma.root / "kept").glob("classhub-media-*"))
    assert (kept / "junk").exists(), "the live files as they were are kept"
    assert hemma.docker.commands("stop") == [["stop", "classhub_web"]]
    assert hemma.docker.commands("start") == [["start", "classhub_web"]]


def test_a_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    ssh = ssh_standin(tmp_path)
    done = subprocess.run(
        [*WRAPPER, "--ssh", "elsewhere", "--ssh-command", str(ssh), "--dry-run", "volume", "x"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SSH_LOG": str(tmp_path / "ssh.log")},
    )
    assert done.returncode == 0, done.stderr
    assert "on elsewhere, in this order:" in done.stdout
    assert "volume create" in done.stdout and "restore_x" in done.stdout
    assert "==>" not in done.stdout
    assert not (tmp_path / "ssh.log").exists()
