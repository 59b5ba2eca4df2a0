"""Replay what the program declares onto a real Docker engine, as the provider would.

pulumi-docker 5.x bridges kreuzwerker/terraform-provider-docker; the create,
delete and wait logic below follows its v4.5.0 source
(``internal/provider/resource_docker_container_funcs.go``,
``resource_docker_container_structures.go``, ``resource_docker_network_funcs.go``,
``resource_docker_volume.go``). Each declared network, volume and container is
created through the Engine API on the engine's unix socket, with the inputs the
engine received from the program (``tests.harness.Declared.inputs``); only the
image is swapped. The API is used rather than the docker CLI because the
provider speaks the API: the CLI would add defaults of its own and cannot send a
health check in exec form.

Container: ``POST /containers/create?name=NAME``, then networks, uploads, start.

    declared input            Docker API field, and how the provider fills it
    ------------------------  --------------------------------------------------------
    name                      ``?name=`` of ContainerCreate
    image                     Config.Image -- SWAPPED for the stand-in
                              (``images[name]``, else ``default_image``)
    restart                   HostConfig.RestartPolicy.Name (schema default "no"),
                              MaximumRetryCount 0
    envs                      Config.Env (a set in the provider: order not kept)
    labels {label, value}     Config.Labels, a map label -> value
    command                   Config.Cmd; the stand-in's ENTRYPOINT gets it as
                              arguments, records them and ignores them
    entrypoints               put before command in Config.Cmd, the same way: the
                              stand-in keeps its own ENTRYPOINT
    ports {internal,          Config.ExposedPorts["INTERNAL/PROTOCOL"] and
      external, ip,           HostConfig.PortBindings["INTERNAL/PROTOCOL"] +=
      protocol}               {HostIp: ip, HostPort: external}; ip defaults to
                              0.0.0.0, protocol to tcp
    volumes {volumeName |     HostConfig.Binds += "SOURCE:containerPath:rw|ro" and
      hostPath,               Config.Volumes[containerPath]; hostPath wins over
      containerPath,          volumeName. The host path /var/run/docker.sock (the
      readOnly}               Docker socket on Hemma) becomes THE PRIVATE ENGINE'S
                              SOCKET PATH; any other host path P becomes
                              HOST_ROOT/P in a temp dir (the daemon creates a missing
                              bind source as a directory, as it would on Hemma)
    hosts {host, ip}          HostConfig.ExtraHosts += "host:ip"; the daemon resolves
                              host-gateway (to the engine's bridge address)
    devices {hostPath,        HostConfig.Devices += {PathOnHost, PathInContainer,
      containerPath,          CgroupPermissions}; containerPath defaults to hostPath,
      permissions}            permissions to rwm. A DEVICE THIS MACHINE LACKS
                              (/dev/kfd, /dev/dri: it has no GPU) IS LEFT OUT and
                              listed in ``Replayed.skipped_devices``
    groupAdds                 HostConfig.GroupAdd
    healthcheck {tests,       Config.Healthcheck {Test, Interval, Timeout,
      interval, timeout,      StartPeriod, StartInterval, Retries}; Go durations
      startPeriod,            ("15s", "1m0s") in nanoseconds. The provider turns a
      startInterval,          duration it cannot parse into 0; the replay refuses it
      retries}
    logDriver, logOpts        HostConfig.LogConfig {Type, Config}
    networkMode               HostConfig.NetworkMode, schema default "bridge", always
    init                      HostConfig.Init, always sent: false unless declared
    networksAdvanced          created on the default bridge; when networks are
      {name, aliases,         declared, POST /networks/bridge/disconnect, then for
      ipv4Address,            each POST /networks/NAME/connect {EndpointConfig:
      ipv6Address}            {Aliases, IPAMConfig}}, after create and before
                              start; in declared order (the provider's is its set's
                              hash order: Docker does not care)
    uploads {file, content |  PUT /containers/ID/archive?path=/ with a one-file tar
      contentBase64,          per upload, entry name = file, mode permissions, else
      executable,             0744 if executable, else 0644; before start
      permissions}
    start                     POST /containers/ID/start unless start is false
    wait, waitTimeout         GET /containers/ID/json once a second until
                              State.Health.Status is "healthy", for waitTimeout
                              (default 60 s) capped at ``wait_cap``; an error if the
                              container has no health check, as in the provider
    stopTimeout               Config.StopTimeout: how long the daemon itself waits
                              after the stop signal when it stops the container
                              (its own shutdown, a restart)
    destroyGraceSeconds       on removal POST /containers/ID/stop?t=N (the provider
                              sends t=0 when unset), then DELETE
                              /containers/ID?force=1&v=1
    removeVolumes             the v= of that DELETE (schema default true)
    mustRun                   not sent: it only matters when a refresh finds the
                              container stopped

Network (``POST /networks/create``): ``name`` -> ``Name``; ``ipamConfigs``
(subnet, ipRange, gateway, auxAddress) -> ``IPAM.Config`` with ``IPAM.Driver``
``ipamDriver`` (schema default ``default``, so IPAM is always sent); ``driver``,
``options``, ``internal``, ``attachable``, ``labels`` as declared; ``EnableIPv6``
only when ``ipv6`` is true. Removed with ``DELETE /networks/{name}``.

Volume (``POST /volumes/create``): ``name`` -> ``Name``; ``labels``, ``driver``,
``driverOpts`` as declared. Removed with ``DELETE /volumes/{name}?force=1``: this
is a test engine, and the volumes would otherwise outlive the replay.

What differs from ``pulumi up``: the provider creates each container as soon as
what it depends on exists and blocks its dependants while it ``wait``s; the
replay creates everything first (``parallel`` at a time, as ``scripts/pulumi``
bounds the engine to 4) and then waits for all ``wait: true`` containers
together. Container order does not matter to stand-ins, which need nothing from
each other to start.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness import Declared, Program, service_name
from tests.parts.engine import Engine
from tests.parts.tools import timed

DOCKER_SOCKET = "/var/run/docker.sock"
"""The Docker socket's path on Hemma, as containers declare it."""

NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"

WAIT_TIMEOUT_DEFAULT = 60
"""The provider's ``wait_timeout`` default (seconds)."""

# Inputs the replay knows how to send. A new one in the program fails the replay
# until it is mapped here, instead of being dropped without a word.
CONTAINER_INPUTS = frozenset(
    {
        "name",
        "image",
        "restart",
        "envs",
        "labels",
        "command",
        "entrypoints",
        "ports",
        "volumes",
        "hosts",
        "devices",
        "groupAdds",
        "healthcheck",
        "logDriver",
        "logOpts",
        "networkMode",
        "init",
        "networksAdvanced",
        "uploads",
        "start",
        "wait",
        "waitTimeout",
        "destroyGraceSeconds",
        "stopTimeout",
        "mustRun",
        "removeVolumes",
    }
)
NETWORK_INPUTS = frozenset(
    {"name", "driver", "options", "internal", "attachable", "labels", "ipv6", "ipamDriver"}
    | {"ipamConfigs", "ipamOptions"}
)
VOLUME_INPUTS = frozenset({"name", "labels", "driver", "driverOpts"})

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def go_duration_ns(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds: ``"1m30s"``, ``"15s"``, ``"0"``."""
    if text in {"0", "+0", "-0"}:
        return 0
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if not body or _DURATION.sub("", body):
        raise ValueError(f"not a Go duration: {text!r}")
    total = 0.0
    for number, unit in _DURATION.findall(body):
        total += float(number) * _UNIT_NS[unit]
    return sign * round(total)


def _int(value: Any) -> int:
    """Numbers reach the engine as floats (``80.0``)."""
    return int(value)


def _labels(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {str(i["label"]): str(i["value"]) for i in items or []}


class DockerError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path}: {status} {message}")
        self.method = method
        self.path = path
        self.status = status
        self.message = message


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


class DockerApi:
    """The Engine API over a unix socket, at the daemon's own API version
    (the Go client negotiates down to it the same way)."""

    def __init__(self, socket_path: Path | str) -> None:
        self.socket_path = str(socket_path)
        self.version = ""
        self.version = str(self.call("GET", "/version")["ApiVersion"])

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        data: bytes | None = None,
        content_type: str = "application/json",
        timeout: float = 120,
    ) -> Any:
        url = f"/v{self.version}{path}" if self.version else path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        payload = data
        if body is not None:
            payload = json.dumps(body).encode()
        headers = {"Content-Type": content_type} if payload is not None else {}
        connection = _UnixConnection(self.socket_path, timeout)
        try:
            connection.request(method, url, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            try:
                message = json.loads(raw)["message"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode(errors="replace")
            raise DockerError(method, path, response.status, message)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def inspect(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/containers/{name}/json")
        return result


class EndpointCountDrift(DockerError):
    """The engine refuses to delete a network for active endpoints it no longer lists.

    20.10 checks a stored endpoint count (libnetwork ``network.delete``:
    ``n.getEpCnt().EndpointCnt() != 0``), which a daemon restart with running
    containers can leave above the endpoints it keeps; no disconnect reaches it. The
    CI run after the engine's tests were put in one worker met it after the
    daemon-restart rehearsal."""


def remove_network(api: DockerApi, name: str, tries: int = 5) -> None:
    """``DELETE /networks/NAME``, gone already counts as done.

    An endpoint that outlived its container (a daemon restart can leave one) keeps
    the network: the 20.10 engine lists it under ``ep-<id>`` with the container's
    name (moby daemon/network.go, ``buildDetailedNetworkResources``), and a forced
    disconnect by that name deletes it (``DisconnectContainerFromNetwork`` falls
    back to ``ForceEndpointDelete``), as ``docker network disconnect -f`` does. Only
    such stale endpoints are removed; a container still attached is named in the
    error.
    """
    for attempt in range(tries):
        try:
            api.call("DELETE", f"/networks/{name}")
            return
        except DockerError as error:
            if error.status == 404:
                return
            if "active endpoints" not in error.message:
                raise
            held: dict[str, Any] = api.call("GET", f"/networks/{name}").get("Containers") or {}
            stale = {k: e for k, e in held.items() if k.startswith("ep-")}
            if attempt == tries - 1 or len(stale) < len(held):
                names = sorted(str(e.get("Name") or k) for k, e in held.items())
                raise (EndpointCountDrift if not held else DockerError)(
                    error.method, error.path, error.status,
                    f"{error.message}; still attached: {', '.join(names) or 'none listed'}",
                ) from None  # fmt: skip
        for key, endpoint in stale.items():
            print(f"rehearsal: {name}: removing stale endpoint {endpoint.get('Name') or key}")
            with contextlib.suppress(DockerError):
                api.call(
                    "POST",
                    f"/networks/{name}/disconnect",
                    {"Container": endpoint.get("Name") or key, "Force": True},
                )
        time.sleep(1)


@dataclass
class ContainerPlan:
    """One container's API calls, worked out before anything is sent."""

    name: str
    create: dict[str, Any]
    networks: list[tuple[str, dict[str, Any]]]
    uploads: list[tuple[str, bytes]]
    start: bool
    wait: bool
    wait_timeout: int
    grace: int
    remove_volumes: bool
    skipped_devices: list[str]


def _healthcheck(declared: dict[str, Any]) -> dict[str, Any]:
    check: dict[str, Any] = {"Test": list(declared.get("tests") or [])}
    for key, field_name in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("startPeriod", "StartPeriod"),
        ("startInterval", "StartInterval"),
    ):
        check[field_name] = go_duration_ns(str(declared.get(key, "0s")))
    check["Retries"] = _int(declared.get("retries", 0))
    return check


