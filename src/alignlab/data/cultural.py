"""Cultural-dimension items in CDEval's schema: the authored bank, its validation, and CDEval.

CDEval (Wang et al., 2024) asks a model questions with two answers, one per pole of a
Hofstede dimension, across seven domains. Every item, in either source, has the fields

    Dimension   PDI, IDV, UAI, MAS, LTO or IVR
    Domain      Education, Wellness, Lifestyle, Work, Scientific, Family or Arts
    Question    the question
    Option 1    the answer at the HIGH pole (see HIGH_POLE): high power distance,
                individualism, high uncertainty avoidance, masculinity, long-term
                orientation, indulgence
    Option 2    the answer at the low pole

and the loaders add `id` (stable within a source) and `source`.

Two sources, one schema:

- `load_cultural_items()`  the bank the alignlab authors wrote in their own words
                           (data/cultural_items.json, 5 items per Dimension x Domain cell;
                           how it was written and checked: data/cultural_items.md).
                           `validate_items()` reports coverage, option-length balance and
                           duplicates; tests/test_culture.py runs it.
- `load_cdeval()`          the real benchmark: the hub dataset `Rykeryuhang/CDEval`, or a local
                           copy of its `CDEval.json` (`path=`). Rows are picked by their
                           `Dimension` field (`dimensions=`), never by row order.

Both are evaluation sets: the registry exposes each as one split named `test` (the hub file
has one split, whatever its name there).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from alignlab import hub
from alignlab.paths import data_dir

HUB_ID = "Rykeryuhang/CDEval"
DIMENSIONS = ("PDI", "IDV", "UAI", "MAS", "LTO", "IVR")
DOMAINS = ("Education", "Wellness", "Lifestyle", "Work", "Scientific", "Family", "Arts")
FIELDS = ("Dimension", "Domain", "Question", "Option 1", "Option 2")  # CDEval's keys, in its file order
COLUMNS = ("id", *FIELDS, "source")
# (Option 1 pole, Option 2 pole) of each dimension
POLES = {
    "PDI": ("high power distance", "low power distance"),
    "IDV": ("individualism", "collectivism"),
    "UAI": ("high uncertainty avoidance", "low uncertainty avoidance"),
    "MAS": ("masculinity", "femininity"),
    "LTO": ("long-term orientation", "short-term orientation"),
    "IVR": ("indulgence", "restraint"),
}
HIGH_POLE = {dim: poles[0] for dim, poles in POLES.items()}
BANK_FILE = "cultural_items.json"
SPLIT = "test"


def bank_path() -> Path:
    return data_dir() / BANK_FILE


def _check_split(split: str | None, name: str) -> None:
    if split is not None and split != SPLIT:
        raise ValueError(f"{name} has one split, {SPLIT!r}; got split={split!r}")


def _check_dimensions(dimensions) -> tuple[str, ...]:
    if dimensions is None:
        return DIMENSIONS
    if isinstance(dimensions, str):
        dimensions = [dimensions]
    bad = [d for d in dimensions if d not in DIMENSIONS]
    if bad or not dimensions:
        raise ValueError(f"dimensions must be a non-empty list of: {', '.join(DIMENSIONS)}; got {dimensions!r}")
    return tuple(dimensions)


def read_items(path: str | os.PathLike) -> list[dict]:
    """A file in CDEval's schema: a JSON array of objects with the five CDEval keys (any line
    endings, any key order). Checks every row's keys and Dimension/Domain values."""
    path = Path(path)
    with open(path, encoding="utf-8-sig") as f:
        data = json.load(f)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON array of items, got {type(data).__name__}")
    rows = []
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise ValueError(f"{path}: item {i} is {type(row).__name__}, not an object")
        missing = [k for k in FIELDS if k not in row]
        if missing:
            raise ValueError(f"{path}: item {i} lacks the key(s) {', '.join(missing)}")
        clean = {k: " ".join(str(row[k]).split()) for k in FIELDS}  # collapse stray whitespace
        if clean["Dimension"] not in DIMENSIONS:
            raise ValueError(f"{path}: item {i} has Dimension {row['Dimension']!r}; known: {', '.join(DIMENSIONS)}")
        if clean["Domain"] not in DOMAINS:
            raise ValueError(f"{path}: item {i} has Domain {row['Domain']!r}; known: {', '.join(DOMAINS)}")
        rows.append(clean)
    return rows


