"""Open the SSH port-forwards to Hemma's localhost-only services.

    python -m ops.tunnel                 # every tunnel in sshTunnels and postgresTunnel
    python -m ops.tunnel tabby --print   # just show the command
    python -m ops.tunnel --forward 15432:127.0.0.1:5432 -- pulumi up   # while it runs

Each forward is ``ssh -N ... -L LOCAL:REMOTE hemma`` (the alias of ~/.ssh/config, or
$HEMMA_SSH, or --ssh) in an ssh process of its own: ``ControlMaster=no`` and
``ControlPath=none``, so it neither hands its forward to a shared master (and exits at
once) nor lives only as long as that master's ``ControlPersist``. It holds until
Ctrl-C, or until the command given after ``--`` ends, and is stopped by its PID.
autossh, when it is on PATH, brings a dropped tunnel back by itself.

A forward this tool holds is recorded (its PID and command) under
``~/.cache/hemma/tunnels``; ``--forward`` uses a local port that is already listening
only when it is such a forward to the same place, and refuses anything else there
(the local stack's database, say).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from ops import outputs, remote
from ops.outputs import BadInput, host_port, need

# -n: a forward reads no stdin. ServerAlive* notices a dead link within ~90 s;
# ExitOnForwardFailure turns a taken local port into an exit instead of a tunnel
# that silently is not there; ControlMaster=no and ControlPath=none keep the forward
# in this ssh process.
FORWARD_OPTIONS = (
    "-n",
    "-N",
    "-o",
    "ControlMaster=no",
    "-o",
    "ControlPath=none",
    "-o",
    "ServerAliveInterval=30",
    "-o",
    "ServerAliveCountMax=3",
    "-o",
    "ExitOnForwardFailure=yes",
)
READY_TIMEOUT = remote.CONNECT_TIMEOUT + 10


class Stop(Exception):
    """SIGTERM, handled like Ctrl-C."""


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="tunnel", description="Open the SSH port-forwards to Hemma's localhost-only services."
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="tunnels to open (default: all)")
    parser.add_argument(
        "--outputs", metavar="FILE", help="stack outputs JSON (default: ask Pulumi)"
    )
    parser.add_argument(
        "--ssh", metavar="TARGET", help="the ssh alias of Hemma (default: $HEMMA_SSH or hemma)"
    )
    parser.add_argument(
        "--ssh-port", metavar="PORT", help="Hemma's ssh port (default: the alias's own)"
    )
    parser.add_argument(
        "--forward",
        action="append",
        default=[],
        metavar="LOCAL:HOST:PORT",
        help="this forward instead of the outputs' (then a command after -- runs while it holds)",
    )
    parser.add_argument("--print", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    if command and not args.forward:
        parser.error("a command after -- goes with --forward")
    if args.forward and args.names:
        parser.error("--forward and tunnel names do not go together")
    return args, command


def client(autossh: bool) -> list[str]:
    return ["autossh", "-M", "0"] if autossh else ["ssh"]


def forward_argv(local: int, address: str, target: str, autossh: bool, port: int) -> list[str]:
    forward = ["-L", f"{local}:{address}", target]
    return [*client(autossh), *FORWARD_OPTIONS, *remote.port_options(port), *forward]


def commands(
    data: dict[str, Any], names: list[str], target: str, autossh: bool, port: int = 22
) -> list[tuple[str, list[str]]]:
    """(name, argv) for each chosen tunnel, in the order asked, or all of them by name."""
    tunnels = outputs.tunnels(data)
    unknown = [name for name in names if name not in tunnels]
    if unknown:
        known = ", ".join(sorted(tunnels)) or "none"
        raise BadInput(f"no tunnel named {', '.join(unknown)}; known: {known}")
    chosen = list(dict.fromkeys(names)) if names else sorted(tunnels)
    found = []
    for name in chosen:
        where = f"sshTunnels.{name}"
        if not isinstance(tunnels[name], dict):
            raise BadInput(f"outputs {where} should be an object")
        local = need(tunnels[name], "localPort", int, within=where)
        address = need(tunnels[name], "remote", str, within=where)
        host_port(address, f"{where}.remote")
        if not 0 < local < 65536:
            raise BadInput(f"outputs {where}.localPort should be a port number, not {local}")
        found.append((name, forward_argv(local, address, target, autossh, port)))
    return found


def parse_forward(text: str) -> tuple[int, str]:
    """``LOCAL:HOST:PORT`` into the local port and ``HOST:PORT``."""
    local, _, address = text.partition(":")
    if not local.isdigit() or not 0 < int(local) < 65536:
        raise BadInput(f"--forward {text!r}: expected LOCAL:HOST:PORT")
    host_port(address, f"--forward {text}")
    return int(local), address


# --- the record of the forwards this tool holds ---------------------------------------


def records() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hemma" / "tunnels"


def record(local: int, process: subprocess.Popen[bytes], argv: list[str]) -> Path:
    where = records()
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{local}.json"
    path.write_text(json.dumps({"pid": process.pid, "argv": argv}))
    return path


def command_of(pid: int) -> str:
    """The process's command line as ps shows it, or nothing when it is gone."""
    shown = subprocess.run(
        ["ps", "-ww", "-o", "command=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    return shown.stdout.strip() if shown.returncode == 0 else ""


def own_forward(local: int, address: str, target: str) -> bool:
    """Whether what listens on 127.0.0.1:LOCAL is a forward this tool holds, to
    ``address`` on ``target``: recorded, and its process is still that command."""
    try:
        saved = json.loads((records() / f"{local}.json").read_text())
        pid, argv = int(saved["pid"]), [str(word) for word in saved["argv"]]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if argv[-3:] != ["-L", f"{local}:{address}", target]:
        return False
    # ps shows the program as it was found (/usr/bin/ssh, a wrapper's exec): the
    # options, the forward and the target are what must still be there.
    return command_of(pid).endswith(" " + " ".join(argv[1:]))


def listening(local: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), timeout=1):
        return True
    return False


# --- running and stopping them -----------------------------------------------------


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stop


def start(argv: list[str]) -> subprocess.Popen[bytes]:
    """One forward in an ssh process of its own: a session of its own too, so the
    Ctrl-C meant for a command does not end the tunnel under it."""
    # A forward reads no stdin, and a passphrase prompt goes to the tty anyway.
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def held(started: list[tuple[str, subprocess.Popen[bytes]]], paths: list[Path]) -> Iterator[None]:
    try:
        yield
    finally:
        stop([process for _, process in started])
        for path in paths:
            path.unlink(missing_ok=True)


def hold(started: list[tuple[str, subprocess.Popen[bytes]]]) -> int:
    """Wait while the tunnels run; stop every one of them on Ctrl-C or SIGTERM."""
    live = dict(started)
    failed = False
    try:
        while live:
            for name, process in list(live.items()):
                code = process.poll()
                if code is not None:
                    print(f"tunnel: {name} exited with status {code}", file=sys.stderr)
                    failed = failed or code != 0
                    del live[name]
            time.sleep(0.2)
    except (KeyboardInterrupt, Stop):
        print(f"tunnel: closing {len(live)} tunnel(s)", file=sys.stderr)
    return 1 if failed else 0


def ready(name: str, process: subprocess.Popen[bytes], local: int) -> bool:
    """Until the forward's local port answers, or its ssh gave up."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"tunnel: {name} exited with status {process.returncode}", file=sys.stderr)
            return False
        if listening(local):
            return True
        time.sleep(0.1)
    print(f"tunnel: {name} is not listening after {READY_TIMEOUT} s", file=sys.stderr)
    return False


def run_while_held(
    forwards: list[tuple[int, str]], target: str, port: int, command: list[str]
) -> int:
    """Open the forwards (or use this tool's own already there), run ``command``,
    then close what was opened here. The command's status is the result."""
    autossh = shutil.which("autossh") is not None
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    paths: list[Path] = []
    with held(started, paths):
        for local, address in forwards:
            name = f"127.0.0.1:{local} -> {address} on {target}"
            if listening(local):
                if not own_forward(local, address, target):
                    print(
                        f"tunnel: 127.0.0.1:{local} is already taken, and not by a tunnel of"
                        f" scripts/tunnel to {address} on {target} (the local stack's"
                        " database? another ssh?): stop it, or choose another port",
                        file=sys.stderr,
                    )
                    return 2
                print(f"tunnel: using scripts/tunnel's {name}", file=sys.stderr)
                continue
            argv = forward_argv(local, address, target, autossh, port)
            process = start(argv)
            started.append((name, process))
            paths.append(record(local, process, argv))
            if not ready(name, process, local):
                return 1
            print(f"tunnel: {name}", file=sys.stderr)
        if not command:
            return hold(started)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            # Ctrl-C reaches the command (it shares the terminal's process group) and
            # not the tunnels under it; this waits for the command to finish.
            done = subprocess.run(command, check=False, preexec_fn=_default_sigint)
        except OSError as error:
            print(f"tunnel: cannot run {command[0]}: {error.strerror or error}", file=sys.stderr)
            return 127
        finally:
            signal.signal(signal.SIGINT, previous)
        for name, process in started:
            if process.poll() is not None:
                print(
                    f"tunnel: {name} ended during the command (status {process.returncode})",
                    file=sys.stderr,
                )
        return done.returncode


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    args, command = parse_args(argv)
    try:
        target = remote.target(args.ssh)
        port = outputs.ssh_port({}, args.ssh_port) if args.ssh_port is not None else 22
        if args.forward:
            forwards = [parse_forward(text) for text in args.forward]
        else:
            data = outputs.load(args.outputs)
            autossh = shutil.which("autossh") is not None
            found = commands(data, args.names, target, autossh, port)
    except (BadInput, remote.BadTarget) as error:
        print(f"tunnel: {error}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop)
    if args.forward:
        if args.print:
            for local, address in forwards:
                print(shlex.join(forward_argv(local, address, target, False, port)))
            return 0
        try:
            return run_while_held(forwards, target, port, command)
        except (KeyboardInterrupt, Stop):
            return 130
    if args.print:
        for _, argv_ in found:
            print(shlex.join(argv_))
        return 0
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    paths: list[Path] = []
    with held(started, paths):
        try:
            for name, argv_ in found:
                process = start(argv_)
                started.append((name, process))
                opened, _, address = argv_[-2].partition(":")
                paths.append(record(int(opened), process, argv_))
                print(
                    f"tunnel: {name} 127.0.0.1:{opened} -> {address} on {target}", file=sys.stderr
                )
        except OSError as error:
            print(f"tunnel: cannot run {argv_[0]}: {error.strerror or error}", file=sys.stderr)
            return 2
        except (KeyboardInterrupt, Stop):
            return 0
        return hold(started)


if __name__ == "__main__":
    sys.exit(main())