def upload_mode(upload: dict[str, Any]) -> int:
    """The file mode the provider gives an upload."""
    if upload.get("permissions"):
        return int(str(upload["permissions"]), 8)
    return 0o744 if upload.get("executable") else 0o644


def upload_bytes(upload: dict[str, Any]) -> bytes:
    sources = [k for k in ("content", "contentBase64", "source") if upload.get(k)]
    if len(sources) != 1:
        raise ValueError(f"upload {upload.get('file')}: exactly one of content/base64/source")
    if upload.get("contentBase64"):
        return base64.b64decode(upload["contentBase64"])
    if upload.get("source"):
        return Path(upload["source"]).read_bytes()
    return str(upload["content"]).encode()


def _upload_tar(upload: dict[str, Any]) -> tuple[str, bytes]:
    data = upload_bytes(upload)
    buffer = io.BytesIO()
    # Go's archive/tar writes the name as given, leading slash and all.
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(str(upload["file"]))
        info.size = len(data)
        info.mode = upload_mode(upload)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return str(upload["file"]), buffer.getvalue()


def plan_container(
    declared: Declared,
    image: str,
    host_paths: Mapping[str, str],
    wait_cap: float,
    host_root: Path | None = None,
) -> ContainerPlan:
    """The provider's ContainerCreate body and follow-up calls for ``declared``, with
    ``image`` in place of the declared one (see the table above)."""
    inputs = declared.inputs
    unknown = set(inputs) - CONTAINER_INPUTS
    if unknown:
        raise ValueError(
            f"container {inputs['name']}: the replay does not map {sorted(unknown)} yet"
        )
    config: dict[str, Any] = {"Image": image}
    host: dict[str, Any] = {
        "RestartPolicy": {"Name": inputs.get("restart", "no"), "MaximumRetryCount": 0},
        "NetworkMode": inputs.get("networkMode", "bridge"),
        "Init": bool(inputs.get("init", False)),
        "LogConfig": {"Type": inputs.get("logDriver", ""), "Config": inputs.get("logOpts") or {}},
    }
    if inputs.get("envs"):
        config["Env"] = list(inputs["envs"])
    declared_argv = [*(inputs.get("entrypoints") or []), *(inputs.get("command") or [])]
    if declared_argv:
        if any(part == "" for part in declared_argv):
            raise ValueError(f"{inputs['name']}: values for command may not be empty")
        config["Cmd"] = declared_argv
    if inputs.get("labels"):
        config["Labels"] = _labels(inputs["labels"])

    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in inputs.get("ports") or []:
        key = f"{_int(port['internal'])}/{port.get('protocol', 'tcp')}"
        exposed[key] = {}
        bindings.setdefault(key, []).append(
            {
                "HostIp": str(port.get("ip", "0.0.0.0")),
                "HostPort": str(_int(port.get("external", 0))),
            }
        )
    if exposed:
        config["ExposedPorts"] = exposed
        host["PortBindings"] = bindings

    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for volume in inputs.get("volumes") or []:
        source = volume.get("hostPath") or volume.get("volumeName")
        target = volume["containerPath"]
        volumes[target] = {}
        if not source:
            continue
        if volume.get("hostPath"):
            if source in host_paths:
                source = host_paths[source]
            elif host_root is not None:
                source = f"{host_root}/{source.lstrip('/')}"
            else:
                raise ValueError(f"{inputs['name']}: host path {source} has no stand-in")
        binds.append(f"{source}:{target}:{'ro' if volume.get('readOnly') else 'rw'}")
    if volumes:
        config["Volumes"] = volumes
    if binds:
        host["Binds"] = binds

    if inputs.get("hosts"):
        host["ExtraHosts"] = [f"{h['host']}:{h['ip']}" for h in inputs["hosts"]]

    devices, skipped = [], []
    for device in inputs.get("devices") or []:
        path_on_host = device["hostPath"]
        if not os.path.exists(path_on_host):
            skipped.append(path_on_host)
            continue
        devices.append(
            {
                "PathOnHost": path_on_host,
                "PathInContainer": device.get("containerPath") or path_on_host,
                "CgroupPermissions": device.get("permissions", "rwm"),
            }
        )
    if devices:
        host["Devices"] = devices
    if inputs.get("groupAdds"):
        host["GroupAdd"] = [str(g) for g in inputs["groupAdds"]]
    if inputs.get("healthcheck"):
        config["Healthcheck"] = _healthcheck(inputs["healthcheck"])
    if "stopTimeout" in inputs:
        config["StopTimeout"] = _int(inputs["stopTimeout"])

    networks = [
        (
            str(n["name"]),
            {
                "Aliases": list(n.get("aliases") or []),
                "IPAMConfig": {
                    k: v
                    for k, v in (
                        ("IPv4Address", n.get("ipv4Address", "")),
                        ("IPv6Address", n.get("ipv6Address", "")),
                    )
                    if v
                },
            },
        )
        for n in inputs.get("networksAdvanced") or []
    ]
    timeout = _int(inputs.get("waitTimeout", WAIT_TIMEOUT_DEFAULT))
    return ContainerPlan(
        name=str(inputs["name"]),
        create={**config, "HostConfig": host, "NetworkingConfig": {}},
        networks=networks,
        uploads=[_upload_tar(u) for u in inputs.get("uploads") or []],
        start=bool(inputs.get("start", True)),
        wait=bool(inputs.get("wait", False)),
        wait_timeout=int(min(timeout, wait_cap)),
        grace=max(0, _int(inputs.get("destroyGraceSeconds", 0))),
        remove_volumes=bool(inputs.get("removeVolumes", True)),
        skipped_devices=skipped,
    )


