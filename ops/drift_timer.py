"""``scripts/drift install`` and ``uninstall``: the drift check as a systemd user timer.

The timer runs ``scripts/drift`` on the operator's machine, where the state and its
passphrase live. The units hold paths and names only: the passphrase stays in the
operator's own file (``PULUMI_CONFIG_PASSPHRASE_FILE``, read by Pulumi itself), and
the install refuses a file others can read, or a passphrase given only as
``PULUMI_CONFIG_PASSPHRASE``, which the unit would have to hold.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from ops.outputs import ROOT, BadInput, user_path

NAME = "hemma-drift"
DEFAULT_CALENDAR = "daily"
# Settings the check reads that are no secret, carried from the install's environment.
CARRIED = ("HEMMA_STACK", "HEMMA_SSH", "HEMMA_STATE_DIR", "PULUMI_BACKEND_URL", "SSH_AUTH_SOCK")
# systemd quotes: a value with these would need escaping the install does not attempt.
_UNSAFE = set('"\\\n%$;`')


def unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def _value(name: str, value: str) -> str:
    if not value or any(c in _UNSAFE for c in value) or value != value.strip():
        raise BadInput(f"{name}={value!r}: a unit cannot carry that value as it is")
    return value


def passphrase_file(given: str | None) -> Path:
    chosen = given or os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if not chosen:
        raise BadInput(
            "the timer needs --passphrase-file FILE (or PULUMI_CONFIG_PASSPHRASE_FILE): "
            "the unit never holds the passphrase itself"
        )
    path = user_path(chosen).resolve()
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise BadInput(f"passphrase file {path}: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        raise BadInput(f"passphrase file {path} is not a regular file")
    if mode & 0o077:
        raise BadInput(f"passphrase file {path} is readable by others: chmod 600 {path}")
    return path


def calendar(expression: str) -> str:
    """Checked by systemd itself, as the timer will read it."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        raise BadInput("systemd-analyze is not installed: the timer needs systemd")
    done = subprocess.run(
        [analyze, "calendar", expression], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BadInput(f"--on-calendar {expression!r}: systemd does not read it as a calendar")
    return _value("--on-calendar", expression)


def units(on_calendar: str, passphrase: Path, environ: dict[str, str]) -> dict[str, str]:
    """The service and timer files, by name."""
    pulumi = shutil.which("pulumi", path=environ.get("PATH"))
    if pulumi is None:
        raise BadInput("the Pulumi CLI is not on PATH: the timer runs it")
    # A user manager's PATH is short; the CLI often lives in ~/.pulumi/bin.
    path = ":".join(dict.fromkeys([str(Path(pulumi).parent), "/usr/local/bin", "/usr/bin", "/bin"]))
    settings = [
        f"PATH={_value('PATH', path)}",
        f"PULUMI_CONFIG_PASSPHRASE_FILE={_value('--passphrase-file', str(passphrase))}",
    ]
    settings += [f"{k}={_value(k, environ[k])}" for k in CARRIED if environ.get(k)]
    script = ROOT / "scripts" / "drift"
    service = "\n".join(
        [
            "[Unit]",
            "Description=hemma: does Hemma still match the stack? (scripts/drift)",
            "",
            "[Service]",
            "Type=oneshot",
            f"WorkingDirectory={_value('the checkout', str(ROOT))}",
            *(f'Environment="{s}"' for s in settings),
            f'ExecStart="{_value("scripts/drift", str(script))}" check',
            "# 2 is drift, reported on Hemma by the metrics; only 1 (no check) fails the unit.",
            "SuccessExitStatus=2",
            "Nice=10",
            "",
        ]
    )
    timer = "\n".join(
        [
            "[Unit]",
            "Description=hemma: drift check of Hemma against the stack",
            "",
            "[Timer]",
            f"OnCalendar={on_calendar}",
            "# A run missed while the machine was off or asleep runs at the next start.",
            "Persistent=true",
            "RandomizedDelaySec=15min",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )
    return {f"{NAME}.service": service, f"{NAME}.timer": timer}


def systemctl(*args: str) -> None:
    command = os.environ.get("HEMMA_SYSTEMCTL", "systemctl")
    done = subprocess.run([command, "--user", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise BadInput(f"systemctl --user {' '.join(args)}: {why[-1] if why else done.returncode}")


def install(args: argparse.Namespace) -> int:
    files = units(calendar(args.on_calendar), passphrase_file(args.passphrase_file), {**os.environ})
    directory = unit_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        partial = directory / f".{name}.new"
        partial.write_text(text)
        partial.replace(directory / name)
    systemctl("daemon-reload")
    systemctl("enable", "--now", f"{NAME}.timer")
    print(f"drift: {NAME}.timer installed in {directory}, {args.on_calendar}")
    return 0


def uninstall(args: argparse.Namespace) -> int:
    directory = unit_dir()
    present = [directory / f"{NAME}.{kind}" for kind in ("timer", "service")]
    if any(p.exists() for p in present):
        systemctl("disable", "--now", f"{NAME}.timer")
    for path in present:
        path.unlink(missing_ok=True)
    systemctl("daemon-reload")
    print(f"drift: {NAME}.timer removed")
    return 0


def add_commands(sub: Any) -> None:
    adding = sub.add_parser("install", help="run the check from a systemd user timer")
    adding.add_argument("--on-calendar", default=DEFAULT_CALENDAR, help="when (daily)")
    adding.add_argument("--passphrase-file", metavar="FILE", help="the stack's passphrase file")
    adding.set_defaults(func=_safely(install))
    removing = sub.add_parser("uninstall", help="remove the timer")
    removing.set_defaults(func=_safely(uninstall))


def _safely(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args))
        except BadInput as error:
            print(f"drift: {error}", file=sys.stderr)
            return 1

    return run
