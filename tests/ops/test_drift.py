"""scripts/drift: the refresh preview's three endings (clean, drifted, failed), what it
prints, the metrics it pushes, and the user timer it installs.

Pulumi is a stand-in here (there is no CLI on this machine): it prints the JSON
digest a ``refresh --preview-only --json`` prints (pkg/backend/display/json.go,
``ShowPreviewDigest``) and exits as the pinned CLI does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ops import drift, drift_timer
from ops.outputs import BadInput
from tests.harness import ROOT

PROJECT = "urn:pulumi:hemma::hemma::"
WEB = f"{PROJECT}hemma:apps:App$docker:index/container:Container::skriptoteket-web"
NETWORK = f"{PROJECT}docker:index/network:Network::hule-network"
STACK = f"{PROJECT}pulumi:pulumi:Stack::hemma-hemma"


def step(op: str, urn: str, **more: Any) -> dict[str, Any]:
    return {"op": op, "urn": urn, **more}


def env_change(old: str, new: str) -> dict[str, Any]:
    return step(
        "update",
        WEB,
        diffReasons=["envs"],
        detailedDiff={"envs[1]": {"kind": "update", "inputDiff": False}},
        oldState={"urn": WEB, "outputs": {"envs": ["A=1", old]}},
        newState={"urn": WEB, "outputs": {"envs": ["A=1", new]}},
    )


CLEAN = {"steps": [step("refresh", STACK), step("refresh", WEB)], "changeSummary": {"same": 2}}
DRIFTED = {
    "steps": [
        step("refresh", STACK),
        env_change("LOG_LEVEL=info", "LOG_LEVEL=debug"),
        step("delete", NETWORK, oldState={"urn": NETWORK, "outputs": {"name": "hule-network"}}),
    ],
    "changeSummary": {"same": 1, "update": 1, "delete": 1},
}
FAILED = {
    "steps": [],
    "diagnostics": [
        {
            "message": "error: cannot connect to the Docker daemon at ssh://hemma",
            "severity": "error",
        }
    ],
}
NO_CHANGES_MESSAGE = "error: no changes were expected for refresh but changes were proposed\n"


def test_a_clean_refresh_is_clean() -> None:
    result = drift.judge(0, json.dumps(CLEAN), "")
    assert result.status == drift.CLEAN == 0
    assert drift.report(result) == "drift: none; Hemma matches the state\n"


def test_exit_7_is_drift_and_names_each_resource_and_how_it_changed() -> None:
    result = drift.judge(7, json.dumps(DRIFTED), "")
    assert result.status == drift.DRIFT == 2
    text = drift.report(result)
    assert "drift: 2 resource(s) differ from the state" in text
    assert "update skriptoteket-web (docker:index/container:Container): envs[1]" in text
    assert "    envs[1]: 'LOG_LEVEL=info' -> 'LOG_LEVEL=debug'" in text
    assert "delete hule-network (docker:index/network:Network)" in text
    assert "    gone from Hemma: scripts/pulumi up --refresh creates it again" in text
    assert "scripts/pulumi up --refresh puts them back as the program says" in text
    listed = text.split("\n\n")[1].splitlines()
    assert not any(line.startswith("refresh ") for line in listed), "unchanged ones are not"


def test_a_secret_drifts_as_secret() -> None:
    """Pulumi's digest replaces a secret with "[secret]" before it prints, and a list
    holding one whole (annotateSecrets)."""
    step = env_change("[secret]", "[secret]")
    step["oldState"]["outputs"]["envs"] = "[secret]"
    step["newState"]["outputs"]["envs"] = "[secret]"
    result = drift.judge(7, json.dumps({"steps": [step]}), "")
    assert result.drifted[0].details == ["envs[1]: '[secret]' -> '[secret]'"]


def test_an_older_cli_that_says_so_instead_of_exiting_7_is_drift_too() -> None:
    assert drift.judge(255, json.dumps(DRIFTED), NO_CHANGES_MESSAGE).status == drift.DRIFT


def test_drift_without_a_readable_digest_is_still_drift() -> None:
    result = drift.judge(7, "not json", NO_CHANGES_MESSAGE)
    assert result.status == drift.DRIFT
    assert "run scripts/pulumi refresh" in drift.report(result)


def test_any_other_failure_is_an_error_with_pulumis_own_reason() -> None:
    result = drift.judge(255, json.dumps(FAILED), "")
    assert result.status == drift.ERROR == 1
    assert drift.report(result) == (
        "drift: the check could not run: pulumi exited 255: "
        "error: cannot connect to the Docker daemon at ssh://hemma\n"
    )
    assert drift.judge(3, "", "error: passphrase must be set\n").error.endswith(
        "passphrase must be set"
    )
    assert drift.judge(None, "", "").status == drift.ERROR


def test_long_values_are_cut_unless_full() -> None:
    long = "X=" + "y" * 300
    cut = drift.judge(7, json.dumps({"steps": [env_change("X=1", long)]}), "")
    whole = drift.judge(7, json.dumps({"steps": [env_change("X=1", long)]}), "", full=True)
    assert "..." in cut.drifted[0].details[0] and len(cut.drifted[0].details[0]) < 130
    assert long in whole.drifted[0].details[0]


@pytest.mark.parametrize(
    ("path", "expected"),
    [("envs[1]", "b"), ("ports[0].external", 443), ('labels["a.b"]', "c"), ("nope[3]", None)],
)
def test_property_paths_of_a_detailed_diff_are_read(path: str, expected: Any) -> None:
    outputs = {"envs": ["a", "b"], "ports": [{"external": 443}], "labels": {"a.b": "c"}}
    assert drift.value_at(outputs, path) == expected


def samples(text: str) -> dict[str, str]:
    return {
        line.rpartition(" ")[0]: line.rpartition(" ")[2]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_metrics_say_when_what_and_how_much() -> None:
    result = drift.judge(7, json.dumps(DRIFTED), "")
    found = samples(drift.metrics(result, now=1_700_000_000))
    assert found == {
        'hemma_drift_check_success{source="operator"}': "1",
        'hemma_drift_check_last_run_timestamp_seconds{source="operator"}': "1700000000",
        'hemma_drift_last_success_timestamp_seconds{source="operator"}': "1700000000",
        'hemma_drift_items{source="operator",kind="resource"}': "2",
        f'hemma_drift_item{{source="operator",kind="resource",name="{WEB}"}}': "1",
        f'hemma_drift_item{{source="operator",kind="resource",name="{NETWORK}"}}': "1",
    }
    clean = samples(drift.metrics(drift.judge(0, json.dumps(CLEAN), ""), now=5))
    assert clean['hemma_drift_items{source="operator",kind="resource"}'] == "0"
    assert not any(k.startswith("hemma_drift_item{") for k in clean)


def test_a_failed_check_counts_nothing_and_does_not_claim_a_success() -> None:
    found = samples(drift.metrics(drift.judge(1, "", "boom"), now=100, last_success=40))
    assert found == {
        'hemma_drift_check_success{source="operator"}': "0",
        'hemma_drift_check_last_run_timestamp_seconds{source="operator"}': "100",
        'hemma_drift_last_success_timestamp_seconds{source="operator"}': "40",
    }


def test_a_hostile_urn_stays_one_label_value() -> None:
    hostile = f'{PROJECT}docker:index/container:Container::x"}} 1\nevil{{a="\\'
    result = drift.Result(drift.DRIFT, [drift.Drifted("update", "x", "t", hostile)])
    lines = [line for line in drift.metrics(result, now=1).splitlines() if "evil" in line]
    assert lines == [
        'hemma_drift_item{source="operator",kind="resource",name="urn:pulumi:hemma::hemma::'
        'docker:index/container:Container::x\\"} 1\\nevil{a=\\"\\\\"} 1'
    ]


def test_at_most_twenty_resources_are_named_and_the_rest_counted() -> None:
    many = [drift.Drifted("update", f"c{i}", "t", f"{WEB}{i}") for i in range(25)]
    found = samples(drift.metrics(drift.Result(drift.DRIFT, many), now=1))
    named = [k for k in found if k.startswith("hemma_drift_item{")]
    assert len(named) == 21
    assert 'hemma_drift_item{source="operator",kind="resource",name="... and 5 more"}' in found
    assert found['hemma_drift_items{source="operator",kind="resource"}'] == "25"


# --- the user timer ------------------------------------------------------------------


def passphrase(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "passphrase"
    path.write_text("correct horse\n")
    path.chmod(mode)
    return path


def test_the_units_hold_the_passphrases_path_never_the_passphrase(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text("#!/bin/sh\n")
    (bin_dir / "pulumi").chmod(0o755)
    secret = passphrase(tmp_path)
    environ = {"PATH": str(bin_dir), "HEMMA_SSH": "hemma", "PULUMI_CONFIG_PASSPHRASE": "hunter2"}
    files = drift_timer.units("daily", secret, environ)
    service, timer = files["hemma-drift.service"], files["hemma-drift.timer"]
    assert f'Environment="PULUMI_CONFIG_PASSPHRASE_FILE={secret}"' in service
    assert "hunter2" not in service and "correct horse" not in service
    assert 'Environment="HEMMA_SSH=hemma"' in service
    assert f'Environment="PATH={bin_dir}:/usr/local/bin:/usr/bin:/bin"' in service
    assert f'ExecStart="{ROOT}/scripts/drift" check' in service
    assert "SuccessExitStatus=2" in service
    assert "OnCalendar=daily" in timer and "Persistent=true" in timer


def test_a_passphrase_others_can_read_or_only_in_the_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "hunter2")
    with pytest.raises(BadInput, match="the unit never holds the passphrase"):
        drift_timer.passphrase_file(None)
    loose = passphrase(tmp_path, 0o644)
    with pytest.raises(BadInput, match=f"readable by others: chmod 600 {loose}"):
        drift_timer.passphrase_file(str(loose))
    assert drift_timer.passphrase_file(str(passphrase(tmp_path))) == tmp_path / "passphrase"


def test_a_value_a_unit_would_misread_is_refused() -> None:
    for bad in ("a%hb", 'a"b', "a\nb", "$HOME/x", " lead"):
        with pytest.raises(BadInput, match="a unit cannot carry"):
            drift_timer._value("HEMMA_SSH", bad)


# --- scripts/drift end to end, with the stand-in pulumi --------------------------------

STANDIN = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "{log}"
case "$1" in
  config) [ "$2" = get ] && [ "$3" = local ] && {{ echo true; exit 0; }}; exit 1;;
  stack) exit 0;;
  refresh) cat "{digest}"; [ -s "{stderr}" ] && cat "{stderr}" >&2; exit {code};;
esac
exit 0
"""