def to_dataset(rows: list[dict], source: str, ids: list[str] | None = None, dimensions=None):
    """Rows (CDEval keys) -> a datasets.Dataset with COLUMNS, keeping only `dimensions`
    (selected by each row's Dimension field)."""
    keep = set(_check_dimensions(dimensions))
    ids = ids or [f"{source}-{i}" for i in range(len(rows))]
    chosen = [(i, r) for i, r in zip(ids, rows) if r["Dimension"] in keep]
    features = datasets.Features({c: datasets.Value("string") for c in COLUMNS})
    columns = {"id": [i for i, _ in chosen], **{k: [r[k] for _, r in chosen] for k in FIELDS},
               "source": [source] * len(chosen)}
    return datasets.Dataset.from_dict(columns, features=features, split=SPLIT)


def bank_ids(rows: list[dict]) -> list[str]:
    """Ids of the authored items: `<DIM>-<Domain>-<k>`, k counting within the cell from 1."""
    seen: dict[tuple, int] = {}
    ids = []
    for r in rows:
        cell = (r["Dimension"], r["Domain"])
        seen[cell] = seen.get(cell, 0) + 1
        ids.append(f"{cell[0]}-{cell[1]}-{seen[cell]}")
    return ids


def load_cultural_items(split: str | None = None, path: str | os.PathLike | None = None, dimensions=None):
    """The authored bank (data/cultural_items.json, or `path`): a DatasetDict({'test': ...}), or
    the Dataset itself when split='test'."""
    _check_split(split, "cultural-items")
    _check_dimensions(dimensions)
    rows = read_items(path or bank_path())
    ds = to_dataset(rows, "alignlab", ids=bank_ids(rows), dimensions=dimensions)
    return ds if split is not None else datasets.DatasetDict({SPLIT: ds})


def bank_sizes() -> dict[str, int] | None:
    try:
        return {SPLIT: len(json.loads(bank_path().read_text(encoding="utf-8")))}
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# The real benchmark

def load_cdeval(split: str | None = None, path: str | os.PathLike | None = None, dimensions=None):
    """CDEval from a local `CDEval.json` (`path`, a file or a folder holding it) or the hub.
    Ids are `cdeval-<row index in the source file>`; rows are selected by `dimensions`."""
    _check_split(split, "cdeval")
    _check_dimensions(dimensions)
    if path is not None:
        path = Path(path)
        if path.is_dir():
            path = path / "CDEval.json"
        if not path.is_file():
            raise FileNotFoundError(f"CDEval expects a JSON file at {path}, which does not exist")
        rows = read_items(path)
    else:
        rows = _hub_rows()
    ds = to_dataset(rows, "cdeval", ids=[f"cdeval-{i}" for i in range(len(rows))], dimensions=dimensions)
    return ds if split is not None else datasets.DatasetDict({SPLIT: ds})


def _hub_rows() -> list[dict]:
    try:
        loaded = datasets.load_dataset(HUB_ID)
    except Exception as err:  # offline machines fail in several ways (DNS, offline mode, ...)
        raise RuntimeError(
            f"Could not load {HUB_ID!r} from the Hugging Face hub: it is unreachable from here and "
            f"not in the local cache ({type(err).__name__}: {err}). load('cdeval', path='.../CDEval.json') "
            "reads a local copy of the benchmark's file instead.") from err
    part = loaded[next(iter(loaded))] if isinstance(loaded, datasets.DatasetDict) else loaded
    missing = [k for k in FIELDS if k not in part.column_names]
    if missing:
        raise RuntimeError(f"{HUB_ID} lacks the column(s) {', '.join(missing)}: has {part.column_names}")
    rows = []
    for i, r in enumerate(part):
        clean = {k: " ".join(str(r[k]).split()) for k in FIELDS}
        if clean["Dimension"] not in DIMENSIONS or clean["Domain"] not in DOMAINS:
            raise RuntimeError(f"{HUB_ID} row {i}: unknown Dimension/Domain {clean['Dimension']!r}/{clean['Domain']!r}")
        rows.append(clean)
    return rows


