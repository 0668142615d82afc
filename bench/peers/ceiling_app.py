"""The ceiling: a bare ASGI app that answers every request with a fixed V2 inference response.

It does no routing, parsing or model work, so what it measures is uvicorn + httptools + uvloop on this
machine: no Python server on this stack can be faster. With --grpc-port it also serves a bare grpc.aio
generic handler for inference.GRPCInferenceService/ModelInfer that ignores the request and returns a fixed,
pre-serialised ModelInferResponse, in the same uvloop event loop: the same limit for gRPC. Run by
bench/model_server.py as

    python bench/peers/ceiling_app.py --port P [--grpc-port G]
"""

from __future__ import annotations

import argparse

import grpc
import uvicorn
import uvloop

BODY = (
    b'{"model_name":"iris","model_version":null,"id":"ceiling","parameters":null,'
    b'"outputs":[{"name":"output-0","shape":[1],"datatype":"INT64","parameters":null,"data":[0]}]}'
)
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
}
RESPONSE_BODY = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    # Read the request body to the end, as any real server must.
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(START)
    await send(RESPONSE_BODY)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


# ModelInferResponse{model_name: "iris", id: "ceiling", outputs: [InferOutputTensor{name: "output-0",
# datatype: "INT64", shape: [1], contents: InferTensorContents{int64_contents: [0]}}]}
_TENSOR = (
    _field(1, b"output-0") + _field(2, b"INT64") + _field(3, _varint(1)) + _field(5, _field(3, _varint(0)))
)
GRPC_RESPONSE = _field(1, b"iris") + _field(3, b"ceiling") + _field(5, _TENSOR)


async def model_infer(request: bytes, context) -> bytes:
    return GRPC_RESPONSE


async def serve(host: str, port: int, grpc_port: int | None) -> None:
    grpc_server = None
    if grpc_port:
        grpc_server = grpc.aio.server()
        handler = grpc.unary_unary_rpc_method_handler(model_infer)  # no (de)serialisers: raw bytes
        grpc_server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {"ModelInfer": handler}),)
        )
        grpc_server.add_insecure_port(f"{host}:{grpc_port}")
        await grpc_server.start()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="none",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )
    try:
        await uvicorn.Server(config).serve()  # returns on SIGINT/SIGTERM
    finally:
        if grpc_server is not None:
            await grpc_server.stop(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, default=0)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.grpc_port))


if __name__ == "__main__":
    main()
