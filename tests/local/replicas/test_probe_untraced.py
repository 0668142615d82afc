"""The platform's readiness polls of a replica that is loading ask for its repository index with a POST,
which a traced model server traces: they say they are not sampled, so that polling a model that takes
a minute to load leaves no trace for each poll."""

import asyncio

import httpx

from modelplane.local.replicas.probe import probe
from modelplane.telemetry import trace_context


def test_a_loading_replicas_repository_index_is_asked_for_unsampled():
    posts: list[httpx.Request] = []

    def replica(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(503)
        posts.append(request)
        return httpx.Response(200, json=[{"name": "m", "state": "LOADING", "reason": "loading"}])

    async def run():
        async with httpx.AsyncClient(transport=httpx.MockTransport(replica)) as client:
            return await probe(client, 8080, None, repository_index=True)

    result = asyncio.run(run())

    assert result.ready is False and result.failure == "loading"
    [post] = posts
    parent = trace_context.parse(post.headers["traceparent"].encode(), None)
    assert parent is not None and parent.sampled is False
