"""MLServer's content types: an input's own `parameters.content_type` (`np`, `str`, `base64`,
`datetime`) says how that input is read, before the request's (`np`, `str`, `pd`) takes the inputs;
a model-settings.json's `inputs` give an input's content type where the request does not."""

from __future__ import annotations

import base64
import json

import httpx
import joblib
import pytest

from tests.server.describing_estimator import Describer
from tests.server.processes import serve


@pytest.fixture(scope="module")
def describer_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("describer")
    joblib.dump(Describer(), folder / "model.joblib")
    return folder


@pytest.fixture(scope="module")
def describer(describer_dir):
    server = serve(
        "--model-dir", str(describer_dir), "--model-name", "describer", "--runtime", "sklearn", grpc=False
    )
    yield server
    server.stop()


def strings(name: str, values: list[str], content_type: str | None) -> dict:
    tensor = {"name": name, "shape": [len(values)], "datatype": "BYTES", "data": values}
    if content_type is not None:
        tensor["parameters"] = {"content_type": content_type}
    return tensor


def infer(server, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/describer/infer", json=body)


def test_an_input_of_content_type_str_is_read_as_strings(describer):
    answer = infer(describer, {"inputs": [strings("text", ["loved it", "hated it"], "str")]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == ["list:str:loved it", "list:str:hated it"]
    # The content type was read, so the answer does not name it as ignored.
    assert answer.json()["parameters"] is None


def test_an_input_of_content_type_base64_is_read_as_the_bytes_it_encodes(describer):
    raw = b"\x00\xffpng"
    answer = infer(describer, {"inputs": [strings("image", [base64.b64encode(raw).decode()], "base64")]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [f"list:bytes:{raw!r}"]


def test_an_input_of_content_type_datetime_is_read_as_datetimes(describer):
    answer = infer(describer, {"inputs": [strings("when", ["2024-05-01T12:30:00"], "datetime")]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == ["list:datetime:2024-05-01 12:30:00"]
    refused = infer(describer, {"inputs": [strings("when", ["last tuesday"], "datetime")]})
    assert refused.status_code == 400
    assert "ISO 8601" in refused.json()["error"]


def test_an_input_of_content_type_np_is_an_array(describer):
    tensor = {
        "name": "x",
        "shape": [2],
        "datatype": "INT64",
        "data": [1, 2],
        "parameters": {"content_type": "np"},
    }
    answer = infer(describer, {"inputs": [tensor]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == ["ndarray:int64:1", "ndarray:int64:2"]
    assert answer.json()["parameters"] is None


def test_the_columns_of_a_pd_request_are_read_by_their_own_content_types(describer):
    body = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            strings("when", ["2024-05-01T12:30:00", "2024-05-02T08:00:00"], "datetime"),
            strings("name", ["a", "b"], None),
            {"name": "n", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
        ],
    }
    answer = infer(describer, body)
    assert answer.status_code == 200, answer.text
    when, name, n = answer.json()["outputs"][0]["data"]
    assert when.startswith("when:datetime64")
    assert n == "n:float64"


def test_a_content_type_without_a_codec_is_ignored_and_logged_once(describer):
    """As MLServer: a content type it has no codec for (a made-up one, `pd` on an input) is ignored, and
    the input is read by its datatype; the replica's log says so once per content type."""
    for _ in range(2):
        for content_type in ("json", "pd"):
            answer = infer(describer, {"inputs": [strings("text", ["a"], content_type)]})
            assert answer.status_code == 200, answer.text
            assert answer.json()["outputs"][0]["data"] == ["ndarray:bytes:b'a'"]
        body = {"parameters": {"content_type": "table"}, "inputs": [strings("text", ["a"], None)]}
        answer = infer(describer, body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == ["ndarray:bytes:b'a'"]
    log = describer.log()
    said = [line for line in log.splitlines() if "is ignored" in line]
    assert len(said) == 3, said
    assert "content_type \"json\" of input 'text' is ignored: there is no codec for it" in log
    assert '"pd" is a request\'s content type' in log
    assert 'content_type "table" of the request is ignored' in log


def test_model_settings_inputs_give_an_input_its_content_type(tmp_path):
    joblib.dump(Describer(), tmp_path / "model.joblib")
    settings = {
        "inputs": [
            {"name": "text", "datatype": "BYTES", "shape": [-1], "parameters": {"content_type": "str"}}
        ]
    }
    (tmp_path / "model-settings.json").write_text(json.dumps(settings))
    server = serve(
        "--model-dir", str(tmp_path), "--model-name", "describer", "--runtime", "sklearn", grpc=False
    )
    try:
        answer = infer(server, {"inputs": [strings("text", ["loved it"], None)]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == ["list:str:loved it"]
        assert httpx.get(f"{server.url}/v2/models/describer").json()["inputs"] == settings["inputs"]
    finally:
        server.stop()
