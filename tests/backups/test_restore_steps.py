"""The restore's steps run for real, by bash, in a temporary directory with stand-in
``sudo``, ``docker`` and ``restic`` on PATH (every path holds a space, as any may):
what the operator relies on when a restore runs on Hemma. A scratch volume that
exists is refused and nothing is created, the live volume's copy is root-only, an
overwrite leaves exactly the restored files, a probe that answers nothing, 0 or f
fails, and restic restores in its turn with the jobs' repository and cache.
(tests/backups/test_restore.py runs them against real PostgreSQL and restic.)"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.backups.restic import restic_env
from ops.restore_plan import Remote, Step, database_plan, volume_plan

STAMP = "20261204T120000Z"

SUDO = '#!/bin/sh\nexec "$@"\n'
DOCKER = """#!/bin/sh
printf '%s\\n' "$*" >> "$STAND_IN/docker.log"
case "$1 $2" in
  "volume inspect") [ -e "$STAND_IN/volumes/$3" ] ;;
  "volume create") mkdir -p "$STAND_IN/volumes/$3" ;;
  exec*)
    # As docker does: only ``exec -i`` hands the command its stdin.
    if [ "$2" = -i ]; then cat >> "$STAND_IN/psql-stdin"; fi
    for last in "$@"; do :; done
    case "$last" in
      *FAILS*) echo "ERROR: relation does not exist" >&2; exit 1 ;;
      *ZERO*) echo 0 ;;
      *FALSE*) echo f ;;
      *NOTHING*) ;;
      *EMPTY_FIRST*) echo; echo t ;;
      *SPACED*) echo "2 tools" ;;
      *) echo t; echo "a second line" ;;
    esac ;;
esac
"""
RESTIC = """#!/bin/sh
printf '%s|%s|%s|%s\\n' "$RESTIC_REPOSITORY" "$RESTIC_PASSWORD" "$RESTIC_CACHE_DIR" "$*" \\
  >> "$STAND_IN/restic.log"
[ "$1" = restore ] || exit 0
while [ "$#" -gt 0 ]; do
  case "$1" in
    --target) target=$2 ;;
    --include) include=$2 ;;
  esac
  shift
done
[ -e "$STAND_IN/empty-snapshot" ] && exit 0
mkdir -p "$target$(dirname "$include")"
echo restored > "$target$include"
"""


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


class Hemma:
    def __init__(self, tmp: Path) -> None:
        self.top = tmp / "hemma host"
        self.bin = self.top / "bin"
        self.bin.mkdir(parents=True)
        for name, text in (("sudo", SUDO), ("docker", DOCKER), ("restic", RESTIC)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        (self.bin / "volumes").mkdir()
        env = self.top / "restic env"
        env.write_text(restic_env("/mnt/backup/hemma", "pa ss'word", {}))
        self.remote = Remote(
            docker=str(self.bin / "docker"),
            postgres="shared-postgres",
            env=str(env),
            dumps="/var/backups/hemma/dumps",
            volume_root=str(self.top / "volumes"),
            work=str(self.top / "work"),
            keep=str(self.top / "before restore"),
            lib=str(self.top / "lib"),
            cache=str(self.top / "restic cache"),
            lock=str(self.top / "restic lock"),
        )

    def run(self, step: Step) -> Ran:
        """Run the step as ssh would, its stdin the operator's terminal."""
        done = subprocess.run(
            ["bash", "-c", step.command], input="the operator's typing\n",
            capture_output=True, text=True, timeout=30,
            env={**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}",
                 "STAND_IN": str(self.bin)},
        )  # fmt: skip
        return Ran(done.returncode, done.stdout, done.stderr)

    def log(self, name: str) -> list[str]:
        path = self.bin / f"{name}.log"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def hemma(tmp_path: Path) -> Hemma:
    return Hemma(tmp_path)


def step(steps: list[Step], starting: str) -> Step:
    return next(s for s in steps if s.what.startswith(starting))


