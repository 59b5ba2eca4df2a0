"""The doctor and the tunnels against a real sshd (tests/parts/ssh.py), as the
operator's laptop reaches Hemma: through an alias in an ssh config, multiplexed,
with a short ``ControlPersist`` standing in for the README's ten minutes.

sshd logs at VERBOSE: every key it refuses is a ``Failed publickey`` line, every
login a ``Accepted publickey`` line. Those lines are what fail2ban counts, and what
these tests count.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops import drift
from tests.ops.helpers import GPU, ROOT, free_port, golden, two_hosts, write
from tests.parts.ssh import SshServer

pytestmark = pytest.mark.tools

CONTROL_PERSIST = 2
"""Seconds a backgrounded master outlives its last client (the README says 10m)."""


@dataclass
class Client:
    """An ssh config with one alias for the server, and an ``ssh`` that reads it."""

    server: SshServer
    root: Path
    alias: str

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def ssh(self) -> str:
        return str(self.bin / "ssh")

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "XDG_CACHE_HOME": str(self.root / "cache"),
            "HEMMA_SSH": self.alias,
        }

    def log_lines(self, since: int) -> list[str]:
        time.sleep(0.3)  # sshd writes its last lines as the connection closes
        return self.server.log.read_bytes()[since:].decode(errors="replace").splitlines()

    def log_size(self) -> int:
        return self.server.log.stat().st_size


def make_client(server: SshServer, root: Path, alias: str, key: Path) -> Client:
    root.mkdir(parents=True, exist_ok=True)
    # A socket's path has room for 107 bytes: the masters live in a short one.
    sockets = Path(tempfile.mkdtemp(prefix="hm-cm-", dir="/tmp"))
    (root / "sockets").symlink_to(sockets)
    config = root / "ssh_config"
    config.write_text(
        f"Host {alias}\n"
        f"  HostName {server.host}\n  Port {server.port}\n  User {server.user}\n"
        f"  IdentityFile {key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {server.known_hosts}\n  StrictHostKeyChecking yes\n"
        "  ControlMaster auto\n"
        f"  ControlPath {sockets}/%C\n"
        f"  ControlPersist {CONTROL_PERSIST}\n"
        "  LogLevel ERROR\n"
    )
    client = Client(server, root, alias)
    client.bin.mkdir(exist_ok=True)
    wrapper = client.bin / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {config} "$@"\n')
    wrapper.chmod(0o755)
    return client


@pytest.fixture
def client(ssh_server: SshServer, tmp_path: Path) -> Iterator[Client]:
    """The operator's alias, with the key Hemma knows."""
    made = make_client(ssh_server, tmp_path / "laptop", "hemma-lab", ssh_server.key_path)
    yield made
    subprocess.run([made.ssh, "-O", "exit", made.alias], capture_output=True, timeout=10)
    shutil.rmtree((made.root / "sockets").resolve(), ignore_errors=True)


@pytest.fixture
def refused(ssh_server: SshServer, tmp_path: Path) -> Iterator[Client]:
    """The same alias with a key Hemma does not know (a laptop whose agent lost it)."""
    key = tmp_path / "other_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30
    )
    made = make_client(ssh_server, tmp_path / "refused", "hemma-lab", key)
    yield made
    shutil.rmtree((made.root / "sockets").resolve(), ignore_errors=True)


def doctor(client: Client, outputs: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.doctor", "--outputs", str(outputs), "--ssh-command",
         client.ssh, "--timeout", "20"],
        cwd=ROOT, env=client.env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def every_check_over_ssh(tmp_path: Path) -> Path:
    """The default stack's own outputs: 30-odd checks over ssh, none over HTTPS."""
    data = golden()
    data["healthChecks"]["public"] = {}
    return write(tmp_path, data)


def test_a_refused_key_costs_one_login_attempt_not_a_hundred(
    refused: Client, tmp_path: Path
) -> None:
    """fail2ban's recidive jail bans for good: one doctor run used to try 38 logins,
    8 at a time, each twice more, 114 refusals in 8 s."""
    since = refused.log_size()
    started = time.monotonic()
    done = doctor(refused, every_check_over_ssh(tmp_path))
    took = time.monotonic() - started
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "doctor: cannot log in to hemma-lab over ssh (hemma-test@127.0.0.1: Permission denied"
        " (publickey).); every check over ssh is skipped, and no other login is tried"
    ]
    lines = refused.log_lines(since)
    attempts = [line for line in lines if line.startswith("Failed publickey for")]
    assert 1 <= len(attempts) <= 3, "\n".join(lines)
    assert not [line for line in lines if "Accepted" in line]
    rows = [line.split() for line in done.stdout.splitlines()[1:] if line.strip()]
    skipped = [row for row in rows if len(row) > 2 and row[2] == "skipped"]
    assert len(skipped) >= 30, done.stdout
    assert f"0 ok, 0 failed, {len(skipped)} skipped" in done.stdout
    assert took < 15, f"the doctor took {took:.1f} s to say it"


