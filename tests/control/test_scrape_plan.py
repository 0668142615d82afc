"""Which components `modelplane up` scrapes, at which path, and the metrics ports it cannot honor."""

from __future__ import annotations

from modelplane.control.scrape_plan import component_scrape_paths, unscraped_ports

SCRAPE = {"serving.kserve.io/enable-prometheus-scraping": "true"}
RUNTIME = {"kind": "ClusterServingRuntime", "name": "triton"}
TRITON = {"prometheus.kserve.io/port": "8002", "prometheus.kserve.io/path": "/triton-metrics"}


def isvc(annotations: dict, predictor: dict | None = None, **components: dict) -> dict:
    return {
        "metadata": {"name": "iris", "annotations": annotations},
        "spec": {"predictor": predictor or {"model": {}}, **components},
    }


def test_the_runtimes_path_is_the_predictors_where_the_service_and_the_predictor_set_none():
    service = isvc(SCRAPE, transformer={"containers": []})
    assert component_scrape_paths(service, TRITON) == {
        "predictor": "/triton-metrics",
        "transformer": "/metrics",  # a runtime is the predictor's alone
    }
    own = isvc({**SCRAPE, "prometheus.kserve.io/path": "service"})
    assert component_scrape_paths(own, TRITON) == {"predictor": "/service"}
    predictor = {"model": {}, "annotations": {"prometheus.kserve.io/path": "/predictor"}}
    assert component_scrape_paths(isvc(SCRAPE, predictor), TRITON) == {"predictor": "/predictor"}
    assert component_scrape_paths(isvc({}), TRITON) == {}


def test_a_runtime_may_ask_for_its_predictor_to_be_scraped():
    # KServe's pods get the runtime's annotations, the scraping one with the others.
    assert component_scrape_paths(isvc({}), {**SCRAPE, **TRITON}) == {"predictor": "/triton-metrics"}


def test_a_metrics_port_other_than_the_http_port_is_said_where_it_is_set():
    templates = {"predictor": {"ports": {"http": 8080, "grpc": 9000}}}
    (said,) = unscraped_ports(isvc(SCRAPE), templates, RUNTIME, TRITON)
    assert said.startswith(
        "ClusterServingRuntime triton: spec.annotations[prometheus.kserve.io/port] (the predictor's "
        "replicas are scraped at their HTTP port, the container's 8080"
    )
    own = isvc({**SCRAPE, "prometheus.kserve.io/port": "8080"})  # the service's wins, and is the HTTP port
    assert unscraped_ports(own, templates, RUNTIME, TRITON) == ()
    (said,) = unscraped_ports(isvc({**SCRAPE, "prometheus.kserve.io/port": "9000"}), templates)
    assert said.startswith("metadata.annotations[prometheus.kserve.io/port] (")
    assert unscraped_ports(isvc({}), templates, RUNTIME, TRITON) == ()  # not scraped: nothing to say
