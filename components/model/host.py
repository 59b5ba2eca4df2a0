"""Host jobs and daemons as data: what a systemd unit runs, not how it is written.

Apps declare their jobs (Skriptoteket's cleanup commands, Class Hub's
retention); the platform declares the rest (the GPU servers, log retention,
backups). ``components/host/unit_files.py`` renders them into unit files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostFile:
    """A file installed on Hemma, owned by root."""

    path: str
    content: str
    mode: str = "0644"


@dataclass(frozen=True)
class Job:
    """A oneshot service run by a timer."""

    name: str
    description: str
    what: str
    """Completes the timer's description: "Run <what> <schedule>"."""
    exec_start: tuple[tuple[str, ...], ...]
    """Commands run one after the other, each as its words."""
    schedule: str
    requires: tuple[str, ...] = ()
    extra_files: tuple[HostFile, ...] = ()
    secret_file: str | None = None
    """Path of a root-only file whose content arrives on the install command's stdin."""
    preflight: str = ""
    """Shell run before anything is installed; it stops the install (a tool the job
    needs is missing or too old) with its own message."""


@dataclass(frozen=True)
class Daemon:
    """A long-running service that systemd restarts when it fails."""

    name: str
    description: str
    exec_start: tuple[str, ...]
    """The executable and its arguments, one word each."""
    user: str
    after: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    working_directory: str | None = None


@dataclass(frozen=True)
class Relay:
    """A socket systemd listens on, forwarding each connection to a local address.

    systemd-socket-proxyd, started by its socket on the first connection: a server
    that listens on loopback only is reachable from the containers at docker0.
    """

    name: str
    description: str
    listen: str
    """``ADDRESS:PORT``; FreeBind lets it bind before the address exists."""
    target: str
    """``127.0.0.1:PORT``."""
