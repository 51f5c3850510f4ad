"""SciQ (Welbl, Liu & Gardner, 2017): 13,679 crowd-sourced multiple-choice science questions.

Two ways in, one result:

- `load_sciq_hub()`   the Hugging Face hub copy, `allenai/sciq` (needs the network, or the
                      hub cache); an unreachable hub raises a RuntimeError that says so.
- `load_sciq_files(folder)`  the original release files `train.json`, `valid.json`,
                      `test.json` (each a JSON array of objects), for machines without the hub.

Schema (one row per question; all strings), the same either way:

    question        the question text
    distractor3     a wrong answer
    distractor1     a wrong answer
    distractor2     a wrong answer
    correct_answer  the right answer
    support         a paragraph that supports the answer ("" for some questions)

Splits are named train / validation / test (the file `valid.json` is the validation split).
Sizes of the full release: 11,679 / 1,000 / 1,000. License: CC BY-NC 3.0 (non-commercial).
The data is not shipped with alignlab.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets

from alignlab import hub
from alignlab.data.names import SCIQ_FILES

HUB_ID = "allenai/sciq"
SPLITS = ("train", "validation", "test")
FILES = SCIQ_FILES  # split -> file name in the published release
COLUMNS = ("question", "distractor3", "distractor1", "distractor2", "correct_answer", "support")


def _check_split(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise ValueError(f"sciq has no split {split!r}; known splits: {', '.join(SPLITS)}")


def load_sciq(split: str | None = None, folder: str | os.PathLike | None = None):
    """SciQ from local files when `folder` is given, else from the hub."""
    if folder is not None:
        return load_sciq_files(folder, split)
    return load_sciq_hub(split)


def load_sciq_hub(split: str | None = None):
    """SciQ from the Hugging Face hub (or its local cache): a DatasetDict, or one split."""
    _check_split(split)
    try:
        if cached_split_sizes() is None and not hub.hub_reachable():  # fail in a second, not after retries
            raise ConnectionError("no connection to the hub")
        ds = datasets.load_dataset(HUB_ID, split=split)
    except Exception as err:  # offline machines fail in several ways (DNS, offline mode, ...)
        raise RuntimeError(
            f"Could not load {HUB_ID!r} from the Hugging Face hub: it is unreachable from here "
            f"and not in the local cache ({type(err).__name__}: {err}). "
            "alignlab.data.sciq.load_sciq_files(folder) reads local copies of the original "
            "train.json / valid.json / test.json instead (or load('sciq', folder=...))."
        ) from err
    if split is not None:
        return ds.select_columns(list(COLUMNS))
    return datasets.DatasetDict({s: ds[s].select_columns(list(COLUMNS)) for s in SPLITS})


def read_json_rows(path: Path) -> list[dict]:
    """One SciQ file: a JSON array of objects with the six SciQ keys (all strings)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON array of questions, got {type(data).__name__}")
    for i, row in enumerate(data):
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise ValueError(f"{path}: question {i} lacks the key(s) {', '.join(missing)}")
    return data


def load_sciq_files(folder: str | os.PathLike, split: str | None = None):
    """SciQ from a folder holding the original train.json, valid.json and test.json."""
    _check_split(split)
    folder = Path(folder)
    features = datasets.Features({c: datasets.Value("string") for c in COLUMNS})

    def make(s):
        path = folder / FILES[s]
        if not path.is_file():
            raise FileNotFoundError(f"SciQ split {s!r} expects {path}, which does not exist")
        rows = read_json_rows(path)
        cols = {c: [str(r[c]) for r in rows] for c in COLUMNS}
        return datasets.Dataset.from_dict(cols, features=features, split=s)

    if split is not None:
        return make(split)
    return datasets.DatasetDict({s: make(s) for s in SPLITS})


def cached_split_sizes() -> dict[str, int] | None:
    """Rows per split if SciQ from the hub is already in the local cache, else None.
    Reads the cache's dataset_info.json: never touches the network."""
    for info_path in sorted((hub.hf_datasets_cache() / "allenai___sciq").glob("**/dataset_info.json")):
        try:
            splits = json.loads(info_path.read_text())["splits"]
            return {s: int(splits[s]["num_examples"]) for s in SPLITS}
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None
