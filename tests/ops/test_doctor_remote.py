"""Internal, tunnel and backup checks through a stand-in ssh.

The stand-in records the exact argv the doctor gives ssh. In "exec" mode it runs
the remote command with ``sh -c`` the way sshd hands it to the login shell, so
the quoting is judged by a real shell. A test against a real sshd lives with the
host tests (another engineer's); these cover what the doctor itself builds.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ops import backups, doctor
from tests.ops.conftest import FakeSsh
from tests.ops.helpers import (
    DRIFT_FILES,
    JOBS,
    METRICS,
    ROOT,
    commands_sent,
    read_log,
    remote_outputs,
    statuses,
    table,
    write,
    write_metrics,
)

OPTIONS = ["-n", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ControlMaster=no"]
ALIAS = "hemma"
PROBE = ["python", "-c", "import urllib.request as u; u.urlopen('http://web:8000/healthz')"]


def run(
    capsys: pytest.CaptureFixture[str], fake: FakeSsh, path: Path, *args: str
) -> tuple[int, str]:
    base = ["--outputs", str(path), "--ssh-command", str(fake.path), "--retries", "0"]
    code = doctor.main([*base, *args])
    out, _ = capsys.readouterr()
    return code, out


def calls_by_kind(fake: FakeSsh) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {"docker": [], "bash": [], "date": []}
    for call in commands_sent(fake.log):
        found[shlex.split(call["remote"])[0]].append(call)
    return found


def through_master(argv: list[str]) -> list[str]:
    """A command's argv with its private ControlPath (a temp dir) taken out, and the
    ProxyCommand=false that keeps it from logging in afresh checked and taken out."""
    at = argv.index("-o", len(OPTIONS))
    assert argv[at + 1].startswith("ControlPath=") and argv[at + 1].endswith("/master")
    assert argv[at + 2 : at + 4] == ["-o", "ProxyCommand=false"]
    return argv[:at] + argv[at + 4 :]


def test_ssh_gets_the_exact_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh
) -> None:
    data = remote_outputs(METRICS, {"web": PROBE})
    del data["sshTunnels"]["huleedu_essay_embed_offload"]
    run(capsys, fake_ssh, write(tmp_path, data))
    calls = calls_by_kind(fake_ssh)
    assert [through_master(c["argv"]) for c in calls["docker"]] == [
        [
            *OPTIONS,
            ALIAS,
            'docker exec "$(docker ps -q --filter label=education.hule.hemma.service=web '
            "--filter health=healthy | head -n 1 | grep . || docker ps -q --filter "
            "label=education.hule.hemma.service=web --filter status=running | head -n 1 "
            '| grep . || echo web)" python -c '
            "'import urllib.request as u; "
            "u.urlopen('\"'\"'http://web:8000/healthz'\"'\"')'",
        ]
    ]
    found = (
        "$(docker ps -q --filter label=education.hule.hemma.service=web --filter "
        "health=healthy | head -n 1 | grep . || docker ps -q --filter "
        "label=education.hule.hemma.service=web --filter status=running | head -n 1 "
        "| grep . || echo web)"
    )
    assert shlex.split(calls["docker"][0]["remote"]) == ["docker", "exec", found, *PROBE]
    assert [through_master(c["argv"]) for c in calls["bash"]] == [
        [*OPTIONS, ALIAS, "bash -c 'exec 3<>/dev/tcp/127.0.0.1/8085'"]
    ]
    # The drift files come back in base64: a carriage return in a label value survives.
    reads = [f"date +%s; cat {METRICS}/{job}.prom" for job in JOBS]
    reads += [f"date +%s; base64 {METRICS}/{file}" for file in DRIFT_FILES]
    assert sorted(through_master(c["argv"]) for c in calls["date"]) == [
        [*OPTIONS, ALIAS, read] for read in sorted(reads)
    ]


def test_one_login_carries_every_check_through_the_alias(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh
) -> None:
    """The `hemma` alias (its key, its host), not the exported user@host; one master
    connection of the run's own, logged in first; every check through it; then closed."""
    data = remote_outputs(METRICS, {"web": ["true"]})
    run(capsys, fake_ssh, write(tmp_path, data))
    calls = read_log(fake_ssh.log)
    logins = [c for c in calls if c["login"]]
    assert len(logins) == 1 and calls[0] is not None and calls[0]["login"], "the login first"
    login = logins[0]["argv"]
    control = next(w for w in login if w.startswith("ControlPath="))
    assert login[:6] == ["-n", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o"]
    assert ["ControlMaster=yes", "-o", control, "-o", "ControlPersist=120"] == login[6:11]
    assert login[-2:] == [ALIAS, "true"]
    sent = commands_sent(fake_ssh.log)
    assert len(sent) == 1 + 2 + 3 + 2  # internal, tunnels, backups, drift
    assert all(control in c["argv"] and "ControlMaster=no" in c["argv"] for c in sent)
    assert all(c["target"] == ALIAS for c in calls)
    checks = [c for c in calls if c["control"] and "check" in c["argv"]]
    assert len(checks) == len(sent), "each command first asks whether the master is there"
    assert calls[-1]["control"] and "exit" in calls[-1]["argv"], "the master is closed last"


@pytest.mark.parametrize(
    ("env", "args", "target", "options"),
    [
        ({"HEMMA_SSH": "hemma-lab"}, [], "hemma-lab", []),
        ({"HEMMA_SSH": "hemma-lab"}, ["--ssh", "admin@other.test"], "admin@other.test", []),
        ({}, ["--ssh-port", "2222"], "hemma", ["-p", "2222"]),
    ],
)
def test_the_alias_comes_from_hemma_ssh_or_ssh_and_the_port_only_when_asked(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    args: list[str],
    target: str,
    options: list[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    data = remote_outputs(METRICS, {"web": ["true"]})
    data["sshPort"] = 2200  # the outputs' port is not the alias's business
    run(capsys, fake_ssh, write(tmp_path, data), *args)
    calls = read_log(fake_ssh.log)
    assert {c["target"] for c in calls} == {target}
    for call in calls:
        before = call["argv"][: call["argv"].index(target)]
        assert before[-len(options) :] == options if options else "-p" not in before


def test_a_refused_login_is_one_line_and_every_check_over_ssh_is_skipped(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_SSH_EXIT", "255")
    data = remote_outputs(METRICS, {"web": ["true"], "db": ["true"]})
    code = doctor.main(
        ["--outputs", str(write(tmp_path, data)), "--ssh-command", str(fake_ssh.path)]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert err.splitlines() == [
        "doctor: cannot log in to hemma over ssh (exit 255); every check over ssh is"
        " skipped, and no other login is tried"
    ]
    assert [c["login"] for c in read_log(fake_ssh.log)] == [True], "one try, default retries"
    rows = table(out)
    assert {rows[name]["STATUS"] for name in rows} == {"skipped"}
    assert rows["internal:web"]["DETAIL"] == "not run: ssh to hemma: exit 255"
    assert "0 ok, 0 failed, 9 skipped, 0 off" in out


def test_ssh_failing_during_the_run_is_not_tried_again(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The login worked, then ssh itself failed (exit 255): no retry, and every check
    after it is skipped instead of logging in again."""
    monkeypatch.setenv("FAKE_SSH_COMMAND_EXIT", "255")
    data = remote_outputs(METRICS, {"web": ["true"], "db": ["true"]})
    code = doctor.main(
        [
            "--outputs",
            str(write(tmp_path, data)),
            "--ssh-command",
            str(fake_ssh.path),
            "--concurrency",
            "1",
            "--retries",
            "2",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 1
    assert len(commands_sent(fake_ssh.log)) == 1, "one command, not retried, none after it"
    statuses_seen = sorted(row["STATUS"] for row in table(out).values())
    assert statuses_seen == ["FAIL", *["skipped"] * 8]


def test_hostile_names_reach_ssh_as_one_word(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh
) -> None:
    data = remote_outputs(METRICS, {"x; rm -rf /": ["true"]}, enabled=False)
    data["sshTunnels"] = {"t": {"localPort": 1, "remote": "127.0.0.1;rm -rf /:8085"}}
    run(capsys, fake_ssh, write(tmp_path, data))
    calls = calls_by_kind(fake_ssh)
    # Nothing here runs: the stand-in only records. A real shell's reading is below.
    assert all(len(c["argv"]) == len(OPTIONS) + 6 for c in commands_sent(fake_ssh.log))
    docker = shlex.split(calls["docker"][0]["remote"])
    assert docker[:2] == ["docker", "exec"] and docker[3:] == ["true"]
    assert docker[2].startswith("$(docker ps -q --filter "), "the lookup, run by the shell below"
    bash = shlex.split(calls["bash"][0]["remote"])
    assert bash[:2] == ["bash", "-c"]
    assert shlex.split(bash[2]) == ["exec", "3<>/dev/tcp/127.0.0.1;rm -rf //8085"]


def test_a_real_shell_runs_no_part_of_a_hostile_name(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_SSH_MODE", "exec")
    name = "web; touch pwned-4 && $(touch pwned-5)"
    data = remote_outputs(str(fake_ssh.cwd / "metrics"), {name: ["sh", "-c", "exit 0"]})
    data["sshTunnels"] = {}
    code, out = run(capsys, fake_ssh, write(tmp_path, data), "--only", "internal")
    assert list(fake_ssh.cwd.iterdir()) == []
    # The lookup by label finds nothing here (a delete-first or hand-made container):
    # the name itself, one word each time.
    label = f"label=education.hule.hemma.service={name}"
    assert read_log(fake_ssh.docker_log) == [
        ["ps", "-q", "--filter", label, "--filter", "health=healthy"],
        ["ps", "-q", "--filter", label, "--filter", "status=running"],
        ["exec", name, "sh", "-c", "exit 0"],
    ]
    assert statuses(out) == {f"internal:{name}": "ok"}
    assert code == 0
    # The outputs may not name such a metrics directory, and it is quoted all the same.
    odd = fake_ssh.cwd / "d $(touch pwned-1); touch pwned-2 `touch pwned-3` 'q\"x"
    written = write_metrics(odd, "hemma_backup", 1, 1)
    command = backups.metrics_command(str(written))
    done = subprocess.run(["sh", "-c", command], cwd=fake_ssh.cwd, capture_output=True, text=True)
    assert sorted(p.name for p in fake_ssh.cwd.iterdir()) == [odd.name]
    assert done.stdout.splitlines()[1:] == written.read_text().splitlines()


def test_internal_and_tunnel_checks_follow_the_remote_exit_status(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_SSH_MODE", "exec")
    monkeypatch.setenv("FAKE_DOCKER_SICK", "sick")
    listener = socket.create_server(("127.0.0.1", 0))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
    data = remote_outputs("/nowhere", {"web": ["true"], "sick": ["true"]}, enabled=False)
    data["sshTunnels"] = {
        "open": {"localPort": 18085, "remote": f"127.0.0.1:{listener.getsockname()[1]}"},
        "closed": {"localPort": 19000, "remote": f"127.0.0.1:{closed_port}"},
    }
    # shared-postgres's forward is checked as the one scripts/tunnel opens from it.
    data["postgresTunnel"] = f"ssh -N -L 15432:127.0.0.1:{closed_port} {data['sshTarget']}"
    code, out = run(capsys, fake_ssh, write(tmp_path, data))
    listener.close()
    assert statuses(out) == {
        "internal:sick": "FAIL",
        "internal:web": "ok",
        "tunnel:closed": "FAIL",
        "tunnel:open": "ok",
        "tunnel:shared-postgres": "FAIL",
        "backup:last": "off",
        "backup:drill": "off",
        "backup:check": "off",
        "drift:host": "FAIL",  # no /nowhere/hemma_drift_host.prom on this Hemma
        "drift:operator": "FAIL",
    }
    rows = table(out)
    assert rows["internal:sick"]["DETAIL"] == "probe failed (exit 1): unhealthy"
    assert rows["tunnel:closed"]["DETAIL"] == "does not accept connections: Connection refused"
    assert rows["tunnel:shared-postgres"]["TARGET"] == f"127.0.0.1:{closed_port}"
    assert code == 1


def test_ssh_never_reads_the_callers_stdin(tmp_path: Path, fake_ssh: FakeSsh) -> None:
    path = write(tmp_path, remote_outputs(METRICS, {"web": ["true"]}))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops.doctor",
            "--outputs",
            str(path),
            "--retries",
            "0",
            "--ssh-command",
            str(fake_ssh.path),
        ],
        input="keystrokes meant for someone else\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    calls = read_log(fake_ssh.log)
    assert len(commands_sent(fake_ssh.log)) == 1 + 2 + 3 + 2, done.stderr
    assert all(c["stdin_is_devnull"] for c in calls)
    assert all(c["argv"][0] == "-n" for c in calls if not c["control"])


def test_a_remote_error_is_shown_without_the_secrets_in_the_outputs(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = remote_outputs(METRICS, {"sick": ["true"]}, enabled=False)
    leaked = [
        data["grafanaAdminPassword"],
        data["appConnectionStrings"]["skriptoteket"]["skriptoteket"],
    ]
    monkeypatch.setenv("FAKE_SSH_MODE", "exec")
    monkeypatch.setenv("FAKE_DOCKER_SICK", "sick")
    monkeypatch.setenv("FAKE_DOCKER_SAYS", f"pw={leaked[0]} dsn={leaked[1]}")
    data["sshTunnels"] = {}
    _, out = run(capsys, fake_ssh, write(tmp_path, data))
    assert (
        table(out)["internal:sick"]["DETAIL"] == "probe failed (exit 1): unhealthy: pw=*** dsn=***"
    )
    assert not any(secret in out for secret in leaked)


def test_ssh_that_hangs_or_cannot_connect_fails_in_bounded_time(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write(tmp_path, remote_outputs(METRICS, {"web": ["true"]}))
    monkeypatch.setenv("FAKE_SSH_MODE", "sleep")
    started = time.monotonic()
    code, out = run(capsys, fake_ssh, path, "--only", "internal", "--timeout", "1")
    assert time.monotonic() - started < 5
    assert (code, table(out)["internal:web"]["DETAIL"]) == (1, "timed out after 1 s")

    monkeypatch.setenv("FAKE_SSH_MODE", "record")
    monkeypatch.setenv("FAKE_SSH_COMMAND_EXIT", "255")
    code, out = run(capsys, fake_ssh, path, "--only", "internal")
    assert (code, table(out)["internal:web"]["DETAIL"]) == (1, "ssh failed: exit 255")
