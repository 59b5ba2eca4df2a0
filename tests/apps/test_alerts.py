"""The alert rules, their promtool tests, blackbox and Alertmanager configs, checked by
the tools that read them: promtool, amtool and blackbox_exporter."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.apps.observability import alert_config, alerts, grafana
from tests.harness import ROOT

pytestmark = pytest.mark.tools

URLS = [
    "https://skriptoteket.hule.education/",
    "https://huleedu.hule.education/",
    "https://grafana.hemma.hule.education/api/health",
]
ALERTS = {
    "BackupStale",
    "BackupFailed",
    "BackupRepositoryUnavailable",
    "RestoreDrillFailed",
    "RestoreDrillStale",
    "BackupCheckStale",
    "BackupCheckFailed",
    "DiskAlmostFull",
    "CertificateExpiresSoon",
    "PublicEndpointDown",
    "ContainerUnhealthy",
    "ContainerRestarting",
    "SystemdUnitFailed",
    "HostMetricsStale",
    "DriftDetected",
    "DriftCheckFailed",
    "DriftCheckStale",
}


def tool(name: str, package: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is required (apt-get install {package})"
    return found


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)


def write(where: Path, rules: str, tests: str) -> None:
    (where / "hemma-alerts.yml").write_text(rules)
    (where / "hemma-alerts.test.yml").write_text(tests)


def rule_list(text: str) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("urls", [URLS, []], ids=["with-urls", "no-urls"])
def test_every_rule_passes_promtool_check_and_its_tests(tmp_path: Path, urls: list[str]) -> None:
    promtool = tool("promtool", "prometheus")
    write(tmp_path, alerts.alert_rules(urls), alerts.rules_tests("hemma-alerts.yml", urls))
    checked = run([promtool, "check", "rules", "hemma-alerts.yml"], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout
    tested = run([promtool, "test", "rules", "hemma-alerts.test.yml"], tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_rule_has_for_severity_summary_and_a_firing_and_a_quiet_case() -> None:
    rules = rule_list(alerts.alert_rules(URLS))
    assert {rule["alert"] for rule in rules} == ALERTS
    for rule in rules:
        assert rule["for"], rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
    cases: dict[str, list[bool]] = {}
    for test in yaml.safe_load(alerts.rules_tests("hemma-alerts.yml", URLS))["tests"]:
        for check in test["alert_rule_test"]:
            cases.setdefault(check["alertname"], []).append(bool(check["exp_alerts"]))
    assert set(cases) == ALERTS
    for alert, fired in cases.items():
        assert True in fired and False in fired, alert


@pytest.mark.parametrize(
    ("alert", "old", "new"),
    [
        ("DiskAlmostFull", "> 0.85", "> 0.95"),
        ("BackupStale", "> 26 * 3600", "> 40 * 3600"),
        ("ContainerRestarting", "> 2", "> 20"),
        ("PublicEndpointDown", "== 0", "== 2"),
        ("CertificateExpiresSoon", "< 14 * 86400", "< 7 * 86400"),
        ("DriftDetected", "== 1", "== 2"),
        ("DriftCheckStale", "> 36 * 3600", "> 72 * 3600"),
        ("DriftCheckStale", '{source="operator"}[1h]', '{source="host"}[1h]'),
        ("DriftCheckFailed", "== 0", "== 2"),
    ],
)
def test_the_promtool_tests_catch_a_changed_rule(
    tmp_path: Path, alert: str, old: str, new: str
) -> None:
    rules = yaml.safe_load(alerts.alert_rules(URLS))
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule["alert"] == alert:
                assert old in rule["expr"]
                rule["expr"] = rule["expr"].replace(old, new)
    # Only the test cases of that alert: the others take most of promtool's time and
    # cannot fail on it.
    tests = yaml.safe_load(alerts.rules_tests("hemma-alerts.yml", URLS))
    tests["tests"] = [
        test
        for test in tests["tests"]
        if any(check["alertname"] == alert for check in test["alert_rule_test"])
    ]
    assert tests["tests"]
    write(tmp_path, yaml.safe_dump(rules), yaml.safe_dump(tests))
    passed = run(
        [tool("promtool", "prometheus"), "test", "rules", "hemma-alerts.test.yml"], tmp_path
    )
    assert passed.returncode != 0
    assert alert in passed.stdout + passed.stderr


def test_backup_stale_follows_the_age_it_is_given(tmp_path: Path) -> None:
    rules = alerts.alert_rules([], backup_max_age_hours=50)
    assert "> 50 * 3600" in rules
    write(tmp_path, rules, alerts.rules_tests("hemma-alerts.yml", backup_max_age_hours=50))
    tested = run(
        [tool("promtool", "prometheus"), "test", "rules", "hemma-alerts.test.yml"], tmp_path
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_drift_check_stale_follows_the_hours_it_is_given(tmp_path: Path) -> None:
    rules = alerts.alert_rules([], drift_stale_hours=72)
    assert "> 72 * 3600" in rules
    write(tmp_path, rules, alerts.rules_tests("hemma-alerts.yml", drift_stale_hours=72))
    tested = run(
        [tool("promtool", "prometheus"), "test", "rules", "hemma-alerts.test.yml"], tmp_path
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_url_that_cannot_go_into_promql_is_refused() -> None:
    for bad in ('https://a/"} or vector(1) or {a="', "ftp://x/", "https://a b/"):
        with pytest.raises(ValueError, match="not a public URL"):
            alerts.alert_rules([bad])


def test_prometheus_with_alerting_rules_and_the_blackbox_job_passes_promtool(
    tmp_path: Path,
) -> None:
    config: dict[str, Any] = {
        "global": {"scrape_interval": "30s", "evaluation_interval": "30s"},
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]}
        ],
    }
    rules_path = tmp_path / "hemma-alerts.yml"
    rules_path.write_text(alerts.alert_rules(URLS))
    config.update(alert_config.prometheus_alerting("alertmanager:9093", rules_path=str(rules_path)))
    job = alert_config.blackbox_scrape_job(URLS)
    config["scrape_configs"].append(job)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    checked = run([tool("promtool", "prometheus"), "check", "config", "prometheus.yml"], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]
    assert job["job_name"] == alerts.BLACKBOX_JOB == "blackbox-http"
    assert job["static_configs"][0]["targets"] == URLS
    assert {"target_label": "__address__", "replacement": "blackbox_exporter:9115"} in job[
        "relabel_configs"
    ]


def test_the_blackbox_modules_pass_the_exporters_own_check(tmp_path: Path) -> None:
    exporter = tool("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    config = alert_config.blackbox_config()
    modules = yaml.safe_load(config)["modules"]
    assert modules["http_2xx"]["http"]["fail_if_not_ssl"] is True
    assert modules["tls_connect"]["tcp"]["tls"] is True
    for text, ok in ((config, True), (config.replace("fail_if_not_ssl", "fail_if_no_tls"), False)):
        (tmp_path / "blackbox.yml").write_text(text)
        done = run([exporter, "--config.check", "--config.file=blackbox.yml"], tmp_path)
        assert (done.returncode == 0) is ok, done.stdout + done.stderr


RECEIVERS: list[alert_config.EmailReceiver | alert_config.WebhookReceiver | None] = [
    alert_config.EmailReceiver(
        smarthost="mail.privateemail.com:587",
        sender="noreply@hule.education",
        to="ops@hule.education",
        username="noreply@hule.education",
        password_file="/etc/alertmanager/smtp-password",
    ),
    alert_config.WebhookReceiver("https://ntfy.example.test/hemma-alerts"),
    None,
]


@pytest.mark.parametrize("receiver", RECEIVERS, ids=["email", "webhook", "nowhere (local)"])
def test_the_alertmanager_config_passes_amtool(
    tmp_path: Path, receiver: alert_config.EmailReceiver | alert_config.WebhookReceiver | None
) -> None:
    amtool = tool("amtool", "prometheus-alertmanager")
    text = alert_config.alertmanager_config(receiver)
    (tmp_path / "alertmanager.yml").write_text(text)
    done = run([amtool, "check-config", "alertmanager.yml"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(text)
    assert config["route"]["group_by"] == ["alertname"]
    assert config["route"]["repeat_interval"] == "4h"
    if receiver is None:
        assert config["receivers"] == [{"name": "hemma"}]
    if isinstance(receiver, alert_config.EmailReceiver):
        email = config["receivers"][0]["email_configs"][0]
        assert email["require_tls"] is True
        assert email["auth_password_file"] == "/etc/alertmanager/smtp-password"
        assert "auth_password" not in email, "the secret stays in its file"


def test_amtool_is_strict_about_what_it_reads(tmp_path: Path) -> None:
    text = alert_config.alertmanager_config(RECEIVERS[0]).replace(
        "auth_password_file", "auth_pasword_file"
    )
    (tmp_path / "alertmanager.yml").write_text(text)
    done = run(
        [tool("amtool", "prometheus-alertmanager"), "check-config", "alertmanager.yml"], tmp_path
    )
    assert done.returncode != 0


def test_bad_receivers_are_refused() -> None:
    with pytest.raises(ValueError, match="host:port"):
        alert_config.alertmanager_config(
            alert_config.EmailReceiver("mail.example.com", "a@b", "c@d", "u", "/etc/pw")
        )
    with pytest.raises(ValueError, match="absolute"):
        alert_config.alertmanager_config(
            alert_config.EmailReceiver("mail.example.com:587", "a@b", "c@d", "u", "pw")
        )
    with pytest.raises(ValueError, match="webhook"):
        alert_config.alertmanager_config(alert_config.WebhookReceiver("not a url"))


def test_the_module_imports_only_the_standard_library_and_yaml() -> None:
    """alerts.py and the two modules it builds on, which import no more themselves."""
    own = {"components.apps.observability.rule", "components.apps.observability.drift_alerts"}
    for name in ("alerts", "rule", "drift_alerts"):
        path = ROOT / "components" / "apps" / "observability" / f"{name}.py"
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module not in own:
                imported.add(node.module.split(".")[0])
        assert imported - {"yaml"} <= set(sys.stdlib_module_names), name


def test_grafanas_alert_view_shows_what_fires_and_how_old_the_backups_are(
    tmp_path: Path,
) -> None:
    """The overview dashboard's alert panels, run by promtool over the real rules: a
    backup 28 hours old fires BackupStale, and the firing-alerts table lists it, not
    DiskAlmostFull, which is still pending; the age panel reads each job's own hours."""
    promtool = tool("promtool", "prometheus")
    panels = {p["title"]: p for p in json.loads(grafana.overview_dashboard())["panels"]}
    table = panels["Firing alerts"]["targets"][0]
    assert (table["instant"], table["format"]) == (True, "table")  # what promtool runs
    firing = table["expr"]
    ages = {
        t["legendFormat"]: t["expr"]
        for t in panels["Hours since the last good backup, drill and check"]["targets"]
    }
    assert set(ages) == {"backup", "drill", "backup_check"}
    # promtool's clock starts at 0; evaluated at 30 h, each job last succeeded at
    # 2 h (backup), 0 h (drill) and 10 h (check); the disk is 90 % full since 29 h 55
    # min, less than DiskAlmostFull's 15 minutes.
    series = {
        "hemma_backup_last_success_timestamp_seconds": f"{2 * 3600}+0x1900",
        "hemma_drill_last_success_timestamp_seconds": "0+0x1900",
        "hemma_backup_check_last_success_timestamp_seconds": f"{10 * 3600}+0x1900",
        'hemma_filesystem_size_bytes{mountpoint="/"}': "100+0x1900",
        'hemma_filesystem_avail_bytes{mountpoint="/"}': "50+0x1794 10+0x100",
    }
    both = 'ALERTS{alertname=~"BackupStale|DiskAlmostFull"}'
    tests = {
        "rule_files": ["hemma-alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": name, "values": values} for name, values in series.items()
                ],
                "promql_expr_test": [
                    {  # the two are there, one firing and one pending
                        "expr": f"count by (alertname, alertstate) ({both})",
                        "eval_time": "30h",
                        "exp_samples": [
                            {
                                "labels": '{alertname="BackupStale",alertstate="firing"}',
                                "value": 1,
                            },
                            {
                                "labels": '{alertname="DiskAlmostFull",alertstate="pending"}',
                                "value": 1,
                            },
                        ],
                    },
                    {
                        "expr": f"{firing} and on (alertname) {both}",
                        "eval_time": "30h",
                        "exp_samples": [
                            {
                                "labels": 'ALERTS{alertname="BackupStale",'
                                'alertstate="firing",severity="critical"}',
                                "value": 1,
                            }
                        ],
                    },
                    *(
                        {"expr": ages[job], "eval_time": "30h", "exp_samples": [{"value": hours}]}
                        for job, hours in (("backup", 28), ("drill", 30), ("backup_check", 20))
                    ),
                ],
            }
        ],
    }
    write(tmp_path, alerts.alert_rules(URLS), yaml.safe_dump(tests))
    tested = run([promtool, "test", "rules", "hemma-alerts.test.yml"], tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_grafanas_drift_panels_name_what_drifted_and_how_old_each_check_is(
    tmp_path: Path,
) -> None:
    """The overview's drift table lists each drifted thing with its labels, and the age
    panel reads each check's own hours (promtool evaluates the panels' queries)."""
    panels = {p["title"]: p for p in json.loads(grafana.overview_dashboard())["panels"]}
    table = panels["Drift: what differs from the program"]["targets"][0]
    assert (table["instant"], table["format"]) == (True, "table")
    ages = {
        t["legendFormat"]: t["expr"]
        for t in panels["Hours since the last good drift check"]["targets"]
    }
    assert set(ages) == {"host", "operator"}
    unit = "/etc/systemd/system/hemma-backup.service"
    stamp = "hemma_drift_last_success_timestamp_seconds"
    series = {
        f'hemma_drift_item{{source="host",kind="file",name="{unit}"}}': "1+0x120",
        'hemma_drift_items{source="host",kind="file"}': "1+0x120",
        f'{stamp}{{source="host"}}': f"{1 * 3600}+0x120",
        f'{stamp}{{source="operator"}}': "0+0x120",
    }
    item = {"source": "host", "kind": "file", "name": unit}
    tests = {
        "rule_files": ["hemma-alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": k, "values": v} for k, v in series.items()],
                "promql_expr_test": [
                    {
                        "expr": table["expr"],
                        "eval_time": "2h",
                        "exp_samples": [{"labels": "hemma_drift_item" + _labels(item), "value": 1}],
                    },
                    {"expr": ages["host"], "eval_time": "2h", "exp_samples": [{"value": 1}]},
                    {"expr": ages["operator"], "eval_time": "2h", "exp_samples": [{"value": 2}]},
                ],
            }
        ],
    }
    (tmp_path / "hemma-alerts.yml").write_text(alerts.alert_rules([]))
    (tmp_path / "panels.test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    tested = run([tool("promtool", "prometheus"), "test", "rules", "panels.test.yml"], tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
