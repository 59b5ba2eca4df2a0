"""The tunnel tool: the exact commands, and real forwards through an ssh stand-in."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops import forwards, tunnel
from tests.ops.helpers import (
    GPU_PORT,
    GPU_TARGET,
    ROOT,
    TARGET,
    TUNNELS,
    executable,
    free_port,
    free_ports,
    read_log,
    sample,
    two_hosts,
    wait_for_port,
    write,
)

OPTIONS = (
    "-n -N -o BatchMode=yes -o ControlMaster=no -o ControlPath=none -o ServerAliveInterval=30"
    " -o ServerAliveCountMax=3 -o ExitOnForwardFailure=yes"
)
ALIAS = "hemma"

# An ssh that really forwards each of its -L to 127.0.0.1:LOCAL, as ssh -N -L would.
FORWARDING_SSH = """#!{python}
import json, os, socket, sys, threading, time

args = sys.argv[1:]
forwards = [args[i + 1].split(":") for i, word in enumerate(args) if word == "-L"]
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(json.dumps({"argv": args, "pid": os.getpid()}) + "\\n")
if os.environ.get("FAKE_SSH_EXIT"):
    sys.exit(int(os.environ["FAKE_SSH_EXIT"]))
# Logging in takes a while; ExitOnForwardFailure: a port taken meanwhile is an exit.
time.sleep(float(os.environ.get("FAKE_SSH_LOGIN_SECONDS", "0")))
try:
    servers = [(socket.create_server(("127.0.0.1", int(local))), host, port)
               for local, host, port in forwards]
except OSError:
    print("bind: Address already in use", file=sys.stderr)
    sys.exit(255)

def pump(a, b):
    try:
        while data := a.recv(65536):
            b.sendall(data)
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass

def serve(server, host, port):
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection((host, int(port)))
        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()

for forward in servers:
    threading.Thread(target=serve, args=forward, daemon=True).start()
while True:
    time.sleep(60)
