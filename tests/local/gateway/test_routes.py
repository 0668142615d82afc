"""The route table is plain data the reconciler builds; bad entries are refused when built."""

from __future__ import annotations

import pytest

from modelplane.local.gateway.dispatch import Dispatcher
from modelplane.local.gateway.routes import (
    ANY_HOST,
    Backend,
    ComponentTraffic,
    Route,
    RouteTable,
    component_host,
    host_without_port,
    inference_graph_routes,
    inference_service_routes,
    isvc_host,
    split_address,
)


def test_hosts_follow_the_knative_naming():
    assert isvc_host("sklearn-iris", "default") == "sklearn-iris.default.localhost"
    assert component_host("sklearn-iris", "ns", "transformer", domain="example.com") == (
        "sklearn-iris-transformer.ns.example.com"
    )
    assert component_host("sklearn-iris", "default", "predictor", tag="prev") == (
        "prev-sklearn-iris-predictor.default.localhost"
    )
    with pytest.raises(ValueError, match="unknown component 'router'"):
        component_host("x", "default", "router")


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("a.b.localhost", "a.b.localhost"),
        ("A.B.LocalHost:8080", "a.b.localhost"),
        ("a.b.localhost.", "a.b.localhost"),
        ("[::1]:8080", "[::1]"),
        ("", ""),
    ],
)
def test_host_without_port(header, host):
    assert host_without_port(header) == host


def test_replica_addresses_are_host_and_port():
    assert split_address("127.0.0.1:8001") == ("127.0.0.1", 8001)
    assert split_address("[::1]:8001") == ("::1", 8001)
    with pytest.raises(ValueError, match="replica address 'nowhere' is not host:port"):
        Backend("r-1", ("nowhere",))


def test_bad_backends_and_routes_are_refused():
    with pytest.raises(ValueError, match="weight must be >= 0"):
        Backend("r-1", weight=-1)
    with pytest.raises(ValueError, match="container_concurrency must be >= 0"):
        Backend("r-1", container_concurrency=-2)
    with pytest.raises(ValueError, match="at least one backend"):
        Route(())
    with pytest.raises(ValueError, match="the weights add up to 0"):
        Route((Backend("r-1", weight=0), Backend("r-2", weight=0)))
    assert Route((Backend("r-1", weight=0),)).backends[0].revision == "r-1"  # a tag route


def test_the_table_is_keyed_by_lower_case_host_and_read_only():
    route = Route((Backend("r-1"),))
    table = RouteTable({"Iris.Default.Localhost": route})
    assert table.lookup("iris.default.localhost") is route
    assert table.hosts() == ["iris.default.localhost"]
    with pytest.raises(TypeError):
        table.routes["x"] = route  # type: ignore[index]


def test_an_inference_service_gets_its_front_component_and_tag_hosts():
    prev = Backend("iris-predictor-1", ("127.0.0.1:1",), weight=90)
    latest = Backend("iris-predictor-2", ("127.0.0.1:2",), weight=10)
    transformer = Backend("iris-transformer-1", ("127.0.0.1:3",))
    explainer = Backend("iris-explainer-1", ("127.0.0.1:4",))
    routes = inference_service_routes(
        "iris",
        "default",
        predictor=ComponentTraffic((prev, latest), latest=latest, prev=prev),
        transformer=ComponentTraffic((transformer,), latest=transformer),
        explainer=ComponentTraffic((explainer,)),
    )
    assert sorted(routes) == [
        "iris-explainer.default.localhost",
        "iris-predictor.default.localhost",
        "iris-transformer.default.localhost",
        "iris.default.localhost",
        "latest-iris-predictor.default.localhost",
        "latest-iris-transformer.default.localhost",
        "prev-iris-predictor.default.localhost",
    ]
    front = routes["iris.default.localhost"]
    assert front.backends == (transformer,)
    assert front.explain == Route((explainer,))
    assert routes["iris-predictor.default.localhost"].backends == (prev, latest)
    assert routes["prev-iris-predictor.default.localhost"].backends == (prev,)


