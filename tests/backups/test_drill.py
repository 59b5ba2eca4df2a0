"""hemma-drill.sh restores the latest snapshot into the real PostgreSQL server."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.backups.conftest import Hemma, make_hemma
from tests.backups.standins import Postgres, metrics

pytestmark = pytest.mark.tools

PROBES = (
    ("skriptoteket", "SELECT count(*) FROM tools"),
    ("skriptoteket", "SELECT max(title) = 'tool 99' FROM tools"),
    ("huleedu_content", "SELECT count(*) > 0 FROM essays"),
)


@pytest.fixture(scope="module")
def nightly(
    tmp_path_factory: pytest.TempPathFactory, postgres: Postgres, initialised_repository: Path
) -> Hemma:
    """A repository holding one night of the two app databases, for drills that only read."""
    world = make_hemma(tmp_path_factory.mktemp("nightly"), postgres, initialised_repository)
    done = world.backup()
    assert done.returncode == 0, done.stderr
    return world


def from_nightly(hemma: Hemma, nightly: Hemma) -> Hemma:
    """That night's repository, and its dump directory as the night's snapshot names it."""
    shutil.rmtree(hemma.repository)
    shutil.copytree(nightly.repository, hemma.repository)
    hemma.dumps = nightly.dumps
    return hemma


def drill_metrics(hemma: Hemma) -> dict[str, str]:
    return metrics((hemma.metrics / "hemma_drill.prom").read_text())


def no_scratch_databases(hemma: Hemma) -> bool:
    return not {d for d in hemma.pg.databases() if d.startswith("drill_")}


def test_the_drill_restores_every_dump_and_its_probes_pass(hemma: Hemma, nightly: Hemma) -> None:
    from_nightly(hemma, nightly)
    done = hemma.drill(PROBES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restored skriptoteket into drill_skriptoteket" in done.stdout
    assert "restored huleedu_content into drill_huleedu_content" in done.stdout
    assert done.stdout.count("passed") >= 3
    restores = [c for c in hemma.docker.commands("exec") if "pg_restore" in c]
    assert restores and all(c[1] == "-i" for c in restores), "dumps reach pg_restore on stdin"
    assert no_scratch_databases(hemma)
    samples = drill_metrics(hemma)
    assert samples["hemma_drill_last_run_success"] == "1"
    assert samples['hemma_drill_failures{check="database",database="skriptoteket"}'] == "0"
    assert samples['hemma_drill_failures{check="snapshot"}'] == "0"
    assert abs(float(samples["hemma_drill_last_success_timestamp_seconds"]) - time.time()) < 60


def test_a_truncated_dump_fails_the_drill(hemma: Hemma) -> None:
    assert hemma.backup().returncode == 0
    passed = drill_metrics_after(hemma, PROBES)
    # The dump in the repository's source cut in half, then snapshotted like a night.
    dump = hemma.dumps / "huleedu_content.dump"
    with dump.open("r+b") as f:
        f.truncate(dump.stat().st_size // 2)
    taken = hemma.restic(
        "backup", "--tag", "hemma-nightly,complete", "--host", "hemma", str(hemma.dumps)
    )
    assert taken.returncode == 0, taken.stderr

    done = hemma.drill(PROBES)
    assert done.returncode == 1
    assert "pg_restore of huleedu_content failed" in done.stderr
    assert no_scratch_databases(hemma), "the scratch database is dropped after a failure too"
    samples = drill_metrics(hemma)
    assert samples["hemma_drill_last_run_success"] == "0"
    assert samples['hemma_drill_failures{check="database",database="huleedu_content"}'] != "0"
    assert samples['hemma_drill_failures{check="database",database="skriptoteket"}'] == "0"
    assert samples["hemma_drill_last_success_timestamp_seconds"] == passed


def drill_metrics_after(hemma: Hemma, probes: tuple[tuple[str, str], ...]) -> str:
    done = hemma.drill(probes)
    assert done.returncode == 0, done.stderr
    return drill_metrics(hemma)["hemma_drill_last_success_timestamp_seconds"]


def test_a_probe_that_answers_false_or_fails_fails_the_drill(hemma: Hemma, nightly: Hemma) -> None:
    from_nightly(hemma, nightly)
    done = hemma.drill(
        (
            ("skriptoteket", "SELECT count(*) = 0 FROM tools"),
            ("skriptoteket", "SELECT no_such_column FROM tools"),
            ("huleedu_content", "SELECT 1"),
            ("classhub", "SELECT 1"),
        )
    )
    assert done.returncode == 1
    assert "probe 1 on skriptoteket failed" in done.stderr
    assert "probe 2 on skriptoteket failed" in done.stderr
    assert "probe 3 on huleedu_content passed" in done.stdout
    assert "the snapshot has no dump of classhub" in done.stderr
    samples = drill_metrics(hemma)
    assert samples['hemma_drill_failures{check="database",database="skriptoteket"}'] == "2"
    assert samples['hemma_drill_failures{check="database",database="classhub"}'] == "1"
    assert no_scratch_databases(hemma)


def test_sampled_volume_files_match_and_a_changed_old_file_fails(hemma: Hemma) -> None:
    data = hemma.volume("skriptoteket-uploads")
    for i in range(6):
        (data / f"file {i}.txt").write_text(f"content {i}\n")
    old = time.time() - 3600
    for path in data.iterdir():
        os.utime(path, (old, old))
    assert hemma.backup(volumes=(("skriptoteket-uploads", "live", ()),)).returncode == 0

    done = hemma.drill(sample=10)
    assert done.returncode == 0, done.stderr
    assert drill_metrics(hemma)['hemma_drill_sample_files{result="match"}'] == "6"

    # Changed since the snapshot, as its mtime says: not comparable, skipped.
    (data / "file 0.txt").write_text("edited today\n")
    # Changed but with the old mtime: the copy in the snapshot no longer matches.
    (data / "file 1.txt").write_text("bit rot\n")
    os.utime(data / "file 1.txt", (old, old))
    done = hemma.drill(sample=10)
    assert done.returncode == 1
    assert "file 1.txt differs from its copy in snapshot" in done.stderr
    samples = drill_metrics(hemma)
    assert samples['hemma_drill_sample_files{result="mismatch"}'] == "1"
    assert samples['hemma_drill_sample_files{result="skipped"}'] == "1"
    assert samples['hemma_drill_sample_files{result="match"}'] == "4"


def test_no_snapshot_fails_the_drill(hemma: Hemma) -> None:
    done = hemma.drill(PROBES)
    assert done.returncode == 1
    assert "no complete hemma-nightly snapshot" in done.stderr
    samples = drill_metrics(hemma)
    assert samples['hemma_drill_failures{check="snapshot"}'] == "1"
    assert samples["hemma_drill_last_success_timestamp_seconds"] == "0"
