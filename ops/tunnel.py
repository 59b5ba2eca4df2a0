"""Open the SSH port-forwards to Hemma's localhost-only services.

    python -m ops.tunnel                 # every tunnel in sshTunnels and postgresTunnel
    python -m ops.tunnel tabby --print   # just show the command
    python -m ops.tunnel --forward 15432:127.0.0.1:5432 -- pulumi up   # while it runs

The forwards go to the machine each entry names (``host``; hemma when the outputs
predate schemaVersion 3, and always for shared-postgres's), grouped: one ssh process
per machine, ``ssh -N ... -L LOCAL:REMOTE [-L ...] TARGET`` (``ops/forwards.py``),
so one login each. Hemma's TARGET is the ``hemma`` alias of ~/.ssh/config (or
$HEMMA_SSH, or --ssh; --ssh-port); another machine's is its sshTarget and sshPort
in the outputs' ``hosts``. Each holds until Ctrl-C, or until the command given after
``--`` ends, and is stopped by its PID. autossh, when it is on PATH, brings a
dropped tunnel back by itself. ``--forward`` goes to hemma, one ssh per forward.

With ``--forward``, a local port that is already listening is used only when it is
a forward ``scripts/tunnel`` holds to the same place; anything else there (the local
stack's database, say) stops the run before the command starts. SIGTERM and SIGHUP
reach the command, which is waited for; the tunnels close after it.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from ops import forwards, outputs, remote
from ops.forwards import HELD, Started, Unknowable, forward_argv, forwards_argv
from ops.outputs import BadInput, host_port, need


class Stop(Exception):
    """SIGTERM or SIGHUP, handled like Ctrl-C."""


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
        "--ssh",
        metavar="TARGET",
        help="the ssh alias of Hemma (default: $HEMMA_SSH or hemma); hemma only: another "
        "machine is reached at its sshTarget in the outputs' hosts",
    )
    parser.add_argument(
        "--ssh-port",
        metavar="PORT",
        help="Hemma's ssh port (default: the alias's own); hemma only: another machine's "
        "is its sshPort in the outputs' hosts",
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


@dataclass(frozen=True)
class Group:
    """The chosen forwards to one machine, and the one ssh that holds them."""

    host: str
    target: str
    forwards: tuple[tuple[str, int, str], ...]
    """(name, local port, ``HOST:PORT``) of each."""
    argv: list[str]


def commands(
    data: dict[str, Any], names: list[str], target: str, autossh: bool, port: int = 22
) -> list[Group]:
    """The chosen tunnels (in the order asked, or all of them by name) grouped by the
    machine they go to, hemma first; ``target`` and ``port`` are hemma's."""
    tunnels = outputs.tunnels(data)
    unknown = [name for name in names if name not in tunnels]
    if unknown:
        known = ", ".join(sorted(tunnels)) or "none"
        raise BadInput(f"no tunnel named {', '.join(unknown)}; known: {known}")
    chosen = list(dict.fromkeys(names)) if names else sorted(tunnels)
    by_host: dict[str, list[tuple[str, int, str]]] = {outputs.HEMMA: []}
    for name in chosen:
        where = f"sshTunnels.{name}"
        if not isinstance(tunnels[name], dict):
            raise BadInput(f"outputs {where} should be an object")
        local = need(tunnels[name], "localPort", int, within=where)
        address = need(tunnels[name], "remote", str, within=where)
        host_port(address, f"{where}.remote")
        if not 0 < local < 65536:
            raise BadInput(f"outputs {where}.localPort should be a port number, not {local}")
        host = outputs.entry_host(data, tunnels[name], where)
        by_host.setdefault(host, []).append((name, local, address))
    found = []
    for host, forwards_ in by_host.items():
        if not forwards_:
            continue
        to, at = remote.reach(data, host, (target, port))
        pairs = [(local, address) for _, local, address in forwards_]
        found.append(Group(host, to, tuple(forwards_), forwards_argv(pairs, to, autossh, at)))
    return found


def parse_forward(text: str) -> tuple[int, str]:
    """``LOCAL:HOST:PORT`` into the local port and ``HOST:PORT``."""
    local, _, address = text.partition(":")
    if not local.isdigit() or not 0 < int(local) < 65536:
        raise BadInput(f"--forward {text!r}: expected LOCAL:HOST:PORT")
    host_port(address, f"--forward {text}")
    return int(local), address


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stop


