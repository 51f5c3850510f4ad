"""Dataset statistics for SciQ-shaped sets: questions per split and fact type, lengths."""

from __future__ import annotations

import pandas as pd


def describe(splits) -> pd.DataFrame:
    """One row per fact type (`kind`; 'all' when the set has none): questions in each split, the
    total, mean words per question and per correct answer, and the share with a support passage.
    `splits` is a DatasetDict (or a dict of split name -> Dataset)."""
    frames = []
    for split, ds in splits.items():
        frame = ds.select_columns([c for c in ("question", "correct_answer", "support", "kind")
                                   if c in ds.column_names]).to_pandas()
        frame["split"] = split
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    if "kind" not in rows:
        rows["kind"] = "all"
    counts = rows.pivot_table(index="kind", columns="split", values="question", aggfunc="size", fill_value=0)
    counts = counts[[s for s in splits if s in counts.columns]]
    counts["total"] = counts.sum(axis=1)
    words = lambda column: column.str.split().str.len().mean()  # noqa: E731
    has_text = lambda column: column.fillna("").str.strip().ne("").mean()  # noqa: E731
    by_kind = rows.groupby("kind")
    counts["question_words"] = by_kind["question"].apply(words)
    counts["answer_words"] = by_kind["correct_answer"].apply(words)
    counts["with_support"] = by_kind["support"].apply(has_text)
    counts.loc["all"] = {**counts.drop(columns=["question_words", "answer_words", "with_support"]).sum(),
                         "question_words": words(rows["question"]), "answer_words": words(rows["correct_answer"]),
                         "with_support": has_text(rows["support"])}
    return counts.round(2)
