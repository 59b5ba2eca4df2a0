"""The reload step's scripts run for real, without an engine: the script that runs in the
proxy by ``sh`` against a temporary directory in place of /etc/nginx, with stand-in
``nginx`` and ``docker-gen`` on PATH; the host's script by bash with a stand-in
``docker``. What the operator relies on: refused input writes nothing, nginx never
keeps files it refused, a removal is named, and staged files never stay behind.
(tests/proxy/test_reload_on_engine.py runs them in the real nginx-proxy.)"""

from __future__ import annotations

import base64
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.proxy.reload import ADD, GUARD, SETTLE, inside_script, manifest, reload_script

NGINX = """#!/bin/sh
echo "nginx $*" >> "$CALLS"
case "$*" in
  "-t -q") [ ! -e "$STAND_IN/nginx-refuses" ] ;;
esac
"""
DOCKER_GEN = """#!/bin/sh
echo "docker-gen $*" >> "$CALLS"
cat "$STAND_IN/docker-gen-says"
[ ! -e "$STAND_IN/docker-gen-fails" ]
"""
RENDERED = "Generated '/etc/nginx/conf.d/default.conf' from 3 containers\n"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[str]


class Nginx:
    """A directory standing in for the proxy's /etc/nginx, and the tools it runs."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "etc-nginx"
        self.root.mkdir()
        self.bin = tmp / "bin"
        self.bin.mkdir()
        for name, text in (("nginx", NGINX), ("docker-gen", DOCKER_GEN)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        self.calls = tmp / "calls"
        self.says(RENDERED)

    def says(self, text: str) -> None:
        (self.bin / "docker-gen-says").write_text(text)

    def render_fails(self) -> None:
        (self.bin / "docker-gen-fails").touch()

    def refuses(self) -> None:
        (self.bin / "nginx-refuses").touch()

    def write(self, path: str, text: str) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def read(self, path: str) -> str | None:
        target = self.root / path
        return target.read_text() if target.exists() else None

    def listing(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())

    def step(self, stdin: str, mode: str = ADD, render: str = "render") -> Run:
        script = inside_script()
        assert script.count("cd /etc/nginx\n") == 1
        script = script.replace("cd /etc/nginx\n", f"cd {self.root}\n")
        self.calls.unlink(missing_ok=True)
        done = subprocess.run(
            ["sh", "-c", script, "sh", mode, render],
            input=stdin, capture_output=True, text=True, timeout=20,
            env={**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}",
                 "STAND_IN": str(self.bin), "CALLS": str(self.calls)},
        )  # fmt: skip
        calls = self.calls.read_text().splitlines() if self.calls.exists() else []
        # Outside a container PID 1 is not the proxy's, and may not be readable.
        stderr = "".join(
            line for line in done.stderr.splitlines(keepends=True) if "/proc/1/environ" not in line
        )
        return Run(done.returncode, done.stdout, stderr, calls)


@pytest.fixture
def nginx(tmp_path: Path) -> Nginx:
    return Nginx(tmp_path)


FILES = {
    "vhost.d/default": "client_max_body_size 10m;\n",
    "vhost.d/grafana.example.test": "client_max_body_size 1m;\n",
    "vhost.d/prometheus.example.test": "client_max_body_size 1m;\n",
    "htpasswd/prometheus.example.test": "admin:$apr1$salt$hash\n",
}
RELOADED = ["docker-gen /app/nginx.tmpl /etc/nginx/conf.d/default.conf", "nginx -t -q"]


def test_the_files_are_written_rendered_checked_and_reloaded(nginx: Nginx) -> None:
    run = nginx.step(manifest(FILES))
    assert run.returncode == 0, run.stderr
    assert run.stdout == "hemma: 4 per-host files in place, removed: none; nginx reloaded\n"
    assert run.calls == [*RELOADED, "nginx -s reload"]
    for path, text in FILES.items():
        assert nginx.read(path) == text
        assert (nginx.root / path).stat().st_mode & 0o777 == 0o644
    assert nginx.listing() == sorted(FILES), "nothing staged stays behind"


def test_files_staged_by_an_interrupted_run_are_removed_first(nginx: Nginx) -> None:
    nginx.write("vhost.d/.hemma-new.grafana.example.test", "half\n")
    nginx.write("htpasswd/.hemma-old.prometheus.example.test", "stale\n")
    run = nginx.step(manifest(FILES))
    assert run.returncode == 0, run.stderr
    assert nginx.listing() == sorted(FILES)


@pytest.mark.parametrize(
    "path",
    ["conf.d/evil.conf", "vhost.d/../nginx.conf", "vhost.d/a/b", "vhost.d/.hidden", "x",
     "vhost.d/Grafana", "htpasswd/"],
)  # fmt: skip
def test_a_path_outside_the_two_directories_is_refused_and_nothing_is_written(
    nginx: Nginx, path: str
) -> None:
    data = base64.b64encode(b"return 200;\n").decode()
    run = nginx.step(manifest({"vhost.d/default": "x;\n"}) + f"{path} {data}\n")
    assert run.returncode == 2
    assert f"hemma: refusing to write /etc/nginx/{path}\n" in run.stderr
    assert nginx.listing() == [] and run.calls == []


NOT_ONE_LINE_EACH = (
    "hemma: the files on stdin are not one 'path base64' line each; nothing written\n"
)


@pytest.mark.parametrize(
    ("stdin", "said"),
    [
        ("", "hemma: refusing to write /etc/nginx/\n" + NOT_ONE_LINE_EACH),
        ("\n", "hemma: refusing to write /etc/nginx/\n" + NOT_ONE_LINE_EACH),
        ("vhost.d/default vhost.d/grafana.example.test\n", NOT_ONE_LINE_EACH),
        ("vhost.d/default eDsK eDsK\n", NOT_ONE_LINE_EACH),
        ("vhost.d/default eDsK\t\n", NOT_ONE_LINE_EACH),
        ("vhost.d/default  eDsK\n", NOT_ONE_LINE_EACH),
    ],
    ids=[
        "nothing",
        "an empty line",
        "two paths on one line",
        "three words on a line",
        "a tab after the data",
        "two spaces",
    ],
)
def test_stdin_that_is_not_one_path_and_base64_per_line_writes_nothing(
    nginx: Nginx, stdin: str, said: str
) -> None:
    run = nginx.step(stdin)
    assert run.returncode == 2
    assert run.stderr == said
    assert nginx.listing() == [] and run.calls == []


@pytest.mark.parametrize(
    "data",
    ["client_max_body_size!", "QUJDRA"],
    ids=["not base64's letters", "base64's letters, cut short (base64 -d fails)"],
)
def test_data_that_is_not_base64_stops_the_step_and_changes_nothing(
    nginx: Nginx, data: str
) -> None:
    nginx.write("vhost.d/default", "client_max_body_size 5m;\n")
    run = nginx.step(f"vhost.d/default {data}\n")
    assert run.returncode != 0
    assert run.calls == []
    assert nginx.read("vhost.d/default") == "client_max_body_size 5m;\n"


@pytest.mark.skipif(
    Path("/etc/nginx/vhost.d/default").exists(), reason="this machine has the proxy's files"
)
def test_a_proxy_without_its_per_host_files_refuses_to_start() -> None:
    """The proxy's entrypoint, as its container runs it: with empty volumes it would
    serve every host without its body limits and basic auth."""
    done = subprocess.run(
        ["/bin/sh", "-c", GUARD, "hemma-guard", "forego", "start", "-r"],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == (
        "hemma: /etc/nginx/vhost.d has no files: the proxy would serve every host without "
        "its limits and basic auth; run the proxy-reload step (scripts/pulumi up --replace "
        "its URN)\n"
    )


def test_a_file_nginx_refuses_is_rolled_back_and_the_step_fails(nginx: Nginx) -> None:
    nginx.write("vhost.d/grafana.example.test", "client_max_body_size 5m;\n")
    nginx.refuses()
    run = nginx.step(manifest(FILES))
    assert run.returncode == 1
    assert run.stderr == "hemma: nginx refused the new per-host files; the previous ones are back\n"
    assert run.calls == [*RELOADED, RELOADED[0]], "rendered again from the old files, no reload"
    assert nginx.listing() == ["vhost.d/grafana.example.test"], "new files removed"
    assert nginx.read("vhost.d/grafana.example.test") == "client_max_body_size 5m;\n"


def test_a_render_that_lists_no_containers_fails_and_changes_nothing(nginx: Nginx) -> None:
    """docker-gen exits 0 when it cannot list the containers, and renders nothing."""
    nginx.write("vhost.d/default", "client_max_body_size 5m;\n")
    nginx.says("Error listing containers: permission denied\n")
    run = nginx.step(manifest(FILES))
    assert run.returncode == 1
    refused = (
        "Error listing containers: permission denied\n"
        "hemma: docker-gen did not render /etc/nginx/conf.d/default.conf\n"
    )
    assert run.stderr == refused + refused + (
        "hemma: nginx refused the new per-host files; the previous ones are back\n"
    ), "the render after the rollback fails the same way, and says so"
    assert run.calls == [RELOADED[0], RELOADED[0]]
    assert nginx.listing() == ["vhost.d/default"]
    assert nginx.read("vhost.d/default") == "client_max_body_size 5m;\n"


def test_a_render_that_fails_shows_docker_gen_s_own_lines_and_changes_nothing(
    nginx: Nginx,
) -> None:
    nginx.write("vhost.d/default", "client_max_body_size 5m;\n")
    nginx.says('template: nginx.tmpl:12: function  "x" not defined\n')
    nginx.render_fails()
    run = nginx.step(manifest(FILES))
    assert run.returncode == 1
    said = 'template: nginx.tmpl:12: function  "x" not defined\n'
    assert run.stderr == said + said + (
        "hemma: nginx refused the new per-host files; the previous ones are back\n"
    ), "as docker-gen wrote them, spaces and all"
    assert nginx.listing() == ["vhost.d/default"]


@pytest.mark.parametrize(
    "path", ["conf.d/evil.conf", "vhost.d/../nginx.conf", "vhost.d/a/b", "vhost.d/.x", "x"]
)
def test_the_program_never_hands_over_a_path_outside_the_two_directories(path: str) -> None:
    with pytest.raises(ValueError, match="is not a per-host file of nginx-proxy"):
        manifest({path: "return 200;\n"})


def test_an_unchanged_render_still_checks_and_reloads(nginx: Nginx) -> None:
    """An included file's change leaves default.conf as it was: nginx reloads anyway."""
    nginx.says("Contents of /etc/nginx/conf.d/default.conf did not change. Skipping\n")
    run = nginx.step(manifest(FILES))
    assert run.returncode == 0, run.stderr
    assert run.calls == [*RELOADED, "nginx -s reload"]


