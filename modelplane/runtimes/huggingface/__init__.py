"""The huggingface runtime: transformers models, as KServe's huggingfaceserver serves them.

`model.HuggingFaceModel` is the served model; `options` holds its command-line flags (light to import,
so `modelplane serve` can list them without loading transformers).
"""
