"""The edge: nginx-proxy and acme-companion, the only things listening publicly.

nginx-proxy routes by the ``VIRTUAL_HOST`` of containers on a network it shares
with them; acme-companion obtains certificates for containers that also set
``LETSENCRYPT_HOST``. The files no config value changes are uploaded onto the
proxy container; the per-host snippets and htpasswd files live in two volumes
that the reload step writes (``reload.py``), so a route edit reloads nginx-proxy
and does not replace it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.config.platform import ProxyConfig
from components.config.stack import PUBLIC_PORTS
from components.foundation.adoption import adopt
from components.foundation.containers import (
    ContainerDefaults,
    Health,
    container,
    image,
    protected_volume,
)
from components.foundation.secrets import generated_password, secret_value
from components.foundation.shell import HostShell
from components.proxy.htpasswd import htpasswd
from components.proxy.nginx_files import HostPolicy, host_files, static_files
from components.proxy.reload import ADD, GUARD, SETTLE, manifest, reload_script

NGINX_LABEL = "com.github.nginx-proxy.nginx"
NGINX_PROXY_COMMAND = ("forego", "start", "-r")
"""The image's CMD (1.6.0 and 1.11.6 Dockerfile.alpine): its entrypoint sets up only
for exactly this."""
DOCKER_SOCKET = "/var/run/docker.sock"
HEALTH_FILTER = "health=healthy,health=none"
"""nginx-proxy's own container passes it only while its check passes: otherwise it
renders every upstream unreachable (nginx.tmpl 1.11.6 finds its networks through its
own container, docker-gen 0.17.2 lists containers with the filter). Its check is
therefore only that its nginx master runs: it fails in the seconds after its start,
and when nginx is gone, when no site is served anyway."""
PUBLIC_ADDRESSES = ("0.0.0.0", "::")
"""80 and 443 on IPv4 and IPv6 (runbook 000 has AAAA records). An explicit 0.0.0.0
publishes IPv4 only; Docker's proxy carries IPv6 clients to the container's IPv4."""
LOCAL_ADDRESSES = ("127.0.0.1",)
"""The local stack's proxy: this machine only."""


@dataclass(frozen=True)
class ProxyStackArgs:
    config: ProxyConfig
    acme_email: str | None
    """The Let's Encrypt account (acme-companion's DEFAULT_EMAIL); None: no
    acme-companion and no certificates (the local stack, plain HTTP)."""
    acme_staging: bool
    network: docker.Network
    """hule-network: the proxy reaches every routed container over it."""
    shell: HostShell
    """Where the reload step runs."""
    hosts: Sequence[HostPolicy]
    """What the edge enforces for each public hostname."""
    import_ids: Mapping[str, str] = field(default_factory=dict)
    defaults: ContainerDefaults = field(default_factory=ContainerDefaults)
    addresses: Sequence[str] = PUBLIC_ADDRESSES
    """Where 80 and 443 are published."""


