"""A client of the control-plane API, as the command line and other tools use it.

Server refusals come back as the `ApiError` the server raised (NotFound, Conflict, Invalid...);
a control plane that does not answer at all raises `Unreachable`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import httpx
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
        # The API records the fields each write changes under the User-Agent's first word: "modelplane".
        headers = {"user-agent": f"modelplane/{__version__}"}
        if token:
            headers["authorization"] = f"Bearer {_checked_token(token)}"
        verify = _trusting(certificate_authority) if certificate_authority else True
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers, verify=verify)

    def close(self) -> None:
        self._http.close()

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
        return self._call("GET", collection_path(kind, namespace), params=params or None)

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
        try:
            with self._http.stream(
                "GET",
                collection_path(kind, namespace),
                params=params,
                timeout=httpx.Timeout(30, read=read_timeout),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield orjson.loads(line)
        except httpx.TransportError as exc:
            raise self._unreachable_or(exc) from None

    # ---- writes ----

    def create(self, resource: dict[str, Any], kind: Kind, namespace: str) -> dict[str, Any]:
        return self._call("POST", collection_path(kind, namespace), json=resource)

    def replace(self, resource: dict[str, Any], kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        return self._call("PUT", object_path(kind, namespace, name), json=resource)

    def patch(
        self, kind: Kind, namespace: str, name: str, patch: dict[str, Any], *, status: bool = False
    ) -> dict[str, Any]:
        path = object_path(kind, namespace, name) + ("/status" if status else "")
        return self._call("PATCH", path, content=orjson.dumps(patch), headers={"content-type": MERGE_PATCH})

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
        return self._call("POST", APPLY_PATH, json=body, params=params)["items"]

    # ---- plumbing ----

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable_or(exc) from None
        if response.status_code >= 400:
            raise _error(response)
        return response.json()

    def _unreachable_or(self, exc: httpx.TransportError) -> Exception:
        tls = _ssl_error(exc)
        if tls is not None:
            return ApiError(
                f"TLS with the control plane at {self.url} failed: {_tls_reason(tls)}{_tls_hint(tls)}"
            )
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return Unreachable(self.url)
        return ApiError(f"the control plane at {self.url} did not answer: {exc}")


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


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return error_from_status(body, response.status_code)
    excerpt = response.text.strip().splitlines()[0][:100] if response.text.strip() else ""
    return ApiError(
        f"{response.url.copy_with(path='/', query=None)} answered HTTP {response.status_code} with no Kubernetes "
        f"Status: is it modelplane's control-plane API (not the gateway)? It said: {excerpt!r}"
    )
