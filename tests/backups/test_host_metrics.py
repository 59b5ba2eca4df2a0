"""hemma-host-metrics.sh: the file it writes parses, escapes its labels, and the alert
rules fire on what it reports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.apps.observability.alerts import alert_rules
from components.backups.restic import host_metrics_argv
from tests.backups.conftest import Hemma
from tests.backups.standins import FILES, metrics

pytestmark = pytest.mark.tools

# This machine does not run systemd (PID 1 is not systemd), so systemctl cannot
# answer; the stand-in prints what `systemctl --failed --plain --no-legend` prints.
SYSTEMCTL = """#!/bin/sh
printf '%s\\n' "$*" >> "$(dirname "$0")/systemctl.log"
[ "$1 $2 $3 $4" = "--failed --plain --no-legend --full" ] || exit 1
printf '%s\\n' 'hemma-backup.service loaded failed failed Hemma nightly backup'
printf '%s\\n' 'we"ird\\x2dunit.service loaded failed failed An odd name'
"""


def run_host_metrics(hemma: Hemma, docker: str, systemctl: str = SYSTEMCTL) -> str:
    bin_dir = hemma.root / "sbin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "systemctl").write_text(systemctl)
    (bin_dir / "systemctl").chmod(0o755)
    argv = host_metrics_argv(
        docker, str(hemma.metrics), script=str(FILES / "hemma-host-metrics.sh")
    )
    done = subprocess.run(
        ["bash", *argv],
        capture_output=True,
        text=True,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    path = hemma.metrics / "hemma_host.prom"
    assert path.stat().st_mode & 0o777 == 0o644
    return path.read_text()


def add_containers(hemma: Hemma) -> None:
    hemma.docker.add("grafana", health="healthy")
    hemma.docker.add("loki", health="unhealthy", restarts=4)
    hemma.docker.add("jaeger")
    hemma.docker.add("huleedu_db_migrate", running=False, policy="no")
    hemma.docker.add("classhub_web", running=False)
    hemma.docker.add("skriptoteket-web", health="starting")
    hemma.docker.add("skriptoteket-runner-4f2a", policy="no")


def test_the_host_file_reports_containers_units_and_filesystems(hemma: Hemma) -> None:
    add_containers(hemma)
    text = run_host_metrics(hemma, str(hemma.docker.path))
    samples = metrics(text)
    assert samples['hemma_container_healthy{name="grafana"}'] == "1"
    assert samples['hemma_container_healthy{name="jaeger"}'] == "1", "no health check: running"
    assert samples['hemma_container_healthy{name="loki"}'] == "0"
    assert samples['hemma_container_healthy{name="skriptoteket-web"}'] == "0"
    assert samples['hemma_container_healthy{name="classhub_web"}'] == "0"
    assert samples['hemma_container_running{name="classhub_web"}'] == "0"
    assert samples['hemma_container_restarts{name="loki"}'] == "4"
    assert not any("huleedu_db_migrate" in key for key in samples), "a finished one-off"
    assert not any("runner" in key for key in samples), "a one-off that still runs"
    assert samples['hemma_systemd_unit_failed{unit="hemma-backup.service"}'] == "1"
    assert samples['hemma_systemd_unit_failed{unit="we\\"ird\\\\x2dunit.service"}'] == "1"
    assert samples["hemma_systemd_units_failed"] == "2"
    assert int(samples['hemma_filesystem_size_bytes{mountpoint="/"}']) > 0
    assert int(samples['hemma_filesystem_avail_bytes{mountpoint="/"}']) >= 0
    assert samples['hemma_host_metrics_errors{source="docker"}'] == "0"
    assert not any(key.startswith("hemma_filesystem") and "tmpfs" in key for key in samples)

    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (apt-get install prometheus)"
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_no_failed_units_still_reports_a_zero_total(hemma: Hemma) -> None:
    text = run_host_metrics(hemma, str(hemma.docker.path), systemctl="#!/bin/sh\nexit 0\n")
    samples = metrics(text)
    assert samples["hemma_systemd_units_failed"] == "0"
    assert not any(key.startswith("hemma_systemd_unit_failed") for key in samples)


def test_a_source_that_fails_is_reported_and_the_rest_still_written(hemma: Hemma) -> None:
    text = run_host_metrics(hemma, "/bin/false", systemctl="#!/bin/sh\nexit 1\n")
    samples = metrics(text)
    assert samples['hemma_host_metrics_errors{source="docker"}'] == "1"
    assert samples['hemma_host_metrics_errors{source="systemd"}'] == "1"
    assert 'hemma_filesystem_size_bytes{mountpoint="/"}' in samples


def test_the_alert_rules_fire_on_what_the_file_reports(hemma: Hemma, tmp_path: Path) -> None:
    add_containers(hemma)
    samples = metrics(run_host_metrics(hemma, str(hemma.docker.path)))
    series = [
        {"series": key, "values": f"{value}x40"}
        for key, value in samples.items()
        if key.startswith(("hemma_container_healthy", "hemma_systemd_unit_failed"))
    ]
    unhealthy = ["classhub_web", "loki", "skriptoteket-web"]
    failed = ["hemma-backup.service", 'we"ird\\x2dunit.service']

    def alerts(label: str, values: list[str], summary: str) -> list[dict[str, object]]:
        return [
            {
                "exp_labels": {label: v, "severity": "warning"},
                "exp_annotations": {"summary": summary.format(v)},
            }
            for v in values
        ]

    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "ContainerUnhealthy",
                        "exp_alerts": alerts("name", unhealthy, "Container {} is not healthy"),
                    },
                    {
                        "eval_time": "20m",
                        "alertname": "SystemdUnitFailed",
                        "exp_alerts": alerts("unit", failed, "systemd unit {} has failed"),
                    },
                ],
            }
        ],
    }
    (tmp_path / "rules.yml").write_text(alert_rules([]))
    (tmp_path / "host.yml").write_text(yaml.safe_dump(tests))
    done = subprocess.run(
        ["promtool", "test", "rules", "host.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