def volume_steps(hemma: Hemma, production: bool = True) -> list[Step]:
    return volume_plan(
        hemma.remote, "classhub-media", "latest", "restore_classhub-media", production,
        ["classhub_web"], STAMP,
    )  # fmt: skip


def test_a_scratch_volume_that_exists_is_refused_and_nothing_is_created(hemma: Hemma) -> None:
    (hemma.bin / "volumes" / "restore_classhub-media").mkdir()
    ran = hemma.run(step(volume_steps(hemma), "create the scratch volume"))
    assert ran.returncode == 1
    assert ran.stderr == (
        "volume restore_classhub-media exists: remove it first "
        f"({hemma.remote.docker} volume rm restore_classhub-media)\n"
    )
    assert not any("create" in call for call in hemma.log("docker"))


def test_a_scratch_volume_that_does_not_exist_is_created(hemma: Hemma) -> None:
    ran = hemma.run(step(volume_steps(hemma), "create the scratch volume"))
    assert ran.returncode == 0, ran.stderr
    assert hemma.log("docker")[-1] == "volume create restore_classhub-media"


def live_volume(hemma: Hemma) -> Path:
    live = Path(hemma.remote.volume_root) / "classhub-media" / "_data"
    (live / "uploads").mkdir(parents=True)
    (live / "uploads" / "essay.pdf").write_text("live essay\n")
    (live / "only-live.txt").write_text("written after the backup\n")
    return live


def test_the_copy_of_the_live_volume_kept_before_an_overwrite_is_root_only(
    hemma: Hemma,
) -> None:
    """The copy keeps the live files' own modes (``cp -a``); the directory it is made in
    is root's alone, so nobody else reaches into it."""
    live_volume(hemma)
    ran = hemma.run(step(volume_steps(hemma), "keep a copy of the live classhub-media"))
    assert ran.returncode == 0, ran.stderr
    kept = Path(hemma.remote.keep) / f"classhub-media-{STAMP}"
    assert (kept / "uploads" / "essay.pdf").read_text() == "live essay\n"
    assert Path(hemma.remote.keep).stat().st_mode & 0o777 == 0o700


def test_an_overwrite_leaves_exactly_the_restored_files(hemma: Hemma) -> None:
    live = live_volume(hemma)
    restored = Path(f"{hemma.remote.work}/{STAMP}{live}")
    (restored / "uploads").mkdir(parents=True)
    (restored / "uploads" / "essay.pdf").write_text("backed-up essay\n")
    ran = hemma.run(step(volume_steps(hemma), "OVERWRITE the live volume"))
    assert ran.returncode == 0, ran.stderr
    assert sorted(str(p.relative_to(live)) for p in live.rglob("*")) == [
        "uploads",
        "uploads/essay.pdf",
    ]
    assert (live / "uploads" / "essay.pdf").read_text() == "backed-up essay\n"


def test_restic_restores_the_latest_complete_night_in_its_turn_into_a_root_only_directory(
    hemma: Hemma,
) -> None:
    steps = database_plan(
        hemma.remote, "skriptoteket", "latest", "restore_skriptoteket", False, [], STAMP
    )
    ran = hemma.run(steps[0])
    assert ran.returncode == 0, ran.stderr
    work = Path(f"{hemma.remote.work}/{STAMP}")
    assert work.stat().st_mode & 0o777 == 0o700
    assert (work / "var/backups/hemma/dumps/skriptoteket.dump").read_text() == "restored\n"
    settings = f"/mnt/backup/hemma|pa ss'word|{hemma.remote.cache}|"
    assert hemma.log("restic") == [
        settings + "unlock",
        settings + "restore latest --tag hemma-nightly,complete --host hemma --path "
        f"/var/backups/hemma/dumps --target {work} --include "
        "/var/backups/hemma/dumps/skriptoteket.dump",
    ]


def test_a_snapshot_without_the_dump_stops_the_restore(hemma: Hemma) -> None:
    (hemma.bin / "empty-snapshot").touch()
    steps = database_plan(
        hemma.remote, "skriptoteket", "1a2b3c4d", "restore_skriptoteket", False, [], STAMP
    )
    assert hemma.run(steps[0]).returncode != 0


