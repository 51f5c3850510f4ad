"""The model zoo and its loaders.

`alignlab.models.zoo`: names (embedded, hub id, local path), `check_model_name`, the embedded
models' pinned checksums and their one-time GGUF conversion. Imports no torch.
`alignlab.models.load`: `load_causal_lm`, `load_classifier`, `load_feature_extractor`, pooling,
device and dtype choice.
"""
