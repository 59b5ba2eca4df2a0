"""Reading the stack outputs the operator tools work from, and refusing what they cannot use."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, TypeGuard

# The newest outputs layout these tools understand; a stack that exports a newer
# one may have moved keys, so guessing would check the wrong things.
SCHEMA_VERSION = 3

ROOT = Path(__file__).resolve().parents[1]

# Outputs under keys like these hold passwords (basicAuthCredentials,
# postgresAdminPassword, appConnectionStrings, ...): nothing under them is printed.
_SECRET_KEY = re.compile(r"pass|secret|token|credential|connection|private|apikey", re.I)
_PLACEHOLDER = "[secret]"
# str.isdigit() also takes "²", which int() then refuses.
_DIGITS = re.compile(r"[0-9]{1,5}")


class BadInput(Exception):
    """Outputs or arguments the tools cannot work from: one line, exit 2."""


def user_path(path: str) -> Path:
    """A path as the operator typed it; the wrappers cd to the repo but pass the old cwd."""
    candidate = Path(path).expanduser()
    caller = os.environ.get("HEMMA_CALLER_DIR")
    if not candidate.is_absolute() and caller:
        return Path(caller) / candidate
    return candidate


def pulumi_argv() -> list[str]:
    """scripts/pulumi selects the stack and backend; plain pulumi is the fallback outside it."""
    wrapper = ROOT / "scripts" / "pulumi"
    if os.access(wrapper, os.X_OK):
        return [str(wrapper), "stack", "output", "--json", "--show-secrets"]
    return ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", "hemma"]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _from_pulumi() -> tuple[str, str]:
    argv = pulumi_argv()
    program = Path(argv[0])
    name = str(program.relative_to(ROOT)) if program.is_relative_to(ROOT) else argv[0]
    shown = " ".join([name, *argv[1:]])
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except FileNotFoundError:
        raise BadInput(f"cannot run {argv[0]}: not found; pass --outputs FILE") from None
    except subprocess.TimeoutExpired:
        raise BadInput(f"`{shown}` did not finish in 600 s") from None
    if done.returncode != 0:
        why = _last_line(done.stderr) or _last_line(done.stdout) or "no message"
        raise BadInput(f"`{shown}` exited {done.returncode}: {why}")
    return done.stdout, f"`{shown}`"


def _json_text(text: str) -> str:
    # scripts/pulumi may print a status line about the tunnel before Pulumi's JSON.
    if text.lstrip().startswith("{"):
        return text
    start = text.find("\n{")
    return text[start + 1 :] if start >= 0 else text


def load(path: str | None) -> dict[str, Any]:
    """The outputs from a file (``-`` is not special) or from the stack itself."""
    if path is None:
        text, source = _from_pulumi()
    else:
        file = user_path(path)
        source = str(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as error:
            raise BadInput(f"cannot read {source}: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise BadInput(f"{source} is not UTF-8 text") from None
    try:
        data = json.loads(_json_text(text))
    except json.JSONDecodeError as error:
        raise BadInput(
            f"{source} is not JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if not isinstance(data, dict):
        raise BadInput(f"{source} is not a JSON object of stack outputs")
    check_schema(data)
    return data


def check_schema(data: dict[str, Any]) -> None:
    version = data.get("schemaVersion")
    if version is None:
        raise BadInput(
            "outputs have no schemaVersion: export it from the stack (scripts/pulumi up)"
        )
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BadInput(f"outputs schemaVersion should be a positive integer, not {version!r}")
    if version > SCHEMA_VERSION:
        raise BadInput(
            f"outputs schemaVersion {version} is newer than these tools understand "
            f"({SCHEMA_VERSION}): update this checkout"
        )


def need(data: dict[str, Any], path: str, kind: type, within: str = "") -> Any:
    """The value at a dotted key path, of the given JSON type, or a one-line refusal.

    ``within`` names where ``data`` itself sits, for the message: an entry's own
    name may hold dots, so it cannot be part of ``path``.
    """
    value: Any = data
    walked = [within] if within else []
    for key in path.split("."):
        walked.append(key)
        if not isinstance(value, dict) or key not in value:
            raise BadInput(f"outputs have no {'.'.join(walked)}")
        value = value[key]
    path = ".".join(walked)
    if value == _PLACEHOLDER:
        raise BadInput(f"outputs {path} is hidden as a secret; read them with --show-secrets")
    if kind is int and isinstance(value, bool):
        raise BadInput(f"outputs {path} should be an integer")
    if not isinstance(value, kind):
        names = {
            dict: "an object",
            list: "a list",
            str: "a string",
            int: "an integer",
            bool: "true or false",
        }
        raise BadInput(f"outputs {path} should be {names.get(kind, kind.__name__)}")
    return value


def ssh_port(data: dict[str, Any], override: str | None) -> int:
    """The port Hemma's sshd listens on: ``--ssh-port``, else the ``sshPort`` output."""
    if override is not None:
        if not _DIGITS.fullmatch(override) or not 0 < int(override) < 65536:
            raise BadInput(f"--ssh-port should be a port number 1..65535, not {override!r}")
        return int(override)
    port = data.get("sshPort")
    if port is None:  # the local stack's is null: it has no sshd to reach
        raise BadInput("outputs have no sshPort: export it from the stack or pass --ssh-port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise BadInput(f"outputs sshPort should be a port number 1..65535, not {port!r}")
    return port


def host_port(text: str, where: str) -> tuple[str, int]:
    """``127.0.0.1:8085`` or ``[::1]:8085`` split into host and port."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not _DIGITS.fullmatch(port) or not 0 < int(port) < 65536:
        raise BadInput(f"outputs {where} should be HOST:PORT, not {text!r}")
    return host, int(port)


def secrets(data: Any, under_secret: bool = False) -> set[str]:
    """Every string that sits under a secret-looking key, at any depth."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            found |= secrets(value, under_secret or bool(_SECRET_KEY.search(str(key))))
    elif isinstance(data, list):
        for value in data:
            found |= secrets(value, under_secret)
    elif under_secret and isinstance(data, str) and data != _PLACEHOLDER and len(data) >= 4:
        found.add(data)
    return found


class Redactor:
    """Makes text safe and short for one table cell."""

    def __init__(self, data: dict[str, Any], width: int = 90) -> None:
        self._secrets = sorted(secrets(data), key=len, reverse=True)
        self._width = width

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = "".join(c if c.isprintable() else " " for c in text)
        text = " ".join(text.split())
        if len(text) > self._width:
            text = text[: self._width - 1] + "…"
        return text


HEMMA = "hemma"
"""The main server: every entry of outputs from before schemaVersion 3 runs on it,
and so does shared-postgres (``postgresTunnel``)."""
HOSTS_SINCE = 3
"""The schemaVersion that added ``hosts``, ``placement`` and each entry's ``host``."""
# A machine's name (outputs.schema.json#/$defs/host), and ssh's user@host: neither
# can begin with "-", so ssh never reads one as an option (-oProxyCommand=...).
_HOST_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")
_A_HOST_NAME = "a host name ([a-z][a-z0-9-]{0,30})"
_SSH_TARGET = re.compile(r"[a-z_][a-z0-9_-]*@[a-z0-9][a-z0-9.-]*")


def _host_name(name: object) -> TypeGuard[str]:
    return isinstance(name, str) and _HOST_NAME.fullmatch(name) is not None


def _reach(target: object, port: object, where: str) -> tuple[str | None, int | None]:
    if target is not None and (not isinstance(target, str) or not _SSH_TARGET.fullmatch(target)):
        raise BadInput(f"outputs {where}sshTarget should be user@host or null, not {target!r}")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
    ):
        raise BadInput(f"outputs {where}sshPort should be a port number 1..65535, not {port!r}")
    return target, port


