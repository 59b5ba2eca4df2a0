# ruff: noqa: RUF001 -- look-alike letters on purpose
"""Hostile strings in every string field of the config, generated.

For each string field the model has, hypothesis builds values out of the pieces
attackers and typos are made of: line ends, NUL, systemd specifiers, quotes,
shell and nginx metacharacters, look-alike letters, path tricks. Each value
ends one of two ways:

- a clean rejection: one line per problem, each naming a ``hemma:`` key, the
  field's among them, and none carrying a line end; or
- accepted, and then every artifact it reaches reads as intended: each unit file
  passes ``systemd-analyze verify`` with the value one word of its Exec line,
  each script passes ``bash -n``, the nginx files pass ``nginx -t``, a
  migration step and a build command, run for real with a stand-in ``docker``,
  hand the value over as one argument, and a real nginx reads the htpasswd file
  made for a basic-auth user and lets that user in with its password only.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import re
import shutil
import socket
import string
import subprocess
import types
import typing
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from components.config.errors import MAX_LINE, ConfigError
from components.config.reading import parse
from components.config.stack import SECRET_KEYS, StackConfig
from components.foundation.builds import build_command
from components.foundation.commands import as_command, exec_step
from components.host.unit_files import UnitGroup, install_script, remove_script
from components.main import host_units
from components.model.app import Build
from components.proxy.htpasswd import htpasswd
from components.proxy.nginx_files import host_policies, proxy_files
from tests.harness import TEST_HOST_KEY, as_cli_value, site_config, two_host_config
from tests.host.test_units import MANAGED_GPU
from tests.proxy.nginx import start_nginx, stop_nginx

pytestmark = pytest.mark.tools

PIECES = [
    "\n", "\r", "\x00", "\t", " ", "%", "%n", "%h", "$", "$(id)", "${HOME}", "`id`", ";",
    "&&", "|", ">", "'", '"', "\\", "{", "}", "#", "*", "?", "[", "]", "~", "!", "../",
    "//", "=", ":", "@", "+", "-", ",", "а", "ｅ", "\u2028", "\ufeff", "é",
]  # fmt: skip
"""What a hostile or careless value is made of (``а`` is Cyrillic, ``ｅ`` full width)."""

SAFE = string.ascii_letters + string.digits + "._-/"


def hostile(base: str) -> st.SearchStrategy[str]:
    """A field's own good value with hostile pieces mixed in, or pieces alone."""
    piece = st.one_of(st.sampled_from(PIECES), st.text(alphabet=SAFE, min_size=1, max_size=6))
    pieces = st.lists(piece, min_size=1, max_size=6).map("".join)
    return st.one_of(
        pieces,
        st.tuples(st.just(base), pieces).map("".join),
        st.tuples(pieces, st.just(base)).map("".join),
        st.just(base + "\n"),
        st.just(base.upper()),
    )


def base_config() -> dict[str, Any]:
    config = two_host_config(copy.deepcopy(site_config()))
    config["gpu"] = {**config["gpu"], **copy.deepcopy(MANAGED_GPU)}
    config["extraEnv"] = {"grafana": {"GF_LOG_LEVEL": "info"}}
    # An s3 repository, so that its storage variables are ones the back-end reads; the
    # sftp form is drawn in tests/config/test_allowed.py, against restic itself.
    config["backups"] = {**config["backups"], "repository": FIELDS["backups.repository"]}
    return config


