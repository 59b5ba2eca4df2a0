"""What Hemma runs against what the program runs in its place, container by container:
the image, every mount, the published ports, and where each stateful service keeps
its data. The survey prints it; swap refuses while any of it stops the adoption.

Stops (nothing is adopted until they are dealt with):

- a declared container whose data volume (one the backups take, or shared-postgres's
  data) the running container of that name does not mount where the program will:
  its data lives elsewhere (another path, or inside the container), and the first
  ``up`` would start it empty. (The same path under another image is a note: that
  product may keep another layout there.) The operator copies the data
  into place, or says it may start empty (``adoptAsIs``);
- a running container the swap leaves alone (it is not declared) holding an address
  and port the stack will publish: the first ``up`` would fail on it.

Notes: a container that is most likely a declared one under another name (compose's
service label, a shared port, the same image), a different image, different
published ports, and every mount of a swapped container that the program does not
carry over, with what it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ops.adopt.observe import SUFFIX, Mount, Observed, Running
from ops.adopt.plan import Container, Plan

ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})

ADVICE = {
    "/etc/nginx/vhost.d": (
        "per-host nginx settings: the program writes its own vhost.d files into its own "
        "volume (request-size limits from proxy.defaultMaxBodySize and each route); any "
        "other setting there is lost unless you bring it into the config first"
    ),
    "/etc/nginx/htpasswd": (
        "basic-auth users: the program makes its own, with generated passwords; after the "
        "up, `scripts/pulumi stack output basicAuthCredentials --show-secrets` has them, "
        "and the users need the new ones"
    ),
    "/etc/nginx/conf.d": (
        "nginx configuration: the program writes its own (the edge hardening); any other "
        "setting there is lost unless you bring it into the config first"
    ),
    "/docker-entrypoint-initdb.d": (
        "init scripts, which the image runs only on an empty data directory: the adopted "
        "data does not run them again, and the program needs none"
    ),
}


@dataclass
class Findings:
    stops: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def repository(image: str) -> str:
    """An image reference without its registry, tag and digest:
    ``docker.io/library/postgres:16@sha256:...`` is ``postgres``."""
    reference = image.split("@", 1)[0]
    head, _, last = reference.rpartition("/")
    last = last.split(":", 1)[0]
    parts = [*head.split("/"), last] if head else [last]
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts)


def _same_product(running: str, declared: str) -> bool:
    """The same image repository (any tag), or one the program builds (no repository
    to compare with)."""
    return (
        not running or declared.startswith("sha256:") or repository(running) == repository(declared)
    )


def _norm(text: str) -> str:
    return text.lower().replace("-", "_")


def _overlap(a: str, b: str) -> bool:
    return a in ANY_ADDRESS or b in ANY_ADDRESS or a == b


def _shown(mount: Mount) -> str:
    return f"{mount.name or mount.source} at {mount.destination}"


def _ports(ports: tuple[tuple[str, int], ...]) -> str:
    shown = sorted({f"{ip or '*'}:{port}" for ip, port in ports})
    return ", ".join(shown) or "nothing"


def _advice(destination: str) -> str:
    for path, text in ADVICE.items():
        if destination == path or destination.startswith(path + "/"):
            return text
    return "what it holds stays in the kept container: copy it where it belongs first"


def _likely(declared: Container, running: list[Running]) -> tuple[Running, str] | None:
    """A running container, not of a declared name, that is most likely this one."""
    names = {_norm(declared.name), *(_norm(a) for a in declared.aliases)}
    for candidate in running:
        why = []
        if candidate.service and _norm(candidate.service) in names:
            why.append(f"compose service {candidate.service}")
        shared = sorted({p for ip, p in candidate.ports for dip, dp in declared.ports if p == dp})
        if shared:
            why.append("publishes " + ", ".join(map(str, shared)))
        if not declared.image.startswith("sha256:") and repository(candidate.image) == repository(
            declared.image
        ):
            why.append(f"image {repository(candidate.image)}")
        if why:
            return candidate, ", ".join(why)
    return None


def _data(declared: Container, there: Running, plan: Plan, found: Findings) -> set[str]:
    """Stops for data the program would not find where it looks; the destinations of
    the running container's mounts they name."""
    named: set[str] = set()
    data, accepted = plan.data_volumes(), plan.adopt_as_is
    for volume, path in declared.mounts:
        if volume not in data:
            continue
        if any(m.destination == path for m in there.mounts):
            if not _same_product(there.image, declared.image) and volume not in accepted:
                found.notes.append(
                    f"IMAGE {declared.name} keeps its data at {path} under image "
                    f"{there.image}; the program mounts {volume} there under "
                    f"{declared.image}: check that it reads what is there before the swap"
                )
            continue
        elsewhere = [m for m in there.mounts if m.destination not in declared.destinations]
        named |= {m.destination for m in elsewhere}
        where = "; ".join(map(_shown, elsewhere)) or "inside the container (no volume)"
        text = (
            f"{declared.name} keeps its data in {where} (image {there.image}); the program "
            f"mounts {volume} at {path} (image {declared.image})"
        )
        if volume in accepted:
            found.notes.append(
                f"ACCEPTED {text}: {volume} is taken as it is (adoptAsIs), whatever it holds"
            )
            continue
        found.stops.append(
            f"{text}, so the first up would start it EMPTY. Move the data into {volume} "
            "first, or let it start empty (README, 'Data kept at another path'), then: "
            f"scripts/pulumi config set --path 'adoptAsIs[{len(accepted)}]' {volume}"
        )
    return named