def test_a_whole_doctor_run_is_one_login(client: Client, tmp_path: Path) -> None:
    since = client.log_size()
    done = doctor(client, every_check_over_ssh(tmp_path))
    lines = client.log_lines(since)
    logins = [line for line in lines if line.startswith("Accepted publickey for")]
    assert len(logins) == 1, "\n".join(lines)
    assert "40 failed, 0 skipped" in done.stdout, done.stdout + done.stderr
    # The checks ran on the server: the test user's docker knows none of the containers.
    assert "No such container" in done.stdout or "probe failed" in done.stdout, done.stdout
    assert not list((client.root / "sockets").iterdir()), "the doctor used a master of its own"


def second_machine(client: Client, tmp_path: Path) -> Path:
    """The default stack's outputs with a ``gpu`` machine beside hemma (tests/ops/helpers
    two_hosts), whose sshTarget and sshPort are the test sshd's own user@127.0.0.1 and
    port: the doctor reaches it there, not through the alias. The client's ssh config
    gives that address the client's key, as ~/.ssh/config would a machine's."""
    config = client.root / "ssh_config"
    lines = config.read_text().splitlines()
    key = next(line.split()[1] for line in lines if "IdentityFile" in line)
    server = client.server
    with config.open("a") as file:
        file.write(
            f"Host {server.host}\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {server.known_hosts}\n  StrictHostKeyChecking yes\n"
            "  LogLevel ERROR\n"
        )
    data = two_hosts(golden())
    data["hosts"][GPU].update(sshTarget=f"{server.user}@{server.host}", sshPort=server.port)
    return write(tmp_path, data)


def test_two_machines_are_one_login_each(client: Client, tmp_path: Path) -> None:
    since = client.log_size()
    done = doctor(client, second_machine(client, tmp_path))
    lines = client.log_lines(since)
    logins = [line for line in lines if line.startswith("Accepted publickey for")]
    assert len(logins) == 2, "\n".join(lines)
    assert "0 skipped" in done.stdout, done.stdout + done.stderr
    assert not list((client.root / "sockets").iterdir()), "the doctor used masters of its own"


def test_a_refused_key_costs_one_login_attempt_per_machine(refused: Client, tmp_path: Path) -> None:
    since = refused.log_size()
    started = time.monotonic()
    done = doctor(refused, second_machine(refused, tmp_path))
    took = time.monotonic() - started
    assert done.returncode == 1
    user = f"{refused.server.user}@{refused.server.host}"
    why = f"{user}: Permission denied (publickey)."
    assert done.stderr.splitlines() == [
        f"doctor: cannot log in to hemma-lab over ssh ({why}); every check over ssh on hemma"
        " is skipped, and no other login to it is tried",
        f"doctor: cannot log in to {user} over ssh ({why}); every check over ssh on gpu"
        " is skipped, and no other login to it is tried",
    ]
    lines = refused.log_lines(since)
    attempts = [line for line in lines if line.startswith("Failed publickey for")]
    assert 2 <= len(attempts) <= 6, "\n".join(lines)
    assert not [line for line in lines if "Accepted" in line]
    assert "0 ok, 0 failed," in done.stdout
    assert took < 25, f"the doctor took {took:.1f} s to say it"


