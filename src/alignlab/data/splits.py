"""Rows per split -> a `datasets.DatasetDict` (or one split), shared by the generated datasets."""

from __future__ import annotations

import datasets

SPLITS = ("train", "validation", "test")


def to_datasets(name: str, rows_by_split: dict, features, description: str, split: str | None = None):
    """A DatasetDict of `rows_by_split` (split -> list of row dicts), or the one `split` asked for.
    Every Dataset carries `description` (generator and source versions) in its info."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"{name} has no split {split!r}; known splits: {', '.join(SPLITS)}")

    def make(s):
        info = datasets.DatasetInfo(description=description, version="1.0.0", features=features,
                                    license="MIT (code); facts from MIT / LGPL-2.1 / public-domain packages")
        columns = {c: [row[c] for row in rows_by_split[s]] for c in features}
        return datasets.Dataset.from_dict(columns, features=features, info=info, split=s)

    if split is not None:
        return make(split)
    return datasets.DatasetDict({s: make(s) for s in SPLITS})
