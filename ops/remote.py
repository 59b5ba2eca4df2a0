"""Reaching Hemma over ssh: which name every tool uses, one login for a whole run, and
one shell command at a time, bounded in time and blind to our stdin."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops import outputs

DEFAULT_ALIAS = "hemma"
"""The ``Host hemma`` block of ~/.ssh/config (README, prerequisites): its key and its
multiplexing are what every tool uses."""
CONNECT_TIMEOUT = 10
SSH_FAILED = 255
"""ssh's own exit status: it could not log in, or the connection broke."""
SESSIONS = 8
"""Commands at once over one master: under sshd's default MaxSessions of 10."""
# Without BatchMode a missing key would hang on a password prompt nobody sees.
SSH_OPTIONS = ("-n", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}")


class BadTarget(ValueError):
    """An ssh target that ssh would read as an option, or that is no name at all."""


def target(override: str | None = None) -> str:
    """The name every tool reaches Hemma by: ``--ssh``, else ``$HEMMA_SSH``, else the
    ``hemma`` alias, so that ssh uses that Host block's key and master connection."""
    return checked(override or os.environ.get("HEMMA_SSH") or DEFAULT_ALIAS)


def checked(chosen: str) -> str:
    """``chosen``, unless ssh would read it as an option (think -oProxyCommand=...)
    or it is not one word."""
    if not chosen or chosen.startswith("-") or any(c.isspace() for c in chosen):
        raise BadTarget(f"refusing ssh target {chosen!r}: it must be an alias or user@host")
    return chosen


def reach(data: dict[str, Any], host: str, hemma: tuple[str, int]) -> tuple[str, int]:
    """The ssh target and port of machine ``host``: hemma's are ``hemma`` (the alias,
    ``$HEMMA_SSH`` or ``--ssh``, and ``--ssh-port``, as every tool has them); any other
    machine's come from the outputs' ``hosts``."""
    if host == outputs.HEMMA:
        return hemma
    target, port = outputs.ssh_host(data, host)
    return checked(target), port


@dataclass(frozen=True)
class Answer:
    code: int | None  # None: it did not finish in time
    stdout: str
    stderr: str

    def why(self) -> str:
        """The last line it wrote (stderr first), or how it ended."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1][:300]
        return "no answer in time" if self.code is None else f"exit {self.code}"


def port_options(port: int) -> list[str]:
    """``-p PORT`` when Hemma's sshd is not on 22; on 22 ~/.ssh/config still has its say."""
    return [] if port == 22 else ["-p", str(port)]


def ssh_argv(ssh_command: str, target: str, remote: str, port: int = 22) -> list[str]:
    """``remote`` is one shell command line; ssh hands it to the login shell as it is."""
    return [*shlex.split(ssh_command), *SSH_OPTIONS, *port_options(port), target, remote]


def run(argv: list[str], timeout: float, stdin: str | None = None) -> Answer:
    # A session of its own, so a timeout takes down anything ssh started too;
    # DEVNULL unless there is input, so ssh never reads the keystrokes or the pipe
    # the operator feeds us.
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as error:
        return Answer(127, "", f"cannot run {argv[0]}: {error.strerror or error}")
    try:
        out, err = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        return Answer(None, "", "")
    return Answer(process.returncode, out, err)


def why(answer: Answer) -> str:
    """The line most likely to say what went wrong."""
    for text in (answer.stderr, answer.stdout):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return ""


@dataclass
class Session:
    """One login to Hemma for a whole run, however many commands it sends.

    ``start`` logs in once, as a master connection of the run's own (a private
    ``ControlPath``); every command then rides it (``ControlMaster=no``) and adds no
    login. When that first login fails (a refused key, Hemma unreachable), nothing
    else is tried: fail2ban's ``recidive`` jail bans for good after three bans, and
    one doctor run used to make a hundred attempts. Commands check that the master
    is still there first (``-O check``, a local call), so a master that died during
    the run is not replaced by fresh logins either.
    """

    ssh_command: str
    target: str
    port: int = 22
    failure: str | None = None
    """Why no command is sent: the first login failed, or the master went away."""
    started: bool = False
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hemma-ssh-")))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _sessions: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(SESSIONS), repr=False
    )

    @property
    def control(self) -> str:
        return str(self.directory / "master")

    def _ssh(self, *options: str) -> list[str]:
        return [*shlex.split(self.ssh_command), *options, *port_options(self.port)]

    def start(self, timeout: float = CONNECT_TIMEOUT + 5) -> bool:
        master = ("-o", "ControlMaster=yes", "-o", f"ControlPath={self.control}")
        # The master stays in the background for later commands, at most two idle
        # minutes past a run that could not close it.
        argv = [*self._ssh(*SSH_OPTIONS, *master, "-o", "ControlPersist=120"), self.target, "true"]
        answer = run(argv, timeout)
        if answer.code == 0:
            self.started = True
            return True
        self.failure = (
            f"no answer within {timeout:g} s" if answer.code is None else why(answer) or "exit 255"
        )
        return False

    def argv(self, remote: str) -> list[str]:
        """``remote`` as one shell command line, through the master. Should the master
        be gone after all, ssh would log in afresh: ``ProxyCommand=false`` makes that
        fail here, before anything reaches Hemma."""
        options = ("-o", "ControlMaster=no", "-o", f"ControlPath={self.control}")
        no_login = ("-o", "ProxyCommand=false")
        return [*self._ssh(*SSH_OPTIONS, *options, *no_login), self.target, remote]

    def run(self, remote: str, timeout: float) -> Answer:
        """``remote`` through the master, at most ``SESSIONS`` at a time: sshd refuses
        more sessions on one connection than its ``MaxSessions`` (10 by default)."""
        with self._sessions:
            return run(self.argv(remote), timeout)

    def usable(self) -> str | None:
        """None when a command may go; else why not."""
        with self._lock:
            if self.failure is not None:
                return self.failure
            check = [*self._ssh("-o", f"ControlPath={self.control}", "-O", "check"), self.target]
            if run(check, CONNECT_TIMEOUT).code != 0:
                self.failure = "the ssh master connection went away during the run"
            return self.failure

    def broken(self, reason: str) -> None:
        """ssh itself failed (exit 255): send nothing more."""
        with self._lock:
            self.failure = self.failure or reason

    def close(self) -> None:
        if self.started:
            argv = [*self._ssh("-o", f"ControlPath={self.control}", "-O", "exit"), self.target]
            run(argv, CONNECT_TIMEOUT)
        shutil.rmtree(self.directory, ignore_errors=True)
