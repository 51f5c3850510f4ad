"""The dataset registry: every dataset alignlab knows, by name, behind one `load()`.

    from alignlab.data import load, list_datasets
    ds = load("world-facts")                  # DatasetDict: train / validation / test
    test = load("world-facts", split="test")  # one datasets.Dataset
    sciq = load("sciq", folder="path/to/SciQ")  # the real SciQ from its original files
    sciq = load("path/to/SciQ/")              # the same: a folder in SciQ's published format
    items = load("cultural-items", split="test")   # the authored cultural-dimension bank
    list_datasets()                           # a table: name, rows per split, schema, source, license

The pattern follows openai/weak-to-strong's dataset registry: one `DatasetSpec` per dataset
(a builder plus what a reader needs to know about it) in a plain dict, `DATASETS`.
Builders take `split=None` (all splits) or a split name, plus their own keyword arguments.

The binary "Q: ... A: ..." view used by the weak-to-strong studies is `binary_view(ds)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from alignlab.data import cultural, facts_triples, lama, sciq, world_facts
from alignlab.data.binary import binary_view
from alignlab.data.names import is_sciq_folder

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    builder: Callable            # builder(split=None, **kwargs) -> Dataset | DatasetDict
    source: str                  # where the data comes from
    license: str
    description: str
    schema: dict[str, str]       # column -> meaning
    # rows per split without building the dataset or touching the network; None if unknown
    sizes: Callable[[], dict[str, int] | None] | None = field(default=None, compare=False)


WORLD_FACTS_SCHEMA = {
    "question": "question text",
    "correct_answer": "the right answer",
    "distractor1": "a wrong answer of the same type",
    "distractor2": "a wrong answer of the same type",
    "distractor3": "a wrong answer of the same type",
    "support": "2-3 sentences stating the facts needed",
    "kind": "fact type: " + ", ".join(world_facts.KINDS),
    "subject": "the country, territory or element asked about",
    "generator": "generator version, e.g. " + world_facts.GENERATOR_VERSION,
}

FACTS_TRIPLES_SCHEMA = {
    "subject": "the country, territory or element",
    "relation": "one of " + ", ".join(facts_triples.RELATIONS),
    "object": "the object to predict",
    "valid_objects": "every true object for this subject and relation (list)",
    "template": "the relation's template with [X] and [Y]",
    "query": "the template with [X] filled in",
    "generator": "generator version, e.g. " + facts_triples.GENERATOR_VERSION,
}

CULTURAL_SCHEMA = {
    "id": "item id (authored bank: DIM-Domain-k; CDEval: cdeval-<row in the source file>)",
    "Dimension": "Hofstede dimension: " + ", ".join(cultural.DIMENSIONS),
    "Domain": "domain: " + ", ".join(cultural.DOMAINS),
    "Question": "the question",
    "Option 1": "the answer at the high pole (high PDI, individualism, high UAI, masculinity, long-term, indulgence)",
    "Option 2": "the answer at the low pole",
    "source": "alignlab (authored bank) or cdeval",
}

SCIQ_SCHEMA = {
    "question": "question text",
    "distractor3": "a wrong answer",
    "distractor1": "a wrong answer",
    "distractor2": "a wrong answer",
    "correct_answer": "the right answer",
    "support": "a supporting paragraph (may be empty)",
}

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            name="world-facts",
            builder=world_facts.build,
            source="generated from countryinfo, pycountry, periodictable (" + world_facts.GENERATOR_VERSION + ")",
            license="MIT (generator); facts from MIT, LGPL-2.1 and public-domain packages",
            description="SciQ-shaped multiple-choice questions on countries and chemical elements.",
            schema=WORLD_FACTS_SCHEMA,
            sizes=world_facts.split_sizes,
        ),
        DatasetSpec(
            name="facts-triples",
            builder=facts_triples.build,
            source="generated from countryinfo, pycountry, periodictable (" + facts_triples.GENERATOR_VERSION + ")",
            license="MIT (generator); facts from MIT, LGPL-2.1 and public-domain packages",
            description="LAMA-style (subject, relation, object) triples with one template per relation.",
            schema=FACTS_TRIPLES_SCHEMA,
            sizes=facts_triples.split_sizes,
        ),
        DatasetSpec(
            name="sciq",
            builder=sciq.load_sciq,
            source="hub: " + sciq.HUB_ID + " (or the original JSON files: load('sciq', folder=...))",
            license="CC BY-NC 3.0",
            description="SciQ (Welbl et al. 2017): crowd-sourced science exam questions.",
            schema=SCIQ_SCHEMA,
            sizes=sciq.cached_split_sizes,
        ),
        DatasetSpec(
            name="cultural-items",
            builder=cultural.load_cultural_items,
            source="authored by the alignlab authors in CDEval's schema (data/cultural_items.json)",
            license="same as alignlab",
            description="Two-option questions on six Hofstede dimensions x seven domains, 5+ per cell (split: test).",
            schema=CULTURAL_SCHEMA,
            sizes=cultural.bank_sizes,
        ),
        DatasetSpec(
            name="cdeval",
            builder=cultural.load_cdeval,
            source="hub: " + cultural.HUB_ID + " (or a local CDEval.json: load('cdeval', path=...))",
            license="not stated by the source (check the hub dataset card)",
            description="CDEval (Wang et al. 2024): cultural-dimension questions, one option per pole (split: test).",
            schema=CULTURAL_SCHEMA,
            sizes=cultural.cdeval_cached_sizes,
        ),
        DatasetSpec(
            name="lama-trex",
            builder=lama.load_lama_trex,
            source="LAMA's data folder (load('lama-trex', folder=...) or $ALIGNLAB_LAMA_DIR); not on this machine",
            license="CC BY-NC 4.0 (LAMA)",
            description="LAMA T-REx (Petroni et al. 2019): 41 relations; test = LAMA facts, "
                        "train/validation = AutoPrompt's split.",
            schema=FACTS_TRIPLES_SCHEMA,
            sizes=lama.cached_sizes,
        ),
    ]
}


def get_spec(name: str) -> DatasetSpec:
    """The spec of a dataset; a ValueError naming the known datasets if there is none."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[name]