# path -> its good value in base_config(); a path part in [] is a list index.
FIELDS: dict[str, str] = {
    "acmeEmail": "admin@hule.education",
    "dockerHost": "ssh://hemma",
    "sshHost": "hemma.hule.education",
    "sshUser": "paunchygent",
    "dockerPath": "/snap/bin/docker",
    "dockerService": "snap.docker.dockerd.service",
    "hostnames.grafana": "grafana.hemma.hule.education",
    "proxy.containerName": "nginx-proxy",
    "proxy.image": "nginxproxy/nginx-proxy:1.11",
    "proxy.defaultMaxBodySize": "10m",
    "proxy.basicAuthUser": "admin",
    "proxy.certsVolume": "nginx-proxy-certs",
    "proxy.trustedNetwork": "172.16.0.0/12",
    "postgres.containerName": "shared-postgres",
    "postgres.dataVolume": "shared-postgres-data",
    "skriptoteketCleanup.loginEventsSchedule": "daily",
    "smartLogs.directory": "/root/logs",
    "smartLogs.schedule": "daily",
    "backups.schedule": "*-*-* 03:15:00",
    "backups.repository": "s3:https://s3.eu-north-1.amazonaws.com/hemma-backups/hemma",
    "backups.checkSchedule": "Sat *-*-* 05:00:00",
    "backups.drillSchedule": "Sun *-*-* 05:00:00",
    "drift.schedule": "hourly",
    "backups.dumpsDirectory": "/var/backups/hemma/dumps",
    "backups.volumeRoot": "/var/snap/docker/common/var-lib-docker/volumes",
    "backups.metricsDirectory": "/var/snap/docker/common/hemma/metrics",
    "backupStorageEnv.AWS_ACCESS_KEY_ID": "AKIAEXAMPLE0123",
    "resticPassword": "test-restic-password-0123456789",
    "smtpPassword": "test-smtp-password-0123456789",
    "anthropicApiKey": "sk-ant-test-0123456789abcdefghijklmnop",
    "openaiApiKey": "sk-test-0123456789abcdefghijklmnopqrstu",
    "sshHostKey": TEST_HOST_KEY,
    "proxy.companionContainerName": "acme-companion",
    "proxy.companionImage": "nginxproxy/acme-companion:2.4",
    "proxy.htmlVolume": "nginx-proxy-html",
    "proxy.acmeVolume": "acme-companion-acme",
    "proxy.vhostVolume": "nginx-proxy-vhost",
    "proxy.htpasswdVolume": "nginx-proxy-htpasswd",
    "postgres.image": "postgres:16-alpine",
    "import.volume/shared-postgres-data": "shared-postgres-data",
    "adoptAsIs[0]": "huleedu_kafka_data",
    "volumeNames.skriptoteket-artifacts": "skriptoteket_artifacts",
    "gpu.tabby.executable": "/usr/local/bin/tabby",
    "gpu.tabby.args[0]": "serve",
    "gpu.tabby.environment.ROCM_PATH": "/opt/rocm",
    "gpu.tabby.workingDirectory": "/opt/tabby",
    "gpu.tabby.user": "paunchygent",
    "skriptoteketCleanup.sandboxSnapshotsSchedule": "hourly",
    "skriptoteketCleanup.sessionFilesSchedule": "hourly",
    "huleedu.offloadBaseImage": "rocm/pytorch:latest",
    "huleedu.offloadDevices[0]": "/dev/kfd",
    "huleedu.redisImage": "redis:7.4-alpine",
    "classHub.retentionSchedule": "daily",
    "classHub.orphanUploadsSchedule": "weekly",
    "classHub.maxBodySize": "650m",
    "classHub.helperMaxBodySize": "1m",
    "classHub.ollamaImage": "ollama/ollama:0.5.7",
    "classHub.minioImage": "minio/minio:RELEASE.2025-01-20T14-49-07Z",
    "classHub.redisImage": "redis:7.4-alpine",
    "observability.grafanaImage": "grafana/grafana:11.4.0",
    "observability.prometheusImage": "prom/prometheus:v2.55.1",
    "observability.jaegerImage": "jaegertracing/all-in-one:1.64.0",
    "observability.lokiImage": "grafana/loki:3.3.2",
    "observability.promtailImage": "grafana/promtail:3.3.2",
    "observability.alertmanagerImage": "prom/alertmanager:v0.27.0",
    "observability.blackboxImage": "prom/blackbox-exporter:v0.25.0",
    "observability.nodeExporterImage": "prom/node-exporter:v1.8.2",
    "observability.alertEmail": "ops@hule.education",
    "observability.alertWebhook": "https://hooks.example.test/hemma",
    "observability.alertSmtpHost": "mail.privateemail.com",
    "observability.alertSmtpUsername": "noreply@hule.education",
    "gpu.bindAddress": "127.0.0.1",
    "gpu.relayAddress": "172.17.0.1",
    "gpu.llama.executable": "/opt/llama.cpp/build/bin/llama-server",
    "gpu.llama.args[1]": "/srv/models/qwen3-coder-30b.gguf",
    "gpu.llama.environment.HSA_OVERRIDE_GFX_VERSION": "11.0.0",
    "gpu.llama.workingDirectory": "/opt/llama.cpp",
    "gpu.llama.user": "paunchygent",
    "huleedu.smtpHost": "mail.privateemail.com",
    "huleedu.smtpUsername": "noreply@hule.education",
    "huleedu.offloadTorchDevice": "cuda",
    "huleedu.kafkaImage": "apache/kafka:3.8.1",
    "huleedu.offloadGroups[0]": "44",
    "observability.prometheusRetention": "30d",
    "classHub.ollamaModel": "llama3.2:1b",
    "imageOverrides.grafana": "grafana/grafana:11.4.1",
    "extraEnv.grafana.GF_LOG_LEVEL": "info",
    "logOpts.max-size": "10m",
    "hosts.gpu.sshHost": "gpu.hule.education",
    "hosts.gpu.sshUser": "operator",
    "hosts.gpu.sshHostKey": TEST_HOST_KEY,
    "hosts.gpu.dockerHost": "ssh://gpu",
    "hosts.gpu.dockerPath": "/usr/bin/docker",
    "hosts.gpu.dockerService": "docker.service",
    "hosts.gpu.volumeRoot": "/var/lib/docker/volumes",
    "hosts.gpu.metricsDirectory": "/var/lib/hemma/metrics",
    "serviceHosts.huleedu_essay_embed_offload": "gpu",
    "gpu.host": "hemma",
    "skriptoteketCleanup.host": "hemma",
    "huleedu.host": "hemma",
    "observability.host": "hemma",
    "classHub.host": "hemma",
}