def hosts(data: dict[str, Any]) -> dict[str, tuple[str | None, int | None]]:
    """Each machine by name -> its (sshTarget, sshPort) as the outputs export them
    (null for the local stack). Outputs from before schemaVersion 3 have no
    ``hosts``: their one machine is hemma, at the top-level sshTarget and sshPort."""
    version = data.get("schemaVersion")
    if isinstance(version, int) and version < HOSTS_SINCE:
        return {HEMMA: _reach(data.get("sshTarget"), data.get("sshPort"), "")}
    found = {}
    for name, entry in need(data, "hosts", dict).items():
        if not _host_name(name):
            raise BadInput(f"outputs hosts holds {name!r}, which is not {_A_HOST_NAME}")
        where = f"hosts.{name}"
        if not isinstance(entry, dict):
            raise BadInput(f"outputs {where} should be an object")
        found[name] = _reach(entry.get("sshTarget"), entry.get("sshPort"), f"{where}.")
    if HEMMA not in found:
        raise BadInput(f"outputs have no hosts.{HEMMA}")
    return found


def ssh_host(data: dict[str, Any], host: str) -> tuple[str, int]:
    """The ssh target (user@host) and port of the machine named ``host``, from the
    outputs; a port of null is 22 (ssh's own default, or ~/.ssh/config's)."""
    known = hosts(data)
    if host not in known:
        raise BadInput(f"outputs have no hosts.{host}")
    target, port = known[host]
    if target is None:
        raise BadInput(f"outputs have no sshTarget for {host} (null): no ssh reaches it")
    return target, 22 if port is None else port


def entry_host(data: dict[str, Any], entry: dict[str, Any], where: str) -> str:
    """The machine the entry at ``where`` runs on: its ``host``, else hemma (outputs
    from before schemaVersion 3). Refused unless it is one of ``hosts``."""
    if "host" not in entry:
        return HEMMA
    host = entry["host"]
    if not _host_name(host):
        raise BadInput(f"outputs {where}.host should be {_A_HOST_NAME}, not {host!r}")
    known = hosts(data)
    if host not in known:
        raise BadInput(
            f"outputs {where}.host is {host!r}, which is not in hosts ({', '.join(sorted(known))})"
        )
    return host


POSTGRES = "shared-postgres"
_POSTGRES_FORWARD = re.compile(r"-L ([0-9]{1,5}):(127\.0\.0\.1:[0-9]{1,5}) ")


def postgres_tunnel(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """shared-postgres's forward, read from ``postgresTunnel`` (null on the local stack)."""
    command = data.get("postgresTunnel")
    if command is None:
        return {}
    if not isinstance(command, str):
        raise BadInput("outputs postgresTunnel should be a string or null")
    found = _POSTGRES_FORWARD.search(command)
    if found is None:
        raise BadInput("outputs postgresTunnel holds no -L LOCAL:127.0.0.1:PORT forward")
    return {POSTGRES: {"localPort": int(found[1]), "remote": found[2], "host": HEMMA}}


def tunnels(data: dict[str, Any]) -> dict[str, Any]:
    """Every forward by name: ``sshTunnels`` and shared-postgres's."""
    return {**need(data, "sshTunnels", dict), **postgres_tunnel(data)}
