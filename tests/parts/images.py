"""Stand-in images, built on this machine with no registry.

- ``hemma-test/busybox:1``: Debian's static BusyBox as a rootfs, for small
  clients and servers (wget, nc, httpd, sh).
- ``hemma-test/serve:1``: FROM the BusyBox image, serving HTTP with a 200 on a
  health path; port and path come from ``serve PORT PATH`` or the environment
  (``SERVE_PORT``, ``SERVE_HEALTH_PATH``), so one image can stand in for every
  app container. ``serve_image`` bakes them into a tag of its own.
- ``hemma-test/debian-pg:1``: a debootstrapped bookworm with PostgreSQL 15 and
  an entrypoint keeping the official postgres image's contract (see
  pg-entrypoint.sh). The debootstrap result is cached as a tarball between runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tests.parts.engine import Engine
from tests.parts.tools import CommandFailed, remove_tree, require, run, timed

HERE = Path(__file__).resolve().parent

BUSYBOX = "hemma-test/busybox:1"
SERVE = "hemma-test/serve:1"
DEBIAN_PG = "hemma-test/debian-pg:1"

# The serve_image fixture: ``(tag=SERVE, port=8080, health_path="/health") -> tag``.
ServeImage = Callable[..., str]

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PG_BIN = "/usr/lib/postgresql/15/bin"

# The official postgres image's settings, for the program's container to run unchanged.
PG_CONFIG = (
    f"ENV PATH={PG_BIN}:{PATH}",
    "ENV LANG=C.UTF-8",
    "ENV PGDATA=/var/lib/postgresql/data",
    "VOLUME /var/lib/postgresql/data",
    'ENTRYPOINT ["docker-entrypoint.sh"]',
    "EXPOSE 5432",
    'CMD ["postgres"]',
)

DEBIAN_SUITE = "bookworm"
DEBIAN_VARIANT = "minbase"
DEBIAN_PACKAGES = ("postgresql-15", "python3", "curl", "procps")
# Part of the cache key: bump when trim_debian_root changes what the tarball holds.
DEBIAN_RECIPE = 2

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
www-data:x:33:
users:x:100:
nogroup:x:65534:
nobody:x:65534:
"""


def image_exists(engine: Engine, tag: str) -> bool:
    return engine.docker("image", "inspect", tag, check=False).returncode == 0


def is_static(binary: Path) -> bool:
    """No PT_INTERP program header: the binary runs in a rootfs without a libc.

    Debian's plain ``busybox`` package is dynamic and replaces busybox-static.
    """
    with binary.open("rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:
            return False
        phoff = struct.unpack_from("<Q", header, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    pt_interp = 3
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != pt_interp for i in range(phnum))


def import_tree(engine: Engine, root: Path, tag: str, changes: Sequence[str]) -> None:
    """``tar -C ROOT -c . | docker import - TAG``."""
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(root), "-c", "."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tar.stdout is not None
    try:
        imported = subprocess.run(
            [engine.client, "import", *_changes(changes), "-", tag],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            env=engine.env(),
            timeout=600,
        )
    finally:
        tar.stdout.close()
        tar_err = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
        tar.wait()
    if tar.returncode != 0:
        raise CommandFailed(tar.returncode, tar.args, "", tar_err)
    if imported.returncode != 0:
        raise CommandFailed(imported.returncode, imported.args, imported.stdout, imported.stderr)


def _changes(changes: Sequence[str]) -> list[str]:
    return [arg for change in changes for arg in ("--change", change)]


def build(engine: Engine, tag: str, dockerfile: str, files: dict[str, Path] | None = None) -> None:
    """``docker build`` from a context holding only ``files``, copied executable.

    Copying sets the mode here, so the scripts need no execute bit in git and the
    Dockerfiles need no RUN (which would start a container per image).
    """
    with tempfile.TemporaryDirectory(prefix="hemma-build-") as context:
        (Path(context) / "Dockerfile").write_text(dockerfile)
        for name, source in (files or {}).items():
            target = Path(context) / name
            shutil.copyfile(source, target)
            target.chmod(0o755)
        engine.docker("build", "--quiet", "--tag", tag, context)


# --- BusyBox -----------------------------------------------------------------


def busybox_root(root: Path) -> None:
    binary = Path(require("busybox", "busybox-static")).resolve()
    if not is_static(binary):
        raise RuntimeError(f"{binary} is not static: apt-get install busybox-static")
    for directory in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "var/www", "www"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(mode=0o1777)
    (root / "tmp").chmod(0o1777)
    (root / "root").chmod(0o700)
    shutil.copy2(binary, root / "bin" / "busybox")
    applets = run([str(binary), "--list-full"]).stdout.split()
    for applet in applets:
        link = root / applet
        if "/" not in applet or applet == "bin/busybox" or link.exists():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(root / "bin" / "busybox", link.parent))
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)


def build_busybox(engine: Engine, tag: str = BUSYBOX) -> str:
    if image_exists(engine, tag):
        return tag
    with timed("image busybox"), tempfile.TemporaryDirectory(prefix="hemma-busybox-") as tmp:
        busybox_root(Path(tmp))
        import_tree(engine, Path(tmp), tag, [f"ENV PATH={PATH}", 'CMD ["sh"]'])
    return tag


# --- HTTP stand-in -----------------------------------------------------------


def build_serve(engine: Engine, tag: str = SERVE) -> str:
    if image_exists(engine, tag):
        return tag
    with timed("image serve"):
        base = build_busybox(engine)
        build(
            engine,
            tag,
            f"FROM {base}\n"
            "COPY serve /usr/local/bin/serve\n"
            "ENV SERVE_PORT=8080 SERVE_HEALTH_PATH=/health\n"
            "EXPOSE 8080\n"
            'CMD ["serve"]\n',
            {"serve": HERE / "serve.sh"},
        )
    return tag