def run_drift(
    tmp_path: Path, digest: dict[str, Any], code: int, stderr: str = "", *args: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = bin_dir / "pulumi.log"
    (tmp_path / "digest.json").write_text(json.dumps(digest))
    (tmp_path / "stderr").write_text(stderr)
    (bin_dir / "pulumi").write_text(
        STANDIN.format(
            log=log, digest=tmp_path / "digest.json", stderr=tmp_path / "stderr", code=code
        )
    )
    (bin_dir / "pulumi").chmod(0o755)
    restic = bin_dir / "restic"
    restic.write_text(f"#!/bin/sh\necho restic >> {bin_dir}/restic.log\n")
    restic.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase(tmp_path)),
        "HEMMA_STACK": "local",
        "HEMMA_STATE_REPOSITORY": str(tmp_path / "state-repo"),
    }
    done = subprocess.run(
        [str(ROOT / "scripts" / "drift"), "--no-push", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert not (bin_dir / "restic.log").exists(), "a refresh preview writes no state to back up"
    return done, log.read_text().splitlines()


@pytest.mark.tools
@pytest.mark.parametrize(
    ("digest", "code", "stderr", "status", "said"),
    [
        (CLEAN, 0, "", 0, "drift: none"),
        (DRIFTED, 7, NO_CHANGES_MESSAGE, 2, "drift: 2 resource(s) differ"),
        (FAILED, 255, "", 1, "cannot connect to the Docker daemon"),
    ],
    ids=["clean", "drifted", "failed"],
)
def test_scripts_drift_runs_a_read_only_refresh_and_exits_like_terraform(
    tmp_path: Path, digest: dict[str, Any], code: int, stderr: str, status: int, said: str
) -> None:
    done, calls = run_drift(tmp_path, digest, code, stderr)
    assert done.returncode == status, done.stdout + done.stderr
    assert said in done.stdout
    refresh = [c for c in calls if c.startswith("refresh")]
    assert refresh == [
        "refresh --preview-only --expect-no-changes --json --non-interactive "
        "--parallel 4 --stack local"
    ]


@pytest.mark.tools
def test_the_user_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is required (apt-get install systemd)"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text("#!/bin/sh\n")
    (bin_dir / "pulumi").chmod(0o755)
    files = drift_timer.units("*-*-* 03:30", passphrase(tmp_path), {"PATH": str(bin_dir)})
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    done = subprocess.run(
        [analyze, "verify", *(str(tmp_path / name) for name in files)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


@pytest.mark.tools
def test_install_writes_both_units_enables_the_timer_and_uninstall_removes_them(
    tmp_path: Path,
) -> None:
    """systemctl is a stand-in (no user manager runs here); it records its calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("pulumi", ""), ("systemctl", f'echo "$*" >> {tmp_path}/systemctl.log')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    script = str(ROOT / "scripts" / "drift")
    secret = passphrase(tmp_path)
    done = subprocess.run(
        [script, "install", "--on-calendar", "Mon..Fri 04:00", "--passphrase-file", str(secret)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    units = tmp_path / "config" / "systemd" / "user"
    assert "OnCalendar=Mon..Fri 04:00" in (units / "hemma-drift.timer").read_text()
    assert (units / "hemma-drift.service").exists()
    bad = subprocess.run(
        [script, "install", "--on-calendar", "every full moon", "--passphrase-file", str(secret)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "systemd does not read it as a calendar" in bad.stderr
    done = subprocess.run([script, "uninstall"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert not list(units.iterdir())
    assert (tmp_path / "systemctl.log").read_text().splitlines() == [
        "--user daemon-reload",
        "--user enable --now hemma-drift.timer",
        "--user disable --now hemma-drift.timer",
        "--user daemon-reload",
    ]


def test_a_resource_that_fails_to_refresh_is_named_not_the_closing_preview_failed() -> None:
    """The engine reports the resource's error under its URN, then "preview failed"
    with none (pkg/resource/deploy/deployment_executor.go ``reportExecResult``)."""
    failed = {
        "steps": [step("refresh", STACK), step("refresh", WEB)],
        "diagnostics": [
            {
                "urn": WEB,
                "message": "error: refreshing skriptoteket-web: permission denied",
                "severity": "error",
            },
            {"message": "error: preview failed", "severity": "error"},
        ],
    }
    result = drift.judge(1, json.dumps(failed), "")
    assert result.status == drift.ERROR
    assert result.error == (
        "pulumi exited 1: skriptoteket-web: error: refreshing skriptoteket-web: permission denied"
    )


def test_one_urn_twice_is_one_series() -> None:
    """A resource pending deletion shares its URN with its replacement, and the digest
    swaps the drifted step into every step with that URN (json.go)."""
    twice = {"steps": [env_change("A=1", "A=2"), env_change("A=1", "A=2")]}
    text = drift.metrics(drift.judge(7, json.dumps(twice), ""), now=1)
    samples_ = [line.rpartition(" ")[0] for line in text.splitlines() if line[:1] != "#"]
    assert len(samples_) == len(set(samples_))
    assert samples(text)['hemma_drift_items{source="operator",kind="resource"}'] == "1"


def test_a_passphrase_path_the_unit_would_misread_is_refused(tmp_path: Path) -> None:
    """systemd reads %h in Environment= as the home directory, and a quote ends the value."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text("#!/bin/sh\n")
    (bin_dir / "pulumi").chmod(0o755)
    for name in ("100%host", 'say"so'):
        odd = tmp_path / name
        odd.mkdir()
        with pytest.raises(BadInput, match="a unit cannot carry"):
            drift_timer.units("daily", passphrase(odd), {"PATH": str(bin_dir)})


def test_the_push_leaves_no_temp_file_when_a_step_fails(tmp_path: Path) -> None:
    """Run here with sh, and an awk that fails half-way (a full disk, say)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "awk").write_text("#!/bin/sh\necho half\nexit 2\n")
    (bin_dir / "awk").chmod(0o755)
    directory = tmp_path / "metrics"
    directory.mkdir()
    kept = drift.metrics(drift.Result(drift.CLEAN, []), now=40)
    (directory / drift.METRICS_FILE).write_text(kept)
    failed = drift.metrics(drift.Result(drift.ERROR, [], "boom"), now=100)
    done = subprocess.run(
        ["sh", "-c", drift.PUSH_SCRIPT, "push", str(directory)],
        input=failed, capture_output=True, text=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert done.returncode != 0
    assert [p.name for p in directory.iterdir()] == [drift.METRICS_FILE]
    assert (directory / drift.METRICS_FILE).read_text() == kept
