"""The revisions of each service, kept on disk across restarts of `modelplane up`."""

from __future__ import annotations

import logging

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


def test_a_log_cut_short_is_moved_aside_with_a_warning_and_never_over_an_earlier_one(tmp_path, caplog):
    log = RevisionLog(tmp_path / "revisions")
    path = tmp_path / "revisions" / "default" / "iris.json"
    revisions = [Revision("iris-predictor-00001", "predictor", 1, "abc", {"command": ["serve"]})]
    cuts = []
    with caplog.at_level(logging.WARNING, "modelplane.reconciler"):
        for _ in range(2):
            log.save("default", "iris", revisions, {"predictor": 2})
            cuts.append(path.read_bytes()[: path.stat().st_size // 2])
            path.write_bytes(cuts[-1])
            history = log.read("default", "iris")
            assert (history.revisions, history.rollouts) == ([], {})
            assert not path.exists()
    asides = [path.with_name("iris.json.damaged"), path.with_name("iris.json.damaged.2")]
    assert [aside.read_bytes() for aside in asides] == cuts
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2
    assert warnings[0].startswith(
        f"the revision history of InferenceService default/iris in {path} cannot be read"
    )
    assert f"moved it to {asides[0]}; it starts again from its spec" in warnings[0]
    assert "are lost" in warnings[0]
    assert log.load("default", "iris") == []  # once moved aside, the service has no history: no warning
    assert len(caplog.records) == 2


def test_a_log_that_is_not_a_revision_history_is_moved_aside_too(tmp_path):
    folder = tmp_path / "revisions" / "default"
    folder.mkdir(parents=True)
    log = RevisionLog(tmp_path / "revisions")
    for body in (
        "{not json",
        "[]",
        '{"revisions": [{"name": "x"}]}',
        '{"revisions": 3}',
        '{"rollouts": [1]}',
    ):
        (folder / "iris.json").write_text(body)
        assert log.read("default", "iris").set_aside is not None, body
    assert len(list(folder.glob("iris.json.damaged*"))) == 5


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
