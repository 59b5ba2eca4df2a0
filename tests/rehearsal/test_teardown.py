"""The rehearsal's own clean-up, on the private engine: a network still holding a
container the rehearsal did not remove is not forced, and the error names it."""

from __future__ import annotations

import secrets

import pytest

from tests.parts.engine import Engine
from tests.rehearsal.replay import DockerApi, DockerError, remove_network


def test_a_network_that_still_holds_a_container_is_kept_and_the_error_names_it(
    engine: Engine, busybox_image: str
) -> None:
    tag = secrets.token_hex(4)
    network, container = f"teardown-{tag}", f"leaked-{tag}"
    api = DockerApi(engine.socket)
    engine.docker("network", "create", network)
    try:
        engine.docker(
            "run", "-d", "--name", container, "--network", network, busybox_image, "sleep", "600"
        )
        with pytest.raises(DockerError, match=f"still attached: {container}$"):
            remove_network(api, network, tries=2)
        inspected = api.call("GET", f"/networks/{network}")
        assert [e["Name"] for e in inspected["Containers"].values()] == [container]
        engine.docker("rm", "--force", container)
        remove_network(api, network)
        assert engine.docker("network", "inspect", network, check=False).returncode != 0
        remove_network(api, network)  # gone already: done
    finally:
        engine.docker("rm", "--force", container, check=False)
        engine.docker("network", "rm", network, check=False)
