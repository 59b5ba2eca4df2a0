#!/usr/bin/python3
"""Entrypoint of the rehearsal's stand-in image: one image for every app container.

It answers HTTP 200 on every port in STANDIN_PORTS (the ports the program's
containers listen on, baked into the image), keeps a process named docker-gen
running and its own PID in /var/run/nginx.pid, so the declared health checks
(urllib, wget, /dev/tcp, pgrep docker-gen, nginx -t && kill -0) pass for real.
The declared command arrives as arguments and is only recorded: the stand-in
is not the app it replaces.
"""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys

LOG_DIR = "/var/log/standin"
RESPONSE = (
    b"HTTP/1.0 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 3\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"ok\n"
)


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # A bare TCP probe (bash's /dev/tcp) sends nothing and hangs up; an HTTP client
    # sends its request head. Either way one short answer, then close.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    with contextlib.suppress(Exception):
        writer.write(RESPONSE)
        await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()
        await writer.wait_closed()


async def serve(ports: list[int]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers = []
    listening = []
    for port in ports:
        try:
            servers.append(await asyncio.start_server(answer, host="0.0.0.0", port=port))
            listening.append(port)
        except OSError as error:
            print(f"standin: port {port}: {error}", file=sys.stderr, flush=True)
    with open(f"{LOG_DIR}/ports.json", "w") as f:
        json.dump(listening, f)
    print(f"standin: listening on {listening}", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    os.makedirs(LOG_DIR, exist_ok=True)
    with open(f"{LOG_DIR}/argv.json", "w") as f:
        json.dump(sys.argv[1:], f)
    with open("/var/run/nginx.pid", "w") as f:
        f.write(f"{os.getpid()}\n")
    # The kernel names a process after the file it executes, so a link called
    # docker-gen makes `pgrep docker-gen` find it.
    subprocess.Popen(["/usr/local/bin/docker-gen", "infinity"])
    ports = [int(p) for p in os.environ.get("STANDIN_PORTS", "").split()]
    asyncio.run(serve(ports))


if __name__ == "__main__":
    main()
