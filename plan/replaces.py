"""Which input changes replace a resource and which update it in place.

The engine replaces a resource when its provider's Diff names a changed property
in its replace keys (terraform's ``ForceNew``, pulumi-go-provider's
``replaceOnChanges``), or when the resource's own ``replaceOnChanges`` option
covers it; every other change is an update. The providers are not run here,
so this is their schemas' knowledge, written down once, each entry with the
source it was read from:

- docker Container, Network, Volume, RemoteImage: kreuzwerker/terraform-provider-docker
  v4.5.0 (the version pulumi-docker 5.1.0 vendors as its ``upstream`` submodule;
  which one 5.2.0 wraps is not confirmed), ``internal/provider/resource_docker_*.go``.
- docker Image (the native build resource): pulumi-docker ``provider/provider.go``
  271-328, whose Diff never names a replace key.
- command remote and local Command: pulumi-command v1.2.1, where only ``triggers`` is
  ``replaceOnChanges`` (``common/inputs.go:10``; the Python SDK also sets
  ``replace_on_changes=["triggers[*]"]``).
- postgresql Database, Role, Grant: cyrilgdn/terraform-provider-postgresql
  ff936b95 (v1.27.0, the ``upstream`` of pulumi-postgresql 3.18),
  ``postgresql/resource_postgresql_*.go``.
- random RandomPassword, RandomString: terraform-provider-random sets
  ``RequiresReplace`` on every argument (``keepers`` exist to force exactly that);
  a replacement generates a new value.

An input a table does not list falls to the table's ``default``; for a
resource type with no table at all the plan assumes a replacement and says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

REPLACE = "replace"
UPDATE = "update"
EVERY_INPUT: frozenset[str] = frozenset({"*"})


@dataclass(frozen=True)
class Rule:
    replaces: frozenset[str]
    """Inputs whose change replaces the resource (``EVERY_INPUT``: all of them)."""
    updates: frozenset[str]
    """Inputs known to update in place."""
    default: str
    """What a change to an input in neither set does."""
    source: str
    default_assumed: bool = False
    """The default is a guess (a field newer than the source read), not the source's."""


_CONTAINER_FORCE_NEW = frozenset(
    {
        # resource_docker_container.go: ForceNew, at the field's line
        "name",  # 50
        "readOnly",  # 64
        "image",  # 141
        "hostname",  # 148
        "domainname",  # 156
        "command",  # 163
        "entrypoints",  # 172
        "user",  # 181
        "dns",  # 196
        "dnsOpts",  # 203
        "dnsSearches",  # 214
        "publishAllPorts",  # 223
        "workingDir",  # 243
        "capabilities",  # 262
        "securityOpts",  # 291
        "runtime",  # 300
        "platform",  # 307
        "stopSignal",  # 314
        "stopTimeout",  # 321
        "mounts",  # 328
        "volumes",  # 434
        "ports",  # 487
        "hosts",  # 537
        "ulimits",  # 561
        "envs",  # 590
        "privileged",  # 656
        "devices",  # 663
        "deviceRequests",  # 774
        "labels",  # 833: the program's health-check digest label rides on this
        "shmSize",  # 863
        "logDriver",  # 886
        "logOpts",  # 894
        "networkMode",  # 901
        "networksAdvanced",  # 909
        "pidMode",  # 974
        "usernsMode",  # 980
        "uploads",  # 987
        "sysctls",  # 1105
        "ipcMode",  # 1111
        "groupAdds",  # 1118
        "tty",  # 1132
        "stdinOpen",  # 1139
        "storageOpts",  # 1146
        "gpus",  # 1152
        "cpus",  # 1158
        "cgroupnsMode",  # 1176
        "cgroupParent",  # 1182
    }
)
_CONTAINER_IN_PLACE = frozenset(
    {
        # Not ForceNew at v4.5.0. Update (991-1077) applies restart, max_retry_count and
        # the memory/cpu limits with ContainerUpdate and must_run by starting the
        # container; the rest only rewrite state.
        "restart",
        "maxRetryCount",
        "memory",
        "memoryReservation",
        "memorySwap",
        "cpuShares",
        "cpuSet",
        "cpuPeriod",
        "cpuQuota",
        "mustRun",
        "destroyGraceSeconds",
        "wait",
        "waitTimeout",
        # healthcheck: not ForceNew at v4.5.0 (1045-1050; kreuzwerker #988, fixed
        # after v4.5.0 by #989); a changed check replaces the container here through
        # its digest label (components/foundation/containers.py).
        "healthcheck",
        "rm",
        "start",
        "attach",
        "logs",
        "removeVolumes",
        "tmpfs",
        "init",
        "deviceReadBps",
        "deviceReadIops",
        "deviceWriteBps",
        "deviceWriteIops",
        "containerReadRefreshTimeoutMilliseconds",
    }
)