def without_auth() -> dict[str, str]:
    return {p: t for p, t in FILES.items() if p != "htpasswd/prometheus.example.test"}


def test_adding_keeps_the_htpasswd_of_a_host_that_dropped_basic_auth(nginx: Nginx) -> None:
    """Its old container may still serve it during the up."""
    nginx.write("htpasswd/prometheus.example.test", "admin:old\n")
    run = nginx.step(manifest(without_auth()))
    assert run.returncode == 0, run.stderr
    assert "removed: none;" in run.stdout
    assert nginx.read("htpasswd/prometheus.example.test") == "admin:old\n"


def test_settling_removes_it_names_it_and_keeps_undeclared_hosts_files(nginx: Nginx) -> None:
    nginx.write("htpasswd/prometheus.example.test", "admin:old\n")
    nginx.write("htpasswd/hand-made.example.test", "admin:mine\n")
    run = nginx.step(manifest(without_auth()), mode=SETTLE)
    assert run.returncode == 0, run.stderr
    assert run.stdout == (
        "hemma: 3 per-host files in place, removed: htpasswd/prometheus.example.test; "
        "nginx reloaded\n"
    )
    assert nginx.read("htpasswd/prometheus.example.test") is None
    assert nginx.read("htpasswd/hand-made.example.test") == "admin:mine\n"
    assert nginx.listing() == sorted([*without_auth(), "htpasswd/hand-made.example.test"])


