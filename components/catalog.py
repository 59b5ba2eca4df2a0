"""What runs on Hemma, as data.

Each entry is one app: the public routes it serves, the internal network its
services share, and the PostgreSQL role and databases it owns on
shared-postgres. The hostnames are site values and live in the stack file under
``hemma:hostnames``, keyed by the route ids below.

Adding an app means adding one ``App`` here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SHARED_NETWORK = "hule-network"
"""The network nginx-proxy, shared-postgres and every routed container share."""


@dataclass(frozen=True)
class Route:
    """A public hostname served by nginx-proxy and the container behind it."""

    id: str
    """Key of the hostname under ``hemma:hostnames``."""
    container: str
    port: int
    basic_auth: bool = False
    """Put the host behind HTTP basic auth with a generated password."""
    max_body_size: str | None = None
    """nginx ``client_max_body_size`` for this host; the proxy default when unset."""


@dataclass(frozen=True)
class App:
    name: str
    routes: tuple[Route, ...] = ()
    internal_network: str | None = None
    """A network of the app's own, for services that must not be on hule-network."""
    database_role: str | None = None
    """The login role that owns the app's databases on shared-postgres."""
    databases: tuple[str, ...] = field(default=())

    @property
    def containers(self) -> tuple[str, ...]:
        return tuple(route.container for route in self.routes)


HULEEDU_DATABASES = (
    "huleedu_batch_conductor",
    "huleedu_batch_orchestrator",
    "huleedu_cj_assessment",
    "huleedu_class_management",
    "huleedu_content",
    "huleedu_email",
    "huleedu_entitlements",
    "huleedu_essay_lifecycle",
    "huleedu_file_service",
    "huleedu_identity",
    "huleedu_nlp",
    "huleedu_result_aggregator",
    "huleedu_spellchecker",
)

CATALOG: tuple[App, ...] = (
    App(
        name="skriptoteket",
        routes=(Route("skriptoteket", "skriptoteket-web", 8000),),
        database_role="skriptoteket",
        databases=("skriptoteket",),
    ),
    App(
        name="huleedu",
        routes=(
            Route("huleedu", "huleedu_bff_teacher_service", 4101),
            Route("huleedu-api", "huleedu_api_gateway_service", 8080),
            Route("huleedu-ws", "huleedu_websocket_service", 8080),
        ),
        internal_network="huleedu_internal_network",
        database_role="huleedu_user",
        databases=HULEEDU_DATABASES,
    ),
    App(
        name="observability",
        routes=(
            Route("grafana", "grafana", 3000),
            Route("prometheus", "prometheus", 9090, basic_auth=True),
            Route("jaeger", "jaeger", 16686, basic_auth=True),
        ),
    ),
)


def routes(catalog: tuple[App, ...] = CATALOG) -> tuple[Route, ...]:
    return tuple(route for app in catalog for route in app.routes)