RULES: dict[str, Rule] = {
    "docker:index/container:Container": Rule(
        replaces=_CONTAINER_FORCE_NEW,
        updates=_CONTAINER_IN_PLACE,
        # deviceCgroupRules is newer than v4.5.0 (kreuzwerker #975): assumed ForceNew
        # like devices, as is any other field added since.
        default=REPLACE,
        source="terraform-provider-docker v4.5.0 resource_docker_container.go",
        default_assumed=True,
    ),
    "docker:index/network:Network": Rule(
        replaces=EVERY_INPUT,
        updates=frozenset(),
        default=REPLACE,
        source="terraform-provider-docker v4.5.0 resource_docker_network.go: no Update, "
        "every field ForceNew",
    ),
    "docker:index/volume:Volume": Rule(
        replaces=frozenset({"name", "driver", "driverOpts", "labels"}),
        updates=frozenset({"cluster"}),
        default=UPDATE,
        source="terraform-provider-docker v4.5.0 resource_docker_volume.go:41-67, "
        "Update only for cluster (388-427)",
    ),
    "docker:index/remoteImage:RemoteImage": Rule(
        replaces=frozenset({"name", "pullTriggers", "triggers", "platform"}),
        updates=frozenset({"keepLocally", "forceRemove"}),
        default=REPLACE,
        source="terraform-provider-docker v4.5.0 resource_docker_image.go:36-96",
        default_assumed=True,
    ),
    "docker:index/image:Image": Rule(
        replaces=frozenset(),
        updates=frozenset(),
        default=UPDATE,
        source="pulumi-docker provider.go:271-328: Diff reports no replace keys",
    ),
    "command:remote:Command": Rule(
        replaces=frozenset({"triggers"}),
        updates=frozenset(),
        default=UPDATE,
        source="pulumi-command v1.2.1 common/inputs.go:10: only triggers is replaceOnChanges",
    ),
    "command:local:Command": Rule(
        replaces=frozenset({"triggers"}),
        updates=frozenset(),
        default=UPDATE,
        source="pulumi-command v1.2.1 common/inputs.go:10: only triggers is replaceOnChanges",
    ),
    "postgresql:index/database:Database": Rule(
        replaces=frozenset({"template", "encoding", "lcCollate", "lcCtype"}),
        updates=frozenset(),
        default=UPDATE,
        source="terraform-provider-postgresql ff936b95 resource_postgresql_database.go:"
        "56-78 ForceNew; name, owner and the rest alter in place",
    ),
    "postgresql:index/role:Role": Rule(
        replaces=frozenset(),
        updates=frozenset({"name", "password"}),
        default=UPDATE,
        source="terraform-provider-postgresql ff936b95 resource_postgresql_role.go: "
        "no ForceNew; a new name is ALTER ROLE ... RENAME TO (:771)",
    ),
    "postgresql:index/grant:Grant": Rule(
        replaces=frozenset(
            {"role", "database", "schema", "objectType", "objects", "columns", "withGrantOption"}
        ),
        updates=frozenset({"privileges"}),
        default=REPLACE,
        source="terraform-provider-postgresql ff936b95 resource_postgresql_grant.go:40-105: "
        "only privileges updates in place",
    ),
    "random:index/randomPassword:RandomPassword": Rule(
        replaces=EVERY_INPUT,
        updates=frozenset(),
        default=REPLACE,
        source="terraform-provider-random: every argument RequiresReplace",
    ),
    "random:index/randomString:RandomString": Rule(
        replaces=EVERY_INPUT,
        updates=frozenset(),
        default=REPLACE,
        source="terraform-provider-random: every argument RequiresReplace",
    ),
}

_PROVIDER = Rule(
    replaces=frozenset(),
    updates=frozenset(),
    default=UPDATE,
    source="a provider's own config change is diffed by its DiffConfig, not modelled here",
    default_assumed=True,
)
_COMPONENT = Rule(
    replaces=frozenset(),
    updates=frozenset(),
    default=UPDATE,
    source="component resources have no provider; the engine updates their state",
)
_UNKNOWN = Rule(
    replaces=frozenset(),
    updates=frozenset(),
    default=REPLACE,
    source="no table for this type: a replacement is assumed",
    default_assumed=True,
)


def rule(type_: str, custom: bool) -> Rule:
    if type_ in RULES:
        return RULES[type_]
    if type_.startswith("pulumi:providers:"):
        return _PROVIDER
    if not custom:
        return _COMPONENT
    return _UNKNOWN


def _root(path: str) -> str:
    """The top-level input a property path starts with: ``triggers[*]`` -> ``triggers``."""
    for index, char in enumerate(path):
        if char in ".[":
            return path[:index]
    return path


@dataclass(frozen=True)
class Verdict:
    action: str
    """``replace`` or ``update``."""
    replacing: tuple[str, ...]
    """The changed inputs that force the replacement."""
    assumed: tuple[str, ...]
    """Changed inputs the table does not name (decided by its default)."""


def classify(
    type_: str,
    changed: Iterable[str],
    replace_on_changes: Iterable[str] = (),
    custom: bool = True,
) -> Verdict:
    """What a change to the top-level inputs ``changed`` does to a resource of ``type_``."""
    table = rule(type_, custom)
    option = {_root(path) for path in replace_on_changes}
    replacing: list[str] = []
    assumed: list[str] = []
    for key in sorted(set(changed)):
        if key in table.updates:
            forces = False
        elif table.replaces == EVERY_INPUT or key in table.replaces:
            forces = True
        else:
            forces = table.default == REPLACE
            if table.default_assumed:
                assumed.append(key)
        if forces or key in option or "*" in option:
            replacing.append(key)
    return Verdict(
        action=REPLACE if replacing else UPDATE,
        replacing=tuple(replacing),
        assumed=tuple(assumed),
    )