def cdeval_cached_sizes() -> dict[str, int] | None:
    """Rows if CDEval is in the local hub cache (reads dataset_info.json; never the network)."""
    for info_path in sorted((hub.hf_datasets_cache() / "Rykeryuhang___cdeval").glob("**/dataset_info.json")):
        try:
            splits = json.loads(info_path.read_text())["splits"]
            return {SPLIT: int(sum(s["num_examples"] for s in splits.values()))}
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def sample_per_cell(ds, n_per_cell: int, seed: int = 0):
    """At most `n_per_cell` items from each Dimension x Domain cell, drawn at random with `seed`
    (not by row order); the result keeps the source order. A cell with fewer keeps them all."""
    if not isinstance(n_per_cell, int) or isinstance(n_per_cell, bool) or n_per_cell < 1:
        raise ValueError(f"n_per_cell must be an int >= 1; got {n_per_cell!r}")
    rng = np.random.default_rng(seed)
    cells: dict[tuple, list[int]] = {}
    for i, (dim, dom) in enumerate(zip(ds["Dimension"], ds["Domain"])):
        cells.setdefault((dim, dom), []).append(i)
    keep = []
    for cell in sorted(cells):
        rows = cells[cell]
        keep += rows if len(rows) <= n_per_cell else list(rng.choice(rows, n_per_cell, replace=False))
    return ds.select(sorted(int(i) for i in keep))


# ---------------------------------------------------------------------------------------------
# Validation of an item bank

def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