def network_body(declared: Declared) -> dict[str, Any]:
    inputs = declared.inputs
    unknown = set(inputs) - NETWORK_INPUTS
    if unknown:
        raise ValueError(f"network {inputs['name']}: the replay does not map {sorted(unknown)}")
    body: dict[str, Any] = {"Name": inputs["name"]}
    for key, field_name in (
        ("driver", "Driver"),
        ("options", "Options"),
        ("internal", "Internal"),
        ("attachable", "Attachable"),
    ):
        if inputs.get(key):
            body[field_name] = inputs[key]
    if inputs.get("labels"):
        body["Labels"] = _labels(inputs["labels"])
    if inputs.get("ipv6"):
        body["EnableIPv6"] = True
    ipam: dict[str, Any] = {"Driver": inputs.get("ipamDriver", "default")}
    if inputs.get("ipamConfigs"):
        ipam["Config"] = [
            {
                field_name: c[key]
                for key, field_name in (
                    ("subnet", "Subnet"),
                    ("ipRange", "IPRange"),
                    ("gateway", "Gateway"),
                    ("auxAddress", "AuxiliaryAddresses"),
                )
                if c.get(key)
            }
            for c in inputs["ipamConfigs"]
        ]
    if inputs.get("ipamOptions"):
        ipam["Options"] = inputs["ipamOptions"]
    body["IPAM"] = ipam
    return body


