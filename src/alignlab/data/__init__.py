"""Datasets by name: the registry (`alignlab.data.registry`) behind one `load()`.

    from alignlab.data import load, list_datasets
    ds = load("world-facts")                  # DatasetDict: train / validation / test
    test = load("world-facts", split="test")  # one datasets.Dataset
    sciq = load("path/to/sciq/")              # a folder in SciQ's published format loads as SciQ
    list_datasets()                           # a table: name, rows per split, schema, source, license

The registry and its builders import `datasets` and pandas; they load on first use of one of
their names, so that `alignlab.data.names` (which dataset values are allowed, stdlib only) can be
imported by the study configs, which the runner imports before any kernel starts.
"""

from __future__ import annotations

import importlib
import importlib.util

from alignlab.data.names import SCIQ_FILES, dataset_problem, is_sciq_folder

_REGISTRY = ("DATASETS", "DatasetSpec", "SPLITS", "binary_view", "get_spec", "list_datasets", "load")


def __getattr__(name: str):
    if name in _REGISTRY:
        return getattr(importlib.import_module("alignlab.data.registry"), name)
    if not name.startswith("_") and importlib.util.find_spec(f"alignlab.data.{name}") is not None:
        return importlib.import_module(f"alignlab.data.{name}")  # a submodule (world_facts, sciq, ...)
    raise AttributeError(f"module 'alignlab.data' has no attribute {name!r}")


__all__ = [*_REGISTRY, "SCIQ_FILES", "dataset_problem", "is_sciq_folder"]
