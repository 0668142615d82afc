"""Makes KServe 0.21's ModelServer listen on loopback only, for the benchmarks' peers.

KServe binds 0.0.0.0 (REST) and [::] (gRPC), hard-coded. Importing this module rewrites those two addresses
to 127.0.0.1 before the servers start; nothing on the request path is touched.
"""

from __future__ import annotations

import grpc.aio._server
import uvicorn

_config_init = uvicorn.Config.__init__
_add_insecure_port = grpc.aio._server.Server.add_insecure_port


def _loopback_config_init(self, *args, **kwargs):
    if kwargs.get("host") == "0.0.0.0":
        kwargs["host"] = "127.0.0.1"
    _config_init(self, *args, **kwargs)


def _loopback_add_insecure_port(self, address):
    if address.startswith("[::]:"):
        address = "127.0.0.1:" + address[len("[::]:") :]
    return _add_insecure_port(self, address)


uvicorn.Config.__init__ = _loopback_config_init
grpc.aio._server.Server.add_insecure_port = _loopback_add_insecure_port
