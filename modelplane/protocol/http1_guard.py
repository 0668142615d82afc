"""What every HTTP/1.1 request of a client is checked for before it is taken, by the servers (model
server, router) and the gateway alike: the size of its head, and how its body is framed.

The head is counted as its bytes arrive, before the parser sees them: httptools gathers a header's
value by concatenating the pieces it reads, so a large header costs time that grows with the square of
its size, and only a count taken in front of the parser keeps a huge head from costing anything.
"""

from __future__ import annotations

_END_OF_HEAD = b"\r\n\r\n"


class RequestRefused(Exception):
    """A request that is answered `status` (with `message`), after which the connection closes.

    Raised from a parser callback, it reaches the protocol as the context of httptools' error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HeadCounter:
    """The bytes of the request head read so far, against `limit`.

    `add` each read while a head is expected (between `start` and `stop`); bytes after the end of the
    head in the same read may be counted too, so the limit is only enforced when the head does not end
    within the bytes it still allows."""

    __slots__ = ("limit", "count", "_tail")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count: int | None = 0  # None while no head is expected
        self._tail = b""  # the last bytes read, where the end of the head may begin

    def add(self, data: bytes) -> bool:
        """Counts a read; False when the head is above the limit."""
        before = self.count
        self.count = before + len(data)
        if self.count > self.limit:
            allowed = max(self.limit - before, 0)
            if _END_OF_HEAD not in self._tail + data[:allowed]:
                return False
        self._tail = data[-3:]
        return True

    def start(self) -> None:
        self.count, self._tail = 0, b""

    def stop(self) -> None:
        self.count = None

    def refusal(self) -> RequestRefused:
        return RequestRefused(431, f"the request head is larger than {self.limit} bytes")


def header_count_refusal(limit: int) -> RequestRefused:
    return RequestRefused(431, f"more than {limit} request headers")


def check_framing(http_version: str, transfer_encoding: bytes | None) -> None:
    """Refuses a body framing two readers of the request could disagree on (request smuggling).

    httptools has already refused Content-Length beside Transfer-Encoding, two Content-Lengths and the
    codings it cannot read; what is left must be exactly `chunked`, on HTTP/1.1."""
    if transfer_encoding is None:
        return
    if http_version != "1.1":
        raise RequestRefused(400, f"Transfer-Encoding is not allowed on an HTTP/{http_version} request")
    if transfer_encoding.strip().lower() != b"chunked":
        coding = transfer_encoding.decode("latin-1")
        raise RequestRefused(400, f"Transfer-Encoding {coding!r} is not allowed: only 'chunked' is")
