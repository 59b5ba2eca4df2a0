"""The survey against a hand-made server that does not look like the program: built on
the private engine in both ways the runbooks leave open for its volumes (compose's
project prefix, or names set with ``name:``), with a Kafka that keeps its data where a
bitnami image does, the language tool under compose's name holding its declared port,
acme-companion under another name, and the mounts a hand-made proxy and database
have that the program does not carry over (vhost.d, an htpasswd directory, the
database's init scripts).

``scripts/adopt survey`` and ``swap --dry-run`` run for real from a copy of this
checkout, over the real sshd; only what they print, their exit status and the engine
are looked at. The images are busybox tagged as what the hand-made server ran: the
survey reads names, mounts and ports, and starts nothing.
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.parts.engine import Engine
from tests.parts.ssh import SshServer
from tests.rehearsal.adoption_site import IDLE, Checkout, make_checkout, operator_env

pytest_plugins = ["tests.parts.fixtures"]
pytestmark = pytest.mark.tools

KAFKA = "huleedu_kafka"
LANGUAGE_TOOL = "huledu-reboot-language_tool_service-1"
ACME = "nginx-proxy-acme"
IMAGES = ("bitnami/kafka:3.6", "nginxproxy/nginx-proxy:1.6", "nginxproxy/acme-companion:2.4")


@dataclass
class Surveyor:
    checkout: Checkout
    work: Path
    env: dict[str, str]
    ssh: list[str]

    def plan(self, *config: str) -> None:
        args = [a for c in config for a in ("--config", c)]
        done = self.checkout.run(
            "plan", "--quiet", "--json", "plan.json", *args, cwd=self.work, env=self.env
        )
        assert done.returncode == 0, done.stderr

    def adopt(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.checkout.run(
            "adopt", *args, "--plan", "plan.json", *self.ssh, cwd=self.work, env=self.env
        )


@pytest.fixture(scope="module")
def surveyor(ssh_server: SshServer) -> Iterator[Surveyor]:
    base = Path(tempfile.mkdtemp(prefix="hemma-survey-"))
    (base / "work").mkdir()
    checkout = make_checkout(base)
    env = operator_env(ssh_server, base, base / "work" / "plan.json", checkout.stack_file, "")
    ssh = ["--ssh", f"{ssh_server.user}@{ssh_server.host}", "--ssh-port", str(ssh_server.port)]
    try:
        yield Surveyor(checkout, base / "work", env, ssh)
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


@dataclass
class Site:
    engine: Engine
    kafka_volume: str
    containers: list[str]
    volumes: list[str]


@pytest.fixture(params=["prefixed", "named"])
def site(
    request: pytest.FixtureRequest, engine: Engine, busybox_image: str, tmp_path: Path
) -> Iterator[Site]:
    """The hand-made server; its volumes either compose-prefixed or set by name:."""
    docker = engine.docker
    for image in IMAGES:
        docker("tag", busybox_image, image)
    prefixed = request.param == "prefixed"
    tag = secrets.token_hex(2)
    kafka_volume = "huleedu_huleedu_kafka_data" if prefixed else "huleedu_kafka_data"
    volumes = [kafka_volume, f"vhost-{tag}", f"certs-{tag}", f"pg-{tag}"]
    for volume in volumes:
        docker(
            "volume", "create", "--label", "com.docker.compose.project=huleedu",
            "--label", f"com.docker.compose.volume={volume.removeprefix('huleedu_')}", volume,
        )  # fmt: skip
    (tmp_path / "htpasswd").mkdir()
    (tmp_path / "init").mkdir()
    idle = ["sh", "-c", IDLE]
    containers = [KAFKA, LANGUAGE_TOOL, "nginx-proxy", ACME, "shared-postgres"]
    runs = [
        (KAFKA, ["-v", f"{kafka_volume}:/bitnami/kafka"], IMAGES[0]),
        (
            LANGUAGE_TOOL,
            ["-p", "127.0.0.1:8085:8085", "--label", "com.docker.compose.project=huledu-reboot",
             "--label", "com.docker.compose.service=language_tool_service"],
            busybox_image,
        ),
        (
            "nginx-proxy",
            ["-v", f"certs-{tag}:/etc/nginx/certs", "-v", f"vhost-{tag}:/etc/nginx/vhost.d",
             "-v", f"{tmp_path / 'htpasswd'}:/etc/nginx/htpasswd:ro"],
            IMAGES[1],
        ),
        (ACME, ["-v", f"certs-{tag}:/etc/nginx/certs"], IMAGES[2]),
    ]  # fmt: skip
    try:
        for name, args, image in runs:
            docker("run", "-d", "--name", name, *args, image, *idle)
        # Made, not started: the survey reads its mounts, not its databases.
        docker(
            "create", "--name", "shared-postgres", "-v", f"pg-{tag}:/var/lib/postgresql/data",
            "-v", f"{tmp_path / 'init'}:/docker-entrypoint-initdb.d:ro", busybox_image, *idle,
        )  # fmt: skip
        yield Site(engine, kafka_volume, containers, volumes)
    finally:
        docker("rm", "--force", *containers, check=False)
        docker("volume", "rm", "--force", *volumes, check=False)
        docker("rmi", *IMAGES, check=False)


def test_the_survey_stops_on_data_elsewhere_and_a_taken_port_and_swap_refuses_too(
    site: Site, surveyor: Surveyor
) -> None:
    surveyor.plan()
    done = surveyor.adopt("survey")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "adopt survey: refused: 2 finding(s) marked STOP above stop the adoption until they are "
        "dealt with (swap refuses them too); nothing was changed"
    )
    lines = [line.strip() for line in done.stdout.splitlines()]
    stops = [line for line in lines if line.startswith("STOP ")]
    assert stops[0].startswith(
        f"STOP {KAFKA} keeps its data in {site.kafka_volume} at /bitnami/kafka (image "
        "bitnami/kafka:3.6); the program mounts huleedu_kafka_data at /var/lib/kafka/data"
    )
    assert stops[1].startswith(f"STOP {LANGUAGE_TOOL} holds 127.0.0.1:8085, which ")
    assert any(line.startswith(f"LIKELY huleedu_language_tool_service runs here as {LANGUAGE_TOOL}")
               for line in lines)  # fmt: skip
    assert any(line.startswith(f"LIKELY acme-companion runs here as {ACME}") for line in lines)
    dropped = sorted(line.split(", which")[0] for line in lines if line.startswith("DROPPED"))
    assert len(dropped) == 1, dropped
    assert dropped[0].startswith("DROPPED shared-postgres mounts /") and dropped[0].endswith(
        "/init at /docker-entrypoint-initdb.d"
    )
    # The program mounts volumes of its own where the hand-made proxy had its files.
    replaced = sorted(line.split(": ")[0] for line in lines if line.startswith("REPLACED"))
    assert len(replaced) == 2, replaced
    assert replaced[0].startswith("REPLACED nginx-proxy mounts /") and replaced[0].endswith(
        "/htpasswd at /etc/nginx/htpasswd; the program mounts nginx-proxy-htpasswd there"
    )
    assert replaced[1] == (
        f"REPLACED nginx-proxy mounts {site.volumes[1]} at /etc/nginx/vhost.d; the program "
        "mounts nginx-proxy-vhost there"
    )

    swap = surveyor.adopt("swap", "--dry-run")
    assert swap.returncode == 2
    assert swap.stderr.startswith(f"adopt swap: refused: {KAFKA} keeps its data in ")
    assert "(and 1 more); `scripts/adopt survey` lists them all" in swap.stderr
    assert site.engine.inspect(KAFKA, "{{.State.Running}}") == "true", "nothing was stopped"

    # Dealt with: Kafka may start empty, and the language tool is stopped.
    site.engine.docker("stop", "-t", "0", LANGUAGE_TOOL)
    site.engine.docker("rm", LANGUAGE_TOOL)
    surveyor.plan('adoptAsIs=["huleedu_kafka_data"]')
    again = surveyor.adopt("survey")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "ACCEPTED huleedu_kafka keeps its data in" in again.stdout
    assert "STOP" not in again.stdout
