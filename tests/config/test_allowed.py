# ruff: noqa: E501 -- a table of exact error lines
"""Allow-lists for what reaches a root shell, a unit, a mount or the daemon.

The first table holds one value of each class that got through a deny-list: each
now stops the program with its line, naming the key, before anything is declared.
The property tests draw values of each class, hostile and good, and each is either
refused with a line naming its key or reaches its target harmless, as the real tool
that reads it shows: restic handing an sftp repository to a stand-in ``ssh``, bash
sourcing the backup env file before a stand-in ``restic``, ``dpkg-query`` on who
owns a data directory, ``systemd-analyze verify`` on the units, and the Docker engine
starting a container with the log options.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import stat
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from components.backups.restic import restic_env
from components.config.errors import ConfigError
from components.main import host_units
from components.model.allowed.daemon import GPU_DEVICE
from components.model.allowed.directories import DATA_ROOTS, data_directory
from components.model.allowed.restic import NEWER_RESTIC, STORAGE_ENV, parse_repository
from tests.config.test_properties import base_config, run_parse, verify_units
from tests.harness import run_expecting_error, site_config
from tests.host.test_units import MANAGED_GPU
from tests.parts.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "components" / "backups" / "files"


def with_values(**paths: Any) -> dict[str, Any]:
    """The site config with ``a.b`` set to each value (``gpu`` managed)."""
    config = copy.deepcopy(site_config())
    config["gpu"] = {**config["gpu"], **copy.deepcopy(MANAGED_GPU)}
    for path, value in paths.items():
        *parents, last = path.replace("__", ".").split(".")
        target = config
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return config


SECRETS = {"backupStorageEnv"}

EXAMPLES: list[tuple[dict[str, Any], str]] = [
    (
        {"backupStorageEnv": {"LD_AUDIT": "/tmp/a.so"}},
        "hemma:backupStorageEnv: the key 'LD_AUDIT' is not a variable restic's storage back-ends read (AWS_*, AZURE_*, B2_*, GOOGLE_*, OS_*, ST_*, RESTIC_REST_*, RESTIC_CACERT; see the README)",
    ),
    (
        {"backupStorageEnv": {"subset": "100"}},
        "hemma:backupStorageEnv: the key 'subset' is not a variable restic's storage back-ends read (AWS_*, AZURE_*, B2_*, GOOGLE_*, OS_*, ST_*, RESTIC_REST_*, RESTIC_CACERT; see the README)",
    ),
    (
        {"backupStorageEnv": {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}},
        "hemma:backupStorageEnv.AWS_ACCESS_KEY_ID: the sftp repository does not read it (it is for s3); remove it",
    ),
    (
        {"backups.repository": "sftp:-Jevil.example.test:/srv/restic"},
        "hemma:backups.repository: must be /DIR, sftp:[USER@]HOST:/PATH, s3:https://HOST/BUCKET, rest:https://HOST/, b2:, azure:, gs: or swift:, no part beginning with '-' or '.' (got 'sftp:-Jevil.example.test:/srv/restic')",
    ),
    (
        {"backups.repository": "rest:https://u:pw@backup.example.test/"},
        "hemma:backups.repository: must not hold credentials: put them in backupStorageEnv (RESTIC_REST_USERNAME, AWS_ACCESS_KEY_ID, ...)",
    ),
    (
        {"backups.repository": "rclone:remote:hemma"},
        "hemma:backups.repository: rclone is not set up by hemma: use sftp:, s3:, rest:, b2:, ... (got 'rclone:remote:hemma')",
    ),
    (
        {"backups.dumpsDirectory": "/"},
        "hemma:backups.dumpsDirectory: must be a directory of its own under /root, /srv, /mnt, /media, /var/backups, /var/lib/hemma or /var/snap/docker/common (not Docker's data), not hidden (got '/')",
    ),
    (
        {"backups.dumpsDirectory": "/etc"},
        "hemma:backups.dumpsDirectory: must be a directory of its own under /root, /srv, /mnt, /media, /var/backups, /var/lib/hemma or /var/snap/docker/common (not Docker's data), not hidden (got '/etc')",
    ),
    (
        {"backups.metricsDirectory": "/"},
        "hemma:backups.metricsDirectory: must be a directory of its own under /root, /srv, /mnt, /media, /var/backups, /var/lib/hemma or /var/snap/docker/common (not Docker's data), not hidden (or /tmp, for the local stack) (got '/')",
    ),
    (
        {"backups.repository": "/var/lib"},
        "hemma:backups.repository: must be a directory of its own under /root, /srv, /mnt, /media, /var/backups, /var/lib/hemma or /var/snap/docker/common (not Docker's data), not hidden (got '/var/lib')",
    ),
    (
        {"smartLogs.directory": "/root/.ssh"},
        "hemma:smartLogs.directory: must be a directory of its own under /root, /srv, /mnt, /media, /var/backups, /var/lib/hemma or /var/snap/docker/common (not Docker's data), not hidden (got '/root/.ssh')",
    ),
    (
        {"backups.metricsDirectory": "/tmp/hemma/metrics"},
        "hemma:backups.metricsDirectory: /tmp is for the local stack only: on Hemma a root job writes there (use the default)",
    ),
    (
        {"dockerService": "poweroff.target"},
        "hemma:dockerService: must be docker.service or snap.docker.dockerd.service (got 'poweroff.target')",
    ),
    (
        {"huleedu.offloadDevices": ["/dev/kfd", "/dev/mem"]},
        "hemma:huleedu.offloadDevices[1]: must be a GPU device: /dev/kfd, /dev/dri, /dev/dri/renderDN, /dev/nvidiaN, ... (got '/dev/mem')",
    ),
    (
        {"gpu.llama.user": "root"},
        "hemma:gpu.llama.user: is root; a server that listens on a port runs as its own user, or set gpu.llama.runAsRoot to true",
    ),
    (
        {"sshUser": "root"},
        "hemma:gpu.llama.user: is root (the SSH user, since user is unset); a server that listens on a port runs as its own user, or set gpu.llama.runAsRoot to true\n"
        "hemma:gpu.tabby.user: is root (the SSH user, since user is unset); a server that listens on a port runs as its own user, or set gpu.tabby.runAsRoot to true",
    ),
    (
        {"logOpts": {"max-size": "10m", "max-files": "5"}},
        "hemma:logOpts: 'max-files' is not a json-file log option (takes max-size, max-file, compress, labels, env)",
    ),
    (
        {"logOpts": {"max-size": "0", "max-file": "5"}},
        "hemma:logOpts: max-size must be a size from 100k to 10g, such as 10m",
    ),
    (
        {"logOpts": {"max-size": "10m", "compress": "true"}},
        "hemma:logOpts: compress needs max-size and a max-file of 2 or more",
    ),
    (
        {"dockerService": "systemd-suspend.service"},
        "hemma:dockerService: must be docker.service or snap.docker.dockerd.service (got 'systemd-suspend.service')",
    ),
    (
        {"backups.dumpsDirectory": "/var/snap/docker/common/var-lib-docker"},
        "hemma:backups.dumpsDirectory: must be a directory of its own under /root, /srv, /mnt, /media, /var/backups, /var/lib/hemma or /var/snap/docker/common (not Docker's data), not hidden (got '/var/snap/docker/common/var-lib-docker')",
    ),
    (
        {"backupStorageEnv": {"AWS_SHARED_CREDENTIALS_FILE": "/srv/x/credentials"}},
        "hemma:backupStorageEnv: the key 'AWS_SHARED_CREDENTIALS_FILE' is not a variable restic's storage back-ends read (AWS_*, AZURE_*, B2_*, GOOGLE_*, OS_*, ST_*, RESTIC_REST_*, RESTIC_CACERT; see the README)",
    ),
    (
        {
            "backups.repository": "gs:hemma-backups:/",
            "backupStorageEnv": {"GOOGLE_APPLICATION_CREDENTIALS": "/srv/app/key.json"},
        },
        "hemma:backupStorageEnv.GOOGLE_APPLICATION_CREDENTIALS: must name files under /etc/hemma/ or /root/ (root-only: restic reads them as root)",
    ),
    (
        {
            "backups.repository": "gs:hemma-backups:/",
            "backupStorageEnv": {"GOOGLE_APPLICATION_CREDENTIALS": "/etc/hemma/../shadow"},
        },
        "hemma:backupStorageEnv.GOOGLE_APPLICATION_CREDENTIALS: must name files under /etc/hemma/ or /root/ (root-only: restic reads them as root)",
    ),
    (
        {
            "backups.repository": "rest:https://nas.example.test/",
            "backupStorageEnv": {"RESTIC_CACERT": "/etc/hemma/ca.pem ,/root/ca-2.pem"},
        },
        "hemma:backupStorageEnv.RESTIC_CACERT: must name files under /etc/hemma/ or /root/ (root-only: restic reads them as root)",
    ),
    (
        {"backups.repository": "rest:http://nas.example.test:8000/"},
        "hemma:backups.repository: must be https (plain http only to 127.0.0.1, for a tunnel) (got 'rest:http://nas.example.test:8000/')",
    ),
    (
        {"logOpts": {"max-file": "5"}},
        "hemma:logOpts: must set max-size: without it a container's log grows until the disk is full",
    ),
    (
        {"logOpts": {"max-size": "999999999g"}},
        "hemma:logOpts: max-size must be a size from 100k to 10g, such as 10m",
    ),
    (
        {"postgres.hostPort": 22},
        "hemma:postgres.hostPort: port 22 is already used by hemma:sshPort",
    ),
]


@pytest.mark.parametrize(
    ("values", "expected"), [pytest.param(v, e, id=repr(v)[:60]) for v, e in EXAMPLES]
)
def test_a_value_off_the_allow_list_stops_with_its_line_and_declares_nothing(
    values: dict[str, Any], expected: str
) -> None:
    message, program = run_expecting_error(with_values(**values), SECRETS | _operator())
    assert message == expected
    assert program.declared == []


def _operator() -> set[str]:
    from tests.harness import OPERATOR_SECRETS

    return set(OPERATOR_SECRETS)


def test_the_overrides_and_good_forms_are_accepted() -> None:
    """What the lists allow: each form of each back-end, root on purpose, GPU devices."""
    for repository in (
        "/mnt/backup/hemma",
        "sftp:nas:/srv/restic",
        "sftp:backup@nas.example.test:restic/hemma",
        "sftp://backup@10.0.0.5:2222//srv/restic",
        "s3:https://s3.eu-north-1.amazonaws.com/hemma-backups/hemma",
        "s3:s3.amazonaws.com/hemma-backups",
        "rest:https://backup.example.test:8000/hemma/",
        "b2:hemma-backups:hemma",
        "azure:hemma-backups:/hemma",
        "gs:hemma-backups:/",
        "swift:hemma:/restic",
        "local:/mnt/backup/hemma",
        "gs:my_bucket:/",
        "s3:https://s3.amazonaws.com/hemma-backups/",
        "sftp:nas:/srv/restic/",
        "sftp:John.Doe@nas:/srv/restic",
        "sftp:backup_nas:/srv/restic",
        "sftp://backup@[fd00::5]:22//srv/restic",
        "rest:http://127.0.0.1:8000/",
    ):
        parse_repository(repository)
    assert parse_repository("sftp://[fd00::5]//srv/restic").host == "fd00::5"
    run_parse(with_values(**{"gpu.llama.user": "root", "gpu.llama.runAsRoot": True}))
    run_parse(with_values(**{"huleedu.offloadDevices": ["/dev/kfd", "/dev/dri/renderD128"]}))
    run_parse(with_values(backups__volumeRoot="/var/lib/docker/volumes"))
    run_parse(
        with_values(
            backups__repository="rest:https://nas.example.test/",
            backupStorageEnv={"RESTIC_CACERT": "/etc/hemma/ca.pem,/root/ca-2.pem"},
        )
    )
    run_parse(
        with_values(
            backups__repository="gs:hemma-backups:/",
            backupStorageEnv={"GOOGLE_APPLICATION_CREDENTIALS": "/etc/hemma/gcs.json"},
        )
    )
    run_parse(with_values(logOpts={"max-size": "50m", "max-file": "3", "compress": "true"}))
    for size in ("10M", "10mb", "1.5m", "100k", "10g"):
        run_parse(with_values(logOpts={"max-size": size, "labels": "a,b", "env": "HOME,PATH"}))
    run_parse(
        with_values(**{"huleedu.offloadDevices": ["/dev/dri/by-path/pci-0000:03:00.0-render"]})
    )


def test_sftp_hands_ssh_the_host_user_and_port_it_parsed() -> None:
    assert parse_repository("sftp://backup@10.0.0.5:2222//srv/restic").port == "2222"
    found = parse_repository("sftp:backup@nas.example.test:/srv/restic")
    assert (found.host, found.user, found.path) == ("nas.example.test", "backup", "/srv/restic")


def test_every_published_port_is_checked_against_the_ssh_port() -> None:
    message, _ = run_expecting_error(with_values(sshPort=8082, gpu__llama__port=8082), _operator())
    assert message == "hemma:gpu.llama.port: port 8082 is already used by hemma:sshPort"


# --- the property tests, with the real tools ---------------------------------------

PROPERTY = settings(
    max_examples=int(os.environ.get("HEMMA_ALLOWED_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def refused_naming(config: dict[str, Any], key: str) -> bool:
    """True when the config is refused with one line per problem, one naming ``key``."""
    try:
        run_parse(config)
    except ConfigError as error:
        lines = str(error).split("\n")
        assert all(line.startswith("hemma:") and len(line) < 400 for line in lines), lines
        assert any(line.startswith(f"hemma:{key}") for line in lines), (key, lines)
        return True
    return False


GOOD_SFTP = {
    "form": ["sftp:", "sftp://"],
    "user": ["", "backup@", "root@"],
    "host": ["nas.example.test", "nas", "10.0.0.5", "backup_nas"],
    "port": ["", ":2222"],
    "path": ["/srv/restic", "restic/hemma"],
}
BAD_SFTP = {
    "form": [],
    "user": ["-l@", "-oProxyCommand=id@", "b a@"],
    "host": ["-Jevil.example.test", "-oProxyCommand=id", "-", "nas.-x", "_nas", "[::1]",
             "-p2222", "nas example", "nas\n"],
    "port": [":-1", ":0", ":22x"],
    "path": ["/-r", "/srv/../etc", "~/restic", "/srv/.x", "/srv/restic -o x", ""],
}  # fmt: skip
SFTP_PARTS = st.one_of(
    st.fixed_dictionaries({k: st.sampled_from(v) for k, v in GOOD_SFTP.items()}),
    st.fixed_dictionaries({k: st.sampled_from(GOOD_SFTP[k] + BAD_SFTP[k]) for k in GOOD_SFTP}),
)
"""Good sftp locations, and ones with a hostile part or more."""

SSH_STAND_IN = '#!/bin/sh\nprintf \'%s\\0\' "$@" > "$SSH_ARGV"\nexit 1\n'
"""Records the argv restic gives ssh, NUL-separated, and refuses the connection."""


def ssh_argv_from_restic(repository: str, tmp: Path) -> list[str]:
    """Run the real restic against the repository with a stand-in ``ssh`` on PATH."""
    stand_in = tmp / "bin" / "ssh"
    stand_in.parent.mkdir(parents=True, exist_ok=True)
    stand_in.write_text(SSH_STAND_IN)
    stand_in.chmod(0o755)
    record = tmp / "ssh.argv"
    record.unlink(missing_ok=True)
    subprocess.run(
        [shutil.which("restic") or "restic", "-r", repository, "--no-cache", "snapshots"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": f"{stand_in.parent}:{os.environ['PATH']}", "HOME": str(tmp),
             "RESTIC_PASSWORD": "x", "SSH_ARGV": str(record)},
    )  # fmt: skip
    return record.read_text().split("\0")[:-1]


@pytest.mark.tools
@PROPERTY
@given(parts=SFTP_PARTS)
@example(
    parts={
        "form": "sftp://",
        "user": "backup@",
        "host": "nas",
        "port": ":2222",
        "path": "/srv/restic",
    }
)
@example(
    parts={"form": "sftp:", "user": "", "host": "10.0.0.5", "port": "", "path": "restic/hemma"}
)
def test_an_sftp_repository_is_refused_or_reaches_ssh_as_its_host_user_and_port(
    parts: dict[str, str], tmp_path: Path
) -> None:
    if parts["form"] == "sftp:":
        value = f"sftp:{parts['user']}{parts['host']}:{parts['path']}"
    else:
        value = f"sftp://{parts['user']}{parts['host']}{parts['port']}/{parts['path']}"
    config = site_config()
    config["backups"] = {**config["backups"], "repository": value}
    if refused_naming(config, "backups.repository"):
        event("refused")
        return
    event("accepted")
    found = parse_repository(value)
    expected = [found.host]
    expected += ["-p", found.port] if found.port else []
    expected += ["-l", found.user] if found.user else []
    argv = ssh_argv_from_restic(value, tmp_path)
    assert argv == [*expected, "-s", "sftp"], (value, argv)
    assert not argv[0].startswith("-"), "the host is ssh's destination, not an option"


@cache
def bash_variables() -> frozenset[str]:
    """Every variable bash itself sets or reads (its own list)."""
    done = subprocess.run(
        ["bash", "--norc", "-c", "compgen -v"], capture_output=True, text=True, env={}
    )
    return frozenset(done.stdout.split())


@cache
def script_variables() -> frozenset[str]:
    """Every variable name the backup scripts assign or expand."""
    text = "\n".join(p.read_text() for p in SCRIPTS.glob("*.sh"))
    assigned = re.findall(r"(?:^|[\s;(])(?:local |readonly |export )?([A-Za-z_]\w*)=", text, re.M)
    expanded = re.findall(r"\$\{?([A-Za-z_]\w*)", text)
    return frozenset(assigned + expanded)


RESTIC_STAND_IN = """#!/bin/sh
printf '%s\\0' "$@" > "$RECORD.argv"
env > "$RECORD.env"
"""

BACKENDS = {
    "s3": "s3:https://s3.example.test/hemma-backups",
    "azure": "azure:hemma-backups:/",
    "b2": "b2:hemma-backups:hemma",
    "gs": "gs:hemma-backups:/",
    "swift": "swift:hemma:/",
    "rest": "rest:https://backup.example.test/",
    "sftp": "sftp:nas:/srv/restic",
    "local": "/mnt/backup/hemma",
}
HOSTILE_NAMES = [
    "LD_AUDIT", "LD_PRELOAD", "LD_LIBRARY_PATH", "BASH_ENV", "ENV", "PATH", "IFS", "HOME",
    "PS4", "SHELLOPTS", "BASHOPTS", "subset", "metrics", "env_file", "RESTIC_PASSWORD_COMMAND",
    "RESTIC_CACHE_DIR", "RESTIC_REPOSITORY_FILE", "TMPDIR", "RCLONE_BWLIMIT", "aws_access_key_id",
    "GODEBUG", "SSL_CERT_FILE", "HTTPS_PROXY", "RESTIC_HOST", "RESTIC_PACK_SIZE",
]  # fmt: skip


NAMES = st.one_of(
    st.sampled_from(sorted(STORAGE_ENV)),
    st.sampled_from(HOSTILE_NAMES),
    st.deferred(lambda: st.sampled_from(sorted(script_variables()))),
    st.deferred(lambda: st.sampled_from(sorted(bash_variables()))),
    st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True),
)
MATCHING = st.sampled_from(sorted(STORAGE_ENV)).flatmap(
    lambda name: st.tuples(st.just(name), st.sampled_from(sorted(STORAGE_ENV[name])))
)
"""A variable with a back-end that reads it: the half of the draws that is good."""


@pytest.mark.tools
@PROPERTY
@given(pair=st.one_of(MATCHING, st.tuples(NAMES, st.sampled_from(sorted(BACKENDS)))))
@example(pair=("AWS_SECRET_ACCESS_KEY", "s3"))
def test_a_storage_variable_is_refused_or_reaches_restic_and_nothing_else(
    pair: tuple[str, str], tmp_path: Path
) -> None:
    name, backend = pair
    config = site_config()
    config["backups"] = {**config["backups"], "repository": BACKENDS[backend]}
    config["backupStorageEnv"] = {name: "the-value"}
    if refused_naming(config, "backupStorageEnv"):
        event("refused")
        return
    event("accepted")
    # Read by restic: its own binary holds the name, or a newer restic's sources do.
    binary = Path(shutil.which("restic") or "restic").read_bytes()
    assert name.encode() in binary or name in NEWER_RESTIC, name
    assert name not in bash_variables() and name not in script_variables(), name
    assert not name.startswith("LD_")
    # The env file as the program writes it, read by the scripts' own restic_run.
    env_file = tmp_path / "restic.env"
    env_file.write_text(restic_env(BACKENDS[backend], "pw", {name: "the-value"}))
    stand_in = tmp_path / "bin" / "restic"
    stand_in.parent.mkdir(parents=True, exist_ok=True)
    stand_in.write_text(RESTIC_STAND_IN)
    stand_in.chmod(0o755)
    record = tmp_path / "restic"
    done = subprocess.run(
        ["bash", "-c",
         f'set -euo pipefail; . {SCRIPTS}/hemma-restic.sh; subset=5; '
         f'restic_setup {env_file} {tmp_path}/cache {tmp_path}/lock; '
         f'restic_run check --read-data-subset="${{subset}}%"; echo "subset=$subset"'],
        capture_output=True, text=True, timeout=30,
        env={"PATH": f"{stand_in.parent}:{os.environ['PATH']}", "RECORD": str(record)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "subset=5"
    assert Path(f"{record}.argv").read_text().split("\0")[:-1] == [
        "check",
        "--read-data-subset=5%",
    ]
    assert f"{name}=the-value" in Path(f"{record}.env").read_text().splitlines()


@cache
def owned_directories() -> list[str]:
    """Directories packages on this machine own (dpkg's own list), for drawing."""
    done = subprocess.run(
        ["dpkg-query", "-L", "base-files", "systemd", "openssh-server", "dpkg"],
        capture_output=True, text=True,
    )  # fmt: skip
    return sorted({p for p in done.stdout.split() if p.startswith("/") and os.path.isdir(p)})


def dpkg_owner(path: str) -> str:
    done = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


DATA_KEYS = [
    "smartLogs.directory",
    "backups.dumpsDirectory",
    "backups.metricsDirectory",
    "backups.volumeRoot",
    "backups.repository",
]


@pytest.mark.tools
@PROPERTY
@given(
    key=st.sampled_from(DATA_KEYS),
    path=st.one_of(
        st.deferred(lambda: st.sampled_from(owned_directories())),
        st.sampled_from(sorted(DATA_ROOTS)),
        st.tuples(
            st.sampled_from(sorted(DATA_ROOTS)),
            st.lists(st.sampled_from(["hemma", "backup", "dumps", "x"]), min_size=1, max_size=3),
        ).map(lambda t: "/".join([t[0], *t[1]])),
        st.tuples(
            st.sampled_from(sorted(DATA_ROOTS)),
            st.lists(st.sampled_from(["hemma", ".ssh", "..", "-x", "logs", "a b", ""]), max_size=3),
        ).map(lambda t: "/".join([t[0], *t[1]])),
    ),
)
@example(key="backups.dumpsDirectory", path="/srv/hemma/dumps")
@example(key="backups.repository", path="/mnt/backup")
def test_a_data_directory_is_refused_or_owned_by_no_package(key: str, path: str) -> None:
    config = copy.deepcopy(site_config())
    section, field = key.split(".")
    config[section] = {**config.get(section, {}), field: path}
    if refused_naming(config, key):
        event("refused")
        return
    event("accepted")
    if path in {"/var/lib/docker/volumes", "/var/snap/docker/common/var-lib-docker/volumes"}:
        return  # the daemon's own volumes, only read
    assert dpkg_owner(path) == "", (key, path, dpkg_owner(path))
    assert not any(part.startswith(".") for part in path.split("/")), path


@pytest.mark.tools
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    service=st.sampled_from(
        [
            "docker.service",
            "snap.docker.dockerd.service",
            "poweroff.target",
            "reboot.target",
            "docker.socket",
            "-.mount",
            "docker@.service",
            "shutdown.target",
        ]
    ),
    user=st.sampled_from(["paunchygent", "root", "llama", "0"]),
    as_root=st.booleans(),
)
@example(service="docker.service", user="llama", as_root=False)
@example(service="snap.docker.dockerd.service", user="root", as_root=True)
def test_the_units_require_a_service_and_run_servers_as_a_user(
    service: str, user: str, as_root: bool, tmp_path: Path
) -> None:
    config = base_config()
    config["dockerService"] = service
    config["gpu"]["tabby"] = {**config["gpu"]["tabby"], "user": user, "runAsRoot": as_root}
    try:
        parsed = run_parse(config)
    except ConfigError as error:
        event("refused")
        assert all(line.startswith("hemma:") for line in str(error).split("\n"))
        assert any(k in str(error) for k in ("hemma:dockerService", "hemma:gpu.tabby.user"))
        return
    event("accepted")
    groups = host_units(parsed, parsed.apps())
    text = "\n".join(f.content for g in groups for f in g.files)
    for line in text.splitlines():
        if line.startswith(("Requires=", "BindsTo=")):
            units = line.split("=", 1)[1].split()
            assert all(u.endswith((".service", ".socket")) for u in units), line
    tabby = [f.content for g in groups for f in g.files if f.path.endswith("/tabby.service")]
    assert tabby and (f"User={user}" in tabby[0].splitlines())
    assert user != "root" or as_root
    verify_units(groups, tmp_path / "root")


