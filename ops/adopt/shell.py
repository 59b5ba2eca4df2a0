"""What the adoption sends to Hemma: validated names, quoted once, SQL on stdin only.

Every value that reaches Hemma's login shell is a name checked against ``NAME``
and then ``shlex``-quoted; everything secret (passwords) travels as SQL on the
remote psql's stdin, never in an argv that ``ps`` on either machine could show.
"""

from __future__ import annotations

import re
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ops import remote
from ops.remote import SSH_FAILED, Answer, port_options

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""Container, volume, network, role and database names the adoption will handle."""
MAX_NAME = 128
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10")
PSQL_FLAGS = ("-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1")
"""No psqlrc, quiet, unaligned, tuples only, stop at the first error."""


class Refused(Exception):
    """Unsafe or unusable input, or a state the step must not act on: nothing changed."""


class Failed(Exception):
    """A command on Hemma failed; what ran before it is printed above."""


class Unreachable(Exception):
    """ssh could not reach Hemma for the step's first command: nothing ran."""


def name(value: object, what: str) -> str:
    """``value`` if it is a name the adoption may pass to a shell, else a refusal."""
    if not isinstance(value, str) or len(value) > MAX_NAME or not NAME.fullmatch(value):
        raise Refused(f"refusing {what} {value!r}: a name must match {NAME.pattern}")
    return value


def quote_ident(identifier: str) -> str:
    """A SQL identifier, double-quoted, embedded quotes doubled."""
    if "\0" in identifier:
        raise Refused("refusing a SQL identifier with a NUL byte")
    return '"' + identifier.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A SQL string literal that means the same whatever standard_conforming_strings is."""
    if "\0" in value:
        raise Refused("refusing a SQL literal with a NUL byte")
    doubled = value.replace("'", "''")
    if "\\" in value:
        return "E'" + doubled.replace("\\", "\\\\") + "'"
    return "'" + doubled + "'"


def say(text: str = "") -> None:
    print(text, flush=True)


def step(text: str) -> None:
    """What is about to happen, printed before it happens."""
    say(f"==> {text}")


def run(argv: Sequence[str], stdin: str | None, timeout: float) -> Answer:
    """Run ``argv`` in its own session; a timeout takes down all it started."""
    return remote.run(list(argv), timeout, stdin)


@dataclass(frozen=True)
class Hemma:
    """Hemma over ssh: one shell command line per call, stdin only when given."""

    target: str
    port: int = 22
    docker: str = "docker"
    timeout: float = 300.0
    answered: list[str] = field(default_factory=list, compare=False, repr=False)
    """The commands that reached Hemma so far, in this run."""

    def argv(self, remote: str) -> list[str]:
        return ["ssh", *SSH_OPTIONS, *port_options(self.port), self.target, remote]

    def run(self, remote: str, stdin: str | None = None, *, timeout: float | None = None) -> Answer:
        """``remote``'s answer. ssh's own failure on the first command is ``Unreachable``:
        every step's first command only reads, so nothing ran and nothing changed."""
        answer = run(self.argv(remote), stdin, self.timeout if timeout is None else timeout)
        if answer.code == SSH_FAILED and not self.answered:
            raise Unreachable(
                f"cannot reach {self.target} over ssh: {answer.why()}; nothing was run"
            )
        self.answered.append(remote)
        return answer

    def must(self, remote: str, stdin: str | None = None, *, timeout: float | None = None) -> str:
        answer = self.run(remote, stdin, timeout=timeout)
        if answer.code != 0:
            # The cause first: the command line can be a long script.
            raise Failed(f"on {self.target}: {answer.why()} (from: {shorten(remote, 100)})")
        return answer.stdout

    def docker_line(self, *args: str) -> str:
        return shlex.join([self.docker, *args])

    def psql_line(self, container: str, database: str = "postgres", *flags: str) -> str:
        """``docker exec -i CONTAINER psql ...`` as the superuser over the local socket."""
        return self.docker_line(
            "exec", "-i", name(container, "container"), "psql", *PSQL_FLAGS, *flags,
            "-U", "postgres", "-d", name(database, "database"),
        )  # fmt: skip

    def sql(self, container: str, sql: str, database: str = "postgres", *flags: str) -> str:
        return self.must(self.psql_line(container, database, *flags), sql)


def shorten(line: str, width: int = 160) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def sh(script: str, *args: str) -> str:
    """``sh -c SCRIPT sh ARGS...`` quoted once: the arguments stay data."""
    return shlex.join(["sh", "-c", script, "sh", *args])


def wait_ready(hemma: Hemma, container: str, seconds: float = 90.0) -> None:
    """Until ``pg_isready`` answers inside ``container``."""
    line = hemma.docker_line(
        "exec", name(container, "container"), "pg_isready", "-U", "postgres", "-q"
    )
    deadline = time.monotonic() + seconds
    while True:
        answer = hemma.run(line, timeout=30)
        if answer.code == 0:
            return
        if time.monotonic() > deadline:
            raise Failed(f"{container} did not accept connections in {seconds:.0f} s")
        time.sleep(1)


def warn(text: str) -> None:
    print(f"adopt: {text}", file=sys.stderr, flush=True)
