"""Zero-shot accuracy on the binary view of a SciQ-shaped dataset: the capability ladder.

Every later study needs to know which model is weak and which is strong. Here each model
answers without training:

- a causal LM scores every candidate answer of a question by its log-likelihood after
  "Q: {question} A:" (alignlab.lm.scoring; length-normalized by default);
- an encoder (no LM head) scores each candidate by the cosine similarity of its embedding to the
  question's, a retrieval-style zero-shot.

Binary view. Each example shows ONE candidate (the correct answer or a distractor, balanced
labels; alignlab.data.binary_view). The model predicts 1 iff the shown candidate is its top-ranked
candidate for that question, and its probability of 1 is the softmax weight of the shown candidate
among all candidates. Chance is 0.5 in accuracy and in AUROC: a model that ranks at random says
1 a quarter of the time, right on a quarter of the positives and three quarters of the negatives.

Candidate scores do not depend on the seed, so they are computed once per (model, questions) and
cached; a seed only redraws which candidate each question shows.

    questions = first_questions(data.load("world-facts")["test"], 1000)
    predictions = evaluate_models(["minilm-l6", "smollm2-135m"], questions, seeds=[0, 1, 2])
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import softmax

from alignlab.cache import Cache
from alignlab.data import binary_view
from alignlab.lm.scoring import score_pairs
from alignlab.models.load import load_causal_lm, load_feature_extractor, model_kind

CODE_VERSION = "zeroshot-1"
DISTRACTORS = ("distractor1", "distractor2", "distractor3")
COSINE_TEMPERATURE = 0.05  # softmax temperature for cosine similarities, which live in [-1, 1]


def first_questions(split, n_questions: int):
    """The first `n_questions` rows of a split (all of them when it has fewer)."""
    return split.select(range(min(n_questions, len(split))))


def candidates(row: dict) -> list[str]:
    """The candidate answers of a SciQ-shaped row, correct answer first (as in binary_view)."""
    return [row["correct_answer"], *(row[d] for d in DISTRACTORS)]


def _lm_scores(model_name: str, questions, normalize: bool, batch_size: int) -> np.ndarray:
    model, tokenizer = load_causal_lm(model_name)
    pairs = [(f"Q: {row['question']} A:", f" {choice}") for row in questions for choice in candidates(row)]
    scores = score_pairs(model, tokenizer, pairs, batch_size=batch_size, progress=True).get(normalize)
    return scores.reshape(len(questions), -1)


def _encoder_scores(model_name: str, questions, batch_size: int) -> np.ndarray:
    extract = load_feature_extractor(model_name)
    q = extract([f"Q: {row['question']}" for row in questions], batch_size=batch_size, progress=True)
    a = extract([choice for row in questions for choice in candidates(row)], batch_size=batch_size, progress=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    a = a.reshape(len(questions), -1, q.shape[1])
    return np.einsum("nd,ncd->nc", q, a)


def candidate_scores(model_name: str, questions, normalize: bool = True, batch_size: int = 32,
                     cache: Cache | None = None) -> np.ndarray:
    """(n_questions, n_candidates) scores, correct answer in column 0. Cached by model and data."""
    kind = model_kind(model_name)

    def compute():
        if kind == "encoder":
            return _encoder_scores(model_name, questions, batch_size)
        return _lm_scores(model_name, questions, normalize, batch_size)

    cache = cache or Cache()
    content = [[row["question"], *candidates(row)] for row in questions]  # the key is the data itself
    return cache.memo("zeroshot-scores", CODE_VERSION, compute, model=model_name, questions=content,
                      normalize=normalize if kind == "decoder" else None)


def binary_predictions(scores: np.ndarray, view) -> pd.DataFrame:
    """Per-example predictions on a binary view whose `id` column indexes rows of `scores`.

    Columns: id, kind (when present), label, shown (index of the candidate shown), pred, prob, correct.
    """
    ids = np.asarray(view["id"])
    shown = np.array([choices.index(answer) for choices, answer in zip(view["choices"], view["answer"])])
    rows = scores[ids]
    temperature = COSINE_TEMPERATURE if np.all(np.abs(rows) <= 1.0) else 1.0
    prob = softmax(rows / temperature, axis=1)[np.arange(len(ids)), shown]
    pred = (rows.argmax(axis=1) == shown).astype(int)
    label = np.asarray(view["label"])
    out = pd.DataFrame({"id": ids, "label": label, "shown": shown, "pred": pred, "prob": prob,
                        "correct": (pred == label).astype(int)})
    if "kind" in view.column_names:
        out.insert(1, "kind", view["kind"])
    return out


def evaluate_models(models: list[str], questions, seeds: list[int], normalize: bool = True,
                    batch_size: int = 32) -> pd.DataFrame:
    """Tidy per-example predictions for every model and seed (columns: model, seed, + binary_predictions)."""
    frames = []
    for name in models:
        scores = candidate_scores(name, questions, normalize=normalize, batch_size=batch_size)
        for seed in seeds:
            frame = binary_predictions(scores, binary_view(questions, seed=seed))
            frame.insert(0, "seed", seed)
            frame.insert(0, "model", name)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def multiple_choice_accuracy(models: list[str], questions, normalize: bool = True) -> pd.DataFrame:
    """4-way accuracy (chance 0.25) per model: is the correct answer ranked first? (cached scores)."""
    return pd.DataFrame([{"model": name,
                          "mc_accuracy": float((candidate_scores(name, questions, normalize).argmax(1) == 0).mean())}
                         for name in models])
