"""What the edge enforces per hostname, from the routes that share it."""

from __future__ import annotations

from components.config.reading import parse
from components.model.app import App, Pull, Route, Service, ShellProbe
from components.proxy.nginx_files import HostPolicy, host_policies
from tests.harness import OPERATOR_SECRETS, as_cli_value, site_config


def routed(*routes: Route) -> App:
    return App(
        name="notes",
        services=tuple(
            Service(
                name=f"web{n}",
                container=f"notes-web{n}",
                image=Pull("nginx:1.27"),
                networks=("hule-network",),
                route=route,
                healthcheck=ShellProbe("true"),
            )
            for n, route in enumerate(routes)
        ),
    )


def policies(*routes: Route) -> list[HostPolicy]:
    config = parse({k: as_cli_value(v) for k, v in site_config().items()}, OPERATOR_SECRETS)
    return host_policies(config, (routed(*routes),))


def test_a_host_served_on_a_path_only_asks_for_no_basic_auth() -> None:
    """Basic auth is the host's own route's to ask for: a path route alone asks none."""
    (policy,) = policies(Route("grafana", 3000, path="/api/", max_body_size="1m"))
    assert policy == HostPolicy(
        "grafana.hemma.hule.education", "10m", basic_auth=False, paths={"/api/": "1m"}
    )


def test_the_host_s_own_route_sets_its_basic_auth_and_limit_beside_its_paths() -> None:
    (policy,) = policies(
        Route("grafana", 3000, path="/api/"),
        Route("grafana", 3000, basic_auth=True, max_body_size="2m"),
    )
    assert policy == HostPolicy(
        "grafana.hemma.hule.education", "2m", basic_auth=True, paths={"/api/": "10m"}
    )