def test_without_a_transformer_the_service_host_is_the_predictors():
    predictor = Backend("iris-predictor-1", ("127.0.0.1:1",))
    routes = inference_service_routes("iris", "ns", ComponentTraffic((predictor,)), domain="example.com")
    assert routes == {
        "iris.ns.example.com": Route((predictor,)),
        "iris-predictor.ns.example.com": Route((predictor,)),
    }
    graph = inference_graph_routes("pipeline", "ns", (Backend("pipeline-router-1"),), domain="example.com")
    assert list(graph) == ["pipeline.ns.example.com"]


def test_a_route_for_any_host_takes_the_hosts_the_table_does_not_name():
    named = Route((Backend("iris-predictor-00001", ("127.0.0.1:9001",)),))
    anything = Route((Backend("", ("127.0.0.1:8080",)),))
    dispatcher = Dispatcher()
    dispatcher.update(RouteTable({"iris.default.localhost": named, ANY_HOST: anything}))
    assert dispatcher.resolve(b"iris.default.localhost:8080", b"/").revision == "iris-predictor-00001"
    assert dispatcher.resolve(b"10.0.0.7:9081", b"/").revision == ""
    assert dispatcher.resolve(b"", b"/").revision == ""


def test_a_revision_that_leaves_the_table_is_counted_until_its_requests_in_flight_end():
    """The platform drains a revision it stops by these counts: a revision that dropped out of them
    as it left the routes was stopped under its requests (cut, and re-sent or refused)."""
    host = "iris.default.localhost"
    dispatcher = Dispatcher()
    dispatcher.update(RouteTable({host: Route((Backend("iris-predictor-00001", ("127.0.0.1:9001",)),))}))
    revision = dispatcher.resolve(host.encode(), b"/")
    replica = revision.try_acquire()
    dispatcher.update(RouteTable({host: Route((Backend("iris-predictor-00002", ("127.0.0.1:9002",)),))}))
    assert dispatcher.stats()["iris-predictor-00001"].in_flight == 1
    assert dispatcher.stats()["iris-predictor-00001"].replicas == 0
    revision.release(replica)
    assert "iris-predictor-00001" not in dispatcher.stats()
    assert set(dispatcher.stats()) == {"iris-predictor-00002"}


def test_a_draining_revision_that_comes_back_serves_again():
    host = "iris.default.localhost"
    first = RouteTable({host: Route((Backend("iris-predictor-00001", ("127.0.0.1:9001",)),))})
    dispatcher = Dispatcher()
    dispatcher.update(first)
    revision = dispatcher.resolve(host.encode(), b"/")
    replica = revision.try_acquire()
    dispatcher.update(RouteTable({}))
    dispatcher.update(first)
    again = dispatcher.resolve(host.encode(), b"/")
    assert again.try_acquire() is not None
    revision.release(replica)
    assert dispatcher.stats()["iris-predictor-00001"].in_flight == 1


def test_a_replica_scaled_away_is_reported_busy_until_its_requests_in_flight_end():
    """The platform stops a replica scaled down once no request is in flight on it, as Knative's
    queue-proxy drains a pod; the gateway says which replicas still hold requests."""
    host = "iris.default.localhost"
    both = ("127.0.0.1:9001", "127.0.0.1:9002")
    dispatcher = Dispatcher()
    dispatcher.update(
        RouteTable({host: Route((Backend("iris-predictor-00001", both, container_concurrency=1),))})
    )
    revision = dispatcher.resolve(host.encode(), b"/")
    held = [revision.try_acquire(), revision.try_acquire()]
    assert dispatcher.stats()["iris-predictor-00001"].busy_replicas == frozenset(both)
    dispatcher.update(
        RouteTable({host: Route((Backend("iris-predictor-00001", both[:1], container_concurrency=1),))})
    )
    assert dispatcher.stats()["iris-predictor-00001"].busy_replicas == frozenset(both)
    for replica in held:
        revision.release(replica)
    assert dispatcher.stats()["iris-predictor-00001"].busy_replicas == frozenset()
    assert revision.try_acquire().address == both[0]
