"""Allow-lists for the config values that reach a root shell, a unit, a mount or the
Docker daemon: each value must be one that is known good, and each list says where
it comes from upstream. Anything else is refused with the sentence shown here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

from components.model.values import LogOptName, LogOptValue, absolute_path, matching

# --- directories the jobs write to, clean up, chmod or hand to a container ---------

DATA_ROOTS: dict[str, int] = {
    "/root": 1, "/home": 2, "/srv": 1, "/mnt": 1, "/media": 1, "/var/backups": 1,
    "/var/lib/hemma": 0, "/var/snap/docker/common": 1,
}  # fmt: skip
"""Where a job's own directory may be -> how many levels below it at least. From the
Filesystem Hierarchy Standard 3.0: site data in /srv, mounted disks in /mnt and
/media, backups in /var/backups, a program's state in /var/lib/NAME, root's and the
users' homes; and the docker snap's common directory, where its daemon can bind-mount
from (snapcraft's "home" and "removable-media" interfaces leave out the rest). Never
one of these roots itself, which the system owns: each holds other programs' files."""
VOLUME_ROOTS = frozenset(
    {"/var/lib/docker/volumes", "/var/snap/docker/common/var-lib-docker/volumes"}
)
"""Where Docker keeps named volumes: the deb's and the snap's data-root."""


LOCAL_ROOT = "/tmp"
"""Where the local stack (no host jobs, the operator's own Docker) may keep its
metrics directory: Docker Desktop shares /tmp. Never on Hemma, where a root job
writes there (config/checks.py)."""


def data_directory(value: str, roots: dict[str, int] = DATA_ROOTS) -> str:
    """A directory a job owns: it may chmod it, delete files under it, snapshot it
    or bind-mount it into a container. Deep enough under one of DATA_ROOTS and not
    hidden (``/root/.ssh``)."""
    absolute_path(value)
    path = "/" + "/".join(p for p in value.split("/") if p)
    for root, depth in roots.items():
        if path == root or path.startswith(root + "/"):
            parts = [p for p in path[len(root) :].split("/") if p]
            if len(parts) >= depth and not any(p.startswith(".") for p in parts):
                return value
    raise ValueError(
        "must be a directory of its own under /root, /home/USER, /srv, /mnt, /media, "
        "/var/backups, /var/lib/hemma or /var/snap/docker/common, not hidden"
        + (" (or /tmp, for the local stack)" if LOCAL_ROOT in roots else "")
    )


def volume_root(value: str) -> str:
    return value if value in VOLUME_ROOTS else data_directory(value)


def metrics_directory(value: str) -> str:
    return data_directory(value, {**DATA_ROOTS, LOCAL_ROOT: 1})


DataDirectory = Annotated[str, AfterValidator(data_directory)]
MetricsDirectory = Annotated[str, AfterValidator(metrics_directory)]
VolumeRoot = Annotated[str, AfterValidator(volume_root)]

# --- the backup storage's environment ----------------------------------------------

STORAGE_ENV: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        (
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
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
rclone is not a back-end here. All upper-case; the scripts' own variables are
lower-case, and none of these names is one bash or the loader reads."""

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

# --- the restic repository ---------------------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*"
"""A DNS name, an ssh_config alias or an IPv4 address: never begins with ``-``."""
_PORT = r"[1-9][0-9]{0,4}"
_PART = r"[A-Za-z0-9_@+][A-Za-z0-9._@+-]{0,254}"
"""One path component: not ``-`` first (an option), not ``.`` first (``..``, hidden)."""
_PATH = rf"{_PART}(?:/{_PART}){{0,31}}"
_USER = r"[a-z_][a-z0-9_-]{0,31}"
_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"

REPOSITORY_FORMS: dict[str, re.Pattern[str]] = {
    "sftp": re.compile(
        rf"sftp:(?:(?P<user>{_USER})@)?(?P<host>{_HOST}):(?P<path>/?{_PATH})"
        rf"|sftp://(?:(?P<user2>{_USER})@)?(?P<host2>{_HOST})(?::(?P<port>{_PORT}))?"
        rf"/(?P<path2>/?{_PATH})"
    ),
    "rest": re.compile(rf"rest:https?://(?P<host>{_HOST})(?::{_PORT})?(?:/{_PATH})?/?"),
    "s3": re.compile(
        rf"s3:https?://(?P<host>{_HOST})(?::{_PORT})?/{_BUCKET}(?:/{_PATH})?"
        rf"|s3:(?P<host2>{_HOST})/{_BUCKET}(?:/{_PATH})?"
    ),
    "b2": re.compile(rf"b2:[A-Za-z0-9][A-Za-z0-9-]{{4,48}}[A-Za-z0-9](?::/?{_PATH})?"),
    "azure": re.compile(rf"azure:[a-z0-9](?:-?[a-z0-9]){{2,62}}:/(?:{_PATH})?"),
    "gs": re.compile(rf"gs:{_BUCKET}:/(?:{_PATH})?"),
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
    if value.startswith("/"):
        return Repository("local", path=data_directory(value))
    scheme = value.split(":", 1)[0]
    if scheme == "rclone":
        raise ValueError("rclone is not set up by hemma: use sftp:, s3:, rest:, b2:, ...")
    form = REPOSITORY_FORMS.get(scheme)
    found = form.fullmatch(value) if form else None
    if found is None or len(value) > 2048:
        if scheme in ("rest", "s3") and "@" in value.split("//", 1)[-1].split("/")[0]:
            raise ValueError(
                "must not hold credentials: put them in backupStorageEnv "
                "(RESTIC_REST_USERNAME, AWS_ACCESS_KEY_ID, ...)"
            )
        raise ValueError(
            "must be /DIR, sftp:[USER@]HOST:/PATH, s3:https://HOST/BUCKET, rest:https://HOST/, "
            "b2:, azure:, gs: or swift:, no part beginning with '-' or '.'"
        )
    parts = {k.rstrip("2"): v for k, v in found.groupdict().items() if v}
    return Repository(scheme, **parts)


ResticRepository = Annotated[str, AfterValidator(lambda v: parse_repository(v) and v)]

# --- units, devices ----------------------------------------------------------------

ServiceName = Annotated[
    str,
    AfterValidator(
        matching(
            # systemd's unit_name_is_valid (src/basic/unit-name.c), for a service: a
            # prefix of [A-Za-z0-9:_.-], at most a non-empty "@instance", ".service".
            re.compile(r"[A-Za-z0-9:_.-]{1,200}(?:@[A-Za-z0-9:_.@-]{1,50})?\.service"),
            "must be the Docker daemon's .service unit, such as docker.service",
        )
    ),
]
"""A unit the timers' units require: a service, never a target such as poweroff."""

GPU_DEVICE = re.compile(
    r"/dev/kfd|/dev/dri|/dev/dri/(?:card|renderD)[0-9]{1,3}"
    r"|/dev/nvidia(?:[0-9]{1,2}|ctl|-uvm|-uvm-tools|-modeset)"
    r"|/dev/nvidia-caps/nvidia-cap[0-9]{1,3}"
)
"""The device nodes GPU compute uses: AMD ROCm's /dev/kfd and the DRM nodes
(ROCm docs, "Running ROCm Docker containers": ``--device=/dev/kfd --device=/dev/dri``),
and NVIDIA's nodes (NVIDIA container toolkit, "Driver and device nodes")."""
GpuDevice = Annotated[
    str,
    AfterValidator(
        matching(
            GPU_DEVICE,
            "must be a GPU device: /dev/kfd, /dev/dri, /dev/dri/renderDN, /dev/nvidiaN, ...",
        )
    ),
]

# --- Docker's json-file log options ------------------------------------------------

_LABEL_KEY = r"[A-Za-z0-9_.-]{1,64}"
_ENV_KEY = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
LOG_OPTS: dict[str, tuple[re.Pattern[str], str]] = {
    "max-size": (re.compile(r"[1-9][0-9]{0,8}[kmg]?"), "a positive size such as 10m"),
    "max-file": (re.compile(r"[1-9][0-9]{0,2}"), "a count of files, 1 or more"),
    "compress": (re.compile(r"true|false"), "true or false"),
    "labels": (re.compile(rf"{_LABEL_KEY}(?:,{_LABEL_KEY}){{0,15}}"), "label names"),
    "env": (re.compile(rf"{_ENV_KEY}(?:,{_ENV_KEY}){{0,15}}"), "variable names"),
}  # fmt: skip
"""The json-file driver's options (moby v28.5.2, daemon/logger/jsonfilelog,
ValidateLogOpt and New): max-size through units.FromHumanSize and > 0, max-file
through Atoi and >= 1, compress through ParseBool. ``tag`` is a Go template and
``labels-regex``/``env-regex`` Go regular expressions, which no check here can
match the daemon's reading of: left out."""


def log_opts(options: dict[str, str]) -> dict[str, str]:
    for name, value in options.items():
        if name not in LOG_OPTS:
            raise ValueError(
                f"{name!r} is not a json-file log option (takes {', '.join(LOG_OPTS)})"
            )
        grammar, meaning = LOG_OPTS[name]
        if not grammar.fullmatch(value):
            raise ValueError(f"{name} must be {meaning}")
    if options.get("compress") == "true" and (
        options.get("max-file", "1") == "1" or "max-size" not in options
    ):
        # jsonfilelog.New: "compress cannot be true when max-file is less than 2 or
        # max-size is not set"
        raise ValueError("compress needs max-size and a max-file of 2 or more")
    return options


LogOpts = Annotated[dict[LogOptName, LogOptValue], AfterValidator(log_opts)]
