"""A model server's repository API, as a client: `POST /v2/repository/index`, `POST
/v2/repository/models/<name>/load` and `.../unload` (what `modelplane serve`, KServe's servers and
MLServer answer)."""

from __future__ import annotations

import httpx


class RepositoryError(Exception):
    """The server refused, or could not be reached."""


class RepositoryClient:
    """`load_timeout`: the seconds a load may take (None: the client's own read timeout), and what
    sets it, for the message of a load that takes longer."""

    def __init__(
        self, client: httpx.AsyncClient, url: str, load_timeout: tuple[float, str] | None = None
    ) -> None:
        self.client = client
        self.url = url.rstrip("/")
        self.load_timeout = load_timeout

    async def ready(self) -> bool:
        """Whether the server says it is ready (`GET /v2/health/ready`)."""
        try:
            return (await self.client.get(f"{self.url}/v2/health/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    async def index(self) -> list[dict]:
        """The models the server holds: `[{"name": ..., "state": "READY" | ...}]`."""
        response = await self._post("/v2/repository/index")
        try:
            index = response.json()
        except ValueError:
            raise RepositoryError(f"the repository index is not JSON: {response.text[:200]}") from None
        return [entry for entry in index if isinstance(entry, dict)] if isinstance(index, list) else []

    async def load(self, name: str, model_id: str = "", schema: str | None = None) -> None:
        """Loads `name`; with `model_id`, the model answers as that id, and with `schema` (the text of a
        ModelMesh schema file) its metadata gives those inputs and outputs (modelplane's load parameters)."""
        path = f"/v2/repository/models/{name}/load"
        parameters = {"model_id": model_id} if model_id else {}
        if schema is not None:
            parameters["schema"] = schema
        body = {"parameters": parameters} if parameters else {}
        if self.load_timeout is None:
            await self._post(path, body=body)
            return
        seconds, set_by = self.load_timeout
        timeout = (seconds, f"loading {name} took longer than {seconds:g} s ({set_by})")
        await self._post(path, body=body, timeout=timeout)

    async def unload(self, name: str) -> None:
        """Unloads `name`; a model the server does not hold is fine."""
        await self._post(f"/v2/repository/models/{name}/unload", (200, 404))

    async def _post(
        self,
        path: str,
        accept: tuple[int, ...] = (200,),
        timeout: tuple[float, str] | None = None,
        body: dict | None = None,
    ) -> httpx.Response:
        """`timeout`: the seconds to wait for the answer instead of the client's, and what to say then."""
        limit = self.client.timeout
        if timeout is not None:
            limit = httpx.Timeout(connect=limit.connect, read=timeout[0], write=limit.write, pool=limit.pool)
        try:  # an empty JSON object, as KServe's agent sends
            response = await self.client.post(f"{self.url}{path}", json=body or {}, timeout=limit)
        except httpx.ReadTimeout as exc:
            raise RepositoryError(
                timeout[1] if timeout else f"{self.url}{path}: {exc or type(exc).__name__}"
            ) from None
        except httpx.HTTPError as exc:
            raise RepositoryError(f"{self.url}{path}: {exc or type(exc).__name__}") from None
        if response.status_code not in accept:
            raise RepositoryError(_error_of(response))
        return response


def _error_of(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error") or response.text)
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
