"""The Promtail config: nginx-proxy's access log from Docker, labelled per line."""

from __future__ import annotations

import yaml

NGINX_ACCESS_LOG = (
    r"^(?P<vhost>\S+) (?P<client_ip>\S+) - \S+ \[[^\]]*\] "
    r'"(?P<method>[A-Z]+) \S+ [^"]*" (?P<status>\d{3}) '
)
"""nginx-proxy's ``vhost`` log format:
``$host $remote_addr - $remote_user [$time_local] "$request" $status ...``."""

ACCESS_LOG_LABELS = ("vhost", "client_ip", "method", "status")


def promtail_config(proxy: str) -> str:
    """Promtail reads nginx-proxy's access log from Docker and labels each line."""
    document = {
        "server": {"http_listen_port": 9080, "grpc_listen_port": 0},
        "positions": {"filename": "/var/lib/promtail/positions.yaml"},
        "clients": [{"url": "http://loki:3100/loki/api/v1/push"}],
        "scrape_configs": [
            {
                "job_name": "nginx-proxy",
                "docker_sd_configs": [
                    {
                        "host": "unix:///var/run/docker.sock",
                        "refresh_interval": "15s",
                        "filters": [{"name": "name", "values": [proxy]}],
                    }
                ],
                "relabel_configs": [
                    {
                        "source_labels": ["__meta_docker_container_name"],
                        "target_label": "container",
                    },
                ],
                "pipeline_stages": [
                    {"docker": {}},
                    {"regex": {"expression": NGINX_ACCESS_LOG}},
                    {"labels": {label: None for label in ACCESS_LOG_LABELS}},
                ],
            }
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)
