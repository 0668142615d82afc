"""`python -m tests.kube.cluster --port 0`: the test API server, printing its address once it listens."""

from __future__ import annotations

import argparse
import asyncio
import socket

import uvicorn

from .app import ApiServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)  # before the line below: a client may connect the moment it reads it
    config = uvicorn.Config(ApiServer(), log_level="warning", lifespan="off", timeout_keep_alive=30)
    server = uvicorn.Server(config)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    asyncio.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    main()
