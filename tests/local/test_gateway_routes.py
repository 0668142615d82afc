"""The route table is plain data the reconciler builds; bad entries are refused when built."""

from __future__ import annotations

import pytest

from modelplane.local.gateway_routes import (
    Backend,
    Route,
    RouteTable,
    component_host,
    host_without_port,
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
