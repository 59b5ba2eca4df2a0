"""systemd unit files and the scripts that install and remove them: pure functions.

A ``UnitGroup`` is what one remote command manages on Hemma: a service and its
timer, or a long-running service, plus any helper files. Its install script
writes each file only when the content differs, reloads systemd only when
something changed, enables the unit and restarts it only on a change, so
running it twice leaves the same state. Its removal script stops, disables and
deletes everything the group installed.

Both scripts honour ``HEMMA_ROOT`` (a prefix for every path, empty on Hemma) so
that the tests can run them in a sandbox.
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from components.model.host import Daemon, HostFile, Job, Relay

UNIT_DIR = "/etc/systemd/system"


@dataclass(frozen=True)
class UnitGroup:
    name: str
    """Also the resource name."""
    files: tuple[HostFile, ...]
    start: tuple[str, ...]
    """Units to enable and keep running (the timer of a job, or a long-running service)."""
    stop: tuple[str, ...] = ()
    """Further units to stop and disable on removal (a job's service)."""
    schedule: str | None = None
    secret_file: str | None = None
    """Path of a root-only file whose content arrives on the command's stdin."""
    description: str = ""
    preflight: str = ""
    """Shell the install runs first; it stops the install when what the units need
    is missing on the host."""

    @property
    def unit_names(self) -> tuple[str, ...]:
        return tuple(f.path.rsplit("/", 1)[-1] for f in self.files if f.path.startswith(UNIT_DIR))


_EXEC_WORD = re.compile(r"[A-Za-z0-9._:/=,+@*()-]+")
"""Words systemd passes through as they are: no quote, backslash, ``%`` specifier,
``$`` variable or space for its Exec parser to act on."""


def exec_line(words: Sequence[str]) -> str:
    """An ``Exec*=`` value whose words reach the process exactly as given.

    The executable is an absolute path, so no ``+``, ``!``, ``-``, ``@`` or ``:``
    prefix can change how (or with which privileges) systemd runs it.
    """
    if not words or not words[0].startswith("/"):
        raise ValueError(f"an Exec line starts with an absolute path: {list(words)!r}")
    for word in words:
        if not _EXEC_WORD.fullmatch(word):
            raise ValueError(f"{word!r} is not a plain word for a unit's Exec line")
    return " ".join(words)


def unit(sections: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> str:
    """Render an INI-style unit file; a key may repeat (ExecStart of a oneshot).

    systemd ends a line at LF, CR and NUL and expands ``%`` everywhere, so no value
    may hold one: a value can add no directive and name no other file.
    """
    for _, entries in sections:
        for key, value in entries:
            if any(c in key + value for c in "\n\r\0%") or not key.isalnum():
                raise ValueError(f"{key}={value!r} cannot be written into a unit file")
    blocks = []
    for section, entries in sections:
        lines = [f"[{section}]", *(f"{key}={value}" for key, value in entries)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _schedule_words(schedule: str) -> str:
    return schedule if " " not in schedule and ":" not in schedule else f"at {schedule}"


def job_group(job: Job) -> UnitGroup:
    """A job as its service and timer: the runbooks' unit-file shape."""
    service_unit = [("Description", job.description)]
    service_unit += [("Requires", r) for r in job.requires]
    service_unit += [("After", r) for r in job.requires]
    execs = [("ExecStart", exec_line(command)) for command in job.exec_start]
    service = unit(
        [
            ("Unit", service_unit),
            ("Service", [("Type", "oneshot"), *execs]),
        ]
    )
    timer = unit(
        [
            ("Unit", [("Description", f"Run {job.what} {_schedule_words(job.schedule)}")]),
            ("Timer", [("OnCalendar", job.schedule), ("Persistent", "true")]),
            ("Install", [("WantedBy", "timers.target")]),
        ]
    )
    return UnitGroup(
        name=job.name,
        files=(
            HostFile(f"{UNIT_DIR}/{job.name}.service", service),
            HostFile(f"{UNIT_DIR}/{job.name}.timer", timer),
            *job.extra_files,
        ),
        start=(f"{job.name}.timer",),
        stop=(f"{job.name}.service",),
        schedule=job.schedule,
        secret_file=job.secret_file,
        description=job.description,
        preflight=job.preflight,
    )


def daemon_group(daemon: Daemon) -> UnitGroup:
    """A long-running service, restarted on failure, started at boot."""
    unit_entries = [("Description", daemon.description)]
    unit_entries += [("Wants", "network-online.target"), ("After", "network-online.target")]
    unit_entries += [("After", a) for a in daemon.after]
    service_entries = [("Type", "simple"), ("User", daemon.user)]
    if daemon.groups:
        service_entries.append(("SupplementaryGroups", " ".join(daemon.groups)))
    service_entries += [("Environment", f"{key}={value}") for key, value in daemon.environment]
    if daemon.working_directory:
        service_entries.append(("WorkingDirectory", daemon.working_directory))
    service_entries += [
        ("ExecStart", exec_line(daemon.exec_start)),
        ("Restart", "on-failure"),
        ("RestartSec", "5"),
    ]
    service = unit(
        [
            ("Unit", unit_entries),
            ("Service", service_entries),
            ("Install", [("WantedBy", "multi-user.target")]),
        ]
    )
    return UnitGroup(
        name=daemon.name,
        files=(HostFile(f"{UNIT_DIR}/{daemon.name}.service", service),),
        start=(f"{daemon.name}.service",),
        description=daemon.description,
    )


SOCKET_PROXY = "/usr/lib/systemd/systemd-socket-proxyd"


def relay_group(relay: Relay) -> UnitGroup:
    """A socket on ``listen`` and the proxy it starts, forwarding to ``target``."""
    socket = unit(
        [
            ("Unit", [("Description", relay.description)]),
            ("Socket", [("ListenStream", relay.listen), ("FreeBind", "yes")]),
            ("Install", [("WantedBy", "sockets.target")]),
        ]
    )
    service = unit(
        [
            (
                "Unit",
                [
                    ("Description", f"{relay.description}: the forwarder"),
                    ("Requires", f"{relay.name}.socket"),
                    ("After", f"{relay.name}.socket"),
                ],
            ),
            ("Service", [("ExecStart", exec_line((SOCKET_PROXY, relay.target)))]),
        ]
    )
    return UnitGroup(
        name=relay.name,
        files=(
            HostFile(f"{UNIT_DIR}/{relay.name}.socket", socket),
            HostFile(f"{UNIT_DIR}/{relay.name}.service", service),
        ),
        start=(f"{relay.name}.socket",),
        stop=(f"{relay.name}.service",),
        description=relay.description,
    )


_PUT = """\
root="${HEMMA_ROOT:-}"
changed=0
# put PATH MODE [BASE64]: install BASE64's bytes (or stdin) as PATH unless PATH
# already holds exactly that.
put() {
  local staged
  staged="$(mktemp)"
  if [ "$#" -ge 3 ]; then
    printf '%s' "$3" | base64 -d > "$staged"
  else
    cat > "$staged"
  fi
  if sudo -n cmp -s "$staged" "$root$1"; then
    rm -f "$staged"
    return 0
  fi
  sudo -n install -D -m "$2" "$staged" "$root$1"
  rm -f "$staged"
  changed=1
}
"""


def install_script(group: UnitGroup) -> str:
    """Idempotent install: write what differs, reload, enable, restart only on change."""
    lines = ["set -euo pipefail"]
    if group.preflight:
        lines.append(group.preflight.rstrip("\n"))
    lines.append(_PUT)
    for f in group.files:
        # base64 has no character a shell could act on and no heredoc marker to
        # collide with: the file's bytes arrive as they are, whatever they hold. An
        # empty file is '' (a third word): without it, put would read stdin, the
        # secret file's content.
        encoded = base64.b64encode(f.content.encode()).decode()
        lines.append(f"put {shlex.quote(f.path)} {f.mode} {shlex.quote(encoded)}")
    if group.secret_file:
        lines.append(f"put {shlex.quote(group.secret_file)} 0600  # content from stdin")
    units = " ".join(shlex.quote(u) for u in group.start)
    lines.append(
        'if [ "$changed" = 1 ]; then\n'
        "  sudo -n systemctl daemon-reload\n"
        "fi\n"
        f"sudo -n systemctl enable {units}\n"
        'if [ "$changed" = 1 ]; then\n'
        f"  sudo -n systemctl restart {units}\n"
        "else\n"
        f"  sudo -n systemctl start {units}\n"
        "fi"
    )
    return "\n".join(lines) + "\n"


def remove_script(group: UnitGroup) -> str:
    """Stop, disable and delete everything the group installed, then reload systemd."""
    units = " ".join(shlex.quote(u) for u in (*group.start, *group.stop))
    paths = [f.path for f in group.files]
    if group.secret_file:
        paths.append(group.secret_file)
    removals = "\n".join(f'sudo -n rm -f "$root"{shlex.quote(p)}' for p in paths)
    return (
        "set -euo pipefail\n"
        'root="${HEMMA_ROOT:-}"\n'
        "# Units that were never started or are already gone are not an error here.\n"
        f"sudo -n systemctl disable --now {units} || true\n"
        f"{removals}\n"
        "sudo -n systemctl daemon-reload\n"
    )