def serve_image(engine: Engine, tag: str, port: int, health_path: str) -> str:
    """An image under ``tag`` that serves on ``port`` with 200 on ``health_path``.

    ``tag`` may be the image name the program declares, so its container finds
    the image locally; ``-e SERVE_PORT=...`` at run time still overrides.
    """
    if not health_path.startswith("/"):
        raise ValueError(f"health path must start with /: {health_path!r}")
    base = build_serve(engine)
    build(
        engine,
        tag,
        f"FROM {base}\n"
        f"ENV SERVE_PORT={port} SERVE_HEALTH_PATH={json.dumps(health_path)}\n"
        f"EXPOSE {port}\n",
    )
    return tag


# --- Debian with PostgreSQL --------------------------------------------------


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hemma-test"


def debian_mirror() -> str:
    """The Debian archive apt already uses here (debootstrap fetches from it)."""
    sources = Path("/etc/apt/sources.list.d")
    candidates: list[tuple[str, list[str]]] = []
    for path in sorted(sources.glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                for uri in fields.get("uris", "").split():
                    candidates.append((uri, fields.get("suites", "").split()))
    lists = [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))]
    for path in lists:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                candidates.append((words[1], [words[2]]))
    for uri, suites in candidates:
        if DEBIAN_SUITE in suites and "security" not in uri:
            return uri
    raise RuntimeError(
        f"no apt source for {DEBIAN_SUITE} in /etc/apt/sources.list{{,.d/}}: "
        "debootstrap needs a Debian mirror"
    )


def debian_key() -> str:
    recipe = [DEBIAN_SUITE, DEBIAN_VARIANT, sorted(DEBIAN_PACKAGES), DEBIAN_RECIPE]
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:16]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Two sessions starting cold at once build the tarball once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def trim_debian_root(root: Path) -> None:
    """What an image does not need, and what the entrypoint must create itself."""
    for pattern in (
        "var/cache/apt/archives/*.deb",
        "var/cache/apt/*.bin",
        "var/lib/apt/lists/*_*",
        "usr/share/man/*",
        "usr/share/info/*",
        "usr/share/doc/*",
        "usr/share/locale/*",
        "dev/*",
    ):
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    # postgresql-common's postinst made a "15/main" cluster; the image's data
    # lives in PGDATA, initialised on first start like the official image.
    shutil.rmtree(root / "etc/postgresql/15/main", ignore_errors=True)
    shutil.rmtree(root / "var/lib/postgresql/15", ignore_errors=True)
    chroot = require("chroot", "coreutils")
    run([chroot, str(root), "install", "-d", "-o", "postgres", "-g", "postgres", "-m", "700",
         "/var/lib/postgresql/data"])  # fmt: skip
    run([chroot, str(root), "install", "-d", "-o", "postgres", "-g", "postgres", "-m", "2775",
         "/var/run/postgresql"])  # fmt: skip
    (root / "docker-entrypoint-initdb.d").mkdir(exist_ok=True)


def debian_rootfs_tarball(cache: Path | None = None) -> Path:
    """The debootstrapped rootfs as a tar, built once per package list and kept."""
    cache = cache or cache_dir()
    tarball = cache / f"debian-{DEBIAN_SUITE}-{debian_key()}.tar"
    if tarball.exists():
        return tarball
    with locked(cache / ".debootstrap.lock"):
        if tarball.exists():
            return tarball
        debootstrap = require("debootstrap", "debootstrap")
        mirror = debian_mirror()
        work = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=cache))
        try:
            root = work / "root"
            with timed("debootstrap"):
                run(
                    [
                        debootstrap,
                        f"--variant={DEBIAN_VARIANT}",
                        f"--include={','.join(DEBIAN_PACKAGES)}",
                        DEBIAN_SUITE,
                        str(root),
                        mirror,
                    ],
                    timeout=1800,
                )
            trim_debian_root(root)
            partial = work / "rootfs.tar"
            run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."])
            # A run killed half-way leaves no tarball that looks complete.
            os.replace(partial, tarball)
            # Each is ~400 MB; an old recipe's is never read again.
            for stale in cache.glob(f"debian-{DEBIAN_SUITE}-*.tar"):
                if stale != tarball:
                    stale.unlink()
        finally:
            remove_tree(work)
    return tarball


def build_debian_pg(engine: Engine, tag: str = DEBIAN_PG, cache: Path | None = None) -> str:
    if image_exists(engine, tag):
        return tag
    with timed("image debian-pg"):
        tarball = debian_rootfs_tarball(cache)
        base = f"hemma-test/debian:{debian_key()}"
        if not image_exists(engine, base):
            with timed("import debian rootfs"):
                engine.docker("import", *_changes(PG_CONFIG), str(tarball), base)
        # The classic builder commits a layer per instruction, so the settings
        # import accepts come with the import; it refuses STOPSIGNAL.
        build(
            engine,
            tag,
            f"FROM {base}\n"
            "COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh\n"
            "STOPSIGNAL SIGINT\n",
            {"docker-entrypoint.sh": HERE / "pg-entrypoint.sh"},
        )
    return tag


__all__ = [
    "BUSYBOX",
    "DEBIAN_PG",
    "SERVE",
    "build_busybox",
    "build_debian_pg",
    "build_serve",
    "debian_rootfs_tarball",
    "serve_image",
]