class ProxyStack(pulumi.ComponentResource):
    """nginx-proxy + acme-companion with TLS, edge hardening, basic auth and body limits."""

    public_hosts: list[str]
    """Every hostname the proxy serves, sorted."""
    basic_auth: pulumi.Output[dict[str, dict[str, str]]]
    """Secret: ``{host: {username, password}}`` for hosts behind basic auth."""
    container: docker.Container
    """nginx-proxy."""
    companion: docker.Container | None
    """acme-companion; None without ACME."""
    reload: pulumi.CustomResource
    """Writes the per-host files (and reloads nginx-proxy when it runs): nginx-proxy
    and every routed container start after it, so a protected host is never routed
    without its htpasswd."""

    def __init__(
        self, name: str, args: ProxyStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hemma:proxy:ProxyStack", name, None, opts)
        self._name = name
        config, hosts, import_ids = args.config, args.hosts, args.import_ids
        self.public_hosts = sorted(h.hostname for h in hosts)

        def volume(suffix: str, docker_name: str) -> docker.Volume:
            return protected_volume(
                f"{name}-{suffix}", docker_name, self, adopt(import_ids, "volume", docker_name)
            )

        certs = volume("certs", config.certs_volume)
        html = volume("html", config.html_volume)
        acme = volume("acme", config.acme_volume)
        self._volumes = (certs, html, acme)

        vhost = volume("vhost", config.vhost_volume)
        passwords = volume("htpasswd", config.htpasswd_volume)
        per_host: dict[str, pulumi.Input[str]] = dict(
            host_files(list(hosts), config.default_max_body_size)
        )
        credentials: dict[str, pulumi.Output[str]] = {}
        for host in hosts:
            if not host.basic_auth:
                continue
            password = generated_password(f"{name}-basic-auth-{host.hostname}", self)
            salt = random.RandomString(
                f"{name}-basic-auth-salt-{host.hostname}",
                length=8,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            per_host[f"htpasswd/{host.hostname}"] = pulumi.Output.all(
                secret_value(password), salt.result
            ).apply(self._htpasswd_for(config.basic_auth_user))
            credentials[host.hostname] = secret_value(password)

        proxy_image = image(f"{name}-nginx-proxy-image", config.image, self).image_id
        files: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(**per_host).apply(manifest)
        )
        self._step_inputs = (args.shell, config, proxy_image, files)
        self.reload = self._step(f"{name}-reload", ADD, [vhost, passwords])

        self.container = container(
            f"{name}-nginx-proxy",
            parent=self,
            docker_name=config.container_name,
            image=proxy_image,
            depends_on=[self.reload],
            # nginx-proxy's own entrypoint, behind the check that its files are there.
            entrypoints=["/bin/sh", "-c", GUARD, "hemma-guard"],
            command=list(NGINX_PROXY_COMMAND),
            # Its master process alive, nothing more: nginx-proxy drops out of its own
            # health filter while unhealthy, and then renders every upstream down
            # (nginx.tmpl finds its networks through its own container). A check
            # that can time out under load (nginx -t parses every file) would turn
            # a slow disk into an outage of every site.
            health=Health('kill -0 "$(cat /var/run/nginx.pid)"', start_period=20),
            stop_grace_seconds=30,
            defaults=args.defaults,
            labels={NGINX_LABEL: "true"},
            envs=[
                # nginx-proxy is the edge: nothing in front of it may set X-Forwarded-*
                # (it trusts client-sent ones unless this is false; nginx.tmpl's maps).
                "TRUST_DOWNSTREAM_PROXY=false",
                # Route only to containers that are healthy or have no check: a
                # start-first copy takes traffic once healthy, not while starting.
                # docker-gen lists containers with these filters (docker's own
                # health filter, values OR'd) and renders again on health_status.
                f"DOCKER_CONTAINER_FILTERS={HEALTH_FILTER}",
            ],
            ports=[
                docker.ContainerPortArgs(internal=port, external=port, ip=address)
                for port in sorted(PUBLIC_PORTS)
                for address in args.addresses
            ],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network.name)],
            volumes=[
                docker.ContainerVolumeArgs(
                    host_path=DOCKER_SOCKET, container_path="/tmp/docker.sock", read_only=True
                ),
                docker.ContainerVolumeArgs(
                    volume_name=certs.name, container_path="/etc/nginx/certs"
                ),
                docker.ContainerVolumeArgs(
                    volume_name=html.name, container_path="/usr/share/nginx/html"
                ),
                docker.ContainerVolumeArgs(
                    volume_name=vhost.name, container_path="/etc/nginx/vhost.d"
                ),
                docker.ContainerVolumeArgs(
                    volume_name=passwords.name, container_path="/etc/nginx/htpasswd"
                ),
            ],
            uploads=[
                docker.ContainerUploadArgs(file=f"/etc/nginx/{path}", content=text)
                for path, text in static_files().items()
            ],
            wait=True,
            wait_timeout=120,
        )
        self.companion = None if args.acme_email is None else self._companion(name, args)
        users = {host: config.basic_auth_user for host in credentials}
        self.basic_auth = pulumi.Output.secret(
            pulumi.Output.all(**credentials).apply(
                lambda passwords: {
                    host: {"username": users[host], "password": pw}
                    for host, pw in passwords.items()
                }
            )
        )
        self.register_outputs({"public_hosts": self.public_hosts, "basic_auth": self.basic_auth})

    def _companion(self, name: str, args: ProxyStackArgs) -> docker.Container:
        config = args.config
        certs, html, acme = self._volumes
        envs = [
            f"DEFAULT_EMAIL={args.acme_email}",
            f"NGINX_PROXY_CONTAINER={config.container_name}",
        ]
        if args.acme_staging:
            envs.append("ACME_CA_URI=https://acme-staging-v02.api.letsencrypt.org/directory")
        return container(
            f"{name}-acme-companion",
            parent=self,
            docker_name=config.companion_container_name,
            image=image(f"{name}-acme-companion-image", config.companion_image, self).image_id,
            health=Health("pgrep docker-gen >/dev/null"),
            stop_grace_seconds=30,
            defaults=args.defaults,
            depends_on=[self.container],
            envs=envs,
            volumes=[
                docker.ContainerVolumeArgs(
                    host_path=DOCKER_SOCKET, container_path=DOCKER_SOCKET, read_only=True
                ),
                docker.ContainerVolumeArgs(volume_name=acme.name, container_path="/etc/acme.sh"),
                docker.ContainerVolumeArgs(
                    volume_name=certs.name, container_path="/etc/nginx/certs"
                ),
                docker.ContainerVolumeArgs(
                    volume_name=html.name, container_path="/usr/share/nginx/html"
                ),
            ],
        )

    def settle(self, after: Sequence[pulumi.Resource]) -> pulumi.CustomResource:
        """The step that runs after every app container (``after``): it also removes the
        htpasswd of a declared host that no longer asks for basic auth, once the
        containers serving that host are the new ones."""
        name = self._name
        return self._step(f"{name}-settle", SETTLE, [self.reload, self.container, *after])

    def _step(
        self, name: str, mode: str, depends_on: Sequence[pulumi.Resource]
    ) -> pulumi.CustomResource:
        shell, config, proxy_image, files = self._step_inputs
        volumes = (config.vhost_volume, config.htpasswd_volume)
        return shell.run(
            name,
            pulumi.Output.from_input(proxy_image).apply(
                lambda image_id: reload_script(
                    shell.docker_path, config.container_name, volumes, image_id, mode
                )
            ),
            stdin=files,
            triggers=[files.apply(_digest)],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(depends_on),
                additional_secret_outputs=["stdout", "stderr"],
            ),
        )

    @staticmethod
    def _htpasswd_for(user: str) -> Callable[[list[Any]], str]:
        def render(values: list[Any]) -> str:
            password, salt = values
            return htpasswd(user, str(password), str(salt))

        return render


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
