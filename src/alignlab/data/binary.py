"""Binary view of a SciQ-shaped dataset, as in the weak-to-strong generalization papers.

Each multiple-choice question becomes ONE example: the question paired with either its
correct answer (label 1) or one of its distractors (label 0). Exactly half the examples are
positive (up to rounding): a balanced label vector is shuffled, rather than a coin flipped
per question, so the classes are balanced in every view. Everything is determined by `seed`.

Schema of the view (one row per source question, in source order):

    text      "Q: {question} A: {answer}", the classifier's input
    label     1 if `answer` is the correct answer, else 0
    question  the question
    answer    the answer shown (the correct answer or one distractor)
    choices   all candidates, correct answer first then the distractors, for code that
              scores every candidate
    kind      the fact type (only when the source has a `kind` column, as world-facts does)
    subject   the subject (only when the source has a `subject` column)
    id        the row index of the question in the source dataset
"""

from __future__ import annotations

import random

import datasets

DISTRACTORS = ("distractor1", "distractor2", "distractor3")


def format_example(question: str, answer: str) -> str:
    return f"Q: {question} A: {answer}"


def balanced_labels(n: int, rng: random.Random) -> list[int]:
    """n labels, n // 2 of them 1 (the odd one out is a 0), in random order."""
    labels = [1] * (n // 2) + [0] * (n - n // 2)
    rng.shuffle(labels)
    return labels


def binary_view(ds, seed: int = 0):
    """The binary view of a SciQ-shaped `datasets.Dataset` (or of each split of a DatasetDict)."""
    if isinstance(ds, datasets.DatasetDict):
        return datasets.DatasetDict({name: binary_view(split, seed) for name, split in ds.items()})

    rng = random.Random(seed)
    labels = balanced_labels(len(ds), rng)
    extra = [c for c in ("kind", "subject") if c in ds.column_names]
    out = {c: [] for c in ("text", "label", "question", "answer", "choices", *extra, "id")}
    columns = ds[:]  # dict of lists: much faster than iterating over rows
    source_rows = (dict(zip(columns, values)) for values in zip(*columns.values()))
    for i, (row, label) in enumerate(zip(source_rows, labels)):
        correct = row["correct_answer"]
        wrong = [row[d] for d in DISTRACTORS if row[d] and row[d].strip() and row[d] != correct]
        if label == 1:
            answer = correct
        elif wrong:
            answer = rng.choice(wrong)
        else:
            raise ValueError(f"question {i} has no distractor that differs from its answer: {row['question']!r}")
        out["text"].append(format_example(row["question"], answer))
        out["label"].append(label)
        out["question"].append(row["question"])
        out["answer"].append(answer)
        out["choices"].append([correct] + [row[d] for d in DISTRACTORS])
        for c in extra:
            out[c].append(row[c])
        out["id"].append(i)

    features = datasets.Features({
        "text": datasets.Value("string"),
        "label": datasets.Value("int64"),
        "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "choices": datasets.Sequence(datasets.Value("string")),
        **{c: datasets.Value("string") for c in extra},
        "id": datasets.Value("int64"),
    })
    return datasets.Dataset.from_dict(out, features=features)
