"""SSH port-forwards to Hemma (and the other machines of the stack), in ssh processes of
their own: how one is started, known to be ready, recorded, recognised again and stopped.

A forward runs ``ssh -n -N -o ControlMaster=no -o ControlPath=none ... -L
LOCAL:REMOTE TARGET``, and scripts/tunnel's forwards to one machine all run in one
such ssh (one ``-L`` each, one login per machine): it neither hands its forwards to
a shared master (and exits at once) nor lives only as long as that master's
``ControlPersist``. It runs in a
session of its own, so the Ctrl-C meant for a command does not end it, and with
``BatchMode=yes``, since such a process has no terminal to ask on. It is stopped by
its PID.

A forward is ready when its own process listens on the local port, as ``ss`` (Linux)
or ``lsof`` (macOS) tells: something else that took the port while ssh was still
logging in is no tunnel to Hemma. A forward ``scripts/tunnel`` holds is recorded
under ``~/.cache/hemma/tunnels`` (its PID and command), so that ``scripts/pulumi`` can
tell it from anything else on the port.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from ops import remote

# ServerAlive* notices a dead link within ~90 s; ExitOnForwardFailure turns a taken
# local port into an exit instead of a tunnel that silently is not there.
FORWARD_OPTIONS = (
    "-n",
    "-N",
    "-o",
    "BatchMode=yes",
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
HELD = "tunnel"
"""The holder of a forward others may use: scripts/tunnel, until its Ctrl-C."""

Started = list[tuple[str, "subprocess.Popen[bytes]"]]


class Unknowable(RuntimeError):
    """Neither ss nor lsof can say which process listens on a port."""


def forward_argv(local: int, address: str, target: str, autossh: bool, port: int) -> list[str]:
    return forwards_argv([(local, address)], target, autossh, port)


def forwards_argv(pairs: list[tuple[int, str]], target: str, autossh: bool, port: int) -> list[str]:
    """One ssh to ``target`` holding each (local port, ``HOST:PORT``) forward."""
    client = ["autossh", "-M", "0"] if autossh else ["ssh"]
    forward = [word for local, address in pairs for word in ("-L", f"{local}:{address}")]
    return [*client, *FORWARD_OPTIONS, *remote.port_options(port), *forward, target]


def forwards_in(argv: list[str]) -> list[str]:
    """The ``LOCAL:HOST:PORT`` of each ``-L`` in a forward's argv."""
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "-L"]


def start(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    processes = list(dict.fromkeys(processes))  # forwards to one machine share one
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
def held(started: Started, paths: list[Path]) -> Iterator[None]:
    """Whatever happens in the block, the forwards started in it are stopped and
    their records removed."""
    try:
        yield
    finally:
        stop([process for _, process in started])
        for path in paths:
            path.unlink(missing_ok=True)


# --- who listens ---------------------------------------------------------------------


def listening(local: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), timeout=1):
        return True
    return False


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)


def listener_pids(local: int) -> set[int]:
    """The processes listening on TCP port ``local``."""
    if shutil.which("ss"):
        shown = _run(["ss", "-Hltnp", f"sport = :{local}"])
        if shown.returncode == 0:
            return {int(pid) for pid in re.findall(r"pid=(\d+)", shown.stdout)}
    if shutil.which("lsof"):
        shown = _run(["lsof", "-nP", "-t", f"-iTCP:{local}", "-sTCP:LISTEN"])
        return {int(pid) for pid in shown.stdout.split() if pid.isdigit()}
    raise Unknowable(
        f"cannot tell which program listens on 127.0.0.1:{local}: install ss (iproute2) or lsof"
    )


def parent_of(pid: int) -> int | None:
    shown = _run(["ps", "-o", "ppid=", "-p", str(pid)])
    text = shown.stdout.strip()
    return int(text) if shown.returncode == 0 and text.isdigit() else None


def listens_for(pid: int, local: int) -> bool:
    """Whether ``pid`` (an ssh, or autossh through its ssh child) listens on ``local``."""
    pids = listener_pids(local)
    return bool(pids) and (pid in pids or any(parent_of(p) == pid for p in pids))


def ready(name: str, process: subprocess.Popen[bytes], local: int) -> str | None:
    """None once the forward's own ssh listens on its local port; else why not."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"{name} exited with status {process.returncode}"
        if listens_for(process.pid, local):
            return None
        time.sleep(0.1)
    return f"{name} is not listening after {READY_TIMEOUT} s"


# --- the record --------------------------------------------------------------------


def records() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hemma" / "tunnels"


def record(local: int, process: subprocess.Popen[bytes], argv: list[str], holder: str) -> Path:
    where = records()
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{local}.json"
    path.write_text(json.dumps({"pid": process.pid, "argv": argv, "holder": holder}))
    return path


def command_of(pid: int) -> str:
    """The process's command line as ps shows it, or nothing when it is gone."""
    shown = _run(["ps", "-ww", "-o", "command=", "-p", str(pid)])
    return shown.stdout.strip() if shown.returncode == 0 else ""


def held_forward(local: int, address: str, target: str) -> int | None:
    """The PID of the forward scripts/tunnel holds on 127.0.0.1:LOCAL to ``address``
    on ``target``, or None: recorded by it, still that command, and the one that
    listens there."""
    try:
        saved = json.loads((records() / f"{local}.json").read_text())
        pid, argv = int(saved["pid"]), [str(word) for word in saved["argv"]]
        holder = str(saved["holder"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if holder != HELD or argv[-1] != target or f"{local}:{address}" not in forwards_in(argv):
        return None
    # ps shows the program as it was found (/usr/bin/ssh, a wrapper's exec): the
    # options, the forward and the target are what must still be there.
    if not command_of(pid).endswith(" " + " ".join(argv[1:])):
        return None
    return pid if listens_for(pid, local) else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
