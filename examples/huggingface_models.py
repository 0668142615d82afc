"""Tiny transformers models for the huggingface examples and tests, built here: nothing is downloaded.

Each tokenizer is trained with the `tokenizers` library on the few sentences below; each model is a
small configuration (two layers, 64-wide). The text classifier and the text generator are then
trained for a few seconds on those sentences, so that they answer sensibly: the classifier tells
the happy sentences from the sad ones, and the generator continues a sentence it has seen. The
others keep their random weights. Every folder is written with `save_pretrained`, as a model
downloaded from the Hugging Face Hub would be.

    write_text_classifier(folder)  # BertForSequenceClassification, labels negative / positive
    write_reranker(folder)         # BertForSequenceClassification with one label: a cross-encoder
    write_text_generator(folder)   # LlamaForCausalLM with a chat template
    write_model(folder, kind)      # kind: one of KINDS, random weights
    write_decoder_classifier(folder, num_labels)  # GPT2ForSequenceClassification, no pad token anywhere
    write_roberta_classifier(folder)  # RobertaForSequenceClassification: 131 positions, 128 usable
"""

from __future__ import annotations

from pathlib import Path

HAPPY = [
    "what a wonderful day",
    "i love this lovely film",
    "the food was great and the staff were kind",
    "a delightful and happy story",
    "this is the best gift ever",
    "we had a great time in the sun",
]
SAD = [
    "what a terrible day",
    "i hate this awful film",
    "the food was cold and the staff were rude",
    "a dull and sad story",
    "this is the worst gift ever",
    "we had a bad time in the rain",
]
STORY = [
    "the cat sat on the mat and looked at the moon.",
    "the dog ran in the park with a red ball.",
    "a model serves answers to the questions it is asked.",
    "hello world, this is a very small language model.",
    "the quick brown fox jumps over the lazy dog.",
]
CHATS = [
    ("hello", "hello world, this is a very small language model."),
    ("what does a model do?", "a model serves answers to the questions it is asked."),
    ("tell me about the cat", "the cat sat on the mat and looked at the moon."),
]
SENTENCES = HAPPY + SAD + STORY + [text for chat in CHATS for text in chat]

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}"
    "{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
KINDS = (
    "sequence_classification",  # BertForSequenceClassification
    "token_classification",  # BertForTokenClassification
    "fill_mask",  # BertForMaskedLM
    "text_embedding",  # BertModel
    "llama",  # LlamaForCausalLM (text_generation), with a chat template
    "gpt2",  # GPT2LMHeadModel (text_generation), without one
    "t5",  # T5ForConditionalGeneration (text2text_generation)
)
_WIDTH = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)


def write_text_classifier(folder: Path) -> Path:
    """A sentiment classifier: BERT with labels `negative` and `positive`, trained on HAPPY and SAD."""
    import torch

    model, tokenizer = _bert("sequence_classification")
    texts = HAPPY + SAD
    labels = torch.tensor([1] * len(HAPPY) + [0] * len(SAD))
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    _train(model, lambda: model(**batch, labels=labels).loss, steps=60)
    return _save(folder, model, tokenizer)


def write_reranker(folder: Path) -> Path:
    """A cross-encoder (BERT with one label, its logit the relevance) that has learnt to score each
    question of CHATS with its answer above the other STORY sentences."""
    import torch

    model, tokenizer = _bert("reranker")
    pairs = [(question, story) for question, _ in CHATS for story in STORY]
    relevant = torch.tensor([1.0 if (question, story) in CHATS else 0.0 for question, story in pairs])
    batch = tokenizer([q for q, _ in pairs], [d for _, d in pairs], padding=True, return_tensors="pt")
    binary = torch.nn.functional.binary_cross_entropy_with_logits
    # A gentler rate than the others': at theirs, some starts collapse to one score for every pair.
    _train(model, lambda: binary(model(**batch).logits[:, 0], relevant), steps=200, lr=1e-3)
    return _save(folder, model, tokenizer)