def hold(started: Started) -> int:
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


def run_while_held(pairs: list[tuple[int, str]], target: str, port: int, command: list[str]) -> int:
    """Open the forwards (or use scripts/tunnel's there already), run ``command``,
    then close what was opened here. The command's status is the result."""
    autossh = shutil.which("autossh") is not None
    started: Started = []
    paths: list[Path] = []
    borrowed: dict[str, int] = {}
    with forwards.held(started, paths):
        for local, address in pairs:
            name = f"127.0.0.1:{local} -> {address} on {target}"
            try:
                if forwards.listening(local):
                    pid = forwards.held_forward(local, address, target)
                    if pid is None:
                        print(
                            f"tunnel: 127.0.0.1:{local} is already taken, and not by a tunnel"
                            f" of scripts/tunnel to {address} on {target} (the local stack's"
                            " database? another ssh?): stop it, or choose another port",
                            file=sys.stderr,
                        )
                        return 2
                    borrowed[name] = pid
                    print(f"tunnel: using scripts/tunnel's {name}", file=sys.stderr)
                    continue
                argv = forward_argv(local, address, target, autossh, port)
                process = forwards.start(argv)
                started.append((name, process))
                paths.append(forwards.record(local, process, argv, "command"))
                failed = forwards.ready(name, process, local)
            except Unknowable as error:
                print(f"tunnel: {error}", file=sys.stderr)
                return 2
            if failed is not None:
                print(f"tunnel: {failed}", file=sys.stderr)
                return 1
            print(f"tunnel: {name}", file=sys.stderr)
        code = run_command(command) if command else hold(started)
        for name, process in started:
            if process.poll() is not None:
                print(
                    f"tunnel: {name} ended during the command (status {process.returncode})",
                    file=sys.stderr,
                )
        for name, pid in borrowed.items():
            if not forwards.alive(pid):
                print(f"tunnel: scripts/tunnel's {name} ended during the command", file=sys.stderr)
        return code


def run_command(command: list[str]) -> int:
    """Run ``command`` to its end. Ctrl-C reaches it from the terminal (it shares the
    terminal's process group; the tunnels do not); SIGTERM and SIGHUP sent here are
    passed on to it. Either way it is waited for, so it can finish what it does."""
    try:
        child = subprocess.Popen(command, preexec_fn=_default_signals)
    except OSError as error:
        print(f"tunnel: cannot run {command[0]}: {error.strerror or error}", file=sys.stderr)
        return 127

    def pass_on(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous = {
        sig: signal.signal(sig, handler)
        for sig, handler in (
            (signal.SIGINT, signal.SIG_IGN),
            (signal.SIGTERM, pass_on),
            (signal.SIGHUP, pass_on),
        )
    }
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    args, command = parse_args(argv)
    try:
        target = remote.target(args.ssh)
        port = outputs.ssh_port({}, args.ssh_port) if args.ssh_port is not None else 22
        if args.forward:
            pairs = [parse_forward(text) for text in args.forward]
        else:
            data = outputs.load(args.outputs)
            autossh = shutil.which("autossh") is not None
            found = commands(data, args.names, target, autossh, port)
    except (BadInput, remote.BadTarget) as error:
        print(f"tunnel: {error}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    if args.forward:
        if args.print:
            for local, address in pairs:
                print(shlex.join(forward_argv(local, address, target, False, port)))
            return 0
        try:
            return run_while_held(pairs, target, port, command)
        except (KeyboardInterrupt, Stop):
            return 130
    if args.print:
        for group in found:
            print(shlex.join(group.argv))
        return 0
    started: Started = []
    paths: list[Path] = []
    with forwards.held(started, paths):
        try:
            for group in found:
                # One ssh per machine; each forward in it is watched and reported by name.
                process = forwards.start(group.argv)
                for name, local, address in group.forwards:
                    started.append((name, process))
                    paths.append(forwards.record(local, process, group.argv, HELD))
                    print(
                        f"tunnel: {name} 127.0.0.1:{local} -> {address} on {group.target}",
                        file=sys.stderr,
                    )
        except OSError as error:
            print(f"tunnel: cannot run {group.argv[0]}: {error.strerror or error}", file=sys.stderr)
            return 2
        except (KeyboardInterrupt, Stop):
            return 0
        return hold(started)


if __name__ == "__main__":
    sys.exit(main())
