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
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from modelplane.protocol.http_client import (
    BatchBroken,
    ClientResponse,
    HttpConnection,
    TransportError,
    parse_target,
)
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


class _AnswersLate(TimeoutError):
    """An answer of a batch did not come in time; `answers` are those that did."""

    def __init__(self, answers: list[ClientResponse]) -> None:
        super().__init__()
        self.answers = answers


class HttpSink:
    """POSTs events in binary mode to a CloudEvents receiver: a batch at a time on each kept-alive
    connection, pipelined (its requests in one write, its answers read in order). A receiver that closes
    a connection part-way through a batch is sent one event at a time from then on.

    Each answer has `timeout` seconds to come (the first from the write, each next one from the one
    before), so that a receiver that is slow but answers is waited for. When one does not come, the
    connection is closed: the events answered count as answered, and the others are to be sent again."""

    def __init__(self, url: str, timeout: float) -> None:
        self._target = parse_target(url)
        self._timeout = timeout
        self._idle: list[HttpConnection] = []
        self._tls: ssl.SSLContext | None = ssl.create_default_context() if self._target.endpoint.tls else None
        self.pipelining = True

    async def send(self, records: list[PayloadRecord], recorded_ns: int) -> list[Outcome]:
        # Credentials in the URL go as Basic authorization, as Go's client (KServe's agent) sends them.
        request_line, recorded = self._target.head + self._target.authorization, rfc3339(recorded_ns)
        messages = [(record.binary_head(request_line, recorded), record.data) for record in records]
        if not self.pipelining:
            outcomes: list[Outcome] = []
            for one in messages:
                outcomes += await self._send([one])
            return outcomes
        return await self._send(messages)

    async def _send(self, messages: list[tuple[bytes, bytes]]) -> list[Outcome]:
        connection = self._idle_connection()
        reused = connection is not None
        try:
            if connection is None:
                connection = await self._open()
            try:
                answers = await self._answers(connection, messages)
            except BatchBroken as exc:
                if exc.answers or not reused:
                    raise
                # A kept-alive connection the receiver had closed: again, on a new one.
                connection = await self._open()
                answers = await self._answers(connection, messages)
        except _AnswersLate as exc:
            connection.close()  # the answers still to come would be taken for the next batch's
            outcomes = [_outcome(answer.status, answer.body) for answer in exc.answers]
            return outcomes + [RetryLater(f"no answer within {self._timeout:g}s")] * (
                len(messages) - len(outcomes)
            )
        except TimeoutError:
            return [RetryLater(f"cannot connect within {self._timeout:g}s")] * len(messages)
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

    async def _open(self) -> HttpConnection:
        async with asyncio.timeout(self._timeout):
            return await HttpConnection.open(self._target.endpoint, self._tls)

    async def _answers(
        self, connection: HttpConnection, messages: list[tuple[bytes, bytes]]
    ) -> list[ClientResponse]:
        """The answers to `messages`, sent on `connection`. Raises BatchBroken when the connection
        breaks, _AnswersLate when an answer does not come in time."""
        waiter = connection.send(messages, KEPT_BODY)
        if waiter.done():
            return waiter.result()
        loop = asyncio.get_running_loop()
        written = time.monotonic()

        def check() -> None:
            nonlocal timer
            wait = max(written, connection.answered_at) + self._timeout - time.monotonic()
            if wait > 0:
                timer = loop.call_later(wait, check)
            elif not waiter.done():  # the connection sets nothing on a waiter that is done
                waiter.set_exception(_AnswersLate(list(connection.answered)))

        timer = loop.call_later(self._timeout, check)
        try:
            return await waiter
        finally:
            timer.cancel()

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
            if self._fd is not None:
                self._follow_path()
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

    def _follow_path(self) -> None:
        """Writes go on to the file the path names now: another process writing the same path (a
        server's other workers) may have rotated it, or logrotate moved it away. Its size is counted
        afresh, their lines included."""
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            self.close()
            return
        held = os.fstat(self._fd)
        if (named.st_ino, named.st_dev) != (held.st_ino, held.st_dev):
            self.close()
        else:
            self._size = held.st_size

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
