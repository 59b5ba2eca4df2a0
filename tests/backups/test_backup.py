"""hemma-backup.sh against a real restic repository and a real PostgreSQL server."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from components.apps.observability.alerts import alert_rules
from tests.backups.conftest import DATABASES, PASSWORD, Hemma
from tests.backups.standins import metrics
from tests.postgres_server import pg_tool

pytestmark = pytest.mark.tools


def restore_all(hemma: Hemma, target: Path) -> None:
    done = hemma.restic("restore", "latest", "--tag", "hemma-nightly", "--target", str(target))
    assert done.returncode == 0, done.stderr


def read_metrics(hemma: Hemma) -> dict[str, str]:
    return metrics((hemma.metrics / "hemma_backup.prom").read_text())


def test_a_backup_restores_to_the_same_dumps_and_files(hemma: Hemma, tmp_path: Path) -> None:
    uploads = hemma.volume("skriptoteket-uploads")
    (uploads / "a b.txt").write_text("hello\n")
    (uploads / "nested").mkdir()
    (uploads / "nested" / "blob.bin").write_bytes(os.urandom(200_000))

    done = hemma.backup(volumes=(("skriptoteket-uploads", "live", ()),))
    assert done.returncode == 0, done.stdout + done.stderr

    for database in DATABASES:
        assert (hemma.dumps / f"{database}.dump").stat().st_size > 0
    assert not list(hemma.dumps.glob("*.partial"))
    target = tmp_path / "restored"
    restore_all(hemma, target)
    same = filecmp.dircmp(target / str(hemma.dumps).lstrip("/"), hemma.dumps)
    assert sorted(same.same_files) == sorted(f"{d}.dump" for d in DATABASES)
    assert not same.diff_files
    restored_uploads = target / str(uploads).lstrip("/")
    assert (restored_uploads / "a b.txt").read_text() == "hello\n"
    assert filecmp.cmp(restored_uploads / "nested/blob.bin", uploads / "nested/blob.bin", False)

    # The restored dump is a working database.
    dump = target / str(hemma.dumps).lstrip("/") / "skriptoteket.dump"
    hemma.pg.sql("CREATE DATABASE check_restore")
    try:
        loaded = subprocess.run(
            [pg_tool("pg_restore"), "--exit-on-error", "-d", "check_restore", str(dump)],
            capture_output=True,
            text=True,
            env=hemma.pg.env(),
        )
        assert loaded.returncode == 0, loaded.stderr
        query = "SELECT count(*), max(title) FROM tools"
        assert hemma.pg.sql(query, db="check_restore") == hemma.pg.sql(query, db="skriptoteket")
    finally:
        hemma.pg.sql("DROP DATABASE check_restore")

    samples = read_metrics(hemma)
    assert samples["hemma_backup_last_run_success"] == "1"
    assert samples["hemma_backup_dump_failures"] == "0"
    assert abs(float(samples["hemma_backup_last_success_timestamp_seconds"]) - time.time()) < 60
    assert int(samples["hemma_backup_size_bytes"]) > 200_000
    assert (hemma.metrics / "hemma_backup.prom").stat().st_mode & 0o777 == 0o644
    assert not list(hemma.metrics.glob(".*")), "the temp file was moved into place"


def test_secrets_stay_out_of_argv_output_and_the_docker_environment(hemma: Hemma) -> None:
    done = hemma.backup()
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    for fragment in ("pa ss", 'wo"rd'):
        assert fragment not in done.stdout + done.stderr
    calls = hemma.docker.calls()
    assert calls
    assert not any(PASSWORD in " ".join(c["argv"]) for c in calls)
    assert not any(c["secrets_in_env"] for c in calls), "only restic gets the env file"


def test_stop_volumes_are_copied_while_their_containers_are_stopped(hemma: Hemma) -> None:
    data = hemma.volume("classhub-media")
    log = data / "app.log"
    log.write_text("running\n")
    hemma.docker.add(
        "classhub_web",
        on_stop=[[str(log), "clean shutdown"]],
        on_start=[[str(log), "started again"]],
    )
    hemma.docker.add("classhub_worker", running=False)
    hemma.volume("grafana-data")

    done = hemma.backup(
        volumes=(
            ("classhub-media", "stop", ("classhub_web", "classhub_worker")),
            ("grafana-data", "live", ()),
        )
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert hemma.docker.commands("stop") == [["stop", "-t", "5", "classhub_web"]]
    assert hemma.docker.commands("start") == [["start", "classhub_web"]]
    assert hemma.docker.state()["containers"]["classhub_web"]["running"] is True
    assert hemma.docker.state()["containers"]["classhub_worker"]["running"] is False, (
        "a container that was not running is left stopped"
    )
    snapshot = hemma.restic("dump", "latest", str(log))
    assert snapshot.stdout == "running\nclean shutdown\n", "the snapshot is of the stopped volume"
    assert log.read_text().endswith("started again\n")


def test_containers_start_again_when_the_backup_fails(hemma: Hemma) -> None:
    data = hemma.volume("classhub-media")
    (data / "f").write_text("x")
    hemma.docker.add("classhub_web")
    hemma.write_env("rest:http://127.0.0.1:1/")
    done = hemma.backup(volumes=(("classhub-media", "stop", ("classhub_web",)),))
    assert done.returncode != 0
    assert hemma.docker.state()["containers"]["classhub_web"]["running"] is True


def test_a_failed_dump_fails_the_run_but_the_rest_is_backed_up(hemma: Hemma) -> None:
    done = hemma.backup(databases=("no_such_db", *DATABASES))
    assert done.returncode == 1
    assert "pg_dump of no_such_db failed" in done.stderr
    assert not (hemma.dumps / "no_such_db.dump").exists()
    assert not list(hemma.dumps.glob("*.partial"))
    listing = hemma.restic("ls", "latest").stdout
    for database in DATABASES:
        assert f"{database}.dump" in listing
    samples = read_metrics(hemma)
    assert samples["hemma_backup_dump_failures"] == "1"
    assert samples["hemma_backup_last_run_success"] == "0"
    assert samples["hemma_backup_last_success_timestamp_seconds"] == "0"


def test_a_repository_that_cannot_be_opened_is_never_initialised_again(hemma: Hemma) -> None:
    config = (hemma.repository / "config").read_bytes()
    assert hemma.backup().returncode == 0
    second = hemma.backup()
    assert second.returncode == 0, second.stderr
    # Same night twice: forget keeps one snapshot, which builds on the first.
    snapshots = hemma.restic("snapshots", "--json").stdout
    assert '"parent"' in snapshots

    hemma.write_env(str(hemma.repository), password="not the password")
    wrong = hemma.backup()
    assert wrong.returncode == 1
    assert "cannot be opened" in wrong.stderr
    assert (hemma.repository / "config").read_bytes() == config
    assert read_metrics(hemma)["hemma_backup_repository_ok"] == "0"


def test_a_world_readable_env_file_is_refused(hemma: Hemma) -> None:
    hemma.env_file.chmod(0o644)
    done = hemma.backup()
    assert done.returncode == 2
    assert "chmod 600" in done.stderr
    assert hemma.docker.calls() == []


def promtool_backup_stale(hemma: Hemma, where: Path, hours_later: float, fires: bool) -> None:
    """promtool checks BackupStale `hours_later` after the last run, from the metrics file.

    promtool's clock starts at 0, so every timestamp is shifted back by the file's
    last success; the rule compares only differences (time() minus the value).
    """
    samples = read_metrics(hemma)
    last_success = float(samples["hemma_backup_last_success_timestamp_seconds"])
    last_run = float(samples["hemma_backup_last_run_timestamp_seconds"])
    eval_minutes = int((last_run - last_success) / 60 + hours_later * 60)
    where.mkdir()
    (where / "rules.yml").write_text(alert_rules([]))
    series = [
        ("hemma_backup_last_success_timestamp_seconds", last_success - last_success),
        ("hemma_backup_last_run_success", float(samples["hemma_backup_last_run_success"])),
    ]
    inputs = "".join(
        f"      - series: {name}\n        values: '{value:.0f}x{eval_minutes + 5}'\n"
        for name, value in series
    )
    expected = (
        "\n          - exp_labels: {severity: critical}\n"
        "            exp_annotations:\n"
        "              summary: No Hemma backup has succeeded in the last 26 hours\n"
        if fires
        else " []\n"
    )
    (where / "stale.yml").write_text(
        "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n"
        f"  - interval: 1m\n    input_series:\n{inputs}"
        f"    alert_rule_test:\n      - eval_time: {eval_minutes}m\n"
        "        alertname: BackupStale\n"
        f"        exp_alerts:{expected}"
    )
    done = subprocess.run(
        ["promtool", "test", "rules", "stale.yml"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_failed_run_keeps_the_old_success_time_and_backup_stale_fires(
    hemma: Hemma, tmp_path: Path
) -> None:
    assert hemma.backup().returncode == 0
    before = read_metrics(hemma)["hemma_backup_last_success_timestamp_seconds"]
    time.sleep(1.1)
    hemma.write_env("rest:http://127.0.0.1:1/")  # the repository cannot be reached
    failed = hemma.backup()
    assert failed.returncode == 1
    samples = read_metrics(hemma)
    assert samples["hemma_backup_last_success_timestamp_seconds"] == before
    assert samples["hemma_backup_last_run_success"] == "0"
    assert float(samples["hemma_backup_last_run_timestamp_seconds"]) > float(before)

    # An hour after the failure the last success is still recent; a day later it is not.
    promtool_backup_stale(hemma, tmp_path / "quiet", hours_later=1, fires=False)
    promtool_backup_stale(hemma, tmp_path / "late", hours_later=27, fires=True)


def test_node_exporter_can_read_the_metrics_whichever_job_makes_the_directory(
    hemma: Hemma,
) -> None:
    """The scripts run with umask 077; node-exporter reads the textfiles as nobody. A
    metrics directory the backup makes first must still be 0755, parents included."""
    hemma.metrics = hemma.root / "snap" / "common" / "hemma" / "metrics"
    assert not hemma.metrics.parent.parent.exists()
    assert hemma.backup().returncode == 0
    for directory in (hemma.metrics, hemma.metrics.parent, hemma.metrics.parent.parent):
        assert directory.stat().st_mode & 0o777 == 0o755, directory
    runuser = shutil.which("runuser")
    assert runuser, "runuser is required (apt-get install util-linux)"
    # nobody must reach it from the root of the test's tree, as from / on Hemma.
    for part in [hemma.root, *hemma.root.parents]:
        if part.stat().st_mode & 0o005 != 0o005:
            part.chmod(part.stat().st_mode | 0o005)
    read = subprocess.run(
        [runuser, "-u", "nobody", "--", "cat", str(hemma.metrics / "hemma_backup.prom")],
        capture_output=True,
        text=True,
    )
    assert read.returncode == 0, read.stderr
    assert "hemma_backup_last_run_success 1" in read.stdout
