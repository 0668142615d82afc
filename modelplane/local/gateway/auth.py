"""The bearer token of the gateway (`modelplane up --auth-token-file FILE --gateway-auth`).

Every request on the gateway's port must carry `Authorization: Bearer <token>`: a REST request without
it is a 401, a gRPC call UNAUTHENTICATED. The token is compared in constant time, and the header is
taken out of the request, so the replicas (which run any command a ServingRuntime names) never see it.
"""

from __future__ import annotations

from modelplane.protocol.bearer import bearer_matches

REFUSAL = "the gateway needs Authorization: Bearer <token>"


class GatewayToken:
    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def take(self, headers: list[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], bool]:
        """The headers without `Authorization`, and whether they carried exactly the expected one."""
        given = [value for name, value in headers if name.lower() == b"authorization"]
        if not given:
            return headers, False
        kept = [(name, value) for name, value in headers if name.lower() != b"authorization"]
        return kept, len(given) == 1 and bearer_matches(given[0], self._token)
