"""What reaches systemd and the Docker daemon: the unit the jobs require, the devices
a container gets, the containers' log options."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from components.model.values import LogOptName, LogOptValue, matching

DOCKER_SERVICES = frozenset({"docker.service", "snap.docker.dockerd.service"})
"""The units that run the Docker daemon: the deb's (moby's contrib/init/systemd) and
the snap's. Anything else in ``Requires=`` of a unit that runs every minute would
start with it: ``systemd-suspend.service`` suspends the server each minute."""


def docker_service(value: str) -> str:
    if value not in DOCKER_SERVICES:
        raise ValueError("must be docker.service or snap.docker.dockerd.service")
    return value


ServiceName = Annotated[str, AfterValidator(docker_service)]
"""A unit the timers' units require: the Docker daemon's, never a target."""

GPU_DEVICE = re.compile(
    r"/dev/kfd|/dev/dri|/dev/dri/(?:card|renderD)[0-9]{1,3}"
    r"|/dev/nvidia(?:[0-9]{1,2}|ctl|-uvm|-uvm-tools|-modeset)"
    r"|/dev/nvidia-caps/nvidia-cap[0-9]{1,3}"
    r"|/dev/dri/by-path/pci-[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]-(?:card|render)"
)
"""The device nodes GPU compute uses: AMD ROCm's /dev/kfd and the DRM nodes
(ROCm docs, "Running ROCm Docker containers": ``--device=/dev/kfd --device=/dev/dri``),
and NVIDIA's nodes (NVIDIA container toolkit, "Driver and device nodes")."""
GpuDevice = Annotated[
    str,
    AfterValidator(
        matching(
            GPU_DEVICE,
            "must be a GPU device: /dev/kfd, /dev/dri, /dev/dri/renderDN, /dev/nvidiaN, ...",
        )
    ),
]

# --- Docker's json-file log options ------------------------------------------------

_LABEL_KEY = r"[A-Za-z0-9_.-]{1,64}"
_ENV_KEY = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
LOG_OPTS: dict[str, tuple[re.Pattern[str], str]] = {
    "max-size": (
        re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,3})?[kKmMgG][bB]?"),
        "a size from 100k to 10g, such as 10m",
    ),
    "max-file": (re.compile(r"[1-9][0-9]{0,2}"), "a count of files, 1 or more"),
    "compress": (re.compile(r"true|false"), "true or false"),
    "labels": (re.compile(rf"{_LABEL_KEY}(?:,{_LABEL_KEY}){{0,15}}"), "label names"),
    "env": (re.compile(rf"{_ENV_KEY}(?:,{_ENV_KEY}){{0,15}}"), "variable names"),
}  # fmt: skip
"""The json-file driver's options (moby v28.5.2, daemon/logger/jsonfilelog,
ValidateLogOpt and New): max-size through units.FromHumanSize and > 0, max-file
through Atoi and >= 1, compress through ParseBool. ``tag`` is a Go template and
``labels-regex``/``env-regex`` Go regular expressions, which no check here can
match the daemon's reading of: left out."""


def _bounded(size: str) -> bool:
    """100 kB to 10 GB, as units.FromHumanSize reads it (decimal: 1k is 1000)."""
    number = float(size.rstrip("bB")[:-1])
    scale = {"k": 1e3, "m": 1e6, "g": 1e9}[size.rstrip("bB")[-1].lower()]
    return 1e5 <= number * scale <= 1e10


def log_opts(options: dict[str, str]) -> dict[str, str]:
    for name, value in options.items():
        if name not in LOG_OPTS:
            raise ValueError(
                f"{name!r} is not a json-file log option (takes {', '.join(LOG_OPTS)})"
            )
        grammar, meaning = LOG_OPTS[name]
        if not grammar.fullmatch(value) or (name == "max-size" and not _bounded(value)):
            raise ValueError(f"{name} must be {meaning}")
    if "max-size" not in options:
        raise ValueError(
            "must set max-size: without it a container's log grows until the disk is full"
        )
    if options.get("compress") == "true" and (
        options.get("max-file", "1") == "1" or "max-size" not in options
    ):
        # jsonfilelog.New: "compress cannot be true when max-file is less than 2 or
        # max-size is not set"
        raise ValueError("compress needs max-size and a max-file of 2 or more")
    return options


LogOpts = Annotated[dict[LogOptName, LogOptValue], AfterValidator(log_opts)]