@pytest.mark.tools
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    options=st.one_of(
        st.fixed_dictionaries(
            {
                "max-size": st.sampled_from(["1k", "10m", "1g"]),
                "max-file": st.sampled_from(["1", "2", "5"]),
            },
            optional={
                "compress": st.sampled_from(["true", "false"]),
                "labels": st.sampled_from(["com.example.a", "a,b"]),
                "env": st.sampled_from(["HOME", "PATH,HOSTNAME"]),
            },
        ),
        st.dictionaries(
            st.sampled_from(
                [
                    "max-size",
                    "max-file",
                    "compress",
                    "labels",
                    "env",
                    "tag",
                    "max-files",
                    "mode",
                    "labels-regex",
                ]
            ),
            st.sampled_from(
                [
                    "10m",
                    "1",
                    "3",
                    "0",
                    "-1",
                    "true",
                    "false",
                    "1k",
                    "x",
                    "com.a,com.b",
                    "HOME",
                    "10mb",
                ]
            ),
            max_size=4,
        ),
    )
)
@example(options={"max-size": "1k", "max-file": "3", "compress": "true", "env": "HOME"})
def test_log_options_are_refused_or_the_daemon_starts_a_container_with_them(
    options: dict[str, str], engine: Engine, busybox_image: str
) -> None:
    config = site_config()
    config["logOpts"] = options
    if refused_naming(config, "logOpts"):
        event("refused")
        return
    event("accepted")
    flags = [f"--log-opt={name}={value}" for name, value in options.items()]
    done = engine.docker(
        "run", "--rm", "--log-driver=json-file", *flags, busybox_image, "true", check=False
    )
    assert done.returncode == 0, (options, done.stderr)


