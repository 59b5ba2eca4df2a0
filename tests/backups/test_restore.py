"""scripts/restore: refusals, the plan it prints, and the commands it sends over ssh.

ssh is the one stand-in: it records its argv and either answers by itself or runs
the remote command here with /bin/sh, the way sshd hands it to a login shell. In
the second mode the commands meet the real restic repository, the real
PostgreSQL server (through the stand-in docker of standins.py) and real sudo: those
tests, and the one with the real ssh client, are the ``tools`` ones; the rest need
nothing but bash and Python.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from components.backups import install
from components.backups import restic as host
from components.backups.jobs import PROBES_FILE
from ops import restore, restore_plan
from tests.backups.conftest import Hemma
from tests.backups.standins import FILES, ROOT
from tests.postgres_server import pg_tool

SSH = """#!@PYTHON@
import json, os, sys
with open(os.environ["SSH_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
remote = sys.argv[-1]
if os.environ.get("SSH_MODE") == "local":
    os.execv("/bin/sh", ["sh", "-c", remote])
if " ps --filter volume=" in remote:
    print(os.environ.get("SSH_USERS", ""))
if " ps --filter status=running " in remote:
    print(os.environ.get("SSH_RUNNING", ""))
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
    assert ran[1].endswith(
        "-v live=skriptoteket -v copy=restore_skriptoteket"
        " < /usr/local/lib/hemma/hemma-create-copy.sql"
    )
    assert ran[2].endswith(
        "pg_restore -U postgres --no-owner --exit-on-error -d restore_skriptoteket"
    )
    assert not any("--clean" in command or "-d skriptoteket" in command for command in ran)
    assert not any("hemma-swap-database.sql" in command for command in ran)
    # The latest complete snapshot of the dumps, in the jobs' turn and with their cache.
    assert (
        ran[0].startswith("sudo install -d -m 0700 /var/tmp/hemma-restore/")
        and " && sudo flock -w 1800 /run/lock/hemma-restic.lock sh -c " in ran[0]
    )
    assert (
        "restore latest --tag hemma-nightly,complete --host hemma"
        " --path /var/backups/hemma/dumps --target" in ran[0]
    )
    assert "/etc/hemma/restic.env /var/cache/hemma-restic restore" in ran[0]
    assert ran[-1].startswith("sudo rm -rf /var/tmp/hemma-restore/")


def test_production_swaps_in_the_copy_and_always_starts_and_lets_connections_in(
    tmp_path: Path,
) -> None:
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
        SSH_FAIL_ON="hemma-swap-database.sql",
    )
    assert done.returncode == 1
    ran = [call[-1] for call in calls]
    assert ran == printed_steps(done.stdout)
    swap = next(i for i, c in enumerate(ran) if "hemma-swap-database.sql" in c)
    assert "-d restore_skriptoteket" in ran[swap - 2] and "hemma-hand-over.sql" in ran[swap - 2]
    assert ran[swap - 1] == "docker stop skriptoteket-web"
    assert re.search(
        r"-v live=skriptoteket -v copy=restore_skriptoteket"
        r" -v kept=skriptoteket_before_\d{14} < /usr/local/lib/hemma/hemma-swap-database.sql$",
        ran[swap],
    ), ran[swap]
    # The swap failed: connections to the live database are let in again, the app
    # starts again, the probes do not run, and the work directory goes.
    assert ran[swap + 1].endswith(
        shlex.quote(restore_plan.allow_connections("skriptoteket", "restore_skriptoteket"))
    )
    assert ran[swap + 2] == "docker start skriptoteket-web"
    assert ran[swap + 3].startswith("sudo rm -rf ")
    assert len(ran) == swap + 4
    assert not any("--clean" in command or "pg_dump" in command for command in ran)
    assert "restore 1a2b3c4d --target" in ran[1] and "--tag" not in ran[1]


def test_a_start_first_service_is_stopped_by_its_label_every_copy(tmp_path: Path) -> None:
    """Its container is named SERVICE-DIGEST, so ``--stop SERVICE`` is looked up first
    (read-only); a container without the label is stopped by the name given."""
    label = "education.hule.hemma.service"
    done, calls = scripts_restore(
        tmp_path, "database", "classhub", "--production", "--yes",
        "--stop", "classhub_web", "--stop", "classhub_worker",
        SSH_RUNNING="classhub_web-0123456789ab classhub_web\n"
        "classhub_web-ba9876543210 classhub_web\nnginx-proxy \nclasshub_worker \n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ran = [call[-1] for call in calls]
    assert ran == printed_steps(done.stdout)
    assert ran[0] == (
        f"docker ps --filter status=running --format '{{{{.Names}}}} {{{{.Label \"{label}\"}}}}'"
    )
    stop = "classhub_web-0123456789ab classhub_web-ba9876543210 classhub_worker"
    assert f"docker stop {stop}" in ran and f"docker start {stop}" in ran


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
    assert restore_plan.LIB == host.LIB
    assert restore_plan.CACHE_DIR == host.CACHE_DIR
    assert restore_plan.LOCK_FILE == host.LOCK_FILE
    assert restore_plan.HOST == host.HOST
    for name in ("hemma-create-copy.sql", "hemma-hand-over.sql", "hemma-swap-database.sql"):
        assert f"{host.LIB}/{name}" in install.RESTIC_FILES, name
    assert f"{host.LIB}/drill-probes" == PROBES_FILE


def local_args(hemma: Hemma, probes: str = "") -> list[str]:
    """The restore's paths in this world; its lib holds the backup's installed SQL
    files and drill probes, as /usr/local/lib/hemma does on Hemma."""
    lib = hemma.root / "lib"
    lib.mkdir(exist_ok=True)
    for path in install.RESTIC_FILES:
        name = Path(path).name
        if name.endswith(".sql"):
            shutil.copy(FILES / name, lib / name)
    (lib / "drill-probes").write_text(probes)
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
        "--lib",
        str(lib),
        "--cache",
        str(hemma.cache),
        "--lock",
        str(hemma.lock),
    ]


# An app's migrations as its own tool runs them (Alembic, Django): as the app's role,
# recording each one in a table, applying those not recorded yet. The second adds a
# table and alters the first one's, which takes owning it.
MIGRATIONS = (
    "CREATE TABLE notes (id int PRIMARY KEY, body text)",
    "CREATE TABLE added_later (id int); ALTER TABLE notes ADD COLUMN author text",
)


def migrate(hemma: Hemma, db: str, role: str, upto: int) -> subprocess.CompletedProcess[str]:
    script = [
        "CREATE TABLE IF NOT EXISTS migrations (version int PRIMARY KEY);",
        *(
            f"SELECT NOT EXISTS (SELECT 1 FROM migrations WHERE version = {n}) AS due \\gset\n"
            f"\\if :due\n{sql};\nINSERT INTO migrations VALUES ({n});\n\\endif"
            for n, sql in enumerate(MIGRATIONS[:upto], 1)
        ),
    ]
    return subprocess.run(
        [pg_tool("psql"), "-U", role, "-d", db, "-v", "ON_ERROR_STOP=1", "-q", "-1"],
        input="\n".join(script) + "\n",
        capture_output=True,
        text=True,
        env=hemma.pg.env(),
        timeout=30,
    )


@pytest.mark.tools
def test_a_production_restore_swaps_in_the_copy_so_the_app_migrates_again(hemma: Hemma) -> None:
    """The runbook's fault: pg_restore --clean over the live database drops only what
    the dump holds. A table a later migration added survives while the migration
    table rolls back, and the next migrate fails with "relation already exists"."""
    pg = hemma.pg
    pg.sql("CREATE ROLE tutor LOGIN")
    pg.sql("CREATE ROLE reader LOGIN")
    pg.sql("CREATE DATABASE tutoring OWNER tutor CONNECTION LIMIT 20")
    pg.sql('REVOKE ALL PRIVILEGES ON DATABASE tutoring FROM "public"')  # as declared
    # What PostgreSQL keeps per database and no dump holds: made by hand, kept.
    pg.sql("GRANT CONNECT ON DATABASE tutoring TO reader")
    pg.sql("ALTER DATABASE tutoring SET datestyle = 'ISO, DMY'")  # a list, stored as one
    pg.sql("ALTER ROLE reader IN DATABASE tutoring SET statement_timeout = '5s'")
    kept: list[str] = []
    try:
        assert migrate(hemma, "tutoring", "tutor", 1).returncode == 0
        pg.sql(
            "SET ROLE tutor; CREATE TYPE mood AS ENUM ('ok'); CREATE SCHEMA tools;"
            " CREATE FUNCTION tools.one() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            db="tutoring",
        )
        pg.sql("INSERT INTO notes VALUES (1, 'one'), (2, 'two'), (3, 'three')", db="tutoring")
        assert hemma.backup(databases=("tutoring",)).returncode == 0
        # After the night: the app's next release migrates, and writes.
        second = migrate(hemma, "tutoring", "tutor", 2)
        assert second.returncode == 0, second.stderr
        pg.sql("DELETE FROM notes WHERE id > 1; INSERT INTO added_later VALUES (7)", db="tutoring")

        probes = "tutoring:SELECT count(*) FROM migrations\nskriptoteket:SELECT 0\n"
        done, _ = scripts_restore(
            hemma.root,
            "database",
            "tutoring",
            "--production",
            "--yes",
            "--keep-running",
            *local_args(hemma, probes),
            mode="local",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "probe 1 on tutoring passed" in done.stdout
        kept = sorted(d for d in pg.databases() if d.startswith("tutoring_before_"))
        assert len(kept) == 1, pg.databases()
        assert "restore_tutoring" not in pg.databases(), "the copy became the live one"

        # The live database is the dump's, whole: nothing a later migration made.
        assert pg.sql("SELECT count(*) FROM notes", db="tutoring") == "3"
        assert pg.sql("SELECT count(*) FROM migrations", db="tutoring") == "1"
        assert pg.sql("SELECT to_regclass('added_later') IS NULL", db="tutoring") == "t"
        # Owned as declared: the database and everything in it by the app's role, and
        # PUBLIC without CONNECT.
        assert pg.sql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'tutoring'")
        owners = pg.sql(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'tools')"
            " UNION SELECT pg_get_userbyid(typowner) FROM pg_type WHERE typname = 'mood'"
            " UNION SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'one'"
            " UNION SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'tools'",
            db="tutoring",
        )
        assert owners == "tutor", "everything the app made is the app's again"
        owner = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'tutoring'"
        assert pg.sql(owner) == "tutor"
        database = "SELECT datacl::text, datconnlimit FROM pg_database WHERE datname = 'tutoring'"
        assert pg.sql(database) == "{tutor=CTc/tutor,reader=c/tutor}|20", "nothing for PUBLIC"
        settings = (
            "SELECT coalesce(pg_get_userbyid(nullif(s.setrole, 0)), '*'), s.setconfig::text"
            " FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
            " WHERE d.datname = 'tutoring' ORDER BY 1"
        )
        assert pg.sql(settings).splitlines() == [
            '*|{"DateStyle=ISO, DMY"}',
            "reader|{statement_timeout=5s}",
        ]
        assert (
            pg.sql(
                "SELECT has_database_privilege('tutor', 'tutoring', 'CONNECT')"
                " AND datallowconn FROM pg_database WHERE datname = 'tutoring'"
            )
            == "t"
        )
        # The old one is kept whole, and can be opened.
        assert pg.sql("SELECT count(*) FROM added_later", db=kept[0]) == "1"
        assert pg.sql("SELECT count(*) FROM notes", db=kept[0]) == "1"

        again = migrate(hemma, "tutoring", "tutor", 2)
        assert again.returncode == 0, again.stderr
        assert pg.sql("SELECT count(*) FROM migrations", db="tutoring") == "2"
        assert not list((hemma.root / "work").iterdir()), "the work dir is removed"
    finally:
        for db in ("tutoring", "restore_tutoring", *kept):
            pg.sql(f"DROP DATABASE IF EXISTS {db}")
        pg.sql("DROP ROLE IF EXISTS tutor")
        pg.sql("DROP ROLE IF EXISTS reader")


@pytest.mark.tools
def test_a_database_restores_into_scratch_and_never_over_an_existing_one(hemma: Hemma) -> None:
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
    finally:
        for db in ("tutoring", "restore_tutoring"):
            pg.sql(f"DROP DATABASE IF EXISTS {db}")


@pytest.mark.tools
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


@pytest.mark.tools
def test_a_swap_that_fails_renames_nothing_and_connections_come_back(hemma: Hemma) -> None:
    """The swap on the real server, failing at its last rename (the kept name is
    taken): the live database and the copy stay as they were, and the step the
    restore always runs after it lets connections into both again."""
    pg = hemma.pg
    for db in ("tutoring", "restore_tutoring", "tutoring_before_1"):
        pg.sql(f"CREATE DATABASE {db}")
    pg.sql("CREATE TABLE t (live bool); INSERT INTO t VALUES (true)", db="tutoring")
    try:
        failed = subprocess.run(
            [pg_tool("psql"), "-d", "postgres", "-v", "live=tutoring",
             "-v", "copy=restore_tutoring", "-v", "kept=tutoring_before_1",
             "-f", str(FILES / "hemma-swap-database.sql")],
            capture_output=True, text=True, env=hemma.pg.env(), timeout=60,
        )  # fmt: skip
        assert failed.returncode != 0
        assert 'database "tutoring_before_1" already exists' in failed.stderr
        allowed = "SELECT datname, datallowconn FROM pg_database WHERE datname LIKE '%tutoring%'"
        assert sorted(pg.sql(allowed).splitlines()) == [
            "restore_tutoring|f",
            "tutoring_before_1|t",
            "tutoring|f",
        ]
        pg.sql(restore_plan.allow_connections("tutoring", "restore_tutoring"))
        assert sorted(pg.sql(allowed).splitlines()) == [
            "restore_tutoring|t",
            "tutoring_before_1|t",
            "tutoring|t",
        ]
        assert pg.sql("SELECT live FROM t", db="tutoring") == "t", "the live one, untouched"
        # After a swap that worked there is no copy: the same step changes nothing.
        pg.sql("DROP DATABASE restore_tutoring")
        pg.sql(restore_plan.allow_connections("tutoring", "restore_tutoring"))
    finally:
        for db in ("tutoring", "restore_tutoring", "tutoring_before_1"):
            pg.sql(f"DROP DATABASE IF EXISTS {db}")


@pytest.mark.tools
def test_a_volume_restore_refuses_a_scratch_volume_that_exists(hemma: Hemma) -> None:
    """An earlier restore left restore_NAME: this one stops before it copies anything
    into it, and says how to go on."""
    data = hemma.volume("classhub-media")
    (data / "photo.jpg").write_bytes(b"live")
    hemma.docker.add("classhub_web", volumes=["classhub-media"])
    assert hemma.backup(volumes=(("classhub-media", "live", ()),)).returncode == 0
    left = hemma.volume_root / "restore_classhub-media" / "_data"
    left.mkdir(parents=True)
    (left / "earlier.txt").write_text("an earlier restore\n")
    done, _ = scripts_restore(
        hemma.root, "volume", "classhub-media", "--production", "--yes",
        *local_args(hemma), mode="local",
    )  # fmt: skip
    assert done.returncode != 0
    assert "volume restore_classhub-media exists: remove it first" in done.stderr
    assert sorted(p.name for p in left.iterdir()) == ["earlier.txt"], "nothing copied into it"
    assert (data / "photo.jpg").read_bytes() == b"live", "the live volume is untouched"


@pytest.mark.tools
def test_the_copy_kept_before_a_volume_restore_is_readable_by_root_only(hemma: Hemma) -> None:
    """The copy keeps the live files' own modes (``cp -a``); the directory it is made in
    is root's alone (``umask 077``), so nobody else reaches into it."""
    data = hemma.volume("classhub-media")
    (data / "secret.env").write_text("KEY=value\n")
    hemma.docker.add("classhub_web", volumes=["classhub-media"])
    assert hemma.backup(volumes=(("classhub-media", "live", ()),)).returncode == 0
    done, _ = scripts_restore(
        hemma.root, "volume", "classhub-media", "--production", "--yes",
        *local_args(hemma), mode="local",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    keep = hemma.root / "kept"
    assert keep.stat().st_mode & 0o777 == 0o700, oct(keep.stat().st_mode)
    assert (next(keep.glob("classhub-media-*")) / "secret.env").read_text() == "KEY=value\n"


@pytest.mark.tools
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["database", "skriptoteket"], "cannot reach hemma over ssh (ssh exited 255 before "
         "the first step); nothing was run"),
        (["volume", "classhub-media", "--production", "--yes", "--dry-run"],
         "cannot reach 127.0.0.1 over ssh: ssh: connect to host 127.0.0.1 port {port}: "
         "Connection refused; nothing was run"),
    ],
)  # fmt: skip
def test_an_unreachable_hemma_is_said_first_with_its_own_exit_status(
    args: list[str], line: str
) -> None:
    """The real ssh client against a port nobody listens on: exit 3, not 1 ("a command
    on Hemma failed"), and nothing after the first attempt, not even the clean-up."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    ssh = f"ssh -p {port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
    done = subprocess.run(
        [*WRAPPER, *args, "--ssh", "127.0.0.1", "--ssh-command", ssh],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == restore.UNREACHABLE == 3, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "hemma restore: " + line.format(port=port)
    assert done.stdout.count("==> ") <= 1


def test_the_kept_copy_s_name_fits_postgresql_s_63_characters_or_is_refused() -> None:
    """PostgreSQL would cut a longer name silently, and two kept copies could collide."""
    stamp = "20261204T120000Z"
    fits = restore_plan.kept_name("d" * 41, stamp)
    assert fits == "d" * 41 + "_before_20261204120000" and len(fits) == 63
    with pytest.raises(restore_plan.Refused, match="longer than 63 characters"):
        restore_plan.kept_name("d" * 42, stamp)