def test_a_refused_settle_puts_the_removed_htpasswd_back(nginx: Nginx) -> None:
    nginx.write("htpasswd/prometheus.example.test", "admin:old\n")
    nginx.refuses()
    run = nginx.step(manifest(without_auth()), mode=SETTLE)
    assert run.returncode == 1
    assert nginx.listing() == ["htpasswd/prometheus.example.test"]
    assert nginx.read("htpasswd/prometheus.example.test") == "admin:old\n"


def test_without_a_running_proxy_the_files_are_placed_and_nothing_renders(
    nginx: Nginx,
) -> None:
    run = nginx.step(manifest(FILES), render="norender")
    assert run.returncode == 0, run.stderr
    assert run.stdout == (
        "hemma: 4 per-host files in place, removed: none; the proxy renders them at its start\n"
    )
    assert run.calls == []
    assert nginx.listing() == sorted(FILES)


# --- the host's side: exec into a serving proxy, or a throwaway container ----------

DOCKER = """#!/bin/sh
case "$1" in
  inspect)
    case "$3" in
      *State*) cat "$STAND_IN/state" ;;
      *vhost.d*) cat "$STAND_IN/vhost-mount" ;;
      *htpasswd*) cat "$STAND_IN/htpasswd-mount" ;;
    esac ;;
  *)
    for word in "$@"; do printf '%s\\0' "$word"; done > "$STAND_IN/argv"
    cat > "$STAND_IN/stdin" ;;
esac
"""


