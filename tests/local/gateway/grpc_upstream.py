"""A gRPC replica stand-in for the gateway tests, run as its own process: `python <this file> NAME`.

A grpc.aio server on 127.0.0.1, on a port the OS picks, printed on its first line. It serves
`inference.GRPCInferenceService`: `ModelInfer` answers with `id` set to the replica's NAME, the
request's `model_name`, and each raw input echoed as an output. Request parameters steer it:

- `sleep` (seconds, a double): answer after that long (the call stays in flight meanwhile), printing
  `sleeping` as it begins;
- `die` (any value): the process exits in the middle of the call;
- `fail` (a string): the call ends with INVALID_ARGUMENT and that message.

SIGUSR1 stops it gracefully (GOAWAY; the calls under way finish, then it exits).

It also serves `/test.Echo/Chat`, a bidirectional stream that answers each message with the same
bytes, and the metadata the call came with (`/test.Echo/Metadata`, a JSON object).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import grpc

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import METHODS, SERVICE_NAME

NAME = sys.argv[1] if len(sys.argv) > 1 else "replica"
MAX_MESSAGE = 64 * 1024 * 1024


def generic_handler(servicer: object) -> grpc.GenericRpcHandler:
    """grpcio handlers routing each method to the servicer's coroutine of the same name."""
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name),
            request_deserializer=request.FromString,
            response_serializer=response.SerializeToString,
        )
        for name, (request, response) in METHODS.items()
    }
    return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)


class Servicer:
    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=True)

    async def ModelReady(self, request, context):
        return pb.ModelReadyResponse(ready=True)

    async def ServerMetadata(self, request, context):
        return pb.ServerMetadataResponse(name=NAME, version="test")

    async def ModelMetadata(self, request, context):
        return pb.ModelMetadataResponse(name=request.name, platform=NAME)

    async def ModelInfer(self, request, context):
        parameters = request.parameters
        if "die" in parameters:
            os._exit(3)
        if "fail" in parameters:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, parameters["fail"].string_param)
        if "sleep" in parameters:
            print("sleeping", flush=True)
            await asyncio.sleep(parameters["sleep"].double_param)
        response = pb.ModelInferResponse(model_name=request.model_name, id=NAME)
        for tensor in request.inputs:
            response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        response.raw_output_contents.extend(request.raw_input_contents)
        return response

    async def RepositoryIndex(self, request, context):
        return pb.RepositoryIndexResponse()

    async def RepositoryModelLoad(self, request, context):
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(self, request, context):
        return pb.RepositoryModelUnloadResponse()


async def chat(requests, context):
    async for message in requests:
        yield message


async def metadata(request, context):
    seen = {
        key: value.hex() if isinstance(value, bytes) else value
        for key, value in context.invocation_metadata()
    }
    return json.dumps(seen).encode()


async def main() -> None:
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
        ]
    )
    echo = grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
            "Metadata": grpc.unary_unary_rpc_method_handler(metadata),
        },
    )
    server.add_generic_rpc_handlers((generic_handler(Servicer()), echo))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    stopping = []
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGUSR1, lambda: stopping.append(asyncio.ensure_future(server.stop(30)))
    )
    print(port, flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main())