def write_text_generator(folder: Path, head_dim: int | None = None) -> Path:
    """A small Llama that has learnt STORY and CHATS by heart, with a chat template. `head_dim`: its
    attention heads' width (16 unless given; vLLM's CPU kernels want 32 or more)."""
    model, tokenizer = _llama(head_dim)
    chats = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": question}, {"role": "assistant", "content": answer}], tokenize=False
        )
        for question, answer in CHATS
    ]
    stories = [tokenizer.bos_token + sentence + tokenizer.eos_token for sentence in STORY]
    batch = tokenizer(stories + chats, padding=True, add_special_tokens=False, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    _train(model, lambda: model(**batch, labels=labels).loss, steps=200)
    return _save(folder, model, tokenizer)


def write_model(folder: Path, kind: str, head_dim: int | None = None) -> Path:
    """A model of `kind` (one of KINDS) with random weights; `head_dim` as for the text generator."""
    if kind == "llama":
        model, tokenizer = _llama(head_dim)
    elif kind == "gpt2":
        model, tokenizer = _gpt2()
    elif kind == "t5":
        model, tokenizer = _t5()
    else:
        model, tokenizer = _bert(kind)
    return _save(folder, model, tokenizer)


def write_decoder_classifier(folder: Path, num_labels: int = 2) -> Path:
    """GPT2ForSequenceClassification with random weights (one label: a cross-encoder). Like GPT-2's own,
    its tokenizer has no pad token and its config names none: it reads a text's last token."""
    import transformers

    tokenizer = _byte_level_tokenizer(chat_template=None, pad=False)
    config = _gpt2_config(tokenizer, num_labels=num_labels)
    return _save(folder, _seeded(lambda: transformers.GPT2ForSequenceClassification(config)), tokenizer)


def write_roberta_classifier(folder: Path) -> Path:
    """RobertaForSequenceClassification with random weights. As in RoBERTa's and XLM-R's configs,
    `max_position_embeddings` also counts the positions up to its pad token's id, which it never reads
    (RoBERTa: 514, of which 512 are usable); its tokenizer's `model_max_length` says 128 are usable."""
    import transformers

    tokenizer = _byte_level_tokenizer(chat_template=None)
    tokenizer.model_max_length = 128
    config = transformers.RobertaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128 + tokenizer.pad_token_id + 1,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=2,
        **_WIDTH,
    )
    return _save(folder, _seeded(lambda: transformers.RobertaForSequenceClassification(config)), tokenizer)


def _bert(kind: str):
    import transformers

    tokenizer = _wordpiece_tokenizer()
    config = transformers.BertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        id2label={0: "negative", 1: "positive"} if kind == "sequence_classification" else None,
        num_labels={"sequence_classification": 2, "reranker": 1}.get(kind, 3),
        **_WIDTH,
    )
    model_class = {
        "sequence_classification": transformers.BertForSequenceClassification,
        "reranker": transformers.BertForSequenceClassification,
        "token_classification": transformers.BertForTokenClassification,
        "fill_mask": transformers.BertForMaskedLM,
        "text_embedding": transformers.BertModel,
    }[kind]
    return _seeded(lambda: model_class(config)), tokenizer


def _llama(head_dim: int | None = None):
    import transformers

    tokenizer = _byte_level_tokenizer(chat_template=CHAT_TEMPLATE)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=256,
        num_key_value_heads=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        **_WIDTH,
        **({"head_dim": head_dim} if head_dim else {}),
    )
    return _seeded(lambda: transformers.LlamaForCausalLM(config)), tokenizer


def _gpt2():
    import transformers

    tokenizer = _byte_level_tokenizer(chat_template=None)
    config = _gpt2_config(tokenizer)
    return _seeded(lambda: transformers.GPT2LMHeadModel(config)), tokenizer


def _gpt2_config(tokenizer, **extra):
    """A small GPT-2 (2 layers, 64 wide) over `tokenizer`."""
    import transformers

    return transformers.GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=64,
        n_layer=2,
        n_head=4,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **extra,
    )


def _t5():
    import transformers

    tokenizer = _byte_level_tokenizer(chat_template=None, bos=False)
    config = transformers.T5Config(
        vocab_size=len(tokenizer),
        d_model=64,
        d_kv=16,
        d_ff=128,
        num_layers=2,
        num_heads=4,
        n_positions=128,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return _seeded(lambda: transformers.T5ForConditionalGeneration(config)), tokenizer


def _byte_level_tokenizer(chat_template: str | None, bos: bool = True, pad: bool = True):
    """A byte-level BPE tokenizer (any text encodes) that starts each text with <s> when `bos`, and
    ends it with </s> otherwise (as T5's does); without a pad token unless `pad`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(SENTENCES, trainer)
    if bos:
        template = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    else:
        template = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer.post_processor = template
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>" if pad else None,
        chat_template=chat_template,
        model_max_length=256,
    )


def _wordpiece_tokenizer():
    """BERT's kind of tokenizer: lower-cased WordPiece with [CLS] ... [SEP] around each text."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizer

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False
    )
    tokenizer.train_from_iterator(SENTENCES, trainer)
    return BertTokenizer(vocab=tokenizer.get_vocab(), do_lower_case=True, model_max_length=128)


def _seeded(build):
    import torch

    torch.manual_seed(0)
    return build()


def _train(model, loss, steps: int, lr: float = 3e-3) -> None:
    import torch

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these models are too small to share out: more threads only wait on each other
    try:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
        model.train()
        for _ in range(steps):
            optimizer.zero_grad()
            loss().backward()
            optimizer.step()
        model.eval()
    finally:
        torch.set_num_threads(threads)


def _save(folder: Path, model, tokenizer) -> Path:
    import transformers

    transformers.utils.logging.disable_progress_bar()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
