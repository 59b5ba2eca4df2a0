"""The doctor's checks, built from the stack outputs; each one is a small function of a Context."""

from __future__ import annotations

import base64
import http.client
import shlex
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ops import remote
from ops.outputs import HEMMA, BadInput, entry_host, host_port, need, tunnels
from ops.rollout import running_container

# Report order: from what the world sees inwards.
KINDS = ("https", "cert", "internal", "tunnel", "backup", "drift")

OK, FAIL, OFF, SKIPPED = "ok", "FAIL", "off", "skipped"

Address = tuple[str, int]


@dataclass(frozen=True)
class Outcome:
    status: str
    detail: str
    final: bool = False  # another try would give the same answer


@dataclass(frozen=True)
class Context:
    timeout: float
    tls: ssl.SSLContext
    cert_warn_days: float
    backup_max_age_hours: float
    sessions: Mapping[str, remote.Session] = field(default_factory=dict)
    """The run's one login to each machine (by host name), for every check over ssh."""
    drift_max_age_hours: float = 36.0
    """The outputs' drift.staleAfterHours, when they have it."""


@dataclass(frozen=True)
class Check:
    kind: str
    short: str
    target: str
    probe: Callable[[Context], Outcome]
    needs_ssh: bool = False
    rank: int = 0  # within a kind, before the name in the report's order
    host: str = HEMMA
    """The machine a check over ssh runs on."""

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.short}"


def parse_resolve(items: list[str]) -> dict[str, tuple[str, int | None]]:
    """``HOST:IP[:PORT]`` (IPv6 as ``[::1]``) into host -> (ip, port or None)."""
    found: dict[str, tuple[str, int | None]] = {}
    for item in items:
        host, _, rest = item.partition(":")
        port: str | None = None
        if rest.startswith("["):
            ip, _, tail = rest[1:].partition("]")
            port = tail[1:] if tail.startswith(":") else (tail or None)
        else:
            ip, _, tail = rest.partition(":")
            port = tail or None
        if not host or not ip or (port is not None and not (port.isascii() and port.isdigit())):
            raise BadInput(f"--resolve {item!r}: expected HOST:IP or HOST:IP:PORT")
        found[host.lower()] = (ip, int(port) if port else None)
    return found


