"""Images built from source: what each one is built from, and the command that builds it.

pulumi-docker's ``Image`` hashes its whole build context on every preview, and
with ``skipPush`` its ``repoDigest`` is unknown until it is built, so one edit
anywhere in a checkout previews every image built from it, and every container
running one, as replaced. Here an image's tag is a digest of exactly what its
Dockerfile reads: the Dockerfile, its build arguments, and the files its
``COPY``/``ADD`` sources name (without what ``.dockerignore`` leaves out). The
tag is known during preview, so a change to one service previews as that
service, and an unchanged image is not rebuilt. The build itself is ``docker
build`` against Hemma's daemon, run where Pulumi runs.

Where the Dockerfile reads the context in a way this cannot follow (a ``COPY``
source holding a ``$`` variable, a ``RUN --mount`` that binds from the context)
the digest covers the whole context, less ``.dockerignore``: such an image
rebuilds on any edit, but never misses one. A new base image under the same
``FROM`` tag is not seen at all (the digest reads no registry): change the tag,
or a build argument, to rebuild on one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from components.model.app import STABLE_TAG, Build

PLATFORM = "linux/amd64"
_INSTRUCTION = re.compile(r"^\s*(COPY|ADD)\s+(.*)$", re.IGNORECASE)


class SourceError(ValueError):
    """A build cannot be described: a missing checkout or Dockerfile."""


def _logical_lines(text: str) -> Iterator[str]:
    """Dockerfile lines with continuations joined and comments dropped."""
    pending = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not pending and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def copy_sources(dockerfile: str) -> list[str]:
    """The context paths a Dockerfile's COPY and ADD read (not ``--from`` stages, not URLs)."""
    sources: list[str] = []
    for line in _logical_lines(dockerfile):
        match = _INSTRUCTION.match(line)
        if match is None:
            continue
        rest = match.group(2).strip()
        exec_form = rest.startswith("[")
        words = [str(w) for w in json.loads(rest)] if exec_form else shlex.split(rest)
        flags = [w for w in words if w.startswith("--")]
        if any(flag.startswith("--from") for flag in flags):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources += [p for p in paths[:-1] if "://" not in p]
    return sources


_RUN_MOUNT = re.compile(r"^\s*RUN\b.*--mount=\S*type=bind", re.IGNORECASE)


def reads_beyond_its_copies(dockerfile: str) -> bool:
    """Whether the Dockerfile reads context files its COPY/ADD sources do not name."""
    for line in _logical_lines(dockerfile):
        match = _INSTRUCTION.match(line)
        if match is not None and "$" in match.group(2):
            return True
        if _RUN_MOUNT.match(line) and "from=" not in line.lower():
            return True
    return False


def _ignore_patterns(context: Path) -> list[tuple[bool, str]]:
    ignore = context / ".dockerignore"
    if not ignore.is_file():
        return []
    patterns = []
    for line in ignore.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!").strip("/"))
        patterns.append((negated, pattern))
    return patterns


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A ``.dockerignore`` pattern (Go ``filepath.Match`` plus ``**``) as a regex."""
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out += "(?:/|)"
                i += 1
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.find("]", i)
            if end == -1:
                out += re.escape(c)
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
                i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out)


def _ignored(relative: str, patterns: list[tuple[bool, str]]) -> bool:
    """``.dockerignore`` semantics: the last matching pattern wins, and a match on a
    parent directory covers what is under it."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negated, pattern in patterns:
        regex = _pattern_regex(pattern)
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = not negated
    return ignored


def _files(context: Path, source: str) -> list[Path]:
    source = source.lstrip("/")
    matches = sorted(context.glob(source)) if any(c in source for c in "*?[") else []
    candidates = matches or [context / source]
    files: list[Path] = []
    for candidate in candidates:
        if candidate.is_dir():
            files += [p for p in sorted(candidate.rglob("*")) if p.is_file()]
        elif candidate.is_file():
            files.append(candidate)
    return files


def source_digest(checkout: str, spec: Build) -> str:
    """A digest of everything ``spec``'s image is built from, in ``checkout``."""
    root = Path(checkout)
    context = root / spec.context
    dockerfile = root / spec.dockerfile
    if not dockerfile.is_file():
        raise SourceError(f"no Dockerfile at {dockerfile}")
    text = dockerfile.read_text()
    patterns = _ignore_patterns(context)
    digest = hashlib.sha256()
    digest.update(json.dumps([text, sorted(spec.args.items()), PLATFORM]).encode())
    seen: set[str] = set()
    sources = ["."] if reads_beyond_its_copies(text) else copy_sources(text)
    for source in sources:
        for path in _files(context, source):
            relative = path.relative_to(context).as_posix()
            if relative in seen or _ignored(relative, patterns):
                continue
            seen.add(relative)
            digest.update(relative.encode() + b"\0")
            digest.update(b"x" if os.access(path, os.X_OK) else b"-")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def image_tag(spec: Build, digest: str) -> str:
    return f"{spec.repository}:{digest[:16]}"


def build_command(docker_host: str, checkout: str, spec: Build, tag: str) -> str:
    """``docker build`` on Hemma's daemon, tagged by content and by the stable name."""
    words = ["docker", "--host", docker_host, "build", "--platform", PLATFORM]
    words += ["--tag", tag, "--tag", spec.stable_tag]
    words += ["--file", str(Path(checkout) / spec.dockerfile)]
    for key, value in sorted(spec.args.items()):
        words += ["--build-arg", f"{key}={value}"]
    words.append(str(Path(checkout) / spec.context))
    return shlex.join(words)


def remove_command(docker_host: str, spec: Build, keep: int) -> str:
    """On replacement or removal: keep the newest ``keep`` content tags of the
    repository (``docker image ls`` lists the newest first, by creation in whole
    seconds: moby daemon/images/images.go ``byCreated``) and drop the older ones;
    the stable tag stays. A kept tag is a rollback's way back without a rebuild. An
    image a container still runs under its only tag is not removed (``image rm``
    refuses without ``--force``)."""
    docker = shlex.join(["docker", "--host", docker_host])
    repository = shlex.quote(spec.repository)
    return (
        f"{docker} image ls --format '{{{{.Tag}}}}' {repository}"
        f" | grep -vx -e {shlex.quote(STABLE_TAG)} -e '<none>'"
        f" | tail -n +{int(keep) + 1}"
        f' | while read -r tag; do {docker} image rm {repository}:"$tag" || true; done'
    )
