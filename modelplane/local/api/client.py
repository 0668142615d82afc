"""A client of the control-plane API, as the command line and other tools use it.

Server refusals come back as the `ApiError` the server raised (NotFound, Conflict, Invalid...);
a control plane that does not answer at all raises `Unreachable`. It speaks HTTP/1.1 with the standard
library, a connection per call: a command makes a few calls, and starts a tenth of a second sooner
without a larger client library to import.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from modelplane import __version__
from modelplane.api.kinds import Kind
from modelplane.local.api.errors import ApiError, error_from_status
from modelplane.local.api.patch import MERGE_PATCH
from modelplane.local.api.paths import collection_path, object_path

APPLY_PATH = "/modelplane/v1/apply"


class Unreachable(Exception):
    """Nothing answers at the control plane's URL."""

    def __init__(self, url: str):
        super().__init__(f"cannot reach the control plane at {url}")
        self.url = url


class ClientSettingsError(Exception):
    """A token or certificate authority the client cannot use (said without the token itself)."""


class ControlPlaneClient:
    def __init__(
        self,
        url: str,
        timeout: float = 30.0,
        token: str | None = None,
        certificate_authority: str | None = None,
    ):
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientSettingsError(f"the control plane's URL {url!r} is not an http:// or https:// URL")
        self._timeout = timeout
        self._tls = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        # The API records the fields each write changes under the User-Agent's first word: "modelplane".
        self._headers = {"user-agent": f"modelplane/{__version__}"}
        if token:
            self._headers["authorization"] = f"Bearer {_checked_token(token)}"
        self._context: ssl.SSLContext | None = None
        if self._tls:
            self._context = (
                _trusting(certificate_authority) if certificate_authority else ssl.create_default_context()
            )

    def close(self) -> None:
        """Nothing is held between calls."""

    def __enter__(self) -> ControlPlaneClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- reads ----

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        return self._call("GET", object_path(kind, namespace, name))

    def list(
        self,
        kind: Kind,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> dict[str, Any]:
        """The `<Kind>List` of one namespace, or of all with `namespace=None`."""
        params = {"labelSelector": label_selector, "fieldSelector": field_selector}
        params = {key: value for key, value in params.items() if value}
        return self._call("GET", collection_path(kind, namespace), params=params)

    def watch(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        name: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Watch events (`{"type", "object"}`) until the server ends the stream (after `timeout`
        seconds if given). Without a resourceVersion it starts with the current state."""
        params: dict[str, str] = {"watch": "true"}
        fields = [f"metadata.name={name}"] if name else []
        if field_selector:
            fields.append(field_selector)
        if fields:
            params["fieldSelector"] = ",".join(fields)
        if label_selector:
            params["labelSelector"] = label_selector
        if resource_version:
            params["resourceVersion"] = resource_version
        if timeout is not None:
            params["timeoutSeconds"] = f"{max(timeout, 0.001):.3f}"
        read_timeout = None if timeout is None else timeout + 30
        connection, response = self._send(
            "GET", collection_path(kind, namespace), params=params, read_timeout=read_timeout
        )
        try:
            if response.status >= 400:
                raise _error(response, response.read(), self.url)
            while line := response.readline():
                if line.strip():
                    yield orjson.loads(line)
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable_or(exc) from None
        finally:
            connection.close()

    # ---- writes ----

    def create(self, resource: dict[str, Any], kind: Kind, namespace: str) -> dict[str, Any]:
        return self._call("POST", collection_path(kind, namespace), body=orjson.dumps(resource))

    def replace(self, resource: dict[str, Any], kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        return self._call("PUT", object_path(kind, namespace, name), body=orjson.dumps(resource))

    def patch(
        self, kind: Kind, namespace: str, name: str, patch: dict[str, Any], *, status: bool = False
    ) -> dict[str, Any]:
        path = object_path(kind, namespace, name) + ("/status" if status else "")
        return self._call("PATCH", path, body=orjson.dumps(patch), content_type=MERGE_PATCH)

    def delete(self, kind: Kind, namespace: str, name: str, *, dry_run: bool = False) -> dict[str, Any]:
        params = {"dryRun": "All"} if dry_run else {}
        return self._call("DELETE", object_path(kind, namespace, name), params=params)

    def apply(
        self, resources: list[dict[str, Any]], namespace: str, *, dry_run: bool = False
    ) -> list[dict[str, Any]]:
        """Creates or replaces every resource, all or none; one `{"action", "object"}` each.
        A dry run answers the same and stores nothing."""
        body = {"apiVersion": "v1", "kind": "List", "items": resources}
        params = {"namespace": namespace, **({"dryRun": "All"} if dry_run else {})}
        return self._call("POST", APPLY_PATH, body=orjson.dumps(body), params=params)["items"]

    # ---- plumbing ----

    def _call(self, method: str, path: str, **request: Any) -> dict[str, Any]:
        """The answer's JSON to a request (`params`, `body`, `content_type` as `_send` takes them)."""
        connection, response = self._send(method, path, read_timeout=self._timeout, **request)
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable_or(exc) from None
        finally:
            connection.close()
        if response.status >= 400:
            raise _error(response, data, self.url)
        return orjson.loads(data)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        read_timeout: float | None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """A request sent and its answer's head read; the caller reads the body and closes."""
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        headers = dict(self._headers)
        if body is not None:
            headers["content-type"] = content_type
        if self._tls:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            connection.connect()
        except ssl.SSLError as exc:
            raise self._unreachable_or(exc) from None
        except OSError:
            raise Unreachable(self.url) from None
        try:
            # None: a watch without a timeout waits as long as it takes.
            connection.sock.settimeout(read_timeout)
            connection.request(method, target, body=body, headers=headers)
            return connection, connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise self._unreachable_or(exc) from None

    def _unreachable_or(self, exc: Exception) -> Exception:
        tls = _ssl_error(exc)
        if tls is not None:
            return ApiError(
                f"TLS with the control plane at {self.url} failed: {_tls_reason(tls)}{_tls_hint(tls)}"
            )
        return ApiError(f"the control plane at {self.url} did not answer: {exc or type(exc).__name__}")


def _checked_token(token: str) -> str:
    """The token without surrounding whitespace (`$(cat file)` keeps none, a file read whole keeps its
    newline); one with whitespace or control characters inside is refused without being shown."""
    token = token.strip()
    if any(not char.isprintable() or char.isspace() for char in token):
        raise ClientSettingsError(
            "the token (--token or MODELPLANE_TOKEN) holds whitespace or control characters: give it as one line"
        )
    return token


def _trusting(certificate_authority: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=certificate_authority)
    except ssl.SSLError as exc:
        raise ClientSettingsError(
            f"the certificate authority {certificate_authority} holds no PEM certificate ({exc.reason or exc})"
        ) from None
    except OSError as exc:
        raise ClientSettingsError(
            f"cannot read the certificate authority {certificate_authority}: {exc.strerror or exc}"
        ) from None


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    while exc is not None and not isinstance(exc, ssl.SSLError):
        exc = exc.__cause__ or exc.__context__
    return exc


def _tls_reason(error: ssl.SSLError) -> str:
    """What went wrong: for a certificate refused, why (expired, another host's, an unknown issuer)."""
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        return f"the certificate was refused: {error.verify_message}"
    return str(error.reason or error)


def _tls_hint(error: ssl.SSLError) -> str:
    if error.reason == "WRONG_VERSION_NUMBER":
        return " (it answers plain HTTP: use an http:// URL)"
    unknown_issuer = getattr(error, "verify_code", None) in _UNKNOWN_ISSUER
    if unknown_issuer:
        return " (name the certificate authority that signed its certificate with --certificate-authority)"
    return ""


# OpenSSL's verify codes for a certificate whose issuer is not trusted here.
_UNKNOWN_ISSUER = {2, 18, 19, 20, 21}


def _error(response: http.client.HTTPResponse, data: bytes, url: str) -> ApiError:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return error_from_status(body, response.status)
    text = data.decode("utf-8", "replace").strip()
    excerpt = text.splitlines()[0][:100] if text else ""
    return ApiError(
        f"{url}/ answered HTTP {response.status} with no Kubernetes "
        f"Status: is it modelplane's control-plane API (not the gateway)? It said: {excerpt!r}"
    )