def kernel_class(node: Path) -> str:
    """The sysfs path of a device node's device: ``.../drm/renderD128`` for a GPU's."""
    mode = node.stat().st_mode
    kind = "char" if stat.S_ISCHR(mode) else "block" if stat.S_ISBLK(mode) else ""
    if not kind:
        return ""
    rdev = node.stat().st_rdev
    return os.path.realpath(f"/sys/dev/{kind}/{os.major(rdev)}:{os.minor(rdev)}")


def test_only_a_gpu_device_node_is_on_the_device_list() -> None:
    """Every device node of this machine is refused unless the kernel files it under a
    GPU (the drm class, the kfd, NVIDIA's major 195)."""
    nodes = [p for p in Path("/dev").rglob("*") if p.exists() and not p.is_dir()]
    assert len(nodes) > 5, "this machine has a /dev"
    for node in nodes:
        if GPU_DEVICE.fullmatch(str(node)):
            where = kernel_class(node)
            gpu = "/drm/" in where or where.endswith("/kfd") or os.major(node.stat().st_rdev) == 195
            assert gpu, (node, where)
    for refused in ("/dev/mem", "/dev/kmem", "/dev/port", "/dev/sda", "/dev/nvme0n1", "/dev/tty0"):
        assert GPU_DEVICE.fullmatch(refused) is None


