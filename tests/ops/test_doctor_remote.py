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
    JOBS,
    METRICS,
    ROOT,
    TARGET,
    read_log,
    remote_outputs,
    sample,
    statuses,
    table,
    write,
    write_metrics,
)

OPTIONS = ["-n", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
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
    for call in read_log(fake.log):
        found[shlex.split(call["remote"])[0]].append(call)
    return found


def test_ssh_gets_the_exact_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh
) -> None:
    data = remote_outputs(METRICS, {"web": PROBE})
    del data["sshTunnels"]["huleedu_essay_embed_offload"]
    run(capsys, fake_ssh, write(tmp_path, data))
    calls = calls_by_kind(fake_ssh)
    assert [c["argv"] for c in calls["docker"]] == [
        [
            *OPTIONS,
            TARGET,
            "docker exec web python -c 'import urllib.request as u; "
            "u.urlopen('\"'\"'http://web:8000/healthz'\"'\"')'",
        ]
    ]
    assert shlex.split(calls["docker"][0]["remote"]) == ["docker", "exec", "web", *PROBE]
    assert [c["argv"] for c in calls["bash"]] == [
        [*OPTIONS, TARGET, "bash -c 'exec 3<>/dev/tcp/127.0.0.1/8085'"]
    ]
    assert sorted(c["argv"] for c in calls["date"]) == [
        [*OPTIONS, TARGET, f"date +%s; cat {METRICS}/{job}.prom"] for job in sorted(JOBS)
    ]


@pytest.mark.parametrize(
    ("port", "override", "options"),
    [
        (22, None, []),
        (2222, None, ["-p", "2222"]),
        (2222, "22", []),
        (22, "65535", ["-p", "65535"]),
    ],
)
def test_ssh_gets_the_port_when_it_is_not_22(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    port: int,
    override: str | None,
    options: list[str],
) -> None:
    data = remote_outputs(METRICS, {"web": ["true"]})
    data["sshPort"] = port
    args = [] if override is None else ["--ssh-port", override]
    run(capsys, fake_ssh, write(tmp_path, data), *args)
    calls = read_log(fake_ssh.log)
    assert len(calls) == 1 + 2 + 3  # internal, tunnels, backups
    assert all(c["argv"][:-1] == [*OPTIONS, *options, TARGET] for c in calls)


def test_ssh_override_replaces_the_exported_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh
) -> None:
    run(capsys, fake_ssh, write(tmp_path, sample()), "--ssh", "admin@other.test")
    assert {c["target"] for c in read_log(fake_ssh.log)} == {"admin@other.test"}


def test_hostile_names_reach_ssh_as_one_word(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh
) -> None:
    data = remote_outputs(METRICS, {"x; rm -rf /": ["true"]}, enabled=False)
    data["sshTunnels"] = {"t": {"localPort": 1, "remote": "127.0.0.1;rm -rf /:8085"}}
    run(capsys, fake_ssh, write(tmp_path, data))
    calls = calls_by_kind(fake_ssh)
    # Nothing here runs: the stand-in only records. A real shell's reading is below.
    assert all(len(c["argv"]) == len(OPTIONS) + 2 for c in read_log(fake_ssh.log))
    assert shlex.split(calls["docker"][0]["remote"]) == ["docker", "exec", "x; rm -rf /", "true"]
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
    assert read_log(fake_ssh.docker_log) == [["exec", name, "sh", "-c", "exit 0"]]
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
    assert len(calls) == 1 + 2 + 3, done.stderr
    assert all(c["stdin_is_devnull"] and c["argv"][0] == "-n" for c in calls)


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
    monkeypatch.setenv("FAKE_SSH_EXIT", "255")
    code, out = run(capsys, fake_ssh, path, "--only", "internal")
    assert (code, table(out)["internal:web"]["DETAIL"]) == (1, "ssh failed: exit 255")