def load(name: str, split: str | None = None, **kwargs):
    """Load a dataset by name: a DatasetDict (train/validation/test), or one split's Dataset.
    Extra keyword arguments go to the dataset's builder (e.g. folder=... for sciq). A `name` that is
    a folder in SciQ's published format (`alignlab.data.names.is_sciq_folder`) loads SciQ from it."""
    if name not in DATASETS and is_sciq_folder(name):
        name, kwargs = "sciq", {**kwargs, "folder": name}
    spec = get_spec(name)
    if split is not None and split not in SPLITS:
        raise ValueError(f"dataset {name!r} has no split {split!r}; known splits: {', '.join(SPLITS)}")
    return spec.builder(split=split, **kwargs)


def list_datasets():
    """A table of the registered datasets: name, rows per split, schema, source, license.

    Row counts come from each spec's `sizes()`, which never builds a hub dataset nor touches
    the network; they are NA for a hub dataset that is not in the local cache yet."""
    records = []
    for spec in DATASETS.values():
        sizes = spec.sizes() if spec.sizes else None
        records.append({
            "name": spec.name,
            **{s: (sizes or {}).get(s) for s in SPLITS},
            "schema": ", ".join(spec.schema),
            "source": spec.source,
            "license": spec.license,
        })
    table = pd.DataFrame.from_records(records, columns=["name", *SPLITS, "schema", "source", "license"])
    return table.astype({s: "Int64" for s in SPLITS})


__all__ = ["DATASETS", "DatasetSpec", "SPLITS", "binary_view", "get_spec", "list_datasets", "load"]
