"""A step's redirects, followed as KServe's router follows them: Go's http.Client (net/http, client.go).

- 307 and 308 send the request again, method and body; 301, 302 and 303 turn it into a GET without a
  body (and without the headers that describe one: Content-Type, Content-Encoding, Content-Language,
  Content-Location). A Location is read relative to the URL that answered.
- A redirect without a Location is the answer. The tenth request in a row that answers a redirect is an
  error, `stopped after 10 redirects`.
- Every request carries the first one's headers, and `Referer`, the URL that redirected (without its
  credentials; none from https to http) unless a header already names one. Once a redirect leaves the
  first URL's host (for a host that is not that host's subdomain), the credentials (Authorization,
  Cookie, and their kin) stay behind for the rest of the way.
- A URL with a user and password (`http://user:pass@host/...`) sends them as Basic credentials when
  no Authorization header is sent (`send` in client.go): a relative Location keeps them.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import SplitResult, quote, urljoin, urlsplit

from modelplane.protocol.http_client import ClientResponse, HttpClient, Target, parse_target

REDIRECTS = frozenset((301, 302, 303, 307, 308))
_MAX_REQUESTS = 10
_CREDENTIALS = frozenset(
    (
        b"authorization",
        b"www-authenticate",
        b"cookie",
        b"cookie2",
        b"proxy-authorization",
        b"proxy-authenticate",
    )
)
_URL_CHARACTERS = "!#$%&'()*+,/:;=?@[]~"  # besides letters, digits and `_.-~`, which quote keeps
_DESCRIBE_BODY = frozenset((b"content-type", b"content-encoding", b"content-language", b"content-location"))


class RedirectError(Exception):
    """The redirects cannot be followed; the message says why."""


def with_credentials(target: Target, headers: bytes) -> bytes:
    """`headers`, with the Basic credentials of the target's URL unless they hold an Authorization."""
    if target.authorization and not _has_authorization(headers):
        return headers + target.authorization
    return headers


async def follow(
    client: HttpClient, target: Target, body: bytes, headers: bytes, response: ClientResponse
) -> ClientResponse:
    """The answer at the end of the redirects that began with `response`, the answer to a POST of
    `body` to `target` with the header block `headers` (without the URL's credentials)."""
    lines = [(_name(line), line + b"\r\n") for line in headers.split(b"\r\n") if line]
    has_referer = any(name == b"referer" for name, _ in lines)
    first = urlsplit(target.url)
    url, parts = target.url, first
    method = "POST"
    requests = 1
    leave_credentials = False
    while response.status in REDIRECTS:
        location = response.header(b"location")
        if not location:
            return response
        if response.status < 307:
            method, body = "GET", None
        previous = parts
        try:
            # What cannot be written in a request line (spaces, controls, non-ASCII) is escaped.
            url = urljoin(url, quote(location, safe=_URL_CHARACTERS))
            parts = urlsplit(url)
            _ = parts.port  # raises ValueError for a port that is not a number
        except ValueError as exc:
            raise RedirectError(
                f"failed to parse Location header {location.decode('latin-1')!r}: {exc}"
            ) from None
        if not leave_credentials and _host(parts) != _host(first):
            leave_credentials = not _is_domain_or_subdomain(parts.hostname or "", first.hostname or "")
        block = b"".join(
            line
            for name, line in lines
            if not (leave_credentials and name in _CREDENTIALS)
            and not (body is None and name in _DESCRIBE_BODY)
        )
        if not has_referer and not (previous.scheme == "https" and parts.scheme == "http"):
            block += b"Referer: %s\r\n" % previous._replace(netloc=_host(previous)).geturl().encode("latin-1")
        if requests == _MAX_REQUESTS:
            raise RedirectError(f"stopped after {_MAX_REQUESTS} redirects")
        try:
            next_target = _target(url, method)
        except ValueError as exc:
            raise RedirectError(str(exc)) from None
        response = await client.post(next_target, body, with_credentials(next_target, block))
        requests += 1
    return response


@lru_cache(maxsize=256)
def _target(url: str, method: str) -> Target:
    return parse_target(url, method)


def _name(line: bytes) -> bytes:
    return line.split(b":", 1)[0].strip().lower()


def _has_authorization(headers: bytes) -> bool:
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"authorization" and value.strip():
            return True
    return False


def _host(parts: SplitResult) -> str:
    """The URL's host and port, as written."""
    return parts.netloc.rpartition("@")[2]


def _is_domain_or_subdomain(sub: str, parent: str) -> bool:
    if sub == parent:
        return True
    if ":" in sub or "%" in sub:  # an IPv6 address, never a subdomain
        return False
    return sub.endswith("." + parent)
