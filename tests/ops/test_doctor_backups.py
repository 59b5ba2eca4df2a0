"""The doctor's backup checks, against metrics files a real shell writes where the
stand-in ssh runs its commands (tests/ops/helpers.py WRITE_METRICS), as the host jobs
in components/backups/files leave them on Hemma.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from ops import doctor
from tests.ops.conftest import FakeSsh
from tests.ops.helpers import (
    BACKUPS,
    DRIFT_FILES,
    DRIFTS,
    JOBS,
    commands_sent,
    remote_outputs,
    statuses,
    table,
    write,
    write_clean_drift,
    write_metrics,
)


def run(
    capsys: pytest.CaptureFixture[str], fake: FakeSsh, path: Path, *args: str
) -> tuple[int, str]:
    base = ["--outputs", str(path), "--ssh-command", str(fake.path), "--retries", "0"]
    code = doctor.main([*base, *args])
    out, _ = capsys.readouterr()
    return code, out


@pytest.fixture
def metrics(fake_ssh: FakeSsh, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the jobs write, on the stand-in Hemma, whose ssh now runs what it is sent."""
    monkeypatch.setenv("FAKE_SSH_MODE", "exec")
    return fake_ssh.cwd / "metrics"


def outputs_for(tmp_path: Path, metrics: Path, enabled: bool = True) -> Path:
    data = remote_outputs(str(metrics), {}, enabled=enabled)
    data["sshTunnels"] = {}
    return write(tmp_path, data)


FRESH = {"hemma_backup": (2, 1), "hemma_drill": (7 * 24, 1), "hemma_backup_check": (1, 1)}
MISSING = "cannot read {}.prom: No such file or directory"
# The drift checks' rows, their files written clean an hour ago (write_clean_drift).
CLEAN_DRIFT = {name: ("ok", "no drift; last good check 1.0 h ago") for name in DRIFTS}

# job -> (hours since the last success or None for never, last run 1 ok / 0 failed),
# or None for no file at all; then backup:NAME -> (STATUS, DETAIL).
State = tuple[int | None, int] | None
SCENARIOS: dict[str, tuple[Mapping[str, State], dict[str, tuple[str, str]]]] = {
    "fresh success": (
        FRESH,
        {
            "last": ("ok", "last success 2.0 h ago"),
            "drill": ("ok", "last success 7.0 days ago"),
            "check": ("ok", "last success 1.0 h ago"),
        },
    ),
    "stale": (
        {"hemma_backup": (30, 1), "hemma_drill": (9 * 24, 1), "hemma_backup_check": (200, 1)},
        {
            "last": ("FAIL", "last success 30.0 h ago, over 26 h"),
            "drill": ("FAIL", "last success 9.0 days ago, over 8 days"),
            "check": ("FAIL", "last success 8.3 days ago, over 8 days"),
        },
    ),
    "last run failed": (
        {"hemma_backup": (2, 0), "hemma_drill": (None, 0), "hemma_backup_check": (50, 0)},
        {
            "last": ("FAIL", "last run failed; last success 2.0 h ago"),
            "drill": ("FAIL", "last drill failed; never succeeded"),
            "check": ("FAIL", "last check failed; last success 2.1 days ago"),
        },
    ),
    "missing file": (
        {"hemma_backup": None, "hemma_drill": (1, 1), "hemma_backup_check": None},
        {
            "last": ("FAIL", MISSING.format("hemma_backup")),
            "drill": ("ok", "last success 1.0 h ago"),
            "check": ("FAIL", MISSING.format("hemma_backup_check")),
        },
    ),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_backups_are_judged_by_the_metrics_the_jobs_leave(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    metrics: Path,
    scenario: str,
) -> None:
    jobs, expected = SCENARIOS[scenario]
    metrics.mkdir()
    write_clean_drift(metrics)
    for job, state in jobs.items():
        if state is not None:
            write_metrics(metrics, job, *state)
    code, out = run(capsys, fake_ssh, outputs_for(tmp_path, metrics))
    rows = table(out)
    assert {name: (row["STATUS"], row["DETAIL"]) for name, row in rows.items()} == {
        **{f"backup:{short}": want for short, want in expected.items()},
        **CLEAN_DRIFT,
    }
    assert list(rows) == BACKUPS + DRIFTS
    # The table cuts a long cell (this tmp path) to 90 characters.
    assert f"{metrics}/hemma_drill.prom".startswith(rows["backup:drill"]["TARGET"].rstrip("…"))
    failed = any(status == "FAIL" for status, _ in expected.values())
    assert code == (1 if failed else 0)


def test_the_backup_age_limit_is_an_option_and_a_missing_metric_fails(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    metrics: Path,
) -> None:
    for job, state in FRESH.items():
        write_metrics(metrics, job, *state)
    write_clean_drift(metrics)
    subprocess.run(["sh", "-c", "echo '# empty' > hemma_drill.prom"], cwd=metrics, check=True)
    path = outputs_for(tmp_path, metrics)
    code, out = run(capsys, fake_ssh, path, "--backup-max-age", "1.5")
    rows = table(out)
    assert rows["backup:last"]["DETAIL"] == "last success 2.0 h ago, over 1.5 h"
    assert rows["backup:drill"]["DETAIL"] == "no hemma_drill_last_run_success in the file"
    assert statuses(out) == {
        "backup:last": "FAIL",
        "backup:drill": "FAIL",
        "backup:check": "ok",
        "drift:host": "ok",
        "drift:operator": "ok",
    }
    assert code == 1


def test_backups_that_are_off_are_not_looked_at(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    metrics: Path,
) -> None:
    for job in JOBS:
        write_metrics(metrics, job, 1000, 0)  # would fail, were they read
    write_clean_drift(metrics)  # the drift checks read theirs all the same
    code, out = run(capsys, fake_ssh, outputs_for(tmp_path, metrics, enabled=False))
    rows = table(out)
    assert {name: (row["STATUS"], row["DETAIL"]) for name, row in rows.items()} == {
        **{name: ("off", "backups.enabled is false") for name in BACKUPS},
        **CLEAN_DRIFT,
    }
    assert f"{metrics}/hemma_backup.prom".startswith(rows["backup:last"]["TARGET"].rstrip("…"))
    sent = sorted(c["remote"] for c in commands_sent(fake_ssh.log))
    reads = [f"date +%s; base64 {shlex.quote(f'{metrics}/{file}')}" for file in DRIFT_FILES]
    assert (code, sent) == (0, reads), "no backup file is read"
    assert "2 ok, 0 failed, 0 skipped, 3 off" in out