"""


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with nothing on it but what a test puts there."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def printed(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = tunnel.main(list(args))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_print_shows_plain_ssh_without_autossh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bare_path: Path
) -> None:
    path = write(tmp_path, sample())
    code, lines, _ = printed(capsys, "--outputs", str(path), "--print")
    assert code == 0
    # Every forward is hemma's: one ssh, one login, holds them all.
    assert lines == [
        f"ssh {OPTIONS} -L 19000:127.0.0.1:9000 -L 18085:127.0.0.1:8085"
        f" -L 15432:127.0.0.1:5432 {ALIAS}"  # the last one postgresTunnel's
    ]


def test_print_prefers_autossh_when_it_is_on_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bare_path: Path
) -> None:
    executable(bare_path / "autossh", "#!/bin/sh\nexit 0\n")
    path = write(tmp_path, sample())
    code, lines, _ = printed(
        capsys, "--outputs", str(path), "--print", "huleedu_language_tool_service"
    )
    assert code == 0
    assert lines == [f"autossh -M 0 {OPTIONS} -L 18085:127.0.0.1:8085 {ALIAS}"]


@pytest.mark.parametrize(
    ("port", "args", "client", "shown"),
    [
        (2222, [], "ssh", ""),  # the alias's own port: ~/.ssh/config has its say
        (2222, [], "autossh -M 0", ""),
        (22, ["--ssh-port", "443"], "ssh", " -p 443"),
        (2222, ["--ssh-port", "22"], "autossh -M 0", ""),
    ],
)
def test_ssh_gets_the_port_when_it_is_not_22(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    bare_path: Path,
    port: int,
    args: list[str],
    client: str,
    shown: str,
) -> None:
    if client.startswith("autossh"):
        executable(bare_path / "autossh", "#!/bin/sh\nexit 0\n")
    path = write(tmp_path, sample(sshPort=port))
    code, lines, _ = printed(
        capsys, "--outputs", str(path), "--print", *args, "huleedu_language_tool_service"
    )
    assert (code, lines) == (0, [f"{client} {OPTIONS}{shown} -L 18085:127.0.0.1:8085 {ALIAS}"])


def test_named_tunnels_come_in_the_order_asked_and_ssh_can_be_overridden(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bare_path: Path
) -> None:
    path = write(tmp_path, sample())
    names = ["huleedu_language_tool_service", "huleedu_essay_embed_offload"]
    code, lines, _ = printed(capsys, "--outputs", str(path), "--print", "--ssh", "me@h", *names)
    assert code == 0
    assert [line.split()[-5:] for line in lines] == [
        ["-L", "18085:127.0.0.1:8085", "-L", "19000:127.0.0.1:9000", "me@h"],
    ]


def test_an_unknown_name_is_one_line_listing_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bare_path: Path
) -> None:
    path = write(tmp_path, sample())
    code, lines, err = printed(capsys, "--outputs", str(path), "--print", "tabby")
    assert (code, lines) == (2, [])
    assert err == (
        "tunnel: no tunnel named tabby; known: "
        "huleedu_essay_embed_offload, huleedu_language_tool_service, shared-postgres\n"
    )


@pytest.fixture
def reaper() -> Iterator[list[int]]:
    """Pids to kill whatever a test's asserts did, so a failure leaves nothing running."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        # The tunnel tool leads its own process group (start_tunnels), and each of its
        # ssh children one of its own (forwards.start).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start_tunnels(
    tmp_path: Path, echo_port: int, names: dict[str, int], port: int = 22, **env: str
) -> tuple[subprocess.Popen[str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "ssh", FORWARDING_SSH)
    log = tmp_path / "ssh.log"
    data = sample(
        postgresTunnel=None,  # as on the local stack
        sshTunnels={
            name: {"localPort": local, "remote": f"127.0.0.1:{echo_port}"}
            for name, local in names.items()
        },
    )
    port_args = [] if port == 22 else ["--ssh-port", str(port)]
    process = subprocess.Popen(
        [sys.executable, "-m", "ops.tunnel", "--outputs", str(write(tmp_path, data)), *port_args],
        cwd=ROOT,
        env=dict(
            os.environ,
            PATH=str(bin_dir),
            FAKE_SSH_LOG=str(log),
            XDG_CACHE_HOME=str(tmp_path / "cache"),
            **env,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    return process, log


def echo_through(port: int, text: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(text)
        return sock.recv(100)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize(
    ("stop_with", "ssh_port", "port_options"),
    [(signal.SIGINT, 22, []), (signal.SIGTERM, 2222, ["-p", "2222"])],
)
def test_open_tunnels_forward_until_stopped(
    tmp_path: Path,
    echo_server: int,
    stop_with: signal.Signals,
    ssh_port: int,
    port_options: list[str],
    reaper: list[int],
) -> None:
    lang, offload = free_ports(2)
    ports = {"lang": lang, "offload": offload}
    process, log = start_tunnels(tmp_path, echo_server, ports, ssh_port)
    reaper.append(process.pid)
    try:
        assert all(wait_for_port(port) for port in ports.values())
        reaper.extend(c["pid"] for c in read_log(log))
        assert echo_through(ports["lang"], b"hej") == b"hej"
        assert echo_through(ports["offload"], b"hemma") == b"hemma"
        calls = read_log(log)
        forwards = [["-L", f"{port}:127.0.0.1:{echo_server}"] for port in ports.values()]
        assert [c["argv"] for c in calls] == [
            [*OPTIONS.split(), *port_options, *forwards[0], *forwards[1], ALIAS]
        ], "one ssh to hemma holds both"
        process.send_signal(stop_with)
        _, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "closing 2 tunnel(s)" in err
    deadline = time.monotonic() + 5
    while not all(gone(c["pid"]) for c in calls) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(gone(c["pid"]) for c in calls)
    for port in ports.values():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_tunnel_that_dies_is_reported_and_fails_the_run(
    tmp_path: Path, echo_server: int, reaper: list[int]
) -> None:
    process, log = start_tunnels(tmp_path, echo_server, {"lang": free_port()}, FAKE_SSH_EXIT="3")
    reaper.append(process.pid)
    try:
        _, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "tunnel: lang exited with status 3" in err
    assert len(read_log(log)) == 1


@pytest.mark.parametrize("command", [7, "ssh -N hemma", "ssh -N -L 15432:0.0.0.0:5432 hemma"])
def test_a_postgres_tunnel_in_another_form_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bare_path: Path, command: object
) -> None:
    path = write(tmp_path, sample(postgresTunnel=command))
    code, lines, err = printed(capsys, "--outputs", str(path), "--print")
    assert (code, lines) == (2, [])
    assert err.startswith("tunnel: outputs postgresTunnel ")


def run_forward(
    tmp_path: Path, local: int, echo_port: int, command: list[str], **env: str
) -> subprocess.Popen[str]:
    """ops.tunnel --forward ... -- COMMAND with the forwarding stand-in as ssh."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    executable(bin_dir / "ssh", FORWARDING_SSH)
    return subprocess.Popen(
        [sys.executable, "-m", "ops.tunnel", "--forward", f"{local}:127.0.0.1:{echo_port}",
         "--", *command],
        cwd=ROOT,
        env=dict(
            os.environ,
            PATH=f"{bin_dir}:{os.environ['PATH']}",
            FAKE_SSH_LOG=str(tmp_path / "ssh.log"),
            XDG_CACHE_HOME=str(tmp_path / "cache"),
            **env,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip


def test_a_port_taken_while_ssh_logs_in_is_no_tunnel(
    tmp_path: Path, echo_server: int, reaper: list[int]
) -> None:
    """Something that listens on the port is not the forward: only ssh's own listener
    is. Here another program takes the port while ssh is still logging in."""
    local = free_port()
    ran = tmp_path / "ran"
    process = run_forward(
        tmp_path, local, echo_server, ["touch", str(ran)], FAKE_SSH_LOGIN_SECONDS="2"
    )
    reaper.append(process.pid)
    time.sleep(0.5)
    squatter = socket.create_server(("127.0.0.1", local))
    try:
        _, err = process.communicate(timeout=30)
    finally:
        squatter.close()
        process.kill()
    assert process.returncode == 1, err
    assert "exited with status 255" in err
    assert not ran.exists(), "the command never ran against the squatter"


def test_sigterm_reaches_the_command_which_finishes_before_the_tunnel_closes(
    tmp_path: Path, echo_server: int, reaper: list[int]
) -> None:
    """pulumi killed in the middle of an update leaves pending operations and a
    locked state: the signal is passed on, and the command is waited for."""
    local = free_port()
    log = tmp_path / "command.log"
    script = (
        f"trap 'sleep 1; echo cleaned up >> {log}; exit 7' TERM; echo started >> {log}; "
        "while :; do sleep 0.1; done"
    )
    process = run_forward(tmp_path, local, echo_server, ["bash", "-c", script])
    reaper.append(process.pid)
    try:
        deadline = time.monotonic() + 15
        while not (log.exists() and "started" in log.read_text()):
            assert time.monotonic() < deadline, process.stderr
            time.sleep(0.05)
        assert echo_through(local, b"hej") == b"hej"
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert log.read_text() == "started\ncleaned up\n", "its own clean-up ran"
    assert process.returncode == 7, err
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", local), timeout=1).close()
    assert not list((tmp_path / "cache" / "hemma" / "tunnels").iterdir())


def test_a_closed_terminal_closes_the_tunnels_too(
    tmp_path: Path, echo_server: int, reaper: list[int]
) -> None:
    local = free_port()
    process, log = start_tunnels(tmp_path, echo_server, {"lang": local})
    reaper.append(process.pid)
    try:
        assert wait_for_port(local)
        reaper.extend(c["pid"] for c in read_log(log))
        process.send_signal(signal.SIGHUP)
        _, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert all(gone(c["pid"]) for c in read_log(log))
    assert not list((tmp_path / "cache" / "hemma" / "tunnels").iterdir())


def test_a_forward_another_command_holds_is_not_borrowed(
    tmp_path: Path, echo_server: int, reaper: list[int]
) -> None:
    """It closes when that command ends, under whatever borrowed it: only
    scripts/tunnel's forwards, held until Ctrl-C, are lent."""
    local = free_port()
    first = run_forward(tmp_path, local, echo_server, ["sleep", "30"])
    reaper.append(first.pid)
    try:
        assert wait_for_port(local)
        reaper.extend(c["pid"] for c in read_log(tmp_path / "ssh.log"))
        second = run_forward(tmp_path, local, echo_server, ["touch", str(tmp_path / "ran")])
        reaper.append(second.pid)
        _, err = second.communicate(timeout=30)
    finally:
        first.kill()
    assert second.returncode == 2, err
    assert "is already taken, and not by a tunnel of scripts/tunnel" in err
    assert not (tmp_path / "ran").exists()


def test_forwards_to_two_machines_are_one_ssh_each_and_each_is_recorded(
    tmp_path: Path, echo_server: int, reaper: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """hemma's forwards in one ssh to the alias, gpu's in one to its own user@host and
    port; each local port's record names the ssh that holds it, as scripts/pulumi
    reads it to tell scripts/tunnel's forward from anything else on the port."""
    hemma_port, lang, offload = free_ports(3)
    data = two_hosts(sample(postgresTunnel=f"ssh -N -L {hemma_port}:127.0.0.1:5432 {TARGET}"))
    remote = f"127.0.0.1:{echo_server}"
    for name, local in (("huleedu_language_tool_service", lang), (TUNNELS[0], offload)):
        data["sshTunnels"][name].update(localPort=local, remote=remote)
    # shared-postgres's end is the echo server too, through the hemma stand-in.
    data["postgresTunnel"] = f"ssh -N -L {hemma_port}:{remote} {TARGET}"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "ssh", FORWARDING_SSH)
    log = tmp_path / "ssh.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "ops.tunnel", "--outputs", str(write(tmp_path, data))],
        cwd=ROOT,
        env=dict(
            os.environ, PATH=str(bin_dir), FAKE_SSH_LOG=str(log),
            XDG_CACHE_HOME=str(tmp_path / "cache"),
        ),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    reaper.append(process.pid)
    try:
        assert all(wait_for_port(port) for port in (hemma_port, lang, offload))
        calls = read_log(log)
        reaper.extend(c["pid"] for c in calls)
        assert all(echo_through(port, b"hej") == b"hej" for port in (hemma_port, lang, offload))
        by_target = {c["argv"][-1]: c for c in calls}
        assert len(calls) == len(by_target) == 2, "one ssh per machine"
        assert by_target[ALIAS]["argv"] == [*OPTIONS.split(), "-L", f"{hemma_port}:{remote}", ALIAS]
        assert by_target[GPU_TARGET]["argv"] == [
            *OPTIONS.split(), "-p", str(GPU_PORT),
            "-L", f"{offload}:{remote}", "-L", f"{lang}:{remote}", GPU_TARGET,
        ]  # fmt: skip
        records = tmp_path / "cache" / "hemma" / "tunnels"
        held = {int(p.stem): json.loads(p.read_text()) for p in records.iterdir()}
        assert {port: saved["pid"] for port, saved in held.items()} == {
            hemma_port: by_target[ALIAS]["pid"],
            lang: by_target[GPU_TARGET]["pid"],
            offload: by_target[GPU_TARGET]["pid"],
        }
        # scripts/pulumi's --forward borrows hemma's forward, and only to hemma.
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        assert forwards.held_forward(hemma_port, remote, ALIAS) == by_target[ALIAS]["pid"]
        assert forwards.held_forward(lang, remote, ALIAS) is None
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "closing 3 tunnel(s)" in err
    assert f"huleedu_language_tool_service 127.0.0.1:{lang} -> {remote} on {GPU_TARGET}" in err
    assert all(gone(c["pid"]) for c in calls)
    assert not list(records.iterdir())
