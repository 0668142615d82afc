"""TLS failures that no retry heals: a certificate the client does not trust (or that names another
host), or an endpoint that does not speak TLS at all. A storage client wraps them in its own connection
errors, which are otherwise worth retrying; these fail at once, saying why."""

from __future__ import annotations

import ssl

# OpenSSL's reason when an https URL reaches a server that answers in plain HTTP.
_NOT_TLS = "WRONG_VERSION_NUMBER"


def lasting_failure(exc: BaseException) -> ssl.SSLError | None:
    """The lasting TLS failure under `exc`, found through the chain of causes and the errors client
    libraries keep (botocore's `kwargs`, urllib3's `reason`, azure-core's `inner_exception`)."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        error = pending.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, ssl.SSLCertVerificationError) or (
            isinstance(error, ssl.SSLError) and error.reason == _NOT_TLS
        ):
            return error
        kept = getattr(error, "kwargs", None)
        pending += [error.__cause__, error.__context__, *error.args]
        pending += [getattr(error, "reason", None), getattr(error, "inner_exception", None)]
        pending += list(kept.values()) if isinstance(kept, dict) else []
    return None


def describe(failure: ssl.SSLError, where: str, trust_hint: str) -> str:
    """What went wrong, for the error a fetch raises; `trust_hint` says how to trust the endpoint's CA."""
    if isinstance(failure, ssl.SSLCertVerificationError):
        reason = failure.verify_message or failure.reason or str(failure)
        return (
            f"{where}: the storage endpoint's TLS certificate was not verified ({reason}); trying again "
            f"cannot help: {trust_hint}"
        )
    return f"{where}: the storage endpoint does not speak TLS ({failure.reason}); use http:// for it"
