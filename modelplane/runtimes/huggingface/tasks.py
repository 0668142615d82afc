"""The tasks a transformers model is served for, and how one is inferred from its config.

The names and the inference are KServe's: a config's first architecture ending in `ForCausalLM` is
text generation, `ForSequenceClassification` sequence classification, and so on; modelplane also
reads `...LMHeadModel` (GPT-2's) as text generation, where KServe asks for `--task`.
"""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    sequence_classification = "sequence_classification"
    token_classification = "token_classification"
    fill_mask = "fill_mask"
    text_embedding = "text_embedding"
    text_generation = "text_generation"
    text2text_generation = "text2text_generation"

    @property
    def generative(self) -> bool:
        return self in (Task.text_generation, Task.text2text_generation)


# KServe's tasks that modelplane does not serve, and why.
_NOT_SERVED = {
    "time_series_forecast": "time series models are not served by modelplane's huggingface runtime",
    "table_question_answering": "KServe does not serve it either",
    "question_answering": "KServe does not serve it either",
    "multiple_choice": "KServe does not serve it either",
}

# Architecture name endings, in the order KServe tries them.
_BY_ARCHITECTURE = (
    ("TapasForQuestionAnswering", "table_question_answering"),
    ("ForQuestionAnswering", "question_answering"),
    ("ForTokenClassification", "token_classification"),
    ("ForSequenceClassification", "sequence_classification"),
    ("ForMultipleChoice", "multiple_choice"),
    ("ForMaskedLM", "fill_mask"),
    ("ForCausalLM", "text_generation"),
    ("ForConditionalGeneration", "text2text_generation"),
    ("MTModel", "text2text_generation"),
    ("EncoderDecoderModel", "text2text_generation"),
    ("ForPrediction", "time_series_forecast"),
    # Beyond KServe's list: GPT-2 and its kin are causal language models too.
    ("LMHeadModel", "text_generation"),
)


class TaskError(ValueError):
    """A task that is unknown, not served, or cannot be inferred."""


def supported() -> str:
    return ", ".join(task.value for task in Task)


def parse_task(name: str) -> Task:
    """The task `--task` names (any case)."""
    lowered = name.lower()
    if lowered in _NOT_SERVED:
        raise TaskError(f"task {name} is not supported ({_NOT_SERVED[lowered]}); tasks: {supported()}")
    try:
        return Task(lowered)
    except ValueError:
        raise TaskError(f"unknown task {name!r}; tasks: {supported()}") from None


def infer_task(architectures: list[str] | None) -> Task:
    """The task of a model whose config lists `architectures`, from the first of them."""
    if not architectures:
        raise TaskError(f"the model's config.json names no architectures: set --task ({supported()})")
    architecture = architectures[0]
    for ending, name in _BY_ARCHITECTURE:
        if architecture.endswith(ending):
            if name in _NOT_SERVED:
                raise TaskError(
                    f"{architecture} is a {name} model, which is not supported ({_NOT_SERVED[name]}); "
                    f"tasks: {supported()}"
                )
            return Task(name)
    raise TaskError(f"the task cannot be inferred from {architecture}: set --task ({supported()})")


def auto_model_class(task: Task):
    """The transformers Auto class that loads a model for `task`."""
    import transformers

    return getattr(
        transformers,
        {
            Task.sequence_classification: "AutoModelForSequenceClassification",
            Task.token_classification: "AutoModelForTokenClassification",
            Task.fill_mask: "AutoModelForMaskedLM",
            Task.text_embedding: "AutoModel",
            Task.text_generation: "AutoModelForCausalLM",
            Task.text2text_generation: "AutoModelForSeq2SeqLM",
        }[task],
    )