def probes(hemma: Hemma, text: str) -> Ran:
    Path(hemma.remote.lib).mkdir(exist_ok=True)
    (Path(hemma.remote.lib) / "drill-probes").write_text(text)
    steps = database_plan(
        hemma.remote, "skriptoteket", "latest", "restore_skriptoteket", True, [], STAMP
    )
    return hemma.run(step(steps, "run the app's probes of skriptoteket"))


def test_the_probes_of_the_restored_database_run_and_pass(hemma: Hemma) -> None:
    ran = probes(
        hemma,
        "skriptoteket:SELECT count(*) > 0 FROM tools\n"
        "huleedu_content:SELECT FAILS\n"
        "skriptoteket:SELECT EXISTS (SELECT 1 FROM users)",  # the last line has no newline
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "probe 1 on skriptoteket passed\nprobe 2 on skriptoteket passed\n"
    execs = [call for call in hemma.log("docker") if call.startswith("exec ")]
    assert execs == [
        "exec shared-postgres psql -U postgres -d skriptoteket -At -v ON_ERROR_STOP=1 "
        "-c SELECT count(*) > 0 FROM tools",
        "exec shared-postgres psql -U postgres -d skriptoteket -At -v ON_ERROR_STOP=1 "
        "-c SELECT EXISTS (SELECT 1 FROM users)",
    ]


@pytest.mark.parametrize("answer", ["FAILS", "ZERO", "FALSE", "NOTHING", "EMPTY_FIRST"])
def test_a_probe_that_errs_or_answers_nothing_0_or_f_fails_the_restore(
    hemma: Hemma, answer: str
) -> None:
    ran = probes(hemma, f"skriptoteket:SELECT 1\nskriptoteket:SELECT {answer}\n")
    assert ran.returncode == 1
    assert ran.stdout == "probe 1 on skriptoteket passed\n"
    assert ran.stderr.endswith("probe 2 on skriptoteket failed\n")


def test_a_probe_whose_first_line_holds_a_space_passes(hemma: Hemma) -> None:
    ran = probes(hemma, "skriptoteket:SELECT SPACED\n")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "probe 1 on skriptoteket passed\n"


@pytest.mark.parametrize(
    ("what", "sql"),
    [
        ("create the scratch database", "hemma-create-copy.sql"),
        ("hand restore_skriptoteket and everything in it", "hemma-hand-over.sql"),
        ("put restore_skriptoteket in the place of skriptoteket", "hemma-swap-database.sql"),
    ],
)
def test_each_sql_file_reaches_psql_on_its_stdin(hemma: Hemma, what: str, sql: str) -> None:
    """Without ``exec -i`` psql would read nothing, do nothing, and succeed."""
    lib = Path(hemma.remote.lib)
    lib.mkdir()
    (lib / sql).write_text(f"-- {sql}\n")
    steps = database_plan(
        hemma.remote, "skriptoteket", "latest", "restore_skriptoteket", True, [], STAMP
    )
    ran = hemma.run(step(steps, what))
    assert ran.returncode == 0, ran.stderr
    assert (hemma.bin / "psql-stdin").read_text() == f"-- {sql}\n"


def test_letting_connections_in_again_reads_nothing_of_the_operator_s_terminal(
    hemma: Hemma,
) -> None:
    steps = database_plan(
        hemma.remote, "skriptoteket", "latest", "restore_skriptoteket", True, [], STAMP
    )
    ran = hemma.run(step(steps, "let connections into skriptoteket"))
    assert ran.returncode == 0, ran.stderr
    assert not (hemma.bin / "psql-stdin").exists()


def test_an_app_without_probes_is_said_so(hemma: Hemma) -> None:
    ran = probes(hemma, "huleedu_content:SELECT 1\n")
    assert ran.returncode == 0
    assert ran.stdout == f"no probes of skriptoteket in {hemma.remote.lib}/drill-probes\n"