def network_error(error: BaseException, timeout: float) -> str:
    """A few words for what the network said."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS: {error.verify_message or error.reason}"
    if isinstance(error, ssl.SSLError):
        return f"TLS: {error.reason or error}"
    if isinstance(error, TimeoutError | socket.timeout):
        return f"timed out after {timeout:g} s"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve: {error.strerror}"
    if isinstance(error, http.client.HTTPException):
        return f"bad HTTP answer: {type(error).__name__}"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return f"{type(error).__name__}: {error}"


class _Http(http.client.HTTPConnection):
    """Talks to ``address`` while the Host header (and SNI) still name the URL's host."""

    def __init__(self, host: str, port: int, address: Address, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def _tls(self, sock: socket.socket) -> socket.socket:
        return sock

    def connect(self) -> None:
        self.sock = self._tls(socket.create_connection(self.address, self.timeout))


class _Https(_Http):
    default_port = 443

    def __init__(
        self, host: str, port: int, address: Address, timeout: float, tls: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, address, timeout)
        self.context = tls

    def _tls(self, sock: socket.socket) -> socket.socket:
        return self.context.wrap_socket(sock, server_hostname=self.host)


def _shown_url(url: str) -> str:
    # A URL may carry user:password@; the table never shows it.
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _public(
    url: str, address: Address, auth: str | None, behind_basic_auth: bool
) -> Callable[[Context], Outcome]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    port = parts.port or (443 if parts.scheme == "https" else 80)

    def probe(ctx: Context) -> Outcome:
        connection: _Http = (
            _Https(host, port, address, ctx.timeout, ctx.tls)
            if parts.scheme == "https"
            else _Http(host, port, address, ctx.timeout)
        )
        headers = {"User-Agent": "hemma-doctor", "Accept": "*/*", "Connection": "close"}
        if auth:
            headers["Authorization"] = auth
        try:
            connection.request("GET", path, headers=headers)
            answer = connection.getresponse()
            status, reason = answer.status, answer.reason
        except Exception as error:
            verify = isinstance(error, ssl.SSLCertVerificationError)
            return Outcome(FAIL, network_error(error, ctx.timeout), final=verify)
        finally:
            connection.close()
        if 200 <= status < 400:
            return Outcome(OK, f"{status} {reason}")
        if status == 401 and behind_basic_auth and not auth:
            return Outcome(OK, "401: behind basic auth, no credentials in the outputs")
        return Outcome(FAIL, f"HTTP {status} {reason}")

    return probe


def _cert(host: str, address: Address) -> Callable[[Context], Outcome]:
    def probe(ctx: Context) -> Outcome:
        try:
            with (
                socket.create_connection(address, ctx.timeout) as raw,
                ctx.tls.wrap_socket(raw, server_hostname=host) as tls,
            ):
                cert = tls.getpeercert()
        except Exception as error:
            verify = isinstance(error, ssl.SSLCertVerificationError)
            return Outcome(FAIL, network_error(error, ctx.timeout), final=verify)
        not_after = str((cert or {}).get("notAfter", ""))
        if not not_after:
            return Outcome(FAIL, "the certificate has no notAfter", final=True)
        expires = ssl.cert_time_to_seconds(not_after)
        days = (expires - time.time()) / 86400
        when = time.strftime("%Y-%m-%d", time.gmtime(expires))
        if days < ctx.cert_warn_days:
            return Outcome(
                FAIL,
                f"expires in {int(days)} days ({when}), under {ctx.cert_warn_days:g}",
                final=True,
            )
        return Outcome(OK, f"expires in {int(days)} days ({when})")

    return probe


Judge = Callable[[remote.Answer, Context], Outcome]


def over_ssh(remote_command: str, judge: Judge, host: str = HEMMA) -> Callable[[Context], Outcome]:
    """A check run on ``host`` through the run's one login to it. ssh's own failure
    (exit 255) is never tried again, and stops every later check on that host from
    trying: an authentication failure repeated is how fail2ban bans."""

    def probe(ctx: Context) -> Outcome:
        session = ctx.sessions.get(host)
        if session is None:
            return Outcome(SKIPPED, "no ssh session", final=True)
        refused = session.usable()
        if refused is not None:
            return Outcome(SKIPPED, f"not run: ssh to {session.target}: {refused}", final=True)
        answer = session.run(remote_command, ctx.timeout)
        if answer.code is None:
            return Outcome(FAIL, f"timed out after {ctx.timeout:g} s")
        if answer.code == remote.SSH_FAILED:
            reason = remote.why(answer) or "exit 255"
            session.broken(reason)
            return Outcome(FAIL, f"ssh failed: {reason}", final=True)
        return judge(answer, ctx)

    return probe


def on_host(target: str, host: str) -> str:
    """A check's target as the table shows it: hemma's as it is, another machine's
    with that machine's name."""
    return target if host == HEMMA else f"{target} on {host}"


def internal_command(container: str, probe: list[str]) -> str:
    """``docker exec`` into the container that serves ``container`` (``running_container``)."""
    found = f'"$({running_container("docker", container)})"'
    return " ".join(["docker", "exec", found, *map(shlex.quote, probe)])


def tunnel_command(host: str, port: int) -> str:
    # bash opens /dev/tcp/HOST/PORT itself, so Hemma needs no nc or curl.
    return shlex.join(["bash", "-c", "exec 3<>" + shlex.quote(f"/dev/tcp/{host}/{port}")])


def _probe_passed(answer: remote.Answer, ctx: Context) -> Outcome:
    if answer.code == 0:
        return Outcome(OK, "probe exited 0")
    return Outcome(FAIL, f"probe failed (exit {answer.code}): {remote.why(answer)}".rstrip(": "))


def _port_open(answer: remote.Answer, ctx: Context) -> Outcome:
    if answer.code == 0:
        return Outcome(OK, "accepts connections")
    # bash says "bash: line 1: /dev/tcp/HOST/PORT: Connection refused"; the end is the news.
    reason = remote.why(answer).rpartition(": ")[2] or f"exit {answer.code}"
    return Outcome(FAIL, f"does not accept connections: {reason}")


def off(detail: str) -> Callable[[Context], Outcome]:
    return lambda ctx: Outcome(OFF, detail)


def _credentials(data: dict[str, Any], host: str) -> str | None:
    entry = data.get("basicAuthCredentials", {})
    entry = entry.get(host) if isinstance(entry, dict) else None
    if not isinstance(entry, dict):
        return None
    user, password = entry.get("username"), entry.get("password")
    if not isinstance(user, str) or not isinstance(password, str) or password == "[secret]":
        return None
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def public_checks(data: dict[str, Any], resolve: dict[str, tuple[str, int | None]]) -> list[Check]:
    routes = data.get("routes", {})
    checks: list[Check] = []
    for key, url in need(data, "healthChecks.public", dict).items():
        if not isinstance(url, str) or urlsplit(url).scheme not in ("https", "http"):
            raise BadInput(f"outputs healthChecks.public.{key} should be an https:// URL")
        parts = urlsplit(url)
        host = parts.hostname or ""
        if not host:
            raise BadInput(f"outputs healthChecks.public.{key} has no host")
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        ip, forced = resolve.get(host, (host, None))
        address = (ip, forced or port)
        route = routes.get(key) if isinstance(routes, dict) else None
        behind = isinstance(route, dict) and route.get("basicAuth") is True
        target = _shown_url(url) + (f"@{address[0]}:{address[1]}" if host in resolve else "")
        probe = _public(url, address, _credentials(data, key), behind)
        checks.append(Check("https", key, target, probe))
        if https:
            shown = f"{host}:{port}" + (f"@{address[0]}:{address[1]}" if host in resolve else "")
            checks.append(Check("cert", key, shown, _cert(host, address)))
    return checks


def internal_checks(data: dict[str, Any]) -> list[Check]:
    checks = []
    for container, entry in need(data, "healthChecks.internal", dict).items():
        where = f"healthChecks.internal.{container}"
        if not isinstance(entry, dict):
            raise BadInput(f"outputs {where} should be an object with url and probe")
        probe = entry.get("probe")
        if not isinstance(probe, list) or not probe or not all(isinstance(w, str) for w in probe):
            raise BadInput(f"outputs {where}.probe should be a non-empty list of strings")
        if container.startswith("-"):
            raise BadInput(f"refusing container name {container!r} from {where}")
        host = entry_host(data, entry, where)
        url = entry.get("url")
        target = on_host(_shown_url(url) if isinstance(url, str) else container, host)
        command = over_ssh(internal_command(container, probe), _probe_passed, host)
        checks.append(Check("internal", container, target, command, True, host=host))
    return checks


def tunnel_checks(data: dict[str, Any]) -> list[Check]:
    """Each forward ``tunnel`` opens, shared-postgres's included: its remote end must
    accept a connection on the machine the forward goes to."""
    checks = []
    for name, entry in tunnels(data).items():
        where = f"sshTunnels.{name}"
        if not isinstance(entry, dict):
            raise BadInput(f"outputs {where} should be an object")
        machine = entry_host(data, entry, where)
        address = need(entry, "remote", str, within=where)
        host, port = host_port(address, f"{where}.remote")
        probe = over_ssh(tunnel_command(host, port), _port_open, machine)
        checks.append(Check("tunnel", name, on_host(address, machine), probe, True, host=machine))
    return checks
