"""The revisions of each service, kept on disk across restarts of `modelplane up`."""

from __future__ import annotations

from modelplane.control import Revision
from modelplane.local.controllers.revision_log import RevisionLog


def test_revisions_round_trip_and_are_forgotten(tmp_path):
    log = RevisionLog(tmp_path / "revisions")
    assert log.load("default", "iris") == []
    revisions = [
        Revision("iris-predictor-00001", "predictor", 1, "abc", {"command": ["modelplane", "serve"]}),
        Revision("iris-predictor-00002", "predictor", 2, "def", {"command": ["modelplane", "serve", "-x"]}),
    ]
    log.save("default", "iris", revisions)
    assert log.load("default", "iris") == revisions
    assert log.load("other", "iris") == []
    assert [p.name for p in (tmp_path / "revisions" / "default").iterdir()] == [
        "iris.json"
    ]  # no temp files left
    log.forget("default", "iris")
    assert log.load("default", "iris") == []
    log.forget("default", "iris")  # forgetting twice is fine


def test_the_rollouts_under_way_are_kept_beside_the_revisions(tmp_path):
    log = RevisionLog(tmp_path / "revisions")
    assert log.rollouts("default", "iris") == {}
    revisions = [Revision("iris-predictor-00001", "predictor", 1, "abc", {})]
    log.save("default", "iris", revisions, {"predictor": 4})
    assert log.rollouts("default", "iris") == {"predictor": 4}
    assert log.load("default", "iris") == revisions
    log.save("default", "iris", revisions, {})
    assert log.rollouts("default", "iris") == {}
    assert "rollouts" not in (tmp_path / "revisions" / "default" / "iris.json").read_text()


def test_an_unreadable_log_counts_as_none(tmp_path):
    folder = tmp_path / "revisions" / "default"
    folder.mkdir(parents=True)
    (folder / "iris.json").write_text("{not json")
    assert RevisionLog(tmp_path / "revisions").load("default", "iris") == []
    assert RevisionLog(tmp_path / "revisions").rollouts("default", "iris") == {}


def test_a_graph_and_a_service_of_the_same_name_keep_their_own_revisions(tmp_path):
    services = RevisionLog(tmp_path / "revisions")
    graphs = services.of_graphs()
    service = [Revision("iris-predictor-00001", "predictor", 1, "abc", {"command": ["serve"]})]
    router = [Revision("iris-router-00003", "router", 3, "def", {"command": ["router"]})]
    services.save("default", "iris", service)
    graphs.save("default", "iris", router)
    assert services.load("default", "iris") == service
    assert graphs.load("default", "iris") == router
    graphs.forget("default", "iris")
    assert graphs.load("default", "iris") == []
    assert services.load("default", "iris") == service
