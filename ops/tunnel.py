"""Open the SSH port-forwards to Hemma's localhost-only services.

    python -m ops.tunnel                 # every tunnel in sshTunnels and postgresTunnel
    python -m ops.tunnel tabby --print   # just show the command

Each forward is ``ssh -N ... -L LOCAL:REMOTE sshTarget``, with ``-p sshPort`` when
that is not 22. autossh, when it is on PATH, brings a dropped tunnel back by itself.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from ops import outputs, remote
from ops.outputs import BadInput, host_port, need

# ServerAlive* notices a dead link within ~90 s; ExitOnForwardFailure turns a
# taken local port into an exit instead of a tunnel that silently is not there.
FORWARD_OPTIONS = (
    "-N",
    "-o",
    "ServerAliveInterval=30",
    "-o",
    "ServerAliveCountMax=3",
    "-o",
    "ExitOnForwardFailure=yes",
)


class Stop(Exception):
    """SIGTERM, handled like Ctrl-C."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tunnel", description="Open the SSH port-forwards to Hemma's localhost-only services."
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="tunnels to open (default: all)")
    parser.add_argument(
        "--outputs", metavar="FILE", help="stack outputs JSON (default: ask Pulumi)"
    )
    parser.add_argument("--ssh", metavar="TARGET", help="user@host to ssh to (default: sshTarget)")
    parser.add_argument("--ssh-port", metavar="PORT", help="Hemma's ssh port (default: sshPort)")
    parser.add_argument("--print", action="store_true", help="print the commands, run nothing")
    return parser.parse_args(argv)


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
    client = ["autossh", "-M", "0"] if autossh else ["ssh"]
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
        forward = ["-L", f"{local}:{address}", target]
        found.append((name, [*client, *FORWARD_OPTIONS, *remote.port_options(port), *forward]))
    return found


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stop


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
    finally:
        stop(list(live.values()))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data = outputs.load(args.outputs)
        target = outputs.ssh_target(data, args.ssh)
        port = outputs.ssh_port(data, args.ssh_port)
        autossh = shutil.which("autossh") is not None
        found = commands(data, args.names, target, autossh, port)
    except BadInput as error:
        print(f"tunnel: {error}", file=sys.stderr)
        return 2
    if args.print:
        for _, command in found:
            print(shlex.join(command))
        return 0
    signal.signal(signal.SIGTERM, _stop)
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for name, command in found:
            # A forward reads no stdin, and a passphrase prompt goes to the tty anyway.
            started.append((name, subprocess.Popen(command, stdin=subprocess.DEVNULL)))
            local, _, address = command[-2].partition(":")
            print(f"tunnel: {name} 127.0.0.1:{local} -> {address} on {target}", file=sys.stderr)
    except OSError as error:
        print(f"tunnel: cannot run {command[0]}: {error.strerror or error}", file=sys.stderr)
        stop([process for _, process in started])
        return 2
    except (KeyboardInterrupt, Stop):
        stop([process for _, process in started])
        return 0
    return hold(started)


if __name__ == "__main__":
    sys.exit(main())
