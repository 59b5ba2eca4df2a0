"""The value types config is made of: each one a string or number that a target reads.

Every value that reaches a unit file, a shell, nginx, an htpasswd file or an
env entry is held to a grammar matched against the whole string
(``fullmatch``: ``re.match`` with ``$`` also matches before a trailing
newline). The grammars are ASCII: a look-alike letter is not a letter here.
Where a target gives characters a meaning of their own (systemd's ``%``,
``$``, quotes and line ends; a shell's metacharacters) the grammar leaves them
out, or the value is quoted for that target where it is used. A failing value
raises ``ValueError`` with the sentence the operator sees after the key.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from components.model.calendar import CalendarError
from components.model.calendar import validate as validate_calendar

MAX_TEXT = 4096
"""No config string is longer: a huge value is a mistake, and error lines cite prefixes."""


def _no_booleans(value: Any) -> Any:
    """``true`` is not 1: pydantic would read a JSON boolean as an integer."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


def _flag(value: Any) -> Any:
    """true or false, as JSON or as the CLI's text; not "yes", "on" or 1."""
    if isinstance(value, bool) or value in ("true", "false"):
        return value
    raise ValueError("must be true or false")


class Model(BaseModel):
    """Config models: unknown keys are errors, keys are camelCase only (``host_port`` is
    an unknown key, not ``hostPort``), values are frozen."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME_RE = re.compile(rf"(?:{_LABEL}\.)+[a-z][a-z0-9-]{{0,61}}[a-z0-9]")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]{1,64}@(.+)")
_DOCKER_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
_IMAGE_RE = re.compile(
    r"(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._/-][a-z0-9]+)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)
_SIZE_RE = re.compile(r"[0-9]{1,9}[kKmMgG]?")
_SSH_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_HTPASSWD_USER_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ABSOLUTE_PATH_RE = re.compile(r"(?:/[A-Za-z0-9._@+-]+)+/?|/")
_PATH_RE = re.compile(r"[A-Za-z0-9._@+/-]{1,1024}")
_UNIT_WORD_RE = re.compile(r"[A-Za-z0-9._:/=,+@-]{1,256}")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_DOCKER_HOST_RE = re.compile(
    r"ssh://(?:[a-z_][a-z0-9_-]{0,31}@)?[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?"
    r"|tcp://[A-Za-z0-9.-]{1,253}:[0-9]{1,5}"
    r"|unix://(?:/[A-Za-z0-9._@+-]+)+"
)
_HOST_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)


def matching(pattern: re.Pattern[str], message: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(message)
        return value

    return check


def _printable(value: str) -> str:
    """A value for an env entry: no line end, NUL or other control character."""
    if _CONTROL.search(value):
        raise ValueError("must not hold a line end, NUL or other control character")
    if len(value) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT} characters")
    return value


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
    if len(value) > 512 or not _IMAGE_RE.fullmatch(value):
        raise ValueError("not a valid image reference")
    last = value.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        raise ValueError("must pin a tag or digest, e.g. postgres:16-alpine")
    return value


def _docker_host(value: str) -> str:
    if not _DOCKER_HOST_RE.fullmatch(value):
        raise ValueError("must be a Docker host URL: ssh://HOST, tcp://HOST:PORT or unix:///PATH")
    return value


def _host_key(value: str) -> str:
    parts = value.split(" ")
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
    if not re.fullmatch(r"[!-~]+(?: [!-~]+)*", value):
        raise ValueError(
            "not a systemd OnCalendar expression: words of printable ASCII, one space apart"
        )
    try:
        return validate_calendar(value)
    except CalendarError as error:
        raise ValueError(f"not a systemd OnCalendar expression: {error}") from None


def absolute_path(value: str) -> str:
    if len(value) > 1024 or not _ABSOLUTE_PATH_RE.fullmatch(value) or "/../" in f"{value}/":
        raise ValueError("must be an absolute path of letters, digits and ._@+- (no spaces, no ..)")
    return value


def _executable(value: str) -> str:
    absolute_path(value)
    if value.endswith("/"):
        raise ValueError("must be the path of a program, not of a directory")
    return value


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("must be an IP address") from None


def _loopback(value: str) -> str:
    if value not in ("127.0.0.1", "::1"):
        raise ValueError("must be a loopback address (127.0.0.1 or ::1)")
    return value


BRIDGE_NETWORK = ipaddress.ip_network("172.16.0.0/12")
"""Where Docker puts its default bridge (docker0 is 172.17.0.1 unless --bip moves it)."""


def _bridge(value: str) -> str:
    address = _address(value)
    if address.version != 4 or address not in BRIDGE_NETWORK or str(address) != value:
        raise ValueError("must be the docker0 bridge address, such as 172.17.0.1")
    return value


def _private_network(value: str) -> str:
    try:
        network = ipaddress.ip_network(value)
    except ValueError:
        raise ValueError("must be a network such as 172.16.0.0/12") from None
    if not network.is_private or str(network) != value:
        raise ValueError("must be a private network, written as its address/prefix")
    return value


def _nonempty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _one_word(value: str) -> str:
    if any(c.isspace() for c in value):
        raise ValueError("must not hold a space")
    return value


Number = BeforeValidator(_no_booleans)
Flag = Annotated[bool, BeforeValidator(_flag)]
Hostname = Annotated[str, AfterValidator(_hostname)]
Email = Annotated[str, AfterValidator(_email)]
Port = Annotated[int, Number, AfterValidator(_port)]
Image = Annotated[str, AfterValidator(_image)]
DockerName = Annotated[str, AfterValidator(matching(_DOCKER_NAME_RE, "not a valid Docker name"))]
BodySize = Annotated[
    str, AfterValidator(matching(_SIZE_RE, "must be an nginx size such as 1m or 650m"))
]
SshUser = Annotated[str, AfterValidator(matching(_SSH_USER_RE, "not a valid user name"))]
HostName = Annotated[
    str,
    AfterValidator(
        matching(re.compile(r"[a-z][a-z0-9-]{0,30}"), "not a host name (a-z, 0-9, -; 31 at most)")
    ),
]
"""A machine's name in ``hemma:hosts`` (``hemma`` is the server itself)."""