@pytest.mark.tools
def test_no_directory_a_package_owns_is_a_data_directory() -> None:
    """Every directory dpkg says base-files, systemd, openssh-server or dpkg own on this
    machine is refused: the system's trees and /var's own directories."""
    owned = owned_directories()
    assert "/var/lib/dpkg" in owned and "/etc" in owned, "dpkg lists the system's directories"
    accepted = []
    for path in owned:
        try:
            data_directory(path)
        except ValueError:
            continue
        accepted.append(path)
    assert accepted == []


@pytest.mark.tools
def test_every_storage_variable_is_one_restic_reads_and_no_shell_does() -> None:
    """The whole list: each name is in the restic binary (or a newer restic's), none is a
    variable bash or the backup scripts use, none steers the loader."""
    binary = Path(shutil.which("restic") or "restic").read_bytes()
    unread = [n for n in STORAGE_ENV if n.encode() not in binary and n not in NEWER_RESTIC]
    assert unread == []
    assert sorted(set(STORAGE_ENV) & (bash_variables() | script_variables())) == []
    assert {"subset", "PATH", "IFS", "HOME"} <= bash_variables() | script_variables()
    assert [n for n in STORAGE_ENV if n.startswith("LD_") or not n.isupper()] == []


DEVICE_NODES = st.deferred(
    lambda: st.sampled_from(
        sorted(str(p) for p in Path("/dev").rglob("*") if p.exists() and not p.is_dir())
    )
)
"""The device nodes this machine has (no GPU among them, here)."""


