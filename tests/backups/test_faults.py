"""The faults a home server has, played against the backup jobs as Hemma runs them:
real restic, real PostgreSQL (through the stand-in docker of standins.py), the
scripts the stack installs. A backup disk that did not mount, a job killed half-way,
timers that all fire at boot after a power cut, a night in which a dump failed.

Each one must fail loudly and lose nothing: the job exits non-zero, its metrics
make an alert fire (checked with promtool on the file the job wrote), and no
repository is created, no complete snapshot pruned, no container left down longer
than its own copy.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from components.apps.observability.alerts import alert_rules, rules
from tests.backups.conftest import PASSWORD, Hemma, init_repository
from tests.backups.standins import FILES, RESTIC, metrics
from tests.parts.ssh import SshServer
from tests.parts.tools import wait_until

pytestmark = pytest.mark.tools


def backup_metrics(hemma: Hemma) -> dict[str, str]:
    return metrics((hemma.metrics / "hemma_backup.prom").read_text())


def fires(hemma: Hemma, alert: str, where: Path) -> bool:
    """Whether ``alert`` fires 20 minutes into the samples the last backup run wrote,
    as promtool evaluates the stack's own rules over them."""
    samples = backup_metrics(hemma)
    rule = next(r for r in rules([]) if r.alert == alert)
    series = [
        {"series": name, "values": f"{samples[name]}x30"}
        for name in ("hemma_backup_last_run_success", "hemma_backup_repository_ok")
    ]
    firing = {
        "exp_labels": {"severity": rule.severity},
        "exp_annotations": {"summary": rule.summary},
    }
    where.mkdir(exist_ok=True)
    (where / "rules.yml").write_text(alert_rules([]))
    verdicts = []
    for expected in ([firing], []):
        test = {"interval": "1m", "input_series": series, "alert_rule_test": [
            {"eval_time": "20m", "alertname": alert, "exp_alerts": expected}
        ]}  # fmt: skip
        document = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [test]}
        (where / "t.yml").write_text(json.dumps(document))
        done = subprocess.run(
            ["promtool", "test", "rules", "t.yml"], cwd=where, capture_output=True, timeout=60
        )
        verdicts.append(done.returncode == 0)
    assert verdicts.count(True) == 1, "promtool decides one way"
    return verdicts[0]


def snapshots(hemma: Hemma, *tags: str) -> list[dict[str, object]]:
    args = ["snapshots", "--json", "--host", "hemma"]
    if tags:
        args += ["--tag", ",".join(tags)]
    done = hemma.restic(*args)
    assert done.returncode == 0, done.stderr
    listed: list[dict[str, object]] = json.loads(done.stdout or "[]")
    return listed


def plain_restic_init(hemma: Hemma, repository: Path) -> None:
    """A repository made by restic itself, as the old nightly `restic init` made them."""
    assert RESTIC, "restic is required (apt-get install restic)"
    env = {**hemma.env(), "RESTIC_REPOSITORY": str(repository), "RESTIC_PASSWORD": PASSWORD}
    made = subprocess.run([RESTIC, "init"], env=env, capture_output=True, timeout=60)
    assert made.returncode == 0, made.stderr


def locks(repository: Path) -> list[Path]:
    return sorted((repository / "locks").iterdir())


# --- a backup disk that did not mount ----------------------------------------------


def test_an_unmounted_backup_disk_fails_every_job_and_creates_no_repository(
    hemma: Hemma, tmp_path: Path
) -> None:
    """The README's /mnt/backup/hemma with the disk not mounted: the mount point is
    an empty directory on the system disk."""
    mount_point = hemma.root / "mnt" / "backup"
    mount_point.mkdir(parents=True)
    hemma.write_env(str(mount_point / "hemma"))

    night = hemma.backup()
    assert night.returncode == 1
    assert "does not exist: is the backup disk mounted?" in night.stderr
    assert "nothing was backed up" in night.stderr
    assert list(mount_point.iterdir()) == [], "no repository appears on the system disk"
    assert (hemma.dumps / "skriptoteket.dump").stat().st_size > 0, "the dumps are fresh"
    samples = backup_metrics(hemma)
    assert samples["hemma_backup_repository_ok"] == "0"
    assert samples["hemma_backup_last_run_success"] == "0"
    assert fires(hemma, "BackupRepositoryUnavailable", tmp_path / "repo")
    assert fires(hemma, "BackupFailed", tmp_path / "failed")

    assert hemma.check().returncode == 1
    assert hemma.drill().returncode == 1
    assert list(mount_point.iterdir()) == []
    check = metrics((hemma.metrics / "hemma_backup_check.prom").read_text())
    assert check["hemma_backup_check_last_run_success"] == "0"
    drill = metrics((hemma.metrics / "hemma_drill.prom").read_text())
    assert drill["hemma_drill_last_run_success"] == "0"

    # The repository as the mount point itself: there, but empty.
    hemma.write_env(str(mount_point))
    empty = hemma.backup()
    assert empty.returncode == 1
    assert "holds no restic repository: is the backup disk mounted?" in empty.stderr
    assert list(mount_point.iterdir()) == []


