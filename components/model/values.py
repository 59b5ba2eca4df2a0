"""The value types config is made of: each one a string or number that a target reads.

Every validator matches the whole value (``fullmatch``): ``re.match`` with
``$`` also matches before a trailing newline, and a newline in a hostname or
an image reference reaches nginx, a unit file or an env entry. A failing
value raises ``ValueError`` with the sentence the operator sees after the key.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from components.model.calendar import CalendarError
from components.model.calendar import validate as validate_calendar


class Model(BaseModel):
    """Config models: unknown keys are errors, keys are camelCase, values are frozen."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME_RE = re.compile(rf"(?:{_LABEL}\.)+[a-z][a-z0-9-]{{0,61}}[a-z0-9]")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@(.+)")
_DOCKER_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
_IMAGE_RE = re.compile(
    r"(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._/-][a-z0-9]+)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)
_SIZE_RE = re.compile(r"[0-9]+[kKmMgG]?")
_SSH_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_HTPASSWD_USER_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_UNIT_NAME_RE = re.compile(r"[A-Za-z0-9:_.@-]+\.(?:service|socket|target|mount)")
_HOST_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)


def _check(pattern: re.Pattern[str], message: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(message)
        return value

    return check


def _hostname(value: str) -> str:
    if len(value) > 253 or not _HOSTNAME_RE.fullmatch(value):
        raise ValueError("not a valid hostname")
    return value


def _email(value: str) -> str:
    match = _EMAIL_RE.fullmatch(value)
    if not match or not _HOSTNAME_RE.fullmatch(match.group(1)):
        raise ValueError("not a valid email address")
    return value


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return value


def _image(value: str) -> str:
    if not _IMAGE_RE.fullmatch(value):
        raise ValueError("not a valid image reference")
    last = value.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        raise ValueError("must pin a tag or digest, e.g. postgres:16-alpine")
    return value


def _docker_host(value: str) -> str:
    if not value.startswith(("ssh://", "tcp://", "unix://")) or value.endswith("//"):
        raise ValueError("must be a Docker host URL: ssh://HOST, tcp://HOST:PORT or unix:///PATH")
    return value


def _host_key(value: str) -> str:
    parts = value.split()
    if len(parts) != 2 or parts[0] not in _HOST_KEY_TYPES:
        raise ValueError("must be a public host key 'TYPE BASE64', as ssh-keyscan prints it")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("host key is not valid base64") from None
    name_length = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + name_length].decode("ascii", "replace") != parts[0]:
        raise ValueError(f"host key data does not hold a {parts[0]} key")
    return value


def _schedule(value: str) -> str:
    try:
        return validate_calendar(value)
    except CalendarError as error:
        raise ValueError(f"not a systemd OnCalendar expression: {error}") from None


def _absolute_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value) or "//" in value:
        raise ValueError("must be an absolute path without spaces")
    return value


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("must be an IP address") from None


def _loopback(value: str) -> str:
    if not _address(value).is_loopback or value not in ("127.0.0.1", "::1"):
        raise ValueError("must be a loopback address (127.0.0.1 or ::1)")
    return value


BRIDGE_NETWORK = ipaddress.ip_network("172.16.0.0/12")
"""Where Docker puts its default bridge (docker0 is 172.17.0.1 unless --bip moves it)."""


def _bridge(value: str) -> str:
    address = _address(value)
    if address.version != 4 or address not in BRIDGE_NETWORK or str(address) != value:
        raise ValueError("must be the docker0 bridge address, such as 172.17.0.1")
    return value


def _argument(value: str) -> str:
    if not value or any(c in value for c in "\n\\$%;"):
        raise ValueError("must be a plain argument (no newline, backslash, $, % or ;)")
    return value


Hostname = Annotated[str, AfterValidator(_hostname)]
Email = Annotated[str, AfterValidator(_email)]
Port = Annotated[int, AfterValidator(_port)]
Image = Annotated[str, AfterValidator(_image)]
DockerName = Annotated[str, AfterValidator(_check(_DOCKER_NAME_RE, "not a valid Docker name"))]
BodySize = Annotated[
    str, AfterValidator(_check(_SIZE_RE, "must be an nginx size such as 1m or 650m"))
]
SshUser = Annotated[str, AfterValidator(_check(_SSH_USER_RE, "not a valid user name"))]
HtpasswdUser = Annotated[
    str, AfterValidator(_check(_HTPASSWD_USER_RE, "must be letters, digits, '.', '_' or '-'"))
]
DockerHost = Annotated[str, AfterValidator(_docker_host)]
HostKey = Annotated[str, AfterValidator(_host_key)]
Secret = Annotated[str, Field(min_length=1)]
Schedule = Annotated[str, AfterValidator(_schedule)]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]
UnitName = Annotated[
    str, AfterValidator(_check(_UNIT_NAME_RE, "must be a systemd unit name such as docker.service"))
]
def _private_network(value: str) -> str:
    try:
        network = ipaddress.ip_network(value)
    except ValueError:
        raise ValueError("must be a network such as 172.16.0.0/12") from None
    if not network.is_private or str(network) != value:
        raise ValueError("must be a private network, written as its address/prefix")
    return value


PrivateNetwork = Annotated[str, AfterValidator(_private_network)]
LoopbackAddress = Annotated[str, AfterValidator(_loopback)]
BridgeAddress = Annotated[str, AfterValidator(_bridge)]
UnitWord = Annotated[
    str,
    AfterValidator(
        _check(
            re.compile(r"[A-Za-z0-9._:/=,+@-]{1,256}"),
            "must be one word of letters, digits and ._:/=,+@- (systemd reads % $ quotes "
            "and spaces itself)",
        )
    ),
]
EnvName = Annotated[
    str,
    AfterValidator(_check(re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}"), "must be a variable name")),
]
Argument = Annotated[str, AfterValidator(_argument)]
Days = Annotated[int, Field(ge=1, le=3650)]
GroupId = Annotated[str, Field(pattern=r"^[0-9]{1,10}$")]
"""A numeric group id: a name would have to exist inside the image."""
AbsoluteOrRelativePath = Annotated[str, Field(min_length=1, pattern=r"^[^\s]+$")]
EnvValue = Annotated[str, Field(pattern=r"^[^\n]*$")]
LogOptValue = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:/=-]{1,128}$")]
