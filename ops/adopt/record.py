"""The swap's record on Hemma: ``~/.hemma-adoption/containers.json`` of the ssh user.

It lives on Hemma, beside what it describes, so a rollback works from any
checkout. Per hand-made container: its name, its ID (a rename keeps it, so the
old container is told from the new one of the same name), the restart policy it
had and whether it ran. Written before anything is changed and again after.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ops.adopt.shell import Hemma, Refused, name, sh

DIRECTORY = ".hemma-adoption"
FILE = "containers.json"
VERSION = 1
SWAPPING, SWAPPED = "swapping", "swapped"
ROLLING_BACK, ROLLED_BACK = "rolling-back", "rolled-back"
STATES = (SWAPPING, SWAPPED, ROLLING_BACK, ROLLED_BACK)

_READ = 'f="$HOME/$1/$2"; if [ -f "$f" ]; then cat "$f"; else echo none; fi'
_WRITE = (
    'umask 077 && mkdir -p "$HOME/$1" && cat > "$HOME/$1/$2.new" '
    '&& mv "$HOME/$1/$2.new" "$HOME/$1/$2"'
)
_DELETE = 'rm -f "$HOME/$1/$2" && { rmdir "$HOME/$1" 2>/dev/null || true; }'


@dataclass(frozen=True)
class Kept:
    name: str
    id: str
    restart: str
    running: bool
    image: str = ""

    @property
    def kept_as(self) -> str:
        return f"{self.name}-pre-hemma"


@dataclass
class Record:
    state: str
    postgres: str
    roles: list[str]
    containers: list[Kept]
    new: list[str] = field(default_factory=list)
    """Declared containers Hemma did not have at the swap: the up creates them, and a
    rollback removes them."""
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    updated: str = ""

    @property
    def where(self) -> str:
        return f"~/{DIRECTORY}/{FILE}"

    def to_json(self) -> str:
        data = asdict(self)
        data["version"] = VERSION
        data["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
        return json.dumps(data, indent=2) + "\n"


def _from_json(data: Any) -> Record:
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise Refused(f"~/{DIRECTORY}/{FILE} on Hemma is not a version {VERSION} record")
    try:
        kept = [
            Kept(
                name=name(c["name"], "recorded container"),
                id=name(c["id"], "recorded container id"),
                restart=_policy(str(c["restart"])),
                running=bool(c["running"]),
                image=str(c.get("image", "")),
            )
            for c in data["containers"]
        ]
        state = str(data["state"])
        if state not in STATES:
            raise Refused(f"~/{DIRECTORY}/{FILE} on Hemma has an unknown state {state!r:.40}")
        return Record(
            state=state,
            postgres=name(data["postgres"], "recorded postgres container"),
            roles=[name(r, "recorded role") for r in data["roles"]],
            containers=kept,
            new=[name(n, "recorded new container") for n in data.get("new", [])],
            created=str(data.get("created", "")),
            updated=str(data.get("updated", "")),
        )
    except (KeyError, TypeError) as error:
        raise Refused(f"~/{DIRECTORY}/{FILE} on Hemma is incomplete: {error}") from None


def _policy(text: str) -> str:
    kind, _, count = text.partition(":")
    if kind not in {"no", "always", "unless-stopped", "on-failure"} or (
        count and (kind != "on-failure" or not count.isdigit())
    ):
        raise Refused(f"refusing recorded restart policy {text!r}")
    return text


def read(hemma: Hemma) -> Record | None:
    text = hemma.must(sh(_READ, DIRECTORY, FILE)).strip()
    if text == "none":
        return None
    try:
        return _from_json(json.loads(text))
    except json.JSONDecodeError:
        raise Refused(f"~/{DIRECTORY}/{FILE} on Hemma is not JSON") from None


def write(hemma: Hemma, record: Record) -> None:
    hemma.must(sh(_WRITE, DIRECTORY, FILE), record.to_json())


def delete(hemma: Hemma) -> None:
    hemma.must(sh(_DELETE, DIRECTORY, FILE))


def need(hemma: Hemma) -> Record:
    record = read(hemma)
    if record is None:
        raise Refused(f"no swap is recorded on Hemma (~/{DIRECTORY}/{FILE})")
    return record
