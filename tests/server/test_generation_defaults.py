"""The sampling defaults read from a model's generation_config.json, as vLLM reads them (the requests
that use them: tests/server/test_huggingface_generation.py)."""

from __future__ import annotations

import json
import sys

import pytest

from modelplane.runtimes.huggingface import generation_defaults, loading
from modelplane.runtimes.huggingface.options import HuggingFaceSettings
from tests.server.processes import REPO_ROOT

pytest.importorskip("transformers")
sys.path.insert(0, str(REPO_ROOT / "examples"))
from huggingface_models import write_model  # noqa: E402


def write_config(folder, config) -> None:
    folder.mkdir(exist_ok=True)
    (folder / generation_defaults.FILE).write_text(json.dumps(config))


def test_the_recommended_sampling_is_read_under_the_request_fields_names(tmp_path):
    write_config(
        tmp_path,
        {"do_sample": True, "temperature": 0.6, "top_p": 0.9, "top_k": 20, "min_p": 0.05,
         "repetition_penalty": 1.05, "max_new_tokens": 512, "eos_token_id": [1, 2]},
    )  # fmt: skip
    assert generation_defaults.read(tmp_path) == {
        "temperature": 0.6,
        "top_p": 0.9,
        "top_k": 20,
        "min_p": 0.05,
        "repetition_penalty": 1.05,
        "max_tokens": 512,
    }


def test_values_out_of_range_are_left_out_with_a_warning(tmp_path, caplog):
    write_config(
        tmp_path,
        {"temperature": -1, "top_p": 0, "top_k": -1, "min_p": 2, "repetition_penalty": 0,
         "max_new_tokens": 0.5},
    )  # fmt: skip
    assert generation_defaults.read(tmp_path) == {"top_k": 0}  # -1, vLLM's "every token", is 0
    assert "temperature -1 is out of range" in caplog.text


def test_a_folder_without_the_file_or_with_a_broken_one_has_no_defaults(tmp_path, caplog):
    assert generation_defaults.read(tmp_path) == {}
    (tmp_path / generation_defaults.FILE).write_text("{not json")
    assert generation_defaults.read(tmp_path) == {}
    assert "is not read" in caplog.text


@pytest.mark.parametrize(("choice", "expected"), [("auto", {"temperature": 0.7}), ("vllm", {})])
def test_generation_config_vllm_reads_no_defaults(tmp_path, choice, expected):
    folder = write_model(tmp_path / "gpt2", "gpt2")
    write_config(folder, {"temperature": 0.7})
    settings = HuggingFaceSettings(generation_config=choice)
    assert loading.load(folder, settings, weights=False).sampling_defaults == expected
