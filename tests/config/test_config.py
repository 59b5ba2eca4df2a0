"""Bad config stops the program with one line naming the key, before any resource exists."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from components.apps.classhub import SPEC as CLASS_HUB
from components.config.checks import REQUIRED_UNLESS_LOCAL
from components.config.errors import shown
from components.config.reading import parse
from components.config.stack import StackConfig
from tests.harness import (
    OPERATOR_SECRETS,
    ROOT,
    TEST_HOST_KEY,
    as_cli_value,
    run_expecting_error,
    site_config,
    stack_file_config,
)

Edit = Callable[[dict[str, Any]], None]


def setting(key: str, value: Any) -> Edit:
    """Set ``key`` (dotted for nested objects) to ``value``."""

    def edit(config: dict[str, Any]) -> None:
        *parents, last = key.split(".")
        target = config
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value

    return edit


def removing(key: str) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        *parents, last = key.split(".")
        target = config
        for part in parents:
            target = target[part]
        del target[last]

    return edit


STRAY_KEY = TEST_HOST_KEY[:30] + "*" + TEST_HOST_KEY[30:]
"""The pinned key with one character that is not base64: read leniently, the rest would
still decode to an ed25519 key, and ssh would be handed a line that is not the key."""
GPU_LLAMA = StackConfig.model_fields["gpu"].default.llama.model_dump(by_alias=True)
KNOWN_ROUTES = (
    "classhub, grafana, huleedu, huleedu-api, huleedu-ws, jaeger, prometheus, skriptoteket"
)

BAD_CONFIGS: list[tuple[str, Edit, str]] = [
    (
        "typo in a key",
        setting("acmeEmial", "ops@hule.education"),
        "hemma:acmeEmial: unknown config key (did you mean hemma:acmeEmail?)",
    ),
    (
        "typo in a nested key",
        setting("proxy.containerNmae", "edge"),
        "hemma:proxy.containerNmae: unknown config key (did you mean hemma:proxy.containerName?)",
    ),
    (
        "a port that is not a number",
        setting("sshPort", "twenty-two"),
        "hemma:sshPort: must be an integer (got 'twenty-two')",
    ),
    (
        "a port out of range",
        setting("sshPort", 70000),
        "hemma:sshPort: must be a port number from 1 to 65535 (got '70000')",
    ),
    (
        "a tunnel port of zero",
        setting("postgres.tunnelPort", 0),
        "hemma:postgres.tunnelPort: must be a port number from 1 to 65535 (got 0)",
    ),
    (
        "a boolean that is not",
        setting("acmeStaging", "maybe"),
        "hemma:acmeStaging: must be true or false (got 'maybe')",
    ),
    (
        "an email without a domain",
        setting("acmeEmail", "admin@"),
        "hemma:acmeEmail: not a valid email address (got 'admin@')",
    ),
    (
        "a hostname with an empty label",
        setting("hostnames.grafana", "grafana..hule.education"),
        "hemma:hostnames.grafana: not a valid hostname (got 'grafana..hule.education')",
    ),
    (
        "a hostname with an underscore",
        setting("hostnames.prometheus", "prom_etheus.hule.education"),
        "hemma:hostnames.prometheus: not a valid hostname (got 'prom_etheus.hule.education')",
    ),
    (
        "two routes on one hostname",
        setting("hostnames.jaeger", "grafana.hemma.hule.education"),
        "hemma:hostnames.jaeger: hostname 'grafana.hemma.hule.education' is already used by "
        "hemma:hostnames.grafana",
    ),
    (
        "a hostname for a route that does not exist",
        setting("hostnames.grafanna", "grafanna.hule.education"),
        "hemma:hostnames.grafanna: unknown route (did you mean grafana?)",
    ),
    (
        "extra env for a misspelt container",
        setting("extraEnv", {"skriptoteket_web": {"WORKERS": "4"}}),
        "hemma:extraEnv.skriptoteket_web: no container of that name (did you mean "
        "skriptoteket-web?)",
    ),
    (
        "a hostname for a route nothing like a known one",
        setting("hostnames.wiki", "wiki.hule.education"),
        f"hemma:hostnames.wiki: unknown route (known: {KNOWN_ROUTES})",
    ),
    (
        "a route without a hostname",
        removing("hostnames.jaeger"),
        "hemma:hostnames.jaeger: is required (no hostname for this route)",
    ),
    (
        "two containers with one name",
        setting("postgres.containerName", "nginx-proxy"),
        "hemma:postgres.containerName: container name 'nginx-proxy' is already used by "
        "hemma:proxy.containerName",
    ),
    (
        "a container name an app already uses",
        setting("proxy.companionContainerName", "grafana"),
        "hemma:proxy.companionContainerName: container name 'grafana' is already used by "
        "the observability app",
    ),
    (
        "shared-postgres published on the HTTPS port",
        setting("postgres.hostPort", 443),
        "hemma:postgres.hostPort: port 443 is already used by nginx-proxy (HTTPS)",
    ),
    (
        "two volumes with one name",
        setting("proxy.htmlVolume", "nginx-proxy-certs"),
        "hemma:proxy.htmlVolume: volume name 'nginx-proxy-certs' is already used by "
        "hemma:proxy.certsVolume",
    ),
    (
        "a data volume an app already uses",
        setting("postgres.dataVolume", "grafana-data"),
        "hemma:postgres.dataVolume: volume name 'grafana-data' is already used by "
        "the observability app",
    ),
    (
        "a key written in snake_case",
        setting("postgres.host_port", 5433),
        "hemma:postgres.host_port: unknown config key (did you mean hemma:postgres.hostPort?)",
    ),
    ("no pinned host key", removing("sshHostKey"), "hemma:sshHostKey: is required"),
    (
        "a host key with a stray character pasted into it",
        setting("sshHostKey", STRAY_KEY),
        f"hemma:sshHostKey: host key is not valid base64 (got {shown(STRAY_KEY)})",
    ),
    (
        "a trusted network written with a netmask",
        setting("proxy.trustedNetwork", "172.16.0.0/255.240.0.0"),
        "hemma:proxy.trustedNetwork: must be a private network, written as its "
        "address/prefix (got '172.16.0.0/255.240.0.0')",
    ),
    (
        "a host key that is not base64",
        setting("sshHostKey", "ssh-ed25519 not*base64"),
        "hemma:sshHostKey: host key is not valid base64 (got 'ssh-ed25519 not*base64')",
    ),
    (
        "a host key of an unknown type",
        setting("sshHostKey", "ssh-dss AAAAB3NzaC1kc3M="),
        "hemma:sshHostKey: must be a public host key 'TYPE BASE64', as ssh-keyscan prints it "
        "(got 'ssh-dss AAAAB3NzaC1kc3M=')",
    ),
    (
        "an image without a tag",
        setting("postgres.image", "postgres"),
        "hemma:postgres.image: must pin a tag or digest, e.g. postgres:16-alpine (got 'postgres')",
    ),
    (
        "an nginx-proxy that routes to unhealthy containers",
        setting("proxy.image", "nginxproxy/nginx-proxy:1.8.1"),
        "hemma:proxy.image: nginx-proxy before 1.9 ignores DOCKER_CONTAINER_FILTERS: it would "
        "route to containers that are not healthy yet (got 'nginxproxy/nginx-proxy:1.8.1')",
    ),
    (
        "a body size nginx cannot read",
        setting("proxy.defaultMaxBodySize", "10 MB"),
        "hemma:proxy.defaultMaxBodySize: must be an nginx size such as 1m or 650m (got '10 MB')",
    ),
    (
        "a Docker host without a scheme",
        setting("dockerHost", "hemma"),
        "hemma:dockerHost: must be a Docker host URL: ssh://HOST, tcp://HOST:PORT or "
        "unix:///PATH (got 'hemma')",
    ),
    (
        "an object key holding a string",
        setting("proxy", "nginx"),
        "hemma:proxy: must be an object, and this is not JSON (or set one field: KEY.FIELD=VALUE)",
    ),
    (
        "a user name with a space",
        setting("sshUser", "Root User"),
        "hemma:sshUser: not a valid user name (got 'Root User')",
    ),
    (
        "an import of something the stack does not declare",
        setting("import", {"volume/nope": "nope"}),
        "hemma:import.volume/nope: the stack declares nothing by that name to import "
        "(keys are KIND/NAME, KIND one of network, volume, database, role)",
    ),
    (
        "a schedule systemd cannot read",
        setting("skriptoteketCleanup.loginEventsSchedule", "dayly"),
        "hemma:skriptoteketCleanup.loginEventsSchedule: not a systemd OnCalendar expression: "
        "bad weekday 'dayly' (got 'dayly')",
    ),
    (
        "a backup time that does not exist",
        setting("backups.schedule", "*-*-* 25:00"),
        "hemma:backups.schedule: not a systemd OnCalendar expression: "
        "hour '25' is out of range (got '*-*-* 25:00')",
    ),
    (
        "a GPU server on a public address",
        setting("gpu.bindAddress", "0.0.0.0"),
        "hemma:gpu.bindAddress: must be a loopback address (127.0.0.1 or ::1) (got '0.0.0.0')",
    ),
    (
        "a GPU server on shared-postgres's port",
        setting("gpu.llama", {**GPU_LLAMA, "port": 5432}),
        "hemma:gpu.llama.port: port 5432 is already used by hemma:postgres.hostPort",
    ),
    (
        "backups kept for no days",
        setting("backups.keepDaily", 0),
        "hemma:backups.keepDaily: must be at least 1 (got 0)",
    ),
    (
        "a relative backup directory",
        setting("backups.dumpsDirectory", "backups"),
        "hemma:backups.dumpsDirectory: must be an absolute path of letters, digits and ._@+- "
        "(no spaces, no ..) (got 'backups')",
    ),
    (
        "a basic-auth user htpasswd cannot hold",
        setting("proxy.basicAuthUser", "ad:min"),
        "hemma:proxy.basicAuthUser: must be letters, digits, '.', '_' or '-' (got 'ad:min')",
    ),
    (
        "a managed GPU server without its executable",
        setting("gpu.llama.manage", True),
        "hemma:gpu.llama: a managed server needs its executable (from the running unit)",
    ),
    (
        "letting a volume the stack does not have start empty",
        setting("adoptAsIs", ["kafka_data"]),
        "hemma:adoptAsIs[0]: 'kafka_data' is no volume the stack declares",
    ),
]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [pytest.param(edit, expected, id=why) for why, edit, expected in BAD_CONFIGS],
)
def test_bad_config_stops_with_one_line_naming_the_key_and_declares_nothing(
    edit: Edit, expected: str
) -> None:
    config = copy.deepcopy(site_config())
    edit(config)
    message, program = run_expecting_error(config)
    assert message == expected
    assert program.declared == []


def test_the_table_covers_at_least_fifteen_distinct_mistakes() -> None:
    assert len(BAD_CONFIGS) >= 15
    assert len({expected for _, _, expected in BAD_CONFIGS}) == len(BAD_CONFIGS)


def test_a_private_key_set_in_plain_text_is_rejected_without_echoing_it() -> None:
    message, program = run_expecting_error(
        site_config(), secret_keys=OPERATOR_SECRETS - {"sshPrivateKey"}
    )
    assert message == (
        "hemma:sshPrivateKey: must be set as a secret "
        "(pulumi config set --secret sshPrivateKey ...)"
    )
    assert "PRIVATE KEY" not in message
    assert program.declared == []


def test_an_operator_secret_in_plain_text_is_rejected() -> None:
    config = {**site_config(), "openaiApiKey": "sk-plain"}
    message, _ = run_expecting_error(config, secret_keys=OPERATOR_SECRETS - {"openaiApiKey"})
    assert message == (
        "hemma:openaiApiKey: must be set as a secret (pulumi config set --secret openaiApiKey ...)"
    )


def test_a_bad_secret_value_is_reported_without_its_value() -> None:
    config = {**site_config(), "smtpPassword": ""}
    message, _ = run_expecting_error(config, secret_keys=OPERATOR_SECRETS | {"smtpPassword"})
    assert message == "hemma:smtpPassword: must not be empty"


def test_every_problem_gets_its_own_line() -> None:
    config = copy.deepcopy(site_config())
    config["sshPort"] = "x"
    config["acmeEmail"] = "nobody"
    message, _ = run_expecting_error(config)
    assert message.splitlines() == [
        "hemma:acmeEmail: not a valid email address (got 'nobody')",
        "hemma:sshPort: must be an integer (got 'x')",
    ]


def test_the_committed_stack_file_needs_only_the_operator_held_values() -> None:
    """The stack file holds every site value but no secret and no host key."""
    message, program = run_expecting_error(stack_file_config(), secret_keys=set())
    assert message.splitlines() == [
        "hemma:sshHostKey: is required",
        "hemma:sshPrivateKey: is required",
        "hemma:anthropicApiKey: is required by huleedu_llm_provider_service "
        "(pulumi config set --secret anthropicApiKey ...)",
        "hemma:openaiApiKey: is required by huleedu_llm_provider_service "
        "(pulumi config set --secret openaiApiKey ...)",
        "hemma:smtpPassword: is required by huleedu_email_service "
        "(pulumi config set --secret smtpPassword ...)",
        "hemma:backups.repository: is required (a restic repository off this disk: "
        "/mnt/PATH, sftp:HOST:/PATH, s3:URL; or backups.enabled: false)",
        "hemma:resticPassword: is required by the backups "
        "(pulumi config set --secret resticPassword ...)",
    ]
    assert program.declared == []


def test_the_app_secrets_an_enabled_app_needs_are_required() -> None:
    config = {
        k: v
        for k, v in site_config().items()
        if k not in {"smtpPassword", "anthropicApiKey", "openaiApiKey"}
    }
    message, program = run_expecting_error(config, secret_keys={"sshPrivateKey", "resticPassword"})
    assert message.splitlines() == [
        "hemma:anthropicApiKey: is required by huleedu_llm_provider_service "
        "(pulumi config set --secret anthropicApiKey ...)",
        "hemma:openaiApiKey: is required by huleedu_llm_provider_service "
        "(pulumi config set --secret openaiApiKey ...)",
        "hemma:smtpPassword: is required by huleedu_email_service "
        "(pulumi config set --secret smtpPassword ...)",
    ]
    assert program.declared == []


def test_the_site_config_is_valid() -> None:
    config = parse(
        {
            key: value if isinstance(value, str) else __import__("json").dumps(value)
            for key, value in site_config().items()
        },
        OPERATOR_SECRETS,
    )
    assert config.acme_email == "admin@hule.education"
    assert config.postgres.container_name == "shared-postgres"
    assert config.proxy.image == "nginxproxy/nginx-proxy:1.11"


def test_a_copy_with_an_edit_declares_its_own_apps_not_the_remembered_ones() -> None:
    """The declared apps are remembered per config (declaring renders every file); a
    copy with another switch, shallow or deep, is declared anew."""
    config = parse({k: as_cli_value(v) for k, v in site_config().items()}, OPERATOR_SECRETS)
    names = [app.name for app in config.apps()]
    assert "classhub" not in names
    switched = config.settings(CLASS_HUB).model_copy(update={"enabled": True})
    for deep in (False, True):
        edited = config.model_copy(update={"class_hub": switched}, deep=deep)
        assert sorted(app.name for app in edited.apps()) == sorted([*names, "classhub"])
    assert [app.name for app in config.apps()] == names
    assert config.model_copy() == config == config.model_copy(deep=True), "not the memo"
    config.leave_out({"skriptoteket": "its checkout is not here"})
    assert "skriptoteket" not in [app.name for app in config.apps()]
    assert "skriptoteket" in [app.name for app in config.apps(everything=True)]


def test_a_trusted_network_written_as_address_slash_prefix_is_accepted() -> None:
    config = {**site_config(), "proxy": {**site_config()["proxy"]}}
    config["proxy"]["trustedNetwork"] = "10.0.0.0/8"
    parsed = parse({k: as_cli_value(v) for k, v in config.items()}, OPERATOR_SECRETS)
    assert parsed.proxy.trusted_network == "10.0.0.0/8"


def test_declared_defaults_in_pulumi_yaml_match_the_model() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    fields_by_alias = {field.alias: field for field in StackConfig.model_fields.values()}
    for key, declaration in declared.items():
        assert key in fields_by_alias, f"Pulumi.yaml declares {key}, the model does not"
        field = fields_by_alias[key]
        if "default" in declaration:
            assert field.default == declaration["default"], key
        else:
            assert field.is_required() or key in REQUIRED_UNLESS_LOCAL, (
                f"{key} has no default in Pulumi.yaml but one in the model"
            )
