"""The server as one program: its components, its outputs and adoption."""

from __future__ import annotations

import pytest

from tests.harness import (
    Program,
    run_program,
    site_config,
)

VOLUME = "docker:index/volume:Volume"


NETWORK = "docker:index/network:Network"


ROLE = "postgresql:index/role:Role"


DATABASE = "postgresql:index/database:Database"


PASSWORD = "random:index/randomPassword:RandomPassword"


OUTPUTS = {
    "schemaVersion",
    "sshTarget",
    "sshPort",
    "networks",
    "proxyPublicHosts",
    "basicAuthCredentials",
    "postgresAdminPassword",
    "postgresTunnel",
    "appDatabases",
    "appConnectionStrings",
    "hostUnits",
    "hosts",
    "placement",
    "backups",
    "drift",
    "routes",
    "dnsRecords",
    "healthChecks",
    "sshTunnels",
    "containers",
    "grafanaAdminPassword",
}


SECRET_OUTPUTS = {
    "basicAuthCredentials",
    "postgresAdminPassword",
    "appConnectionStrings",
    "grafanaAdminPassword",
}


@pytest.fixture
def program() -> Program:
    return run_program()


def password_values(program: Program) -> set[str]:
    return {r.state["result"] for r in program.of_type(PASSWORD)}


def test_outputs_are_the_documented_contract_and_secrets_stay_secret(program: Program) -> None:
    assert set(program.outputs) == OUTPUTS
    assert program.exported == OUTPUTS
    assert program.secret_outputs == SECRET_OUTPUTS


def test_no_generated_secret_appears_in_a_plain_output(program: Program) -> None:
    plain = repr({k: v for k, v in program.outputs.items() if k not in program.secret_outputs})
    for value in password_values(program):
        assert value not in plain


def test_every_resource_belongs_to_a_component(program: Program) -> None:
    top_level = {
        r.type for r in program.declared if r.parent.endswith("pulumi:pulumi:Stack::hemma-hemma")
    }
    assert top_level == {
        "pulumi:providers:docker",
        "hemma:network:Networks",
        "hemma:proxy:ProxyStack",
        "hemma:database:SharedPostgres",
        "hemma:host:SystemdUnit",
        "hemma:app:App",
    }


def test_the_program_declares_the_same_resources_every_run() -> None:
    def declared(program: Program) -> list[tuple[str, str]]:
        return sorted((r.urn, repr(r.inputs)) for r in program.declared)

    assert declared(run_program(fresh=True)) == declared(run_program(fresh=True))


def test_import_option_adopts_existing_objects_and_only_those() -> None:
    adopted = {
        "network/hule-network": "4f2a9c0e1b7d",
        "volume/shared-postgres-data": "shared-postgres-data",
        "role/huleedu_user": "huleedu_user",
        "database/skriptoteket": "skriptoteket",
    }
    program = run_program({**site_config(), "import": adopted})
    imported = {r.type: r for r in program.declared if r.import_id}
    assert {(t, r.import_id) for t, r in imported.items()} == {
        (NETWORK, "4f2a9c0e1b7d"),
        (VOLUME, "shared-postgres-data"),
        (ROLE, "huleedu_user"),
        (DATABASE, "skriptoteket"),
    }
    # The first up sets the generated password and the owner right after the import
    # (the engine updates an imported resource in the same run); an ignored password
    # would leave the role on its old one while the new containers use the new one.
    assert imported[ROLE].ignore_changes == []
    assert imported[DATABASE].ignore_changes == []
    assert (
        imported[ROLE].inputs["password"]
        == program.named("shared-postgres-huleedu-password").state["result"]
    )
    assert imported[DATABASE].inputs["owner"] == "skriptoteket"
    # Compose labels would replace the object; they are ignored for good, imported or not.
    assert imported[VOLUME].ignore_changes == ["labels", "driverOpts"]
    assert imported[NETWORK].ignore_changes == ["labels"]
    for network in program.of_type(NETWORK):
        assert network.ignore_changes == ["labels"]
    assert imported[VOLUME].protect, "an adopted volume is protected like any other"