def compare(plan: Plan, observed: Observed) -> Findings:
    found = Findings()
    declared = plan.containers()
    names = {d.name for d in declared}
    running = [c for c in observed.containers if not c.name.endswith(SUFFIX)]
    here = {c.name: c for c in running}
    others = [c for c in running if c.name not in names]
    for d in declared:
        there = here.get(d.name)
        if there is None:
            likely = _likely(d, others)
            if likely is not None:
                found.notes.append(
                    f"LIKELY {d.name} runs here as {likely[0].name} ({likely[1]}): the swap "
                    f"leaves it alone, beside the new one. `docker rename {likely[0].name} "
                    f"{d.name}` and survey again, so that the swap stops and keeps it"
                )
            continue
        if there.image and repository(there.image) != repository(d.image):
            found.notes.append(f"IMAGE {d.name} runs {there.image}; the program runs {d.image}")
        if sorted(set(there.ports)) != sorted(set(d.ports)):
            found.notes.append(
                f"PORTS {d.name} publishes {_ports(there.ports)}; the program publishes "
                f"{_ports(d.ports)}"
            )
        named = _data(d, there, plan, found)
        declared_at = {path: volume for volume, path in d.mounts}
        for mount in there.mounts:
            replaced = declared_at.get(mount.destination)
            if replaced and mount.destination in ADVICE and mount.name != replaced:
                found.notes.append(
                    f"REPLACED {d.name} mounts {_shown(mount)}; the program mounts "
                    f"{replaced} there: " + _advice(mount.destination)
                )
                continue
            if mount.destination in d.destinations or mount.destination in named:
                continue
            found.notes.append(
                f"DROPPED {d.name} mounts {_shown(mount)}, which the program does not: "
                + _advice(mount.destination)
            )
    for d in declared:
        for ip, port in d.ports:
            for c in others:
                if any(p == port and _overlap(ip, cip) for cip, p in c.ports):
                    found.stops.append(
                        f"{c.name} holds {ip or '*'}:{port}, which {d.name} will publish, and "
                        "the swap leaves it running (it is not declared): the first up would "
                        f"fail on the port. Rename it to {d.name} if it is that service, or "
                        "stop it"
                    )
    return found
