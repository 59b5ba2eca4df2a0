"""Two private engines at once, the rehearsal of a stack placed on two hosts: each
keeps its own containers, and their networks never share a subnet."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

import pytest

from tests.parts import images
from tests.parts.engine import SECOND_NETWORKS, Engine

# The image's httpd answers on the health path; Docker's check asks it over TCP.
SERVE = "echo ok >/www/health && exec httpd -f -p 8080 -h /www"
PROBE = "wget -q -O /dev/null http://127.0.0.1:8080/health || exit 1"


def subnet(engine: Engine, network: str) -> ipaddress.IPv4Network:
    found = engine.docker(
        "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", network
    ).stdout.strip()
    return ipaddress.IPv4Network(found)


def test_two_engines_run_side_by_side_with_their_own_containers_and_subnets(
    engine: Engine, second_engine: Engine, busybox_image: str
) -> None:
    engines = {"first": engine, "second": second_engine}
    image = {"first": busybox_image, "second": images.build_busybox(second_engine)}
    tag = secrets.token_hex(3)
    network = f"apps-{tag}"
    name = {which: f"{which}-{tag}" for which in engines}
    on_network = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'

    # Two daemons, not one reached through two sockets. Not told apart by ``docker
    # info``'s ID: dockerd 20.10 derives it from /etc/docker/key.json, one per machine.
    assert engine.host != second_engine.host
    for e in engines.values():
        assert e.docker("info", "--format", "{{.DockerRootDir}}").stdout.strip() == str(
            e.root / "data"
        )

    try:
        # The same name on each: on one daemon the second create would fail.
        for e in engines.values():
            e.docker("network", "create", network)
        for which, e in engines.items():
            e.docker(
                "run", "--detach", "--name", name[which], "--network", network,
                "--add-host", "host.docker.internal:host-gateway",
                "--health-cmd", PROBE, "--health-interval", "1s",
                image[which], "sh", "-c", SERVE,
            )  # fmt: skip
        for which, e in engines.items():
            e.wait_for(name[which], "{{.State.Health.Status}}", "healthy", timeout=30)

        for which, e in engines.items():
            listed = e.docker("ps", "--all", "--format", "{{.Names}}").stdout.split()
            other = "second" if which == "first" else "first"
            assert name[which] in listed
            assert name[other] not in listed, (which, listed)

        nets = {which: subnet(e, network) for which, e in engines.items()}
        assert not nets["first"].overlaps(nets["second"]), nets
        assert nets["second"].subnet_of(ipaddress.IPv4Network(SECOND_NETWORKS)), nets
        for which, e in engines.items():
            address = ipaddress.IPv4Address(e.inspect(name[which], on_network))
            assert address in nets[which], (which, address, nets)

            # host-gateway is each engine's own bridge address.
            hosts = e.docker("exec", name[which], "cat", "/etc/hosts").stdout
            gateway = [
                line.split() for line in hosts.splitlines() if "host.docker.internal" in line
            ]
            assert gateway == [[e.bridge_ip, "host.docker.internal"]], (which, hosts)
        assert engine.bridge_ip != second_engine.bridge_ip
    finally:
        for which, e in engines.items():
            e.docker("rm", "--force", name[which], check=False)
            e.docker("network", "rm", network, check=False)


def test_an_engine_with_its_own_address_pools_refuses_to_restart(
    engine: Engine, second_engine: Engine
) -> None:
    """Restarted over its old state, it would delete docker0, the first engine's bridge
    (moby v20.10.24 daemon/daemon_unix.go:879-886): the first engine's containers
    then fail to start with "could not find bridge docker0", as a run once showed."""
    assert Path(f"/sys/class/net/{engine.bridge}").exists()
    with pytest.raises(RuntimeError, match="deletes docker0"):
        second_engine.restart()
    assert second_engine.docker("version", check=False).returncode == 0
    assert Path(f"/sys/class/net/{engine.bridge}").exists()
