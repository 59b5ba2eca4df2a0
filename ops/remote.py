"""Running one shell command on Hemma over ssh, bounded in time and blind to our stdin."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from dataclasses import dataclass

# Without BatchMode a missing key would hang on a password prompt nobody sees.
SSH_OPTIONS = ("-n", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10")


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
