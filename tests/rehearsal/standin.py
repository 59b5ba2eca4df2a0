"""The rehearsal's stand-in image: one image in place of every app image.

Built from the cached Debian rootfs (python3, bash, curl, procps and the
PostgreSQL 15 client tools of ``tests.parts.images``), imported once per engine
without the postgres image's ``VOLUME``, so a stand-in container has no mount
the program did not declare. On top of it go the files in ``image/``:

    file            in the image                why
    --------------  --------------------------  ----------------------------------------
    entrypoint.py   ENTRYPOINT                  HTTP 200 on every port in STANDIN_PORTS;
                                                records its arguments (the declared
                                                command) instead of obeying them; runs
                                                docker-gen; writes /var/run/nginx.pid
    wget            /usr/local/bin/wget         ``wget -q -O /dev/null URL``, via curl
    redis-cli       /usr/local/bin/redis-cli    ``redis-cli ping`` prints PONG only if
                                                something listens on 6379
    mc, ollama      /usr/local/bin/             ``mc ready local``, ``ollama list`` ask
                                                the local port, as the real clients do
    nginx           /usr/local/bin/nginx        ``nginx -t`` succeeds; the check's
                                                ``kill -0 "$(cat /var/run/nginx.pid)"``
                                                is real
    record.py       pdm, grafana, /manage.py    a command run with ``docker exec``
                                                appends its invocation, env and stdin
                                                to /var/log/standin/exec.log
    (link)          /usr/local/bin/python       ``python -c "import urllib..."``: python3
    (link)          /usr/local/bin/docker-gen   ``pgrep docker-gen``: the kernel names a
                                                process after the link it executes

Each container's stand-in listens only where the real one would, as far as the
program's own declaration of that container says (``own_ports``): the port its
health check probes, the inside of its published ports, its listener settings
(``HTTP_PORT``, ``KAFKA_LISTENERS``, ...) and, for pulled images, the ports their
upstream documents where the health check names none (``UPSTREAM_PORTS``). What
*other* containers claim about it (nginx-proxy's ``VIRTUAL_PORT``, a Prometheus
target, a ``DATABASE_URL``) is not served on faith: the tests check those claims
against the stand-in. One image holds the files; each distinct port list is a
tag on top of it that only sets ``STANDIN_PORTS`` (``build_standins``).
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tests.harness import Declared, Program
from tests.parts import images
from tests.parts.engine import Engine
from tests.parts.tools import timed

HERE = Path(__file__).resolve().parent / "image"
REPOSITORY = "hemma-test/standin"
LIB = "usr/local/lib/standin"
EXEC_LOG = "/var/log/standin/exec.log"
ARGV_FILE = "/var/log/standin/argv.json"

PATH = f"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:{images.PG_BIN}"
BASE_CONFIG = (f"ENV PATH={PATH}", "ENV LANG=C.UTF-8")

FILES = {
    "entrypoint.py": f"{LIB}/entrypoint.py",
    "record.py": f"{LIB}/record.py",
    "wget": "usr/local/bin/wget",
    "redis-cli": "usr/local/bin/redis-cli",
    "mc": "usr/local/bin/mc",
    "ollama": "usr/local/bin/ollama",
    "nginx": "usr/local/bin/nginx",
}
LINKS = {
    "usr/local/bin/python": "/usr/bin/python3",
    "usr/local/bin/docker-gen": "/bin/sleep",
    "usr/local/bin/pdm": f"/{LIB}/record.py",
    "usr/local/bin/grafana": f"/{LIB}/record.py",
    # `python manage.py ...` runs in the working directory, which is / here.
    "manage.py": f"/{LIB}/record.py",
}

_LOCAL_PORT = re.compile(r"(?:127\.0\.0\.1|localhost)[:/](\d+)\b")
# NAME:PORT as settings write it: "kafka:9092", "redis://redis:6379/0",
# "@shared-postgres:5432/db", "- grafana:3000", "replacement: blackbox_exporter:9115".
_REFERENCE = re.compile(
    r"(?:^|(?<=[\s'\"\[,=@/]))([A-Za-z][A-Za-z0-9_.-]*):(\d{2,5})(?=$|[\s'\"\],/?])", re.M
)


def names_of(container: Declared) -> set[str]:
    """The names a container answers to: its own and its aliases."""
    inputs = container.inputs
    names = {str(inputs["name"])}
    for network in inputs.get("networksAdvanced") or []:
        names.update(network.get("aliases") or [])
    return names


def settings_text(container: Declared) -> list[str]:
    """What a container is told to connect to: its env values and uploaded files."""
    inputs = container.inputs
    texts = [str(e).partition("=")[2] for e in inputs.get("envs") or []]
    texts += [str(u.get("content") or "") for u in inputs.get("uploads") or []]
    return texts


def references(container: Declared, names: set[str]) -> set[tuple[str, int]]:
    """(name, port) pairs in the container's settings that name one of ``names``."""
    found = set()
    for text in settings_text(container):
        for host, port in _REFERENCE.findall(text):
            if host in names:
                found.add((host, int(port)))
    return found