def test_a_repository_made_on_the_system_disk_by_a_night_is_refused(hemma: Hemma) -> None:
    """What the old nightly `restic init` left behind on an unmounted disk's mount
    point: a repository with snapshots, on the system disk, that no one chose."""
    shadow = hemma.root / "mnt" / "backup" / "hemma"
    plain_restic_init(hemma, shadow)
    hemma.write_env(str(shadow))
    for job in (hemma.backup, hemma.check, hemma.drill):
        done = job()
        assert done.returncode == 1
        assert "is on the system disk" in done.stderr, done.stderr
    assert not (shadow / "snapshots").exists() or not list((shadow / "snapshots").iterdir())


def test_init_refuses_the_system_disk_and_creates_on_a_mounted_one(hemma: Hemma) -> None:
    """The one step that creates a repository, on a filesystem really mounted over
    the mount point (a tmpfs in a mount namespace of its own): the backup runs there,
    and once the disk is gone again the night fails instead of starting over."""
    mount_point = hemma.root / "mnt" / "backup"
    mount_point.mkdir(parents=True)
    repository = mount_point / "hemma"
    hemma.write_env(str(repository))

    refused = init_repository(hemma.root, str(repository))
    assert refused.returncode == 2
    assert "would be on the system disk" in refused.stderr
    assert list(mount_point.iterdir()) == []

    init = [
        "bash", str(FILES / "hemma-repository.sh"), "init", "--env", str(hemma.env_file),
        "--cache", str(hemma.cache), "--lock", str(hemma.lock),
    ]  # fmt: skip
    backup = hemma.backup_argv()
    inside = (
        f"mount -t tmpfs backup-disk {shlex.quote(str(mount_point))} && "
        f"{shlex.join(init)} && {shlex.join(backup)}; echo night=$?; "
        f"ls -A {shlex.quote(str(repository))}"
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c", inside],
        capture_output=True,
        text=True,
        env=hemma.env(),
        timeout=180,
    )
    assert "hemma-repository: created the repository" in done.stdout, done.stdout + done.stderr
    assert "night=0" in done.stdout, done.stdout + done.stderr
    assert "hemma-on-system-disk" not in done.stdout, "no marker on a real disk"
    assert list(mount_point.iterdir()) == [], "the disk is gone with its namespace"

    gone = hemma.backup()
    assert gone.returncode == 1
    assert "is the backup disk mounted?" in gone.stderr
    assert list(mount_point.iterdir()) == []

    # On purpose, on the system disk: marked, and then taken by every job.
    chosen = subprocess.run(
        [*init, "--system-disk"], capture_output=True, text=True, env=hemma.env(), timeout=120
    )
    assert chosen.returncode == 0, chosen.stderr
    assert (repository / "hemma-on-system-disk").is_file()
    assert hemma.backup().returncode == 0
    again = subprocess.run(
        [*init, "--system-disk"], capture_output=True, text=True, env=hemma.env(), timeout=120
    )
    assert again.returncode == 0
    assert "the repository exists already" in again.stdout


def test_an_sftp_repository_whose_path_is_gone_fails_until_init_creates_it(
    hemma: Hemma, ssh_server: SshServer
) -> None:
    """restic over a real sshd: the remote directory is missing, the night fails
    and creates nothing there; the one-time init then creates it, and nights run."""
    remote = Path(f"/tmp/hemma-sftp-{os.getpid()}-{time.monotonic_ns()}")
    remote.mkdir(mode=0o755)
    account = pwd.getpwnam(ssh_server.user)
    os.chown(remote, account.pw_uid, account.pw_gid)
    try:
        repository = f"sftp:{ssh_server.user}@{ssh_server.host}:{remote}/backups/hemma"
        hemma.write_env(repository)
        hemma.path_prefix = str(ssh_server.root / "bin")  # ssh -F with the test key

        night = hemma.backup()
        assert night.returncode == 1
        assert "does not exist" in night.stderr, night.stderr
        assert list(remote.iterdir()) == [], "nothing was created on the sftp server"
        assert backup_metrics(hemma)["hemma_backup_repository_ok"] == "0"

        init = subprocess.run(
            [
                "bash", str(FILES / "hemma-repository.sh"), "init", "--env", str(hemma.env_file),
                "--cache", str(hemma.cache), "--lock", str(hemma.lock),
            ],
            capture_output=True, text=True, env=hemma.env(), timeout=120,
        )  # fmt: skip
        assert init.returncode == 0, init.stdout + init.stderr
        assert (remote / "backups" / "hemma" / "config").is_file()
        assert hemma.backup().returncode == 0
    finally:
        subprocess.run(["rm", "-rf", str(remote)], check=False)