def volume_body(declared: Declared) -> dict[str, Any]:
    inputs = declared.inputs
    unknown = set(inputs) - VOLUME_INPUTS
    if unknown:
        raise ValueError(f"volume {inputs['name']}: the replay does not map {sorted(unknown)}")
    body: dict[str, Any] = {"Name": inputs["name"]}
    if inputs.get("labels"):
        body["Labels"] = _labels(inputs["labels"])
    if inputs.get("driver"):
        body["Driver"] = inputs["driver"]
    if inputs.get("driverOpts"):
        body["DriverOpts"] = inputs["driverOpts"]
    return body


@dataclass
class Replayed:
    """What the replay made on the engine; ``remove()`` takes it all down again."""

    engine: Engine
    program: Program
    api: DockerApi
    host_root: Path
    """Where host paths other than the Docker socket point on this machine."""
    images: dict[str, str] = field(default_factory=dict)
    """Docker name -> the image it runs."""
    ids: dict[str, str] = field(default_factory=dict)
    """Docker name -> container ID."""
    plans: dict[str, ContainerPlan] = field(default_factory=dict)
    networks: list[str] = field(default_factory=list)
    kept_networks: list[str] = field(default_factory=list)
    """Networks the teardown had to keep: the engine counts endpoints on them that it
    does not list (20.10's libnetwork), and it refuses their removal."""
    volumes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    healthy_after: dict[str, float] = field(default_factory=dict)
    """Seconds from the last start to ``healthy``, for each container waited on."""
    stopped_in: dict[str, float] = field(default_factory=dict)

    @property
    def skipped_devices(self) -> dict[str, list[str]]:
        return {n: p.skipped_devices for n, p in self.plans.items() if p.skipped_devices}

    def declared(self, name: str) -> Declared:
        return self.program.container(name)

    def actual(self, name: str) -> str:
        """The container's name on the engine: a start-first service's has a digest."""
        names = {service_name(c): str(c.inputs["name"]) for c in self.program.containers}
        return names.get(name, name)

    def inspect(self, name: str) -> dict[str, Any]:
        return self.api.inspect(self.actual(name))

    def exec(
        self,
        name: str,
        *command: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        flags = ["-i"] if input is not None else []
        for key, value in (env or {}).items():
            flags += ["-e", f"{key}={value}"]
        return self.engine.docker(
            "exec", *flags, self.actual(name), *command, input=input, check=check,
            timeout=timeout,
        )  # fmt: skip

    # --- create -------------------------------------------------------------

    def create_networks(self) -> None:
        # The 20.10 engine creates a second network of a taken name (the provider
        # sends no CheckDuplicate); one left by an earlier replay would make every
        # later connect "ambiguous". One that an earlier teardown had to keep for the
        # engine's drifted endpoint count (nothing attached, the same driver and
        # internal flag) is used as it is, with a loud line; any other stops the
        # replay here, by name.
        taken = {n["Name"]: n for n in self.api.call("GET", "/networks")}
        for network in self.program.of_type(NETWORK):
            body = network_body(network)
            left = taken.get(body["Name"])
            if left is not None:
                found = self.api.call("GET", f"/networks/{left['Id']}")
                same = (found.get("Driver"), bool(found.get("Internal"))) == (
                    body.get("Driver", "bridge"),
                    bool(body.get("Internal")),
                )
                if found.get("Containers") or not same:
                    raise RuntimeError(
                        f"network {body['Name']} is left on the engine by an earlier replay"
                    )
                print(
                    f"rehearsal: {body['Name']} is reused as an earlier replay left it "
                    "(nothing attached; the engine still counts endpoints on it)",
                    flush=True,
                )
            else:
                self.api.call("POST", "/networks/create", body)
            self.networks.append(body["Name"])

    def create_volumes(self) -> None:
        for volume in self.program.of_type(VOLUME):
            body = volume_body(volume)
            self.api.call("POST", "/volumes/create", body)
            self.volumes.append(body["Name"])

    def create_container(self, plan: ContainerPlan) -> None:
        created = self.api.call(
            "POST", "/containers/create", plan.create, query={"name": plan.name}
        )
        self.ids[plan.name] = created["Id"]
        cid = created["Id"]
        if plan.networks:
            try:
                self.api.call(
                    "POST", "/networks/bridge/disconnect", {"Container": cid, "Force": False}
                )
            except DockerError as error:
                if "is not connected to the network bridge" not in error.message:
                    raise
            for network, endpoint in plan.networks:
                self.api.call(
                    "POST",
                    f"/networks/{network}/connect",
                    {"Container": cid, "EndpointConfig": endpoint},
                )
        for _, archive in plan.uploads:
            self.api.call(
                "PUT",
                f"/containers/{cid}/archive",
                query={"path": "/"},
                data=archive,
                content_type="application/x-tar",
            )
        if plan.start:
            self.api.call("POST", f"/containers/{cid}/start")

    def create_containers(self, parallel: int) -> None:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            for done in [pool.submit(self.create_container, p) for p in self.plans.values()]:
                done.result()

    def wait_healthy(self, names: list[str], timeout_of: Mapping[str, float]) -> None:
        """Poll each second, as the provider does, until every one is healthy."""
        started = time.monotonic()
        pending = set(names)
        last: dict[str, dict[str, Any]] = {}
        while pending:
            for name in sorted(pending):
                state = self.inspect(name)["State"]
                last[name] = state
                if state.get("Health") is None:
                    raise RuntimeError(
                        f"{name}: you have supplied a 'wait' argument, but the container "
                        "does not have a healthcheck defined"
                    )
                if state["Health"]["Status"] == "healthy":
                    self.healthy_after[name] = time.monotonic() - started
                    pending.discard(name)
                elif time.monotonic() - started > timeout_of[name]:
                    raise TimeoutError(self._unhealthy(name, state, timeout_of[name]))
            if pending:
                time.sleep(1)

    def _unhealthy(self, name: str, state: dict[str, Any], timeout: float) -> str:
        health = state.get("Health") or {}
        checks = health.get("Log") or [{}]
        logs = self.engine.docker("logs", "--tail", "20", name, check=False)
        return (
            f"{name}: container failed to be in healthy state in {timeout:.0f}s "
            f"(status {state.get('Status')}, health {health.get('Status')}); "
            f"last check: {checks[-1].get('Output', '')!r}\n"
            f"--- logs ---\n{logs.stdout}{logs.stderr}"
        )

    # --- remove -------------------------------------------------------------

    def _remove_container(self, name: str) -> None:
        plan = self.plans.get(name)
        grace = plan.grace if plan else 0
        volumes = "1" if plan is None or plan.remove_volumes else "0"
        started = time.monotonic()
        with contextlib.suppress(DockerError):
            self.api.call(
                "POST", f"/containers/{name}/stop", query={"t": str(grace)}, timeout=grace + 60
            )
        self.stopped_in[name] = time.monotonic() - started
        try:
            self.api.call("DELETE", f"/containers/{name}", query={"force": "1", "v": volumes})
        except DockerError as error:
            if error.status != 404:
                raise

    def remove(self, parallel: int = 8) -> None:
        """Containers first (stop with their grace, then remove), then networks and
        volumes; every step is tried, and the first failure raised at the end."""
        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            for done in [pool.submit(self._remove_container, n) for n in list(self.ids)]:
                try:
                    done.result()
                except Exception as error:
                    errors.append(error)
        for network in self.networks:
            try:
                remove_network(self.api, network)
            except EndpointCountDrift as error:
                # Nothing is attached, so nothing is cut off: the network stays, and a
                # later replay on this engine uses it as it is (create_networks).
                print(f"rehearsal: {network} kept on the engine: {error}", flush=True)
                self.kept_networks.append(network)
            except DockerError as error:
                errors.append(error)
        for volume in self.volumes:
            try:
                self.api.call("DELETE", f"/volumes/{volume}", query={"force": "1"})
            except DockerError as error:
                if error.status != 404:
                    errors.append(error)
        if errors:
            raise errors[0]


@contextlib.contextmanager
def replayed(
    engine: Engine,
    program: Program,
    *,
    default_image: str,
    images: Mapping[str, str] | None = None,
    parallel: int = 4,
    wait_cap: float = 120,
) -> Iterator[Replayed]:
    """Create every network, volume and container ``program`` declares on ``engine``,
    wait for the ``wait: true`` containers to turn healthy, yield, then remove it all.

    ``images`` maps a container's Docker name to the image it runs instead of the
    declared one; every other container runs ``default_image``.
    """
    api = DockerApi(engine.socket)
    host_root = Path(tempfile.mkdtemp(prefix="hemma-replay-host-"))
    replay = Replayed(engine=engine, program=program, api=api, host_root=host_root)
    host_paths = {DOCKER_SOCKET: str(engine.socket)}
    try:
        for declared in program.containers:
            name = declared.inputs["name"]
            replay.images[name] = (images or {}).get(name, default_image)
            replay.plans[name] = plan_container(
                declared, replay.images[name], host_paths, wait_cap, host_root
            )
    except BaseException:
        shutil.rmtree(host_root, ignore_errors=True)
        raise
    try:
        start = time.monotonic()
        with timed("rehearsal: create"):
            replay.create_networks()
            replay.create_volumes()
            replay.create_containers(parallel)
        replay.timings["create"] = time.monotonic() - start
        waited = [n for n, p in replay.plans.items() if p.start and p.wait]
        start = time.monotonic()
        with timed("rehearsal: wait healthy"):
            replay.wait_healthy(waited, {n: replay.plans[n].wait_timeout for n in waited})
        replay.timings["wait"] = time.monotonic() - start
        yield replay
    except BaseException:
        # The failure that stopped the replay is the one to see, not a later one
        # of the clean-up.
        with contextlib.suppress(Exception):
            _remove_timed(replay)
        raise
    _remove_timed(replay)


def _remove_timed(replay: Replayed) -> None:
    start = time.monotonic()
    try:
        with timed("rehearsal: remove"):
            replay.remove()
    finally:
        replay.timings["remove"] = time.monotonic() - start
        shutil.rmtree(replay.host_root, ignore_errors=True)


__all__ = [
    "DOCKER_SOCKET",
    "DockerApi",
    "DockerError",
    "Replayed",
    "go_duration_ns",
    "plan_container",
    "remove_network",
    "replayed",
    "upload_bytes",
    "upload_mode",
]
