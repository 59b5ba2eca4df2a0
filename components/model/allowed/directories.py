"""Directories a root job writes to, cleans up, chmods, snapshots or bind-mounts."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from components.model.values import absolute_path

DATA_ROOTS: dict[str, int] = {
    "/root": 1, "/srv": 1, "/mnt": 1, "/media": 1, "/var/backups": 1,
    "/var/lib/hemma": 0, "/var/snap/docker/common": 1,
}  # fmt: skip
"""Where a job's own directory may be -> how many levels below it at least. From the
Filesystem Hierarchy Standard 3.0: site data in /srv, mounted disks in /mnt and
/media, backups in /var/backups, a program's state in /var/lib/NAME, root's home;
and the docker snap's common directory, where its daemon can bind-mount from
(snapcraft's "home" and "removable-media" interfaces leave out the rest). Never
one of these roots itself, which the system owns: each holds other programs' files.
Not a user's home: root's jobs would write where that user can swap in a symlink."""
CONTAINER_WRITABLE = ("/var/snap/docker/common/var-lib-docker",)
"""The snap daemon's data-root: its volumes are written by containers, and a root job
writing there would follow a symlink a container planted."""
VOLUME_ROOTS = frozenset(
    {"/var/lib/docker/volumes", "/var/snap/docker/common/var-lib-docker/volumes"}
)
"""Where Docker keeps named volumes: the deb's and the snap's data-root."""


LOCAL_ROOT = "/tmp"
"""Where the local stack (no host jobs, the operator's own Docker) may keep its
metrics directory: Docker Desktop shares /tmp. Never on Hemma, where a root job
writes there (config/checks.py)."""


def data_directory(value: str, roots: dict[str, int] = DATA_ROOTS) -> str:
    """A directory a job owns: it may chmod it, delete files under it, snapshot it
    or bind-mount it into a container. Deep enough under one of DATA_ROOTS and not
    hidden (``/root/.ssh``)."""
    absolute_path(value)
    path = "/" + "/".join(p for p in value.split("/") if p)
    inside_docker = any(path == d or path.startswith(d + "/") for d in CONTAINER_WRITABLE)
    for root, depth in roots.items():
        if inside_docker:
            break
        if path == root or path.startswith(root + "/"):
            parts = [p for p in path[len(root) :].split("/") if p]
            if len(parts) >= depth and not any(p.startswith(".") for p in parts):
                return value
    raise ValueError(
        "must be a directory of its own under /root, /srv, /mnt, /media, /var/backups, "
        "/var/lib/hemma or /var/snap/docker/common (not Docker's data), not hidden"
        + (" (or /tmp, for the local stack)" if LOCAL_ROOT in roots else "")
    )


def volume_root(value: str) -> str:
    return value if value in VOLUME_ROOTS else data_directory(value)


def metrics_directory(value: str) -> str:
    return data_directory(value, {**DATA_ROOTS, LOCAL_ROOT: 1})


DataDirectory = Annotated[str, AfterValidator(data_directory)]
MetricsDirectory = Annotated[str, AfterValidator(metrics_directory)]
VolumeRoot = Annotated[str, AfterValidator(volume_root)]
