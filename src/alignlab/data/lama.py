"""LAMA T-REx (Petroni et al. 2019) from its original files, in the facts-triples schema.

LAMA's data folder (https://dl.fbaipublicfiles.com/LAMA/data.zip, unpacked) holds

    relations.jsonl         one relation a line: relation (e.g. P19), template ("[X] was born in [Y] ."), label, type
    TREx/<relation>.jsonl   facts: sub_label, obj_label (+ uuid, sub_uri, obj_uri, evidences)

and AutoPrompt / OptiPrompt add a training split per relation, e.g.
`autoprompt_TREx_all/<relation>/{train,dev}.jsonl` (sub_label, obj_label). `read_rows(folder)`
reads whichever is there: the LAMA facts become the `test` split, AutoPrompt's train / dev become
`train` / `validation` (empty when absent). Only `sub_label` / `obj_label` are required, so
ParaRel's reduced files read too. Also recognised: OptiPrompt's layout (`data/LAMA-TREx/<relation>.jsonl`,
`data/autoprompt_data/<relation>/`, `relation_metainfo/LAMA_relations.jsonl`) and ParaRel's
(`pararel_trex_lms_vocab/` or `trex_lms_vocab/`, already filtered to the common vocabulary).

Common vocabulary: LAMA and OptiPrompt keep only facts whose object is in the vocabulary shared by
the compared models (`common_vocab_cased.txt`, one token a line). When that file is in the folder
(COMMON_VOCAB), every split is filtered by it, as they do. The folder is `folder=`, else $ALIGNLAB_LAMA_DIR; there is no
hub download (the hub's `lama` dataset is a loading script that current `datasets` no longer runs).

Rows follow the facts-triples schema (subject, relation, object, valid_objects, template,
query, generator), so alignlab.studies.probing.facts.load_facts takes either dataset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets

GENERATOR_VERSION = "lama-trex/1.0"
SPLITS = ("train", "validation", "test")
COLUMNS = ("subject", "relation", "object", "valid_objects", "template", "query", "generator")
TRAIN_FOLDERS = ("autoprompt_TREx_all", "fact-retrieval/original", "data/autoprompt_data")
TEST_FOLDERS = ("TREx", "LAMA-TREx", "data/LAMA-TREx", "pararel_trex_lms_vocab", "trex_lms_vocab")
RELATION_FILES = ("relations.jsonl", "relation_metainfo/LAMA_relations.jsonl")
COMMON_VOCAB = ("common_vocab_cased.txt", "common_vocabs/common_vocab_cased.txt", "data/common_vocab_cased.txt")


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def lama_folder(folder=None) -> Path:
    folder = folder or os.environ.get("ALIGNLAB_LAMA_DIR")
    if not folder:
        raise FileNotFoundError(
            "LAMA T-REx needs its files: download https://dl.fbaipublicfiles.com/LAMA/data.zip, unpack it, and "
            "pass folder=<the folder holding relations.jsonl and TREx/> or set ALIGNLAB_LAMA_DIR")
    folder = Path(folder)
    if not any((folder / name).exists() for name in RELATION_FILES):
        raise FileNotFoundError(f"{folder} has none of {', '.join(RELATION_FILES)} (expected LAMA's data folder, "
                                "or OptiPrompt's repository folder)")
    return folder


def first_existing(folder: Path, names) -> Path | None:
    return next((folder / n for n in names if (folder / n).exists()), None)


def common_vocab(folder) -> set[str] | None:
    """The common vocabulary of LAMA / OptiPrompt (COMMON_VOCAB) when the folder has it, else None."""
    path = first_existing(Path(folder), COMMON_VOCAB)
    if path is None:
        return None
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def read_relations(folder) -> dict[str, dict]:
    """{relation id: {"template", "label", "type"}} from relations.jsonl."""
    out = {}
    for r in read_jsonl(first_existing(Path(folder), RELATION_FILES)):
        out[r["relation"]] = {"template": r["template"], "label": r.get("label", ""), "type": r.get("type", "")}
    return out


def fill(template: str, subject: str) -> str:
    return template.replace("[X]", subject)


def to_rows(facts: list[dict], relation: str, template: str) -> list[dict]:
    """Facts (sub_label, obj_label) as facts-triples rows; every object of a subject is valid."""
    valid: dict[str, list[str]] = {}
    for f in facts:
        valid.setdefault(f["sub_label"], [])
        if f["obj_label"] not in valid[f["sub_label"]]:
            valid[f["sub_label"]].append(f["obj_label"])
    return [dict(subject=f["sub_label"], relation=relation, object=f["obj_label"],
                 valid_objects=list(valid[f["sub_label"]]), template=template,
                 query=fill(template, f["sub_label"]), generator=GENERATOR_VERSION) for f in facts]


def read_rows(folder=None, relations=None) -> dict[str, list[dict]]:
    """{split: rows} for the relations that have a test file in one of TEST_FOLDERS (or the ones
    named), filtered by the common vocabulary when the folder has one."""
    folder = lama_folder(folder)
    templates = read_relations(folder)
    if relations is None:
        relations = [r for r in templates if any((folder / sub / f"{r}.jsonl").exists() for sub in TEST_FOLDERS)]
    unknown = [r for r in relations if r not in templates]
    if unknown:
        raise ValueError(f"unknown LAMA relation(s) {unknown}; known: {', '.join(templates)}")
    vocab = common_vocab(folder)

    def facts(path):
        rows = read_jsonl(path)
        return rows if vocab is None else [f for f in rows if f["obj_label"] in vocab]

    out = {s: [] for s in SPLITS}
    for relation in relations:
        template = templates[relation]["template"]
        test = next((folder / sub / f"{relation}.jsonl" for sub in TEST_FOLDERS
                     if (folder / sub / f"{relation}.jsonl").exists()), None)
        if test is not None:
            out["test"] += to_rows(facts(test), relation, template)
        for sub in TRAIN_FOLDERS:
            base = folder / sub / relation
            if (base / "train.jsonl").exists():
                out["train"] += to_rows(facts(base / "train.jsonl"), relation, template)
                if (base / "dev.jsonl").exists():
                    out["validation"] += to_rows(facts(base / "dev.jsonl"), relation, template)
                break
    return out


def relation_info(rows: dict[str, list[dict]]) -> dict[str, dict]:
    """{relation: {"template", "candidates"}}: candidates = every object seen in any split."""
    info: dict[str, dict] = {}
    for split_rows in rows.values():
        for r in split_rows:
            entry = info.setdefault(r["relation"], {"template": r["template"], "candidates": set()})
            entry["candidates"].update(r["valid_objects"])
    return {r: {"template": v["template"], "candidates": sorted(v["candidates"])} for r, v in info.items()}


def load_lama_trex(split: str | None = None, folder=None, relations=None):
    """LAMA T-REx as a DatasetDict (train / validation / test) or one split's Dataset."""
    rows = read_rows(folder, relations)
    features = datasets.Features({
        "subject": datasets.Value("string"), "relation": datasets.Value("string"),
        "object": datasets.Value("string"), "valid_objects": datasets.Sequence(datasets.Value("string")),
        "template": datasets.Value("string"), "query": datasets.Value("string"),
        "generator": datasets.Value("string")})
    made = {s: datasets.Dataset.from_list(rows[s], features=features) for s in SPLITS}
    return made[split] if split else datasets.DatasetDict(made)


def cached_sizes() -> dict[str, int] | None:
    """Rows per split when $ALIGNLAB_LAMA_DIR points at the files; None otherwise (no network)."""
    try:
        return {s: len(v) for s, v in read_rows().items()}
    except (FileNotFoundError, ValueError, OSError):
        return None
