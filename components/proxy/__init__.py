"""The edge: nginx-proxy and acme-companion, and the files nginx-proxy reads."""