# --- a job killed half-way, and timers that fire together --------------------------


def test_a_killed_run_leaves_a_lock_that_the_next_night_clears(hemma: Hemma) -> None:
    """restic never removes a stale lock by itself: a run killed half-way (power
    cut, OOM) leaves one, and every prune and check after it would fail."""
    assert RESTIC
    env = {
        **hemma.env(),
        "RESTIC_REPOSITORY": str(hemma.repository),
        "RESTIC_PASSWORD": PASSWORD,
        "RESTIC_CACHE_DIR": str(hemma.cache),
    }
    killed = subprocess.Popen(
        [RESTIC, "backup", "--stdin", "--stdin-filename", "half.dump", "--host", "hemma"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        # restic waits 200 ms after writing its lock, then looks again for others.
        wait_until("restic's lock", lambda: bool(locks(hemma.repository)), 30)
        time.sleep(1)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    stale = locks(hemma.repository)
    assert len(stale) == 1, "the killed run's lock stays"
    blocked = hemma.restic("forget", "--prune", "--keep-last", "1")
    assert blocked.returncode != 0 and "locked" in blocked.stderr, "the fault, as it bites"

    night = hemma.backup()
    assert night.returncode == 0, night.stdout + night.stderr
    assert backup_metrics(hemma)["hemma_backup_last_run_success"] == "1"
    check = hemma.check()
    assert check.returncode == 0, check.stdout + check.stderr
    assert locks(hemma.repository) == []


def test_a_backup_and_a_check_started_together_take_turns(hemma: Hemma) -> None:
    """Persistent=true starts missed timers together at boot: the check waits for the
    backup instead of failing on its restic lock at once."""
    big = hemma.volume("huleedu_kafka_data")
    (big / "segment.log").write_bytes(os.urandom(96 * 1024 * 1024))
    night = subprocess.Popen(
        ["bash", *hemma.backup_argv(volumes=(("huleedu_kafka_data", "live", ()),))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=hemma.env(),
    )
    try:
        wait_until("the backup's restic lock", lambda: bool(locks(hemma.repository)), 60)
        check = hemma.check()
    finally:
        out, err = night.communicate(timeout=300)
    assert night.returncode == 0, out + err
    assert check.returncode == 0, check.stdout + check.stderr
    assert "waiting for the job that holds" in check.stdout
    samples = metrics((hemma.metrics / "hemma_backup_check.prom").read_text())
    assert samples["hemma_backup_check_last_run_success"] == "1"
    assert "no errors were found" in check.stdout


def test_the_check_reads_the_repository_itself_within_the_one_cache_directory(
    hemma: Hemma,
) -> None:
    """restic check verifies the repository's own index and trees through a temporary
    cache (restic doc/045_working_with_repos.rst), made inside the jobs' one cache
    directory and removed after it: no second cache anywhere."""
    assert hemma.backup().returncode == 0
    cached = {p.name for p in hemma.cache.iterdir()}
    assert len(cached) >= 1, "the backup filled the jobs' one cache"
    check = hemma.check()
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"using temporary cache in {hemma.cache}/restic-check-cache-" in check.stdout
    assert {p.name for p in hemma.cache.iterdir()} == cached, "and it is gone again"
    assert not (hemma.root / "home" / ".cache").exists(), "no cache in $HOME"


# --- a night in which a dump failed ------------------------------------------------


def test_a_failed_night_never_prunes_and_the_drill_takes_the_last_complete_one(
    hemma: Hemma,
) -> None:
    """keepDaily keeps one snapshot a day: had the failed nights pruned, each would
    have pushed out the one before it, the last complete one first."""
    assert hemma.backup().returncode == 0
    (complete,) = snapshots(hemma, "hemma-nightly", "complete")
    hemma.pg.sql(
        "INSERT INTO tools VALUES (100000, 'written after the good night')", "skriptoteket"
    )
    try:
        for _ in range(2):
            failed = hemma.backup(databases=("no_such_db", "skriptoteket", "huleedu_content"))
            assert failed.returncode == 1
            assert "not pruning" in failed.stdout
        incomplete = snapshots(hemma, "hemma-nightly", "incomplete")
        assert len(incomplete) == 2, "no prune ran after a failed night"
        assert [s["id"] for s in snapshots(hemma, "hemma-nightly", "complete")] == [
            complete["id"]
        ], "the last complete snapshot stays"

        drill = hemma.drill((("skriptoteket", "SELECT count(*) = 500 FROM tools"),))
        assert drill.returncode == 0, drill.stdout + drill.stderr
        assert f"drilling snapshot {str(complete['id'])[:8]}" in drill.stdout

        # A good night again: now the keep policy runs, on each kind apart.
        assert hemma.backup().returncode == 0
        left = snapshots(hemma, "hemma-nightly")
        kinds = sorted(sorted(str(t) for t in s["tags"]) for s in left)  # type: ignore[attr-defined]
        assert kinds == [["complete", "hemma-nightly"], ["hemma-nightly", "incomplete"]]
        assert complete["id"] not in [s["id"] for s in left]
    finally:
        hemma.pg.sql("DELETE FROM tools WHERE id = 100000", "skriptoteket")


# --- containers stopped for their volume's copy ------------------------------------

VOLUME_OF = {"grafana": "grafana-data", "huleedu_kafka": "huleedu_kafka_data"}


def test_a_stopped_container_is_down_only_for_its_own_copy(hemma: Hemma) -> None:
    """Kafka, Grafana and MinIO are stopped while their volumes are copied. The
    dumps and the live volumes (here a large one, slow to read) are taken while they
    run; each is stopped for its own volume's snapshot only."""
    big = hemma.volume("skriptoteket-artifacts")
    (big / "artifacts.bin").write_bytes(os.urandom(96 * 1024 * 1024))
    for name in ("grafana-data", "huleedu_kafka_data"):
        (hemma.volume(name) / "data").write_text(f"{name}\n")
    for container in VOLUME_OF:
        hemma.docker.add(container)

    started = time.time()
    done = hemma.backup(
        volumes=(
            ("grafana-data", "stop", ("grafana",)),
            ("huleedu_kafka_data", "stop", ("huleedu_kafka",)),
            ("skriptoteket-artifacts", "live", ()),
        )
    )
    ended = time.time()
    assert done.returncode == 0, done.stdout + done.stderr

    calls = hemma.docker.calls()
    down: dict[str, tuple[float, float]] = {}
    for container in VOLUME_OF:
        stop = next(
            c["time"] for c in calls if c["argv"][:1] == ["stop"] and container in c["argv"]
        )
        start = next(
            c["time"] for c in calls if c["argv"][:1] == ["start"] and container in c["argv"]
        )
        down[container] = (stop, start)
    taken = {
        next((t for t in s.get("tags", []) if str(t).startswith("hemma-volume=")), "main"): s  # type: ignore[attr-defined]
        for s in snapshots(hemma, "hemma-nightly", "complete")
    }
    assert set(taken) == {"main", "hemma-volume=grafana-data", "hemma-volume=huleedu_kafka_data"}
    main_paths = taken["main"]["paths"]
    assert str(big) in main_paths and str(hemma.dumps) in main_paths  # type: ignore[operator]

    def at(snapshot: dict[str, object]) -> float:
        stamp = subprocess.run(
            ["date", "-d", str(snapshot["time"]), "+%s.%N"], capture_output=True, text=True
        )
        return float(stamp.stdout)

    main_started = at(taken["main"])
    first, second = sorted(down.values())
    assert first[0] > main_started, "nothing was stopped while the large live volume was read"
    assert first[1] < second[0], "one volume's containers at a time"
    for container, (stop, start) in down.items():
        own = at(taken[f"hemma-volume={VOLUME_OF[container]}"])
        assert stop < own < start, f"{container} was stopped for its own snapshot"
    night = ended - started
    for container, (stop, start) in down.items():
        print(f"{container}: down {start - stop:.2f} s of a {night:.2f} s night")
        assert start - stop < night / 3, f"{container} was down for most of the night"


def test_a_repository_put_in_the_place_of_the_one_init_made_is_refused(hemma: Hemma) -> None:
    """Another repository at the same path (a different disk mounted there, an old
    one that reappears): only the one whose id init recorded is taken."""
    other = hemma.root / "other"
    plain_restic_init(hemma, other)
    (other / "hemma-on-system-disk").write_text("as init --system-disk leaves it\n")
    hemma.write_env(str(other))
    for job in (hemma.backup, hemma.check, hemma.drill):
        done = job()
        assert done.returncode == 1
        assert "is not the one hemma-repository.sh init made or adopted" in done.stderr
    assert not (other / "snapshots").exists() or not list((other / "snapshots").iterdir())
    assert backup_metrics(hemma)["hemma_backup_repository_ok"] == "0"


def test_a_container_a_killed_run_left_stopped_is_started_by_the_next(hemma: Hemma) -> None:
    """Killed while Grafana was stopped for its copy: unless-stopped keeps it down
    through a daemon restart, until the next night starts it first."""
    (hemma.volume("grafana-data") / "grafana.db").write_text("db\n")
    hemma.docker.add("grafana", running=False)  # as the killed run left it
    (hemma.dumps.parent / "stopped-for-backup").write_text("grafana\n")
    done = hemma.backup(volumes=(("grafana-data", "stop", ("grafana",)),))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "an earlier run stopped grafana and did not start them again" in done.stderr
    assert hemma.docker.state()["containers"]["grafana"]["running"] is True
    assert hemma.docker.commands("start")[0] == ["start", "grafana"]
    assert not (hemma.dumps.parent / "stopped-for-backup").exists()


def test_a_volume_no_longer_taken_on_its_own_keeps_only_its_last_snapshot(hemma: Hemma) -> None:
    """Its group gets no new snapshot, and the keep policy counts days that have one:
    kept whole for ever, were it not cut to its last."""
    old = hemma.volume("old-volume")
    (old / "data").write_text("old\n")
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        taken = hemma.restic(
            "backup", "--host", "hemma", "--time", f"{day} 03:15:00",
            "--tag", "hemma-nightly,complete,hemma-volume=old-volume", str(old),
        )  # fmt: skip
        assert taken.returncode == 0, taken.stderr
    grafana = hemma.volume("grafana-data")
    (grafana / "grafana.db").write_text("db\n")
    hemma.docker.add("grafana")

    done = hemma.backup(volumes=(("grafana-data", "stop", ("grafana",)),))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hemma-volume=old-volume is no longer taken on its own" in done.stdout
    left = snapshots(hemma, "hemma-nightly", "hemma-volume=old-volume")
    assert [str(s["time"])[:10] for s in left] == ["2026-11-03"], "its last one stays"
    assert len(snapshots(hemma, "hemma-nightly", "hemma-volume=grafana-data")) == 1


def test_a_snapshot_restic_could_not_finish_is_never_left_complete(
    hemma: Hemma, tmp_path: Path
) -> None:
    """restic writes the snapshot of a run that could not read everything (exit 3):
    it is tagged incomplete, and forgotten when the retag does not take, since restic
    tag warns and still exits 0 (restic v0.12.1 to v0.17.3 cmd_tag.go). restic is real
    here but for those two answers."""
    assert RESTIC
    wrapper = tmp_path / "fake-restic" / "restic"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = backup ]; then ' + RESTIC + ' "$@"; exit 3; fi\n'
        'if [ "$1" = tag ]; then\n'
        "  echo 'unable to modify the tags for snapshot ID \"x\", ignoring: injected' >&2\n"
        "  echo 'no snapshots were modified'; exit 0\n"
        f'fi\nexec {RESTIC} "$@"\n'
    )
    wrapper.chmod(0o755)
    hemma.path_prefix = str(wrapper.parent)
    done = hemma.backup()
    assert done.returncode == 1
    assert "restic backup of the dumps and live volumes failed (exit 3)" in done.stderr
    assert "could not be tagged incomplete: it is forgotten" in done.stderr
    hemma.path_prefix = ""
    assert snapshots(hemma, "hemma-nightly") == [], "no snapshot of that run is left complete"
    assert "not pruning" in done.stdout

    # With a retag that takes, the snapshot stays, incomplete.
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = backup ]; then ' + RESTIC + ' "$@"; exit 3; fi\n'
        f'exec {RESTIC} "$@"\n'
    )
    hemma.path_prefix = str(wrapper.parent)
    done = hemma.backup()
    assert "is tagged incomplete" in done.stderr
    hemma.path_prefix = ""
    assert snapshots(hemma, "hemma-nightly", "complete") == []
    assert len(snapshots(hemma, "hemma-nightly", "incomplete")) == 1