def host_step(tmp: Path, state: str, vhost: str, htpasswd: str) -> list[str]:
    """What the host's script hands docker, for a proxy in ``state`` with those mounts."""
    stand_in = tmp / "docker stand in"  # a value with a space is still one word
    stand_in.mkdir()
    docker = stand_in / "docker"
    docker.write_text(DOCKER)
    docker.chmod(0o755)
    for name, text in (("state", state), ("vhost-mount", vhost), ("htpasswd-mount", htpasswd)):
        (stand_in / name).write_text(text + "\n")
    script = reload_script(
        str(docker), "nginx-proxy", ("nginx-proxy-vhost", "nginx-proxy-htpasswd"),
        "nginxproxy/nginx-proxy:1.11", mode=SETTLE,
    )  # fmt: skip
    done = subprocess.run(
        ["bash", "-c", script], input="vhost.d/default eDsK\n", capture_output=True, text=True,
        timeout=20, env={**os.environ, "STAND_IN": str(stand_in)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (stand_in / "stdin").read_text() == "vhost.d/default eDsK\n"
    argv = (stand_in / "argv").read_text().split("\0")[:-1]
    return [w if w != inside_script() else "INSIDE" for w in argv]


def test_a_serving_proxy_with_the_two_volumes_renders_in_place(tmp_path: Path) -> None:
    argv = host_step(tmp_path, "true false false", "nginx-proxy-vhost", "nginx-proxy-htpasswd")
    assert argv == ["exec", "-i", "nginx-proxy", "sh", "-c", "INSIDE", "sh", "settle", "render"]


@pytest.mark.parametrize(
    ("state", "vhost", "htpasswd"),
    [
        ("false false false", "nginx-proxy-vhost", "nginx-proxy-htpasswd"),
        ("true true false", "nginx-proxy-vhost", "nginx-proxy-htpasswd"),
        ("true false true", "nginx-proxy-vhost", "nginx-proxy-htpasswd"),
        ("true false false", "nginx_vhost", "nginx-proxy-htpasswd"),
        ("true false false", "nginx-proxy-vhost", ""),
    ],
    ids=["stopped", "restarting", "paused", "hand-made vhost.d", "no htpasswd volume"],
)
def test_any_other_proxy_is_left_alone_and_a_throwaway_container_writes_the_volumes(
    tmp_path: Path, state: str, vhost: str, htpasswd: str
) -> None:
    assert host_step(tmp_path, state, vhost, htpasswd) == [
        "run", "--rm", "-i", "--network", "none", "--entrypoint", "sh",
        "-v", "nginx-proxy-vhost:/etc/nginx/vhost.d",
        "-v", "nginx-proxy-htpasswd:/etc/nginx/htpasswd",
        "nginxproxy/nginx-proxy:1.11", "-c", "INSIDE", "sh", "settle", "norender",
    ]  # fmt: skip