def validate_items(rows, min_per_cell: int = 5, max_length_ratio: float = 1.5,
                   max_mean_log_ratio: float = 0.1) -> dict:
    """Check an item bank (rows with CDEval keys, or a Dataset) and report:

    - coverage: items per Dimension x Domain cell (42 cells), and cells below `min_per_cell`;
    - length balance: per item, the ratio of the longer option to the shorter (in characters),
      items above `max_length_ratio`; per dimension, the mean log(len Option 1 / len Option 2)
      (a length cue for one pole if far from 0; limit `max_mean_log_ratio`) and the share of
      items whose Option 1 is the longer;
    - duplicates: repeated questions or option texts (case and punctuation ignored), and
      items whose two options are identical;
    - empty fields.

    Returns {"ok": bool, "problems": [str], "n_items", "coverage": DataFrame (Dimension x
    Domain counts), "length": DataFrame per dimension, ...}."""
    if hasattr(rows, "to_list"):  # a datasets.Dataset
        rows = rows.to_list()
    df = pd.DataFrame(list(rows))
    problems = []
    missing = [k for k in FIELDS if k not in df.columns]
    if missing:
        raise ValueError(f"items lack the field(s) {', '.join(missing)}")
    for k in FIELDS:
        empty = int((df[k].astype(str).str.strip() == "").sum())
        if empty:
            problems.append(f"{empty} item(s) with an empty {k}")
    bad_dim = sorted(set(df["Dimension"]) - set(DIMENSIONS))
    bad_dom = sorted(set(df["Domain"]) - set(DOMAINS))
    if bad_dim or bad_dom:
        problems.append(f"unknown dimension(s) {bad_dim} or domain(s) {bad_dom}")

    coverage = (df.groupby(["Dimension", "Domain"]).size().unstack(fill_value=0)
                .reindex(index=list(DIMENSIONS), columns=list(DOMAINS), fill_value=0))
    thin = [(d, m, int(coverage.loc[d, m])) for d in DIMENSIONS for m in DOMAINS if coverage.loc[d, m] < min_per_cell]
    if thin:
        problems.append(f"{len(thin)} cell(s) below {min_per_cell} items: {thin[:6]}")

    len1 = df["Option 1"].str.len().to_numpy(float)
    len2 = df["Option 2"].str.len().to_numpy(float)
    ratio = np.maximum(len1, len2) / np.maximum(np.minimum(len1, len2), 1)
    log_ratio = np.log(np.maximum(len1, 1) / np.maximum(len2, 1))
    df = df.assign(length_ratio=ratio, log_ratio=log_ratio, option1_longer=len1 > len2)
    unbalanced = df[df["length_ratio"] > max_length_ratio]
    if len(unbalanced):
        problems.append(f"{len(unbalanced)} item(s) with one option over {max_length_ratio}x the other's length: "
                        + "; ".join(unbalanced["Question"].head(3)))
    length = (df.groupby("Dimension").agg(
        n=("Question", "size"), mean_chars_option1=("Option 1", lambda s: s.str.len().mean()),
        mean_chars_option2=("Option 2", lambda s: s.str.len().mean()), mean_log_ratio=("log_ratio", "mean"),
        max_length_ratio=("length_ratio", "max"), share_option1_longer=("option1_longer", "mean"))
        .reindex([d for d in DIMENSIONS if d in set(df["Dimension"])]))
    skewed = length[length["mean_log_ratio"].abs() > max_mean_log_ratio]
    if len(skewed):
        problems.append(f"option length favours one pole in {', '.join(skewed.index)} "
                        f"(|mean log length ratio| > {max_mean_log_ratio})")

    questions = df["Question"].map(_norm)
    options = pd.concat([df["Option 1"], df["Option 2"]]).map(_norm)
    duplicate_questions = sorted(set(df["Question"][questions.duplicated(keep=False)]))
    duplicate_options = sorted(set(pd.concat([df["Option 1"], df["Option 2"]])[options.duplicated(keep=False)]))
    same_options = df[df["Option 1"].map(_norm) == df["Option 2"].map(_norm)]["Question"].tolist()
    if duplicate_questions:
        problems.append(f"{len(duplicate_questions)} duplicated question(s): {duplicate_questions[:3]}")
    if duplicate_options:
        problems.append(f"{len(duplicate_options)} duplicated option text(s): {duplicate_options[:3]}")
    if same_options:
        problems.append(f"{len(same_options)} item(s) with identical options: {same_options[:3]}")
    return {
        "ok": not problems, "problems": problems, "n_items": len(df), "n_cells": int((coverage > 0).sum().sum()),
        "min_per_cell": int(coverage.to_numpy().min()), "coverage": coverage, "length": length,
        "duplicate_questions": duplicate_questions, "duplicate_options": duplicate_options,
        "identical_options": same_options,
    }


def validation_summary(report: dict) -> str:
    """A few lines of plain text for a validation report."""
    length = report["length"]
    lines = [
        f"{report['n_items']} items in {report['n_cells']}/42 Dimension x Domain cells; "
        f"fewest per cell: {report['min_per_cell']}",
        "option length (chars, Option 1 / Option 2) per dimension: " + ", ".join(
            f"{d} {r.mean_chars_option1:.0f}/{r.mean_chars_option2:.0f}" for d, r in length.iterrows()),
        "share of items whose Option 1 is longer: " + ", ".join(
            f"{d} {r.share_option1_longer:.2f}" for d, r in length.iterrows()),
        f"largest length ratio within an item: {length['max_length_ratio'].max():.2f}",
        f"duplicated questions: {len(report['duplicate_questions'])}; duplicated options: "
        f"{len(report['duplicate_options'])}; identical option pairs: {len(report['identical_options'])}",
        "OK" if report["ok"] else "PROBLEMS: " + " | ".join(report["problems"]),
    ]
    return "\n".join(lines)
