"""Where payload events go: an HTTP(S) CloudEvents receiver, a file of JSON lines, or a bucket
(payload_blob.py).

`open_sink(spec)` gives the sink for a logger. Each sink's `send` delivers a batch of records
and says what became of each: delivered, `RetryLater` when trying again may work (the receiver cannot
be reached, answers 5xx, 408, 425 or 429, or the file cannot be written), `Refused` when it will not
(another 4xx).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from modelplane.protocol.http_client import BatchBroken, HttpConnection, TransportError, message, parse_target
from modelplane.telemetry.payload_events import PayloadLogSpec, PayloadRecord, rfc3339

logger = logging.getLogger("modelplane.payload_log")

SCHEMES = ("http", "https", "file", "s3", "gs", "abfs")
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
KEPT_BODY = 200  # bytes of a receiver's answer kept, to say why it refused an event


class RetryLater(Exception):
    """The event was not delivered, and may be if tried again."""


class Refused(Exception):
    """The sink will not take the event, however often it is sent."""


# What became of each record of a batch, in order: None (delivered), RetryLater or Refused.
Outcome = Exception | None


class Sink(Protocol):
    async def send(self, records: list[PayloadRecord], recorded_ns: int) -> list[Outcome]: ...

    def close(self) -> None: ...


def sink_problem(url: str) -> str | None:
    """Why `url` cannot be a logger's sink, or None when it can."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"{url!r} is not a URL: {exc}"
    if parts.scheme not in SCHEMES:
        return f"{url!r}: payload logs go to http://, https://, file://, s3://, gs:// or abfs:// URLs"
    if parts.scheme in ("s3", "gs", "abfs"):
        from modelplane.telemetry.payload_blob import blob_location

        try:
            blob_location(url)
        except ValueError as exc:
            return str(exc)
        return None
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


def sink_name(spec: PayloadLogSpec) -> str:
    """How metrics and logs name a logger's sink: its URL without credentials or query; for a bucket,
    the folder its objects go to."""
    name = display_url(spec.url)
    if spec.blob is None:
        return name
    parts = (spec.namespace, spec.inference_service, spec.component, spec.blob.path.strip("/"))
    return "/".join([name.rstrip("/"), *(part for part in parts if part)])


def open_sink(spec: PayloadLogSpec, *, timeout: float, file_max_bytes: int, file_backups: int) -> Sink:
    url = spec.url
    problem = sink_problem(url)
    if problem is not None:
        raise ValueError(problem)
    parts = urlsplit(url)
    if spec.blob is not None or parts.scheme in ("s3", "gs", "abfs"):
        from modelplane.telemetry.payload_blob import BlobLogTarget, BlobSink

        return BlobSink(url, spec.blob or BlobLogTarget(), timeout)
    if parts.scheme == "file":
        return FileSink(Path(unquote(parts.path)), file_max_bytes, file_backups)
    return HttpSink(url, timeout)


class HttpSink:
    """POSTs events in binary mode to a CloudEvents receiver: a batch at a time on each kept-alive
    connection, pipelined (its requests in one write, its answers read in order). A receiver that closes
    a connection part-way through a batch is sent one event at a time from then on."""

    def __init__(self, url: str, timeout: float) -> None:
        self._target = parse_target(url)
        self._timeout = timeout
        self._idle: list[HttpConnection] = []
        self._tls: ssl.SSLContext | None = ssl.create_default_context() if self._target.endpoint.tls else None
        self.pipelining = True

    async def send(self, records: list[PayloadRecord], recorded_ns: int) -> list[Outcome]:
        target, recorded = self._target, rfc3339(recorded_ns)
        messages = [message(target, record.binary_headers(recorded), record.data) for record in records]
        if not self.pipelining:
            outcomes: list[Outcome] = []
            for one in messages:
                outcomes += await self._send([one])
            return outcomes
        return await self._send(messages)

    async def _send(self, messages: list[tuple[bytes, bytes]]) -> list[Outcome]:
        connection: HttpConnection | None = None
        try:
            async with asyncio.timeout(self._timeout):
                connection = self._idle_connection()
                try:
                    answers = await connection.send(messages, KEPT_BODY) if connection else None
                except BatchBroken as exc:
                    if exc.answers:
                        raise
                    answers = None  # a kept-alive connection the receiver had closed: again, on a new one
                if answers is None:
                    connection = await HttpConnection.open(self._target.endpoint, self._tls)
                    answers = await connection.send(messages, KEPT_BODY)
        except TimeoutError:
            if connection is not None:
                connection.close()
            return [RetryLater(f"no answer within {self._timeout:g}s")] * len(messages)
        except BatchBroken as exc:
            if exc.answers and len(messages) > 1 and not connection.keep_alive:
                self.pipelining = False
                logger.info(
                    "payload log sink %s closes pipelined connections: sending one event at a time",
                    display_url(self._target.url),
                )
            outcomes = [_outcome(answer.status, answer.body) for answer in exc.answers]
            return outcomes + [RetryLater(str(exc))] * (len(messages) - len(outcomes))
        except TransportError as exc:
            return [RetryLater(str(exc))] * len(messages)
        except BaseException:
            if connection is not None:
                connection.close()  # cancelled mid-exchange: its state is unknown
            raise
        if connection.usable:
            self._idle.append(connection)
        else:
            connection.close()
        return [_outcome(answer.status, answer.body) for answer in answers]

    def _idle_connection(self) -> HttpConnection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable:
                return connection
            connection.close()
        return None

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


def _outcome(status: int, body: bytes) -> Outcome:
    if status >= 500 or status in _RETRYABLE_STATUSES:
        return RetryLater(f"the receiver answered {status}")
    if status >= 300:
        said = body[:200].decode("utf-8", "replace").strip()
        return Refused(f"the receiver answered {status}" + (f": {said}" if said else ""))
    return None


class FileSink:
    """Appends each event as one line of JSON; above `max_bytes` the file is renamed to `<file>.1`
    (older copies move up to `.2` ... `.<backups>`, the oldest is dropped) and a new one begun."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._backups = backups
        self._fd: int | None = None
        self._size = 0
        self._error = ""

    async def send(self, records: list[PayloadRecord], recorded_ns: int) -> list[Outcome]:
        lines = [record.json_line(recorded_ns) for record in records]
        # On a thread: a slow disk must not hold up the requests the event loop serves.
        written = await asyncio.to_thread(self._write, lines)
        if written == len(lines):
            return [None] * written
        failure = RetryLater(f"cannot write {self.path}: {self._error}")
        return [None] * written + [failure] * (len(lines) - written)

    def _write(self, lines: list[bytes]) -> int:
        """Appends the lines, rotating the file where one would take it over its size; how many were written."""
        written = 0
        try:
            while written < len(lines):
                if self._fd is None:
                    self._open()
                chunk, size = [], self._size
                for line in lines[written:]:
                    if size and size + len(line) > self._max_bytes:
                        break
                    chunk.append(line)
                    size += len(line)
                if chunk:
                    os.write(self._fd, b"".join(chunk))
                    self._size, written = size, written + len(chunk)
                if written < len(lines):
                    self._rotate()
        except OSError as exc:
            self.close()
            self._error = exc.strerror or str(exc)
        return written

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
