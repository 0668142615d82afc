"""A gRPC replica stand-in that takes no call, for the gateway tests: `python <this file> goaway|refuse`.

An HTTP/2 server (the `h2` library) on 127.0.0.1, on a port the OS picks, printed on its first line.
It reads every call it is sent (printing `held` as one begins, `ended` once it is all in) and answers none until SIGUSR1; then it
refuses them the two ways HTTP/2 has to say a stream was not processed: a GOAWAY whose last stream id
is 0 (`goaway`), or a RST_STREAM with REFUSED_STREAM on each (`refuse`).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import h2.config
import h2.connection
import h2.errors
import h2.events

MODE = sys.argv[1]
CONNECTIONS: list[Refusing] = []


class Refusing(asyncio.Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.h2.initiate_connection()
        self.transport.write(self.h2.data_to_send())
        self.held: list[int] = []
        CONNECTIONS.append(self)

    def data_received(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.held.append(event.stream_id)
                print("held", flush=True)
            elif isinstance(event, h2.events.DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if isinstance(event, h2.events.StreamEnded):
                print("ended", flush=True)
        self.transport.write(self.h2.data_to_send())

    def refuse(self) -> None:
        if MODE == "goaway":
            self.h2.close_connection(error_code=h2.errors.ErrorCodes.NO_ERROR, last_stream_id=0)
        else:
            for stream_id in self.held:
                self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        self.transport.write(self.h2.data_to_send())


async def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    print(sock.getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: [connection.refuse() for connection in CONNECTIONS])
    server = await loop.create_server(Refusing, sock=sock)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
