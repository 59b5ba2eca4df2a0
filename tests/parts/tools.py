"""Helpers the parts share: finding tools, running commands, stopping by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

# Seconds each part took to come up in this process, for the session summary.
TIMINGS: dict[str, float] = {}


class MissingTool(RuntimeError):
    """A part needs a program this machine does not have."""


class CommandFailed(subprocess.CalledProcessError):
    """CalledProcessError whose message carries the output, so a failed step explains itself."""

    def __str__(self) -> str:
        parts = [super().__str__()]
        for name, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            if text:
                shown = text if isinstance(text, str) else text.decode(errors="replace")
                parts.append(f"--- {name} ---\n{shown.rstrip()}")
        return "\n".join(parts)


def require(tool: str, package: str) -> str:
    """The tool's path; fail (never skip) naming the Debian package that brings it."""
    found = shutil.which(tool) or shutil.which(tool, path="/usr/local/sbin:/usr/sbin:/sbin")
    if found is None:
        raise MissingTool(f"{tool} is required: apt-get install {package}")
    return found


def require_root(part: str) -> None:
    if os.geteuid() != 0:
        raise MissingTool(f"{part} must run as root (it starts system daemons)")


def run(
    command: Sequence[str],
    *,
    check: bool = True,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(command),
        input=input,
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
        timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and done.returncode != 0:
        raise CommandFailed(done.returncode, done.args, done.stdout, done.stderr)
    return done


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(
    what: str, ready: Callable[[], object], timeout: float, interval: float = 0.1
) -> None:
    """Poll ``ready()`` until it is true; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s")
        time.sleep(interval)


def terminate(process: subprocess.Popen[bytes], timeout: float = 30) -> bool:
    """SIGTERM by PID, wait; SIGKILL only if it will not go. True if it took a SIGKILL."""
    if process.poll() is not None:
        return False
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return True
    return False


def kill_pidfile(pidfile: Path) -> None:
    """For a daemon's own children (dockerd's containerd) that outlive a killed parent."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()).rstrip("/") + "/"
    found = []
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            target = line.split()[1].replace("\\040", " ")
            if target.startswith(prefix):
                found.append(target)
    return found


def unmount_under(root: Path) -> None:
    """Lazy-unmount what a daemon or debootstrap left mounted, deepest first, so
    removing the tree cannot reach into a live /proc or an overlay."""
    for target in sorted(mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def remove_tree(root: Path) -> None:
    unmount_under(root)
    shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def timed(name: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        TIMINGS[name] = TIMINGS.get(name, 0.0) + time.monotonic() - start