NOT_FUZZED = {
    "sshPrivateKey": "a PEM key holds line ends by design; it reaches only the SSH "
    "connection, as a secret, and never a file, shell or nginx",
    "appSources.KEY": "a checkout on the operator's machine that the program reads; "
    "the path itself reaches no target",
}
"""String fields of the model left out, and why."""


def model_string_fields(model: type[BaseModel] = StackConfig, prefix: str = "") -> Iterator[str]:
    """Every string field of the config model, as a path: ``KEY`` for any object key,
    ``[0]`` for any list index."""
    for name, field in model.model_fields.items():
        path = prefix + (field.alias or name)
        yield from _string_paths(field.annotation, path)


def _bare(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            inner = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(inner) != 1:
                return annotation
            annotation = inner[0]
        else:
            return annotation


def _string_paths(annotation: Any, path: str) -> Iterator[str]:
    annotation = _bare(annotation)
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from model_string_fields(annotation, path + ".")
    elif origin in (list, tuple):
        yield from _string_paths(typing.get_args(annotation)[0], path + "[0]")
    elif origin is dict:
        yield from _string_paths(typing.get_args(annotation)[1], path + ".KEY")
    elif isinstance(annotation, type) and issubclass(annotation, str):
        yield path


def fuzzed_as(model_path: str) -> list[str]:
    pattern = re.escape(model_path).replace("KEY", r"[^.\[]+").replace(r"\[0\]", r"\[[0-9]+\]")
    return [f for f in FIELDS if re.fullmatch(pattern, f)]


def put(config: dict[str, Any], path: str, value: str) -> None:
    parts = path.replace("[", ".[").split(".")
    target: Any = config
    for part, following in zip(parts, [*parts[1:], None], strict=True):
        key: Any = int(part[1:-1]) if part.startswith("[") else part
        if isinstance(target, list):
            target.extend([""] * (key + 1 - len(target)))
        if following is None:
            target[key] = value
        elif isinstance(target, dict):
            target = target.setdefault(key, [] if following.startswith("[") else {})
        else:
            target = target[key]


def run_parse(config: dict[str, Any]) -> Any:
    return parse({k: as_cli_value(v) for k, v in config.items()}, set(SECRET_KEYS))


def rejected_cleanly(error: ConfigError, path: str, value: str) -> None:
    lines = str(error).split("\n")
    top = path.split(".")[0].split("[")[0]
    for line in lines:
        assert line.startswith("hemma:"), line
        assert "\r" not in line and "\x00" not in line, repr(line)
        assert len(line) <= MAX_LINE, line
        if top in SECRET_KEYS and len(value) >= 4:
            assert value not in line, "a secret's value in an error line"
    assert any(line.startswith(f"hemma:{top}") for line in lines), (path, lines)


# --- what an accepted value reaches, checked with the tools that read it --------


@functools.cache
def base_unit_files() -> dict[str, str]:
    """Every unit file of the base config, by path."""
    config = run_parse(base_config())
    return {f.path: f.content for g in host_units(config, config.apps()) for f in g.files}


def groups_holding(config: Any, value: str) -> list[UnitGroup]:
    """The groups the value reached: a file that holds it and differs from the base
    config's (a value such as a space is in every unit without coming from config)."""
    base = base_unit_files()
    return [
        g
        for g in host_units(config, config.apps())
        if any(
            (value in f.content or value in f.path) and base.get(f.path) != f.content
            for f in g.files
        )
    ]


def exec_words(group: UnitGroup) -> Iterator[list[str]]:
    for f in group.files:
        for line in f.content.splitlines():
            if line.startswith("ExecStart="):
                yield line.removeprefix("ExecStart=").split(" ")


def verify_units(groups: list[UnitGroup], root: Path) -> None:
    """systemd-analyze verify in a root holding systemd's units, a stand-in for the
    host's docker service and stand-in executables."""
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree("/usr/lib/systemd", root / "usr/lib/systemd", symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    names = []
    for group in groups:
        for f in group.files:
            target = root / f.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.content)
            target.chmod(int(f.mode, 8))
            if f.path.startswith("/etc/systemd/system/"):
                names.append(f.path.rsplit("/", 1)[1])
        for words in exec_words(group):
            stub = root / words[0].lstrip("/")
            if not stub.exists():
                stub.parent.mkdir(parents=True, exist_ok=True)
                stub.write_text("#!/bin/sh\n")
                stub.chmod(0o755)
        for line in "\n".join(f.content for f in group.files).splitlines():
            if line.startswith(("Requires=", "After=")) and line.endswith(".service"):
                name = line.split("=", 1)[1]
                stand_in = units / name
                if not stand_in.exists() and name.startswith("hemma-") is False:
                    stand_in.write_text("[Service]\nExecStart=/bin/true\n")
    done = subprocess.run(
        ["systemd-analyze", f"--root={root}", "verify", *names], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr


def bash_parses(script: str) -> None:
    done = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def nginx_accepts(files: dict[str, str], root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    hosts = [p.name for p in (root / "vhost.d").iterdir() if "_" not in p.name]
    servers = "\n".join(
        f"server {{ listen 127.0.0.1:1; server_name {h}; include vhost.d/{h}; }}" for h in hosts
    )
    conf = root / "nginx.conf"
    conf.write_text(
        f"pid {root}/nginx.pid; error_log {root}/error.log; events {{}}\n"
        f"http {{ client_body_temp_path {root}/body; include conf.d/*.conf; {servers} }}\n"
    )
    (root / "certs").mkdir(exist_ok=True)
    done = subprocess.run(
        [shutil.which("nginx") or "/usr/sbin/nginx", "-t", "-q", "-p", str(root), "-c", str(conf)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def argv_of(command: str, tmp: Path) -> list[str]:
    """Run a command string with a stand-in ``docker`` that prints its argv as JSON."""
    stub = tmp / "bin" / "docker"
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text("#!/usr/bin/env python3\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    stub.chmod(0o755)
    done = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{stub.parent}:{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stderr
    words: list[str] = json.loads(done.stdout.splitlines()[0])
    return words


def reaches_intact(config: Any, path: str, value: str, tmp: Path) -> None:
    for group in groups_holding(config, value):
        for words in exec_words(group):
            line = " ".join(words)
            if value in line:
                assert value in words or any(value in w for w in words), (value, words)
        bash_parses(as_command(install_script(group)))
        bash_parses(as_command(remove_script(group)))
    units = groups_holding(config, value)
    if units:
        verify_units(units, tmp / "units")
    files = proxy_files(host_policies(config, config.apps()), config.proxy.default_max_body_size)
    if any(value in text for text in files.values()):
        nginx_accepts(files, tmp / "nginx")
    script = exec_step(config.docker_path, "skriptoteket-web", ("pdm", "run", value))
    bash_parses(as_command(script))
    sandboxed = exec_step(str(docker_stand_in(tmp)), "skriptoteket-web", ("pdm", "run", value))
    assert exec_argv(sandboxed, tmp) == ["exec", "skriptoteket-web", "pdm", "run", value]
    build = build_command(config.docker_host, str(tmp), Build("web", args={"ARG": value}), "w:1")
    assert argv_of(build, tmp)[-2] == f"ARG={value}", "a build argument stays one argument"
    if path == "proxy.basicAuthUser":
        nginx_lets_in(value, tmp / "htpasswd")


DOCKER_STAND_IN = """#!/bin/sh
case "$1" in
  inspect) case "$3" in *Health*) echo healthy ;; *) echo "true false" ;; esac ;;
  exec) for word in "$@"; do printf '%s\\0' "$word"; done > "$DOCKER_LOG" ;;
esac
"""
"""Answers a migration step's inspects as a running, healthy container would, and
records the exec's argv, NUL-separated (no accepted value holds a NUL)."""


def docker_stand_in(tmp: Path) -> Path:
    stub = tmp / "stand-in" / "docker"
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text(DOCKER_STAND_IN)
    stub.chmod(0o755)
    return stub


def exec_argv(script: str, tmp: Path) -> list[str]:
    """Run a migration step's command string for real, against the stand-in."""
    log = tmp / "stand-in" / "exec.log"
    log.unlink(missing_ok=True)
    done = subprocess.run(
        ["bash", "-c", as_command(script)],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "DOCKER_LOG": str(log)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return log.read_text().split("\0")[:-1]


def nginx_lets_in(user: str, root: Path) -> None:
    """nginx reads the htpasswd file the program writes for ``user``: the user and its
    password get in, another password does not."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "htpasswd").write_text(htpasswd(user, "the-password", "s4ltS4lt"))
    # A file, not `return`: return runs in the rewrite phase, before auth_basic does.
    (root / "www").mkdir()
    (root / "www" / "index.html").write_text("ok\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Workers drop to nobody when started as root, and pytest's tmp dirs are private.
    run_as = "user root root; " if os.geteuid() == 0 else ""
    (root / "nginx.conf").write_text(
        f"{run_as}pid {root}/nginx.pid; error_log {root}/error.log; events {{}}\n"
        f"http {{ access_log off; client_body_temp_path {root}/body; server {{ "
        f"listen 127.0.0.1:{port}; location / {{ auth_basic on; "
        f"auth_basic_user_file {root}/htpasswd; root {root}/www; }} }} }}\n"
    )
    server = start_nginx(root, port)
    try:

        def status(password: str) -> int:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/", headers={"Authorization": f"Basic {token}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    return int(answer.status)
            except urllib.error.HTTPError as error:
                return int(error.code)

        assert status("the-password") == 200, user
        assert status("another-password") == 401, user
    finally:
        stop_nginx(server)


Check = Callable[[str], None]


@pytest.mark.parametrize("path", sorted(FIELDS))
@settings(
    # HEMMA_HOSTILE_EXAMPLES=200 searches deeper: 12 take about 55 s here (~120 fields),
    # 200 about 16 times that.
    max_examples=int(os.environ.get("HEMMA_HOSTILE_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_hostile_string_is_refused_cleanly_or_reaches_its_target_intact(
    path: str, data: st.DataObject, tmp_path: Path
) -> None:
    value = data.draw(hostile(FIELDS[path]), label="value")
    config = base_config()
    put(config, path, value)
    try:
        parsed = run_parse(config)
    except ConfigError as error:
        rejected_cleanly(error, path, value)
        return
    assert "\n" not in value and "\x00" not in value and "\r" not in value, (path, value)
    reaches_intact(parsed, path, value, tmp_path)


def test_every_string_field_of_the_model_is_fuzzed() -> None:
    """Derived from the model: a new string field fails here until it is in FIELDS."""
    paths = list(model_string_fields())
    assert len(paths) > 80 and "backups.dumpsDirectory" in paths
    missing = [p for p in paths if p not in NOT_FUZZED and not fuzzed_as(p)]
    assert missing == []
    stale = [f for f in FIELDS if not any(fuzzed_as(p) == [f] or f in fuzzed_as(p) for p in paths)]
    assert stale == [], "a field the model does not have"


def open_keys(annotation: Any, path: str) -> Iterator[str]:
    """Paths of the model's objects whose keys are any string at all."""
    annotation = _bare(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            yield from open_keys(field.annotation, f"{path}{field.alias or name}.")
    elif typing.get_origin(annotation) in (list, tuple):
        yield from open_keys(typing.get_args(annotation)[0], path + "[0].")
    elif typing.get_origin(annotation) is dict:
        key, value = typing.get_args(annotation)
        if key is str:
            yield path.rstrip(".")
        yield from open_keys(value, path + "KEY.")


def test_every_object_key_of_the_model_has_a_pattern() -> None:
    """A key reaches error lines and resources as it is: a bare ``str`` would let a
    newline or a terminal escape through (``appSources`` did)."""
    assert list(open_keys(StackConfig, "")) == []


def test_every_base_value_is_accepted() -> None:
    """Else every example of that field would only ever test a rejection."""
    for path, value in FIELDS.items():
        config = base_config()
        put(config, path, value)
        run_parse(config)
