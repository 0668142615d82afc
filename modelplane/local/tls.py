"""TLS for the control-plane API (`modelplane up --tls-cert FILE --tls-key FILE`): TLS 1.2 or later from
one certificate and key (PEM), checked when `modelplane up` starts so a bad file is one line there."""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509


class TLSConfigError(Exception):
    """A certificate or key that cannot be used."""


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path

    def server_context(self, *, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.load_into(context)
        if alpn:
            context.set_alpn_protocols(list(alpn))
        return context

    def load_into(self, context: ssl.SSLContext) -> None:
        """Loads the certificate and key into `context` (again: the connections made after use them)."""
        try:
            context.load_cert_chain(self.cert, self.key)
        except OSError as exc:
            if not isinstance(exc, ssl.SSLError):
                raise TLSConfigError(
                    f"cannot read {exc.filename or self.cert}: {exc.strerror or exc}"
                ) from None
            raise TLSConfigError(
                f"cannot use the certificate {self.cert} with the key {self.key}: {exc.reason or exc}"
            ) from None

    def check(self) -> None:
        """Raises `TLSConfigError` unless the files load and the certificate is valid now (no client
        would take one that has expired or is not yet valid)."""
        self.server_context()
        try:
            first = x509.load_pem_x509_certificate(self.cert.read_bytes())
        except ValueError as exc:
            raise TLSConfigError(f"cannot read the certificate {self.cert}: {exc}") from None
        now = datetime.datetime.now(datetime.UTC)
        if now > first.not_valid_after_utc:
            raise TLSConfigError(
                f"the certificate {self.cert} expired on {first.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
            )
        if now < first.not_valid_before_utc:
            raise TLSConfigError(
                f"the certificate {self.cert} is not valid before {first.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
            )
