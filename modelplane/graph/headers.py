"""Which incoming headers the router passes on to the steps (`PROPAGATE_HEADERS`).

As in KServe: the variable holds comma-separated regular expressions; a header is passed on when its
canonical name (`X-Request-Id`) contains a match of any of them (the search is not anchored, so
`Auth*` matches `Authorization`). A pattern that does not compile is reported and skipped; the others
still apply. Content-Type is `application/json` unless a propagated header sets it. The W3C trace
context (`traceparent`, `tracestate`) always goes on, so a trace crosses the router (which, tracing
itself, replaces it with its own span's).
"""

from __future__ import annotations

import re

PROPAGATE_HEADERS_ENV = "PROPAGATE_HEADERS"

# Framing and hop-by-hop headers describe one connection, never the next hop's request.
_NEVER_PROPAGATED = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
        b"expect",
    }
)
_DEFAULT_CONTENT_TYPE = b"Content-Type: application/json\r\n"
_TRACE_CONTEXT = {b"traceparent": b"Traceparent", b"tracestate": b"Tracestate"}
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CACHE_LIMIT = 1024


def compile_header_patterns(value: str | None) -> tuple[list[re.Pattern[str]], list[str]]:
    """The patterns that compile, and a message for each that does not. Empty entries are ignored."""
    patterns: list[re.Pattern[str]] = []
    errors: list[str] = []
    for text in (value or "").split(","):
        if not text:
            continue
        try:
            patterns.append(re.compile(text))
        except re.error as exc:
            errors.append(f"{PROPAGATE_HEADERS_ENV}: pattern {text!r} does not compile ({exc}); skipped")
    return patterns, errors


def canonical_header_name(name: str) -> str:
    """HTTP's canonical form, `x-request-id` -> `X-Request-Id`; odd names are left as they are."""
    if not _TOKEN_RE.match(name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class HeaderPropagator:
    """Renders the header block the router sends to every step of one request."""

    def __init__(self, patterns: list[re.Pattern[str]]) -> None:
        self._patterns = patterns
        self._decisions: dict[bytes, bytes | None] = {}  # raw name -> canonical name to send, or None

    def render(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        """The `Name: value\\r\\n` lines for the step requests, Content-Type included."""
        if not self._patterns:
            trace = [
                b"%s: %s\r\n" % (_TRACE_CONTEXT[n.lower()], v)
                for n, v in headers
                if n.lower() in _TRACE_CONTEXT
            ]
            return _DEFAULT_CONTENT_TYPE + b"".join(trace) if trace else _DEFAULT_CONTENT_TYPE
        lines = []
        has_content_type = False
        for raw_name, value in headers:
            name = self._decide(raw_name)
            if name is None:
                continue
            if name == b"Content-Type":
                has_content_type = True
            lines.append(b"%s: %s\r\n" % (name, value))
        if not has_content_type:
            lines.append(_DEFAULT_CONTENT_TYPE)
        return b"".join(lines)

    def _decide(self, raw_name: bytes) -> bytes | None:
        try:
            return self._decisions[raw_name]
        except KeyError:
            pass
        decision = _TRACE_CONTEXT.get(raw_name.lower())
        if decision is None and raw_name.lower() not in _NEVER_PROPAGATED:
            canonical = canonical_header_name(raw_name.decode("latin-1"))
            if any(p.search(canonical) for p in self._patterns):
                decision = canonical.encode("latin-1")
        if len(self._decisions) < _CACHE_LIMIT:
            self._decisions[raw_name] = decision
        return decision
