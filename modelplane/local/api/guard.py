"""Who may call the control-plane API: programs that mean to, never a web page by accident.

A ServingRuntime runs a command on this machine, so whoever can write to the API can run commands.
A page the developer visits must not be able to. Browsers let any page send a "simple" cross-site
POST (a `text/plain`, form or untyped body) without asking first, and a DNS name the page's owner
rebinds to 127.0.0.1 makes the page same-origin with the API. Three checks close both ways in:

- the `Host` header must name the API's own address, so a rebound name is refused (unless the API
  requires a token, which a page cannot attach to what it sends: then a certificate's DNS name works);
- a request a browser marks as sent by another site (`Origin`, `Sec-Fetch-Site`) is refused;
- a body must be JSON or YAML by its declared media type, which no page can send cross-site
  without a CORS preflight, and the API grants none; an untyped one is taken as JSON (as Kubernetes
  takes it) only from a request without an `Origin`, which no browser sends a body without.

kubectl, httpx and the `modelplane` command send none of what is refused.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from modelplane.local.api.errors import Forbidden, UnsupportedMediaType
from modelplane.local.api.json_patch import JSON_PATCH
from modelplane.local.api.patch import MERGE_PATCH, STRATEGIC_MERGE_PATCH
from modelplane.local.api.protobuf import PROTOBUF
from modelplane.local.api.server_side_apply import APPLY_PATCH

JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
BODY_TYPES = (*JSON_TYPES, *YAML_TYPES, MERGE_PATCH)
METHODS_WITH_BODY = ("POST", "PUT", "PATCH")
# What a refusal says is taken: for a PATCH, the patch formats (JSON and YAML are refused there too).
_ACCEPTED_SAID = {
    False: ", ".join((*JSON_TYPES, *YAML_TYPES)),
    True: (
        f"{MERGE_PATCH}, {JSON_PATCH}, {APPLY_PATCH} (server-side apply), "
        f"{STRATEGIC_MERGE_PATCH} (for a Secret, a ConfigMap or a ServiceAccount)"
    ),
}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SITES_OF_OUR_OWN = ("same-origin", "none")


@dataclass(frozen=True)
class SameSiteGuard:
    """Refuses what a browser could send on behalf of another site.

    `hosts` are the names the API answers to; None answers to any: on a wildcard bind address a name
    cannot be told from another, and an API that requires a token is out of a page's reach whatever
    name it is called by. An `Origin` must then be the request's own `Host`."""

    hosts: frozenset[str] | None

    @classmethod
    def for_address(cls, bind_host: str, token_required: bool = False) -> SameSiteGuard:
        if token_required or _is_wildcard(bind_host):
            return cls(None)
        return cls(LOOPBACK_NAMES | {_normalise(bind_host)})

    def check(self, method: str, headers: dict[str, str], content_type: str) -> None:
        """Raises Forbidden or UnsupportedMediaType for a request that may come from a web page."""
        host = headers.get("host")
        host_name = _host_name(host) if host is not None else None
        if host is not None and self.hosts is not None and host_name not in self.hosts:
            raise Forbidden(
                f'the control-plane API answers only to its own address, not to Host "{host}" '
                "(a DNS name pointed at this machine by someone else)"
            )
        origin = headers.get("origin")
        if origin is not None and not self._same_site(_origin_host(origin), host_name):
            raise Forbidden(f'cross-site requests are refused (Origin "{origin}")')
        site = headers.get("sec-fetch-site")
        if site is not None and site not in SITES_OF_OUR_OWN:
            raise Forbidden(f'cross-site requests are refused (Sec-Fetch-Site "{site}")')
        # A JSON patch, an apply patch, a strategic merge patch and Kubernetes' protobuf (no page sends any
        # of them without a preflight) are the API's to judge: it takes the last two for Kubernetes' own kinds.
        accepted = (
            (*BODY_TYPES, STRATEGIC_MERGE_PATCH, JSON_PATCH, APPLY_PATCH)
            if method == "PATCH"
            else (*BODY_TYPES, PROTOBUF)
        )
        # An untyped body is JSON, as Kubernetes reads one (the kubernetes Python client sends its
        # creates and replaces so), unless a page may have sent it: a browser names the page's Origin
        # on every POST (Firefox since version 70) and sends no PUT to another site without a preflight.
        untyped_from_a_program = content_type == "" and method != "PATCH" and origin is None
        if method in METHODS_WITH_BODY and content_type not in accepted and not untyped_from_a_program:
            raise UnsupportedMediaType(
                f"the body of the request was in an unknown format ({content_type or 'none'}) - "
                f"accepted media types include: {_ACCEPTED_SAID[method == 'PATCH']}"
            )

    def _same_site(self, origin_host: str | None, host_name: str | None) -> bool:
        if origin_host is None:  # `null`, or not a web page's origin
            return False
        if self.hosts is not None:
            return origin_host in self.hosts
        return origin_host == host_name


def _host_name(host: str) -> str | None:
    """The name in a Host header (`name`, `name:port`, `[v6]:port`), lowercased."""
    return _origin_host(f"http://{host}")


def _origin_host(origin: str) -> str | None:
    """The host of an origin such as `http://localhost:8180`; None for `null` or a non-web scheme."""
    try:
        parts = urlsplit(origin.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return _normalise(parts.hostname)


def _normalise(host: str) -> str:
    host = host.strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return host == ""