# Ports the pulled images listen on by default where their health check names
# none (upstream documentation of each image).
UPSTREAM_PORTS: dict[str, tuple[int, ...]] = {
    # query UI, OTLP gRPC and HTTP, collector HTTP, admin
    "jaegertracing/all-in-one": (16686, 4317, 4318, 14268, 14269),
    "redis": (6379,),
    "minio/minio": (9000, 9001),
    "ollama/ollama": (11434,),
    "nginxproxy/nginx-proxy": (80, 443),
}
# Env settings in which an app is told where to listen.
_LISTENER_ENV = re.compile(r"^(?:[A-Z0-9_]+_)?HTTP_PORT$")
_LISTENERS_ENV = {"KAFKA_LISTENERS"}


def image_repository(program: Program, container: Declared) -> str:
    """The declared image without its tag; a pulled image is declared by its ID, so
    its name comes from the RemoteImage that has that ID."""
    image = str(container.inputs["image"])
    for remote in program.of_type("docker:index/remoteImage:RemoteImage"):
        if image in {remote.state.get("imageId"), remote.state.get("repoDigest")}:
            image = str(remote.inputs["name"])
            break
    image = image.split("@", 1)[0]
    head, _, tag = image.rpartition(":")
    return head if head and "/" not in tag else image


def own_ports(program: Program, container: Declared) -> set[int]:
    """Where the container listens, by its own declaration alone."""
    inputs = container.inputs
    ports: set[int] = set()
    for test in (inputs.get("healthcheck") or {}).get("tests") or []:
        ports.update(int(p) for p in _LOCAL_PORT.findall(test))
    for port in inputs.get("ports") or []:
        ports.add(int(port["internal"]))
    for env in inputs.get("envs") or []:
        key, _, value = str(env).partition("=")
        if _LISTENER_ENV.match(key) and value.isdigit():
            ports.add(int(value))
        elif key in _LISTENERS_ENV:
            ports.update(int(p) for p in re.findall(r":(\d+)(?:,|$)", value))
    ports.update(UPSTREAM_PORTS.get(image_repository(program, container), ()))
    return ports


def _overlay() -> bytes:
    """The stand-in's files as a tar, deterministic so the tag only moves with them."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for directory in sorted({str(Path(p).parent) for p in [*FILES.values(), *LINKS]}):
            if directory == ".":
                continue
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for source, target in sorted(FILES.items()):
            data = (HERE / source).read_bytes()
            info = tarfile.TarInfo(target)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
        for target, points_to in sorted(LINKS.items()):
            info = tarfile.TarInfo(target)
            info.type = tarfile.SYMTYPE
            info.linkname = points_to
            info.mode = 0o777
            tar.addfile(info)
    return buffer.getvalue()


def base_image(engine: Engine) -> str:
    tag = f"{REPOSITORY}-base:{images.debian_key()}"
    if not images.image_exists(engine, tag):
        tarball = images.debian_rootfs_tarball()
        with timed("import stand-in rootfs"):
            engine.docker(
                "import",
                *[arg for change in BASE_CONFIG for arg in ("--change", change)],
                str(tarball),
                tag,
            )
    return tag


def build_standin(engine: Engine) -> str:
    """The stand-in image, serving no port until a tag says which."""
    overlay = _overlay()
    base = base_image(engine)
    digest = hashlib.sha256(overlay + base.encode()).hexdigest()[:12]
    tag = f"{REPOSITORY}:{digest}"
    if images.image_exists(engine, tag):
        return tag
    with timed("image stand-in"), tempfile.TemporaryDirectory(prefix="hemma-standin-") as context:
        (Path(context) / "overlay.tar").write_bytes(overlay)
        (Path(context) / "Dockerfile").write_text(
            f"FROM {base}\n"
            "ADD overlay.tar /\n"
            'ENV STANDIN_PORTS=""\n'
            f'ENTRYPOINT ["/{LIB}/entrypoint.py"]\n'
        )
        engine.docker("build", "--quiet", "--tag", tag, context)
    return tag


def ports_tag(engine: Engine, standin: str, ports: Iterable[int]) -> str:
    """A tag of ``standin`` that listens on ``ports``: metadata only, no layer."""
    ports = sorted(set(ports))
    if not ports:
        return standin
    tag = f"{standin}-p{hashlib.sha256(repr(ports).encode()).hexdigest()[:8]}"
    if not images.image_exists(engine, tag):
        with tempfile.TemporaryDirectory(prefix="hemma-standin-") as context:
            (Path(context) / "Dockerfile").write_text(
                f'FROM {standin}\nENV STANDIN_PORTS="{" ".join(map(str, ports))}"\n'
            )
            engine.docker("build", "--quiet", "--tag", tag, context)
    return tag


def build_standins(engine: Engine, program: Program, real: Iterable[str] = ()) -> dict[str, str]:
    """Docker name -> the stand-in tag for every container of ``program`` except those
    in ``real``."""
    standin = build_standin(engine)
    real = set(real)
    chosen = {}
    with timed("image stand-in tags"):
        for container in program.containers:
            name = str(container.inputs["name"])
            if name not in real:
                chosen[name] = ports_tag(engine, standin, own_ports(program, container))
    return chosen


__all__ = [
    "ARGV_FILE",
    "EXEC_LOG",
    "REPOSITORY",
    "UPSTREAM_PORTS",
    "build_standin",
    "build_standins",
    "names_of",
    "own_ports",
    "references",
]
