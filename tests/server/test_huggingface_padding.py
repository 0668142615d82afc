"""Predictive models that read a text's last token (GPT-2's and Llama's sequence classifiers), whose
tokenizer or config name no pad token, or not the same one: a batch of texts of different lengths is
padded with the token the model skips, so each text gets the answer it gets alone, and a text alone
is answered at all (transformers refuses to pad with a tokenizer that has no pad token).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys

import numpy as np
import pytest

from modelplane.protocol.v2 import InferInput, InferRequest
from modelplane.runtimes.huggingface.model import HuggingFaceModel
from modelplane.runtimes.huggingface.options import HuggingFaceSettings
from tests.server.processes import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "examples"))
from huggingface_models import write_decoder_classifier  # noqa: E402

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

TEXTS = ["hello", "the cat sat on the mat and looked at the moon.", "a dog ran"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf-padding")
    return {
        "classifier": write_decoder_classifier(root / "classifier", num_labels=3),
        "cross-encoder": write_decoder_classifier(root / "cross-encoder", num_labels=1),
    }


def variant(folder, tmp_path, tokenizer_pad: str | None = None, config_pad: str | None = None):
    """A copy of `folder` whose tokenizer pads with `tokenizer_pad`, and whose config names
    `config_pad`'s id as its pad token."""
    copy = shutil.copytree(folder, tmp_path / "variant")
    tokenizer = transformers.AutoTokenizer.from_pretrained(copy)
    if tokenizer_pad:
        tokenizer.pad_token = tokenizer_pad
        tokenizer.save_pretrained(copy)
    if config_pad:
        config = json.loads((copy / "config.json").read_text())
        config["pad_token_id"] = tokenizer.convert_tokens_to_ids(config_pad)
        (copy / "config.json").write_text(json.dumps(config))
    return copy


def alone(folder, texts: list[str], pairs: list[str] | None = None) -> np.ndarray:
    """Each text's logits, run by itself (nothing to pad), as transformers gives them."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    rows = []
    with torch.no_grad():
        for index, text in enumerate(texts):
            pair = (pairs[index],) if pairs else ()
            rows.append(model(**tokenizer(text, *pair, return_tensors="pt")).logits[0].numpy())
    return np.stack(rows)


def raw_logits(folder, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The V1 and the V2 answers of the runtime, with --return_raw_logits, to `texts` in one request."""
    model = HuggingFaceModel("classifier", folder, HuggingFaceSettings(output="raw_logits"))
    model.load()
    answer = asyncio.run(model.predict({"instances": texts}))
    v1 = np.array([[row[str(label)] for label in range(len(row))] for row in answer["predictions"]])
    data = np.array([text.encode() for text in texts], dtype=object)
    request = InferRequest("classifier", [InferInput("text", [len(texts)], "BYTES", data)])
    v2 = asyncio.run(model.predict(request)).outputs[0].as_numpy()
    return v1, v2


def test_a_tokenizer_without_a_pad_token_answers_one_text_and_a_batch_of_several(folders):
    expected = alone(folders["classifier"], TEXTS)
    for got in (*raw_logits(folders["classifier"], TEXTS), *raw_logits(folders["classifier"], TEXTS[:1])):
        np.testing.assert_allclose(got, expected[: len(got)], atol=1e-5)


def test_a_tokenizer_pad_token_the_config_does_not_name_answers_each_text_as_alone(folders, tmp_path):
    folder = variant(folders["classifier"], tmp_path, tokenizer_pad="<pad>")
    for got in raw_logits(folder, TEXTS):
        np.testing.assert_allclose(got, alone(folder, TEXTS), atol=1e-5)


def test_the_pad_token_the_config_names_wins_over_the_tokenizer_s(folders, tmp_path):
    """The model reads the last token that is not the config's pad token: padding with the tokenizer's
    other one would have it read a pad token for each text shorter than the longest."""
    folder = variant(folders["classifier"], tmp_path, tokenizer_pad="<pad>", config_pad="</s>")
    for got in raw_logits(folder, TEXTS):
        np.testing.assert_allclose(got, alone(folder, TEXTS), atol=1e-5)


def test_a_cross_encoder_without_a_pad_token_reranks(folders):
    folder = folders["cross-encoder"]
    model = HuggingFaceModel("reranker", folder, HuggingFaceSettings())
    model.load()
    relevance = asyncio.run(model.reranker.rerank("what does a model do?", TEXTS))
    expected = torch.sigmoid(torch.from_numpy(alone(folder, ["what does a model do?"] * 3, TEXTS)[:, 0]))
    np.testing.assert_allclose(relevance.scores, expected.numpy(), atol=1e-5)
