"""TLS for the control-plane API (`modelplane up --tls-cert FILE --tls-key FILE`): TLS 1.2 or later from
one certificate and key (PEM), checked when `modelplane up` starts so a bad file is one line there."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


class TLSConfigError(Exception):
    """A certificate or key that cannot be used."""


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path

    def server_context(self, *, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except FileNotFoundError as exc:
            raise TLSConfigError(f"cannot read {exc.filename}: no such file") from None
        except ssl.SSLError as exc:
            raise TLSConfigError(
                f"cannot use the certificate {self.cert} with the key {self.key}: {exc.reason or exc}"
            ) from None
        if alpn:
            context.set_alpn_protocols(list(alpn))
        return context
