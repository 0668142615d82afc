"""Where payload events go: an HTTP(S) CloudEvents receiver, or a file of JSON lines.

`open_sink(url)` gives the sink for a logger's `url`. Each sink's `send` delivers one event or raises:
`RetryLater` when trying again may work (the receiver cannot be reached, answers 5xx, 408 or 429, or
the file cannot be written), `Refused` when it will not (another 4xx).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from modelplane.protocol.http_client import HttpClient, TransportError, parse_target
from modelplane.telemetry.payload_events import PayloadEvent

SCHEMES = ("http", "https", "file")
_RETRYABLE_STATUSES = frozenset({408, 425, 429})


class RetryLater(Exception):
    """The event was not delivered, and may be if tried again."""


class Refused(Exception):
    """The sink will not take the event, however often it is sent."""


class Sink(Protocol):
    async def send(self, event: PayloadEvent) -> None: ...

    def close(self) -> None: ...


def sink_problem(url: str) -> str | None:
    """Why `url` cannot be a logger's sink, or None when it can."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"{url!r} is not a URL: {exc}"
    if parts.scheme not in SCHEMES:
        return f"{url!r}: payload logs go to http://, https:// or file:// URLs"
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            return f"{url!r}: a file:// URL names an absolute path on this machine (file:///var/log/payloads.jsonl)"
        if parts.path.endswith("/"):
            return f"{url!r}: a file:// URL names a file, not a folder"
        return None
    try:
        parse_target(url)
    except ValueError as exc:
        return str(exc)
    return None


def display_url(url: str) -> str:
    """The URL without credentials or query, as metrics and logs name a sink."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def open_sink(url: str, *, timeout: float, file_max_bytes: int, file_backups: int) -> Sink:
    problem = sink_problem(url)
    if problem is not None:
        raise ValueError(problem)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return FileSink(Path(unquote(parts.path)), file_max_bytes, file_backups)
    return HttpSink(url, timeout)


class HttpSink:
    """POSTs each event in binary mode to a CloudEvents receiver, over pooled keep-alive connections."""

    def __init__(self, url: str, timeout: float) -> None:
        self._target = parse_target(url)
        self._timeout = timeout
        self._client = HttpClient()

    async def send(self, event: PayloadEvent) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.post(self._target, event.data, event.binary_headers())
        except TimeoutError:
            raise RetryLater(f"no answer within {self._timeout:g}s") from None
        except TransportError as exc:
            raise RetryLater(str(exc)) from None
        status = response.status
        if status >= 500 or status in _RETRYABLE_STATUSES:
            raise RetryLater(f"the receiver answered {status}")
        if status >= 300:
            raise Refused(f"the receiver answered {status}: {response.body[:200]!r}")

    def close(self) -> None:
        self._client.close()


class FileSink:
    """Appends each event as one line of JSON; above `max_bytes` the file is renamed to `<file>.1`
    (older copies move up to `.2` ... `.<backups>`, the oldest is dropped) and a new one begun."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._backups = backups
        self._fd: int | None = None
        self._size = 0

    async def send(self, event: PayloadEvent) -> None:
        line = event.json_line()
        try:
            if self._fd is None:
                self._open()
            elif self._size and self._size + len(line) > self._max_bytes:
                self._rotate()
            os.write(self._fd, line)
        except OSError as exc:
            self.close()
            raise RetryLater(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._size += len(line)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        self.close()
        if self._backups < 1:
            os.truncate(self.path, 0)
        else:
            for index in range(self._backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._open()