@PROPERTY
@given(
    device=st.one_of(
        DEVICE_NODES,
        st.sampled_from(
            ["/dev/kfd", "/dev/dri", "/dev/dri/renderD128", "/dev/nvidia0", "/dev/nvidiactl",
             "/dev/dri/../mem", "/dev/dri/card0/../../sda", "/dev/kfd/", "/dev/nvidia-uvm"]
        ),
    )
)  # fmt: skip
def test_a_device_is_refused_or_is_a_gpu_node_handed_to_the_offload_server(device: str) -> None:
    config = with_values(**{"huleedu.offloadDevices": [device]})
    if refused_naming(config, "huleedu.offloadDevices[0]"):
        event("refused")
        return
    event("accepted")
    node = Path(device)
    if node.exists():
        where = kernel_class(node)
        assert "/drm/" in where or where.endswith("/kfd") or os.major(node.stat().st_rdev) == 195
    parsed = run_parse(config)
    (offload,) = [
        s for app in parsed.apps() for s in app.services if s.container.endswith("_offload")
    ]
    assert offload.devices == (device,)


PORT_KEYS = ["sshPort", "postgres.hostPort", "gpu.llama.port", "gpu.tabby.port"]
FREE_PORTS = [2222, 5433, 8082, 8083, 8090, 9101, 15000]
TAKEN_PORTS = [22, 80, 443, 5432, 8085, 9000]
"""80 and 443 are the proxy's, 8085 and 9000 HuleEdu's localhost services'."""


@PROPERTY
@given(
    ports=st.one_of(
        st.lists(st.sampled_from(FREE_PORTS), min_size=4, max_size=4, unique=True),
        st.lists(st.sampled_from(FREE_PORTS + TAKEN_PORTS), min_size=4, max_size=4),
    )
)
def test_ports_are_refused_together_or_all_differ(ports: list[int]) -> None:
    """Every port the host uses, sshPort and the published ones, against every other."""
    config = with_values(**dict(zip(PORT_KEYS, ports, strict=True)))
    try:
        parsed = run_parse(config)
    except ConfigError as error:
        event("refused")
        assert "is already used by" in str(error)
        return
    event("accepted")
    used = [
        parsed.ssh_port,
        parsed.postgres.host_port,
        parsed.gpu.llama.port,
        parsed.gpu.tabby.port,
        80,
        443,
        *(p.host_port for app in parsed.apps() for s in app.services for p in s.localhost_ports),
    ]
    assert len(used) == len(set(used)), used
