"""A route edit previews as a reload of nginx-proxy, never as its replacement, and the
plan says which public hosts a change takes down.

Each edit is planned against the stack file as ``scripts/plan diff`` plans it
(``make_plan``, the same mocks) and compared with ``diff.compare``; its edge
lines come from ``downtime.costs``, as ``scripts/plan diff`` prints them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from plan import diff, downtime
from plan.cli import make_plan

ROOT = Path(__file__).resolve().parents[2]
STACK = yaml.safe_load((ROOT / "Pulumi.hemma.yaml").read_text())["config"]
HOSTNAMES: dict[str, str] = STACK["hemma:hostnames"]
PROXY: dict[str, Any] = STACK["hemma:proxy"]
CONTAINER = "docker:index/container:Container"


def setting(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value)}"


EDITS = {
    "hostname": [setting("hostnames", {**HOSTNAMES, "grafana": "grafana2.hemma.hule.education"})],
    "default body size": [setting("proxy", {**PROXY, "defaultMaxBodySize": "20m"})],
    "basic-auth user": [setting("proxy", {**PROXY, "basicAuthUser": "ops"})],
    "Class Hub on": [
        setting("classHub", {"enabled": True}),
        setting("hostnames", {**HOSTNAMES, "classhub": "classhub.hule.education"}),
        setting("appSources", {**STACK["hemma:appSources"], "classhub": "../classhub"}),
    ],
}


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return make_plan(ROOT, "hemma", [], [])


def changes_of(old: dict[str, Any], new: dict[str, Any]) -> dict[str, diff.Change]:
    return {c.name: c for c in diff.compare(old, new).changes}


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_route_edit_reloads_nginx_proxy_and_does_not_replace_it(
    base: dict[str, Any], edit: str
) -> None:
    edited = make_plan(ROOT, "hemma", EDITS[edit], [])
    changes = changes_of(base, edited)
    assert "proxy-nginx-proxy" not in changes, changes["proxy-nginx-proxy"].headline()
    assert "proxy-acme-companion" not in changes
    reload = changes["proxy-reload"]
    assert (reload.action, reload.replacing) == ("replace", ["triggers"]), reload.headline()
    edge = downtime.costs(changes.values(), base, edited)
    assert "reload proxy-reload: nginx-proxy reloads its per-host files, no downtime" in edge
    assert not any("nginx-proxy" in line and line.startswith("!!") for line in edge), edge


def test_a_hostname_edit_names_the_one_host_that_goes_down(base: dict[str, Any]) -> None:
    edited = make_plan(ROOT, "hemma", EDITS["hostname"], [])
    changes = changes_of(base, edited)
    assert changes["observability-grafana"].action == "replace"
    edge = downtime.costs(changes.values(), base, edited)
    # Grafana: 15 s health interval, 30 s grace, 300 s wait timeout.
    assert (
        "!! replace grafana delete-first (down from stop to healthy): "
        "grafana.hemma.hule.education, grafana2.hemma.hule.education down, 15-330 s"
    ) in edge, edge
    # Prometheus scrapes the public hosts by name, so it is replaced too.
    assert edge[-1] == (
        "downtime: grafana.hemma.hule.education, grafana2.hemma.hule.education, "
        "prometheus.hemma.hule.education go down, for 15-360 s; the other 5 public hosts stay up"
    )


def test_a_new_proxy_image_takes_every_host_down_and_says_so(base: dict[str, Any]) -> None:
    edited = make_plan(
        ROOT, "hemma", [setting("proxy", {**PROXY, "image": "nginxproxy/nginx-proxy:1.11.5"})], []
    )
    changes = changes_of(base, edited)
    assert changes["proxy-nginx-proxy"].action == "replace"
    edge = downtime.costs(changes.values(), base, edited)
    assert edge[0].startswith(
        "!! replace nginx-proxy delete-first (down from stop to healthy): "
        "api.huleedu.hule.education,"
    )
    assert edge[-1].endswith("go down, for 15-150 s; the other 0 public hosts stay up"), edge


def test_a_start_first_service_changes_with_no_downtime(base: dict[str, Any]) -> None:
    env = {"skriptoteket-web": {"LOG_LEVEL": "debug"}}
    edited = make_plan(ROOT, "hemma", [setting("extraEnv", env)], [])
    changes = changes_of(base, edited)
    assert changes["skriptoteket-web"].action == "replace"
    edge = downtime.costs(changes.values(), base, edited)
    assert edge == [
        "replace skriptoteket-web start-first (no downtime): the old one serves "
        "skriptoteket.hule.education until the new one is healthy (up waits up to 300 s)",
        "downtime: none; all 7 public hosts stay up",
    ]


def test_the_same_plan_costs_nothing(base: dict[str, Any]) -> None:
    assert downtime.costs(diff.compare(base, base).changes, base, base) == []


@pytest.mark.parametrize(
    ("duration", "expected"), [("15s", 15), ("1m0s", 60), ("1h0m0s", 3600), ("2m30s", 150)]
)
def test_go_durations_read_as_seconds(duration: str, expected: int) -> None:
    assert downtime.seconds(duration) == expected
