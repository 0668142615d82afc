"""The addresses of replicas that died rather than being stopped, remembered for a while.

A replica leaves the gateway's routes before it is stopped, and a stopping replica answers every request
it read: a request it closed its connection on without a word went out as it closed its idle
connections, and the gateway sends it to a replica that serves. A replica that died also leaves the
routes, and the gateway may learn that before it sees the connection close; but the request it died on
may be what killed it (one that ran it out of memory), and sent again it would kill the next one too.
The route table names the replicas that died lately, so the gateway tells the two apart.
"""

from __future__ import annotations

import time

REMEMBERED_FOR = 60.0  # seconds: far longer than a route update takes to reach the gateway's workers


class CrashedReplicas:
    def __init__(self) -> None:
        self._when: dict[str, float] = {}

    def add(self, address: str) -> None:
        self._when[address] = time.monotonic()

    def recent(self) -> frozenset[str]:
        """The addresses of the replicas that died within `REMEMBERED_FOR` seconds."""
        now = time.monotonic()
        for address, when in list(self._when.items()):
            if now - when > REMEMBERED_FOR:
                del self._when[address]
        return frozenset(self._when)
