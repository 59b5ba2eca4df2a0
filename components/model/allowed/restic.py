"""What reaches restic: its storage back-end's environment and the repository's location."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from components.model.allowed.directories import data_directory

STORAGE_ENV: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        (
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_DEFAULT_REGION", "AWS_PROFILE",
            "RESTIC_AWS_ASSUME_ROLE_ARN", "RESTIC_AWS_ASSUME_ROLE_SESSION_NAME",
            "RESTIC_AWS_ASSUME_ROLE_EXTERNAL_ID", "RESTIC_AWS_ASSUME_ROLE_POLICY",
            "RESTIC_AWS_ASSUME_ROLE_REGION", "RESTIC_AWS_ASSUME_ROLE_STS_ENDPOINT",
        ),
        frozenset({"s3"}),
    ),
    **dict.fromkeys(
        (
            "AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_KEY", "AZURE_ACCOUNT_SAS",
            "AZURE_ENDPOINT_SUFFIX", "AZURE_FORCE_CLI_CREDENTIAL",
        ),
        frozenset({"azure"}),
    ),
    **dict.fromkeys(("B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"), frozenset({"b2"})),
    **dict.fromkeys(
        ("GOOGLE_PROJECT_ID", "GOOGLE_APPLICATION_CREDENTIALS"), frozenset({"gs"})
    ),
    **dict.fromkeys(
        (
            "OS_AUTH_URL", "OS_REGION_NAME", "OS_USERNAME", "OS_USER_ID", "OS_PASSWORD",
            "OS_TENANT_ID", "OS_TENANT_NAME", "OS_USER_DOMAIN_NAME", "OS_USER_DOMAIN_ID",
            "OS_PROJECT_NAME", "OS_PROJECT_DOMAIN_NAME", "OS_PROJECT_DOMAIN_ID",
            "OS_TRUST_ID", "OS_APPLICATION_CREDENTIAL_ID", "OS_APPLICATION_CREDENTIAL_NAME",
            "OS_APPLICATION_CREDENTIAL_SECRET", "OS_STORAGE_URL", "OS_AUTH_TOKEN",
            "ST_AUTH", "ST_USER", "ST_KEY",
        ),
        frozenset({"swift"}),
    ),
    **dict.fromkeys(("RESTIC_REST_USERNAME", "RESTIC_REST_PASSWORD"), frozenset({"rest"})),
    **dict.fromkeys(
        ("RESTIC_CACERT", "RESTIC_TLS_CLIENT_CERT"),
        frozenset({"s3", "azure", "b2", "gs", "swift", "rest"}),
    ),
}  # fmt: skip
"""Each variable restic's storage back-ends read -> the back-ends that read it. From
restic v0.17.3, doc/040_backup.rst, "Environment Variables", its storage part: the
repository, password, cache, host and temp-dir variables are the program's, and
rclone is not a back-end here. Not AWS_SHARED_CREDENTIALS_FILE: minio-go (in restic
0.15 and later) runs a profile's ``credential_process``, so the file is a command
root runs; root's own ~/.aws/credentials (AWS_PROFILE) is the one place. All
upper-case; the scripts' own variables are lower-case, and none of these names is one
bash or the loader reads."""

NEWER_RESTIC: dict[str, str] = {
    **dict.fromkeys(("RESTIC_CACERT", "RESTIC_TLS_CLIENT_CERT", "AZURE_ENDPOINT_SUFFIX"), "0.16"),
    **dict.fromkeys(
        (
            "RESTIC_REST_USERNAME", "RESTIC_REST_PASSWORD", "AZURE_FORCE_CLI_CREDENTIAL",
            "RESTIC_AWS_ASSUME_ROLE_ARN", "RESTIC_AWS_ASSUME_ROLE_SESSION_NAME",
            "RESTIC_AWS_ASSUME_ROLE_EXTERNAL_ID", "RESTIC_AWS_ASSUME_ROLE_POLICY",
            "RESTIC_AWS_ASSUME_ROLE_REGION", "RESTIC_AWS_ASSUME_ROLE_STS_ENDPOINT",
        ),
        "0.17",
    ),
}  # fmt: skip
"""Variables only a newer restic reads (first in its v0.16.0 or v0.17.0 sources), with
that version: an older one ignores them. The rest are read since 0.14 at least."""


ROOT_FILES = ("/etc/hemma/", "/root/")
"""Where a file a variable names must be (root-only trees): restic reads it as root."""
FILE_VARIABLES = frozenset(
    {"GOOGLE_APPLICATION_CREDENTIALS", "RESTIC_CACERT", "RESTIC_TLS_CLIENT_CERT"}
)
"""Variables whose value names files (RESTIC_CACERT a comma-separated list)."""


def storage_env_name(value: str) -> str:
    if value.startswith(("RESTIC_REPOSITORY", "RESTIC_PASSWORD")):
        raise ValueError("is set by backups.repository and resticPassword; remove it here")
    if value not in STORAGE_ENV:
        raise ValueError(
            "is not a variable restic's storage back-ends read (AWS_*, AZURE_*, B2_*, "
            "GOOGLE_*, OS_*, ST_*, RESTIC_REST_*, RESTIC_CACERT; see the README)"
        )
    return value


StorageEnvName = Annotated[str, AfterValidator(storage_env_name)]


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ALIAS = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_HOST = rf"{_ALIAS}(?:\.{_LABEL})*"
"""A DNS name, an ssh_config alias (``_`` allowed) or an IPv4 address: never begins
with ``-``."""
_IPV6 = r"\[[0-9A-Fa-f:.]{2,45}\]"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_PART = r"[A-Za-z0-9_@+][A-Za-z0-9._@+-]{0,254}"
"""One path component: not ``-`` first (an option), not ``.`` first (``..``, hidden)."""
_PATH = rf"{_PART}(?:/{_PART}){{0,31}}/?"
_USER = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,31}"
_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_GS_BUCKET = r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]"
_LOOPBACK = r"(?:127\.0\.0\.1|localhost|\[::1\])"
_WEB = rf"(?:https://(?P<host>{_HOST})|http://(?P<loopback>{_LOOPBACK}))(?::{_PORT})?"
"""https, or plain http on this machine only: a password must not cross a network
in clear (rest's Basic auth, s3's signed requests)."""

REPOSITORY_FORMS: dict[str, re.Pattern[str]] = {
    "sftp": re.compile(
        rf"sftp:(?:(?P<user>{_USER})@)?(?P<host>{_HOST}):(?P<path>/?{_PATH})"
        rf"|sftp://(?:(?P<user2>{_USER})@)?(?:(?P<host2>{_HOST})|(?P<ipv6>{_IPV6}))"
        rf"(?::(?P<port>{_PORT}))?"
        rf"/(?P<path2>/?{_PATH})"
    ),
    "rest": re.compile(rf"rest:{_WEB}(?:/{_PATH})?/?"),
    "s3": re.compile(
        rf"s3:{_WEB}/{_BUCKET}(?:/{_PATH})?/?|s3:(?P<host2>{_HOST})/{_BUCKET}(?:/{_PATH})?/?"
    ),
    "b2": re.compile(rf"b2:[A-Za-z0-9][A-Za-z0-9-]{{4,48}}[A-Za-z0-9](?::/?{_PATH})?"),
    "azure": re.compile(rf"azure:[a-z0-9](?:-?[a-z0-9]){{2,62}}:/(?:{_PATH})?"),
    "gs": re.compile(rf"gs:{_GS_BUCKET}:/(?:{_PATH})?"),
    "swift": re.compile(rf"swift:[A-Za-z0-9_][A-Za-z0-9._-]{{0,254}}:/(?:{_PATH})?"),
}
"""The forms each back-end's ParseConfig reads (restic v0.17.3,
internal/backend/*/config.go), narrowed to parts that cannot begin with ``-``: the
sftp back-end runs ``ssh HOST [-p PORT] [-l USER] -s sftp`` (sftp/sftp.go,
buildSSHCommand), so a host ``-J...`` would be an option of root's ssh. No
credentials in a URL: the repository is plain config; they go in backupStorageEnv."""


@dataclass(frozen=True)
class Repository:
    backend: str
    """``local`` or a key of REPOSITORY_FORMS."""
    host: str = ""
    user: str = ""
    port: str = ""
    path: str = ""


def parse_repository(value: str) -> Repository:
    """The repository's back-end and, for sftp, what restic hands to ssh."""
    if value.startswith(("/", "local:/")):
        return Repository("local", path=data_directory(value.removeprefix("local:")))
    scheme = value.split(":", 1)[0]
    if scheme == "rclone":
        raise ValueError("rclone is not set up by hemma: use sftp:, s3:, rest:, b2:, ...")
    form = REPOSITORY_FORMS.get(scheme)
    found = form.fullmatch(value) if form else None
    if found is None or len(value) > 2048:
        authority = value.split("//", 1)[-1].split("/")[0]
        if "@" in authority and ":" in authority.split("@")[0]:
            # The value itself is not shown: it holds a password.
            raise PydanticCustomError(
                "hidden_value",
                "must not hold credentials: put them in backupStorageEnv "
                "(RESTIC_REST_USERNAME, AWS_ACCESS_KEY_ID, ...)",
            )
        if re.match(r"(?:rest|s3):http://", value):
            raise ValueError("must be https (plain http only to 127.0.0.1, for a tunnel)")
        raise ValueError(
            "must be /DIR, sftp:[USER@]HOST:/PATH, s3:https://HOST/BUCKET, rest:https://HOST/, "
            "b2:, azure:, gs: or swift:, no part beginning with '-' or '.'"
        )
    parts = {k.rstrip("2"): v for k, v in found.groupdict().items() if v}
    # ssh gets an IPv6 host without its brackets (url.Hostname() in sftp/config.go).
    host = parts.pop("ipv6", "").strip("[]") or parts.pop("loopback", "") or parts.get("host", "")
    return Repository(scheme, **{**parts, "host": host})


ResticRepository = Annotated[str, AfterValidator(lambda v: parse_repository(v) and v)]