PLATFORM_HOST = "hemma"
"""The machine that runs the platform: nginx-proxy, shared-postgres, the backups."""


class Placed(Model):
    """Settings of something placed on a machine: an app, the GPU servers."""

    host: HostName = PLATFORM_HOST
    """A name in ``hemma:hosts``; ``hemma`` is the server the top-level keys reach."""


HtpasswdUser = Annotated[
    str, AfterValidator(matching(_HTPASSWD_USER_RE, "must be letters, digits, '.', '_' or '-'"))
]
DockerHost = Annotated[str, AfterValidator(_docker_host)]
HostKey = Annotated[str, AfterValidator(_host_key)]
PrivateKeyText = Annotated[str, Field(min_length=1, max_length=16384)]
"""An SSH private key: several lines, passed to pulumi-command as a secret only."""
Secret = Annotated[str, Field(min_length=1), AfterValidator(_printable)]
"""An operator-held secret that becomes an env value."""
Schedule = Annotated[str, AfterValidator(_schedule)]
AbsolutePath = Annotated[str, AfterValidator(absolute_path)]
ExecutablePath = Annotated[str, AfterValidator(_executable)]
PrivateNetwork = Annotated[str, AfterValidator(_private_network)]
LoopbackAddress = Annotated[str, AfterValidator(_loopback)]
BridgeAddress = Annotated[str, AfterValidator(_bridge)]
UnitWord = Annotated[
    str,
    AfterValidator(
        matching(
            _UNIT_WORD_RE,
            "must be one word of letters, digits and ._:/=,+@- (systemd reads % $ quotes "
            "and spaces itself)",
        )
    ),
]
EnvName = Annotated[
    str, AfterValidator(matching(_ENV_NAME_RE, "must be a variable name: letters, digits, _"))
]
EnvValue = Annotated[str, AfterValidator(_printable)]
Argument = Annotated[str, AfterValidator(_nonempty), AfterValidator(_printable)]
LoginName = Annotated[
    str, AfterValidator(_nonempty), AfterValidator(_printable), AfterValidator(_one_word)
]
"""A user name a server logs in with (SMTP): no space, which would only be a typo."""
Days = Annotated[int, Number, Field(ge=1, le=3650)]
Count = Annotated[int, Number, Field(ge=1, le=3600)]
Seconds = Annotated[float, Number, Field(gt=0, le=600)]
GroupId = Annotated[str, AfterValidator(matching(re.compile(r"[0-9]{1,10}"), "must be a group id"))]
"""A numeric group id: a name would have to exist inside the image."""
SourcePath = Annotated[
    str,
    AfterValidator(
        matching(_PATH_RE, "must be a path of letters, digits and ._@+/- (relative or absolute)")
    ),
]
WebhookUrl = Annotated[
    str,
    AfterValidator(
        matching(
            re.compile(r"https://[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/-]*)?"),
            "must be an https:// URL of letters, digits and ._~/-",
        )
    ),
]
LogOptValue = Annotated[
    str,
    AfterValidator(matching(re.compile(r"[A-Za-z0-9._:/=,-]{1,128}"), "not a log option value")),
]
LogOptName = Annotated[
    str,
    AfterValidator(matching(re.compile(r"[a-z0-9][a-z0-9.-]{0,63}"), "is not a log option name")),
]