def scripts_tunnel(client: Client, tmp_path: Path, port: int, echo: int) -> subprocess.Popen[str]:
    """scripts/tunnel holding one forward, 127.0.0.1:PORT to the echo server, once it
    answers."""
    data = golden()
    data["sshTunnels"] = {"echo": {"localPort": port, "remote": f"127.0.0.1:{echo}"}}
    data["postgresTunnel"] = None
    process = subprocess.Popen(
        [sys.executable, "-m", "ops.tunnel", "--outputs", str(write(tmp_path, data))],
        cwd=ROOT, env=client.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not echoes(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    return process


def echoes(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"hemma")
            return conn.recv(100) == b"hemma"
    except OSError:
        return False


# A command that leaves its tunnel idle for longer than ControlPersist, then uses it.
IDLE_THEN_ECHO = (
    "import socket, sys, time\n"
    f"time.sleep({CONTROL_PERSIST + 3})\n"
    "with socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5) as c:\n"
    "    c.sendall(b'hemma')\n"
    "    sys.exit(0 if c.recv(100) == b'hemma' else 3)\n"
)


def test_a_tunnel_outlives_control_persist_while_its_command_runs(
    client: Client, echo_server: int
) -> None:
    """scripts/pulumi's database tunnel, while an operator reads a long preview: the
    operator's own master is there already (the checks before it logged in)."""
    master = subprocess.run([client.ssh, client.alias, "true"], capture_output=True, timeout=30)
    assert master.returncode == 0, master.stderr
    assert list((client.root / "sockets").iterdir()), "a shared master, persisting"

    # The fault, as it bit: a plain `ssh -N -L` hands its forward to that master and
    # exits at once; the forward then dies with the master, ControlPersist later.
    plain_port = free_port()
    plain = subprocess.run(
        [client.ssh, "-N", "-L", f"{plain_port}:127.0.0.1:{echo_server}", client.alias],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert plain.returncode == 0, "it did not stay: the forward went to the master"
    assert echoes(plain_port)
    time.sleep(CONTROL_PERSIST + 3)
    assert not echoes(plain_port), "gone with the master after ControlPersist"

    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "ops.tunnel", "--forward", f"{port}:127.0.0.1:{echo_server}",
         "--", sys.executable, "-c", IDLE_THEN_ECHO, str(port)],
        cwd=ROOT, env=client.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not echoes(port), "the tunnel goes with the command"
    assert not list((client.root / "cache" / "hemma" / "tunnels").iterdir())


def test_scripts_tunnel_holds_until_ctrl_c_and_closes_everything(
    client: Client, echo_server: int, tmp_path: Path
) -> None:
    port = free_port()
    process = scripts_tunnel(client, tmp_path, port, echo_server)
    try:
        assert echoes(port)
        recorded = json.loads((client.root / "cache" / "hemma" / "tunnels" / f"{port}.json")
                              .read_text())  # fmt: skip
        time.sleep(CONTROL_PERSIST + 2)
        assert echoes(port), "still there after ControlPersist"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "closing 1 tunnel(s)" in err
    assert not echoes(port)
    with pytest.raises(ProcessLookupError):
        os.kill(recorded["pid"], 0)
    assert not (client.root / "cache" / "hemma" / "tunnels" / f"{port}.json").exists()


def test_a_taken_port_is_used_only_when_it_is_scripts_tunnels_own_forward(
    client: Client, echo_server: int, tmp_path: Path
) -> None:
    """The local stack once published its database on the hemma stack's tunnel port,
    and scripts/pulumi "used the tunnel already listening": the laptop's database."""
    port = free_port()
    squatter = socket.create_server(("127.0.0.1", port))
    try:
        taken = subprocess.run(
            [sys.executable, "-m", "ops.tunnel", "--forward", f"{port}:127.0.0.1:{echo_server}",
             "--", "touch", str(tmp_path / "ran")],
            cwd=ROOT, env=client.env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        squatter.close()
    assert taken.returncode == 2
    assert f"127.0.0.1:{port} is already taken, and not by a tunnel of scripts/tunnel" in (
        taken.stderr
    )
    assert not (tmp_path / "ran").exists(), "the command never ran"

    held = scripts_tunnel(client, tmp_path, port, echo_server)
    try:
        since = client.log_size()
        reused = subprocess.run(
            [sys.executable, "-m", "ops.tunnel", "--forward", f"{port}:127.0.0.1:{echo_server}",
             "--", sys.executable, "-c", IDLE_THEN_ECHO.replace("time.sleep", "int"), str(port)],
            cwd=ROOT, env=client.env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert reused.returncode == 0, reused.stderr
        assert "using scripts/tunnel's" in reused.stderr
        assert not [line for line in client.log_lines(since) if "Accepted" in line]
        assert echoes(port), "scripts/tunnel's forward stays for its owner"
        held.send_signal(signal.SIGINT)
        held.communicate(timeout=15)
    finally:
        held.kill()


def test_drift_pushes_its_metrics_through_the_alias_and_a_failure_keeps_the_last_success(
    client: Client, tmp_path: Path
) -> None:
    """scripts/drift's push: as root through sudo -n, swapped in whole, 0644 for
    node-exporter; a failed check says so and keeps when the last one succeeded."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    target = directory / drift.METRICS_FILE
    urn = "urn:pulumi:hemma::hemma::docker:index/network:Network::hule-network"
    drifted = drift.Result(drift.DRIFT, [drift.Drifted("delete", "hule-network", "t", urn)])
    text = drift.metrics(drifted, now=1_700_000_000)
    assert drift.push(text, client.ssh, client.alias, str(directory)) == ""
    assert target.read_text() == text
    assert target.stat().st_mode & 0o777 == 0o644 and target.stat().st_uid == 0
    failed = drift.metrics(drift.Result(drift.ERROR, [], "boom"), now=1_700_003_600)
    assert drift.push(failed, client.ssh, client.alias, str(directory)) == ""
    pushed = target.read_text()
    assert 'hemma_drift_check_success{source="operator"} 0' in pushed
    assert 'hemma_drift_check_last_run_timestamp_seconds{source="operator"} 1700003600' in pushed
    assert 'hemma_drift_last_success_timestamp_seconds{source="operator"} 1700000000' in pushed
    assert [p.name for p in directory.iterdir()] == [drift.METRICS_FILE], "no temp file left"
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (apt-get install prometheus)"
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=pushed, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    gone = drift.push(text, client.ssh, client.alias, str(tmp_path / "no-such-dir"))
    assert gone.startswith("cannot push the metrics to hemma-lab: ")
