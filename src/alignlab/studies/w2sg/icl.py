"""In-context weak-to-strong generalization: the strong LM learns from demonstrations whose labels
come from the weak teacher.

The strong causal LM judges "Q: ... A: ..." examples few-shot. A prompt is

    Decide whether each answer is correct.

    Q: What is the capital of France? A: Paris
    Correct: Yes

    ... (k demonstrations)

    Q: <test question> A: <answer>
    Correct:

and the label is read from the likelihood of the two label tokens, " Yes" and " No", scored
through `alignlab.lm.scoring.score_labels` (one forward pass per prompt when both are single
tokens): score = log p(" Yes") - log p(" No"). Three measures per setting:
  `acc`      Yes when the score is positive: mixes what the model learnt with its label prior;
  `cal_acc`  Yes when the score is above the median score of the same setting on a fixed set of
             validation questions (the binary view is class-balanced, so the median is the
             balanced threshold; no labels are read): the prior calibrated away on validation;
  `auc`      the score ranks examples (threshold-free).
Per-question correctness is kept, for intervals that resample questions as well as seeds.

Demonstrations come from the student's pool (half 2 of the training split: the data the weak
teacher labels and the student learns from), with labels from one of four sources (`config.SOURCES`):
  `weak`     the weak teacher's predictions,
  `gold`     the true labels,
  `flipped`  the true labels with a random fraction flipped, by default the weak labels' own
             error rate, which separates "how many labels are wrong" from "which ones",
  `random`   the true labels with half flipped at random: labels that carry no information, the
             control that tells learning from the labels apart from learning the format.
The weak teacher's own accuracy on the same test questions is recorded with every seed
(`teacher_acc`), so ICL can be compared with its supervisor: ICL-PGR = (ICL acc with weak labels -
teacher acc) / (ICL acc with gold labels - teacher acc).
Optional confidence tags ("Teacher confidence: 87%") show the teacher's probability of the label.

Retrievers (`config.RETRIEVERS`) pick the k demonstrations of each test question:
  `random`  class-balanced random: k/2 shown-positive and k/2 shown-negative examples, shuffled;
  `knn`     the k most similar by cosine similarity of MiniLM sentence embeddings (mean pooling);
  `bm25`    the k best by BM25 (the `bm25s` package) of the test text against the pool texts.
Similarity-ranked demonstrations are ordered with the most similar last (nearest the question).

Grid. Every label source is run with the first retriever, every retriever with the first label
source, for each k (k = 0 is the zero-shot prompt shared by all). Scores are cached by the exact
prompts, so a re-run, or a grid that shares prompts with an earlier one, scores nothing twice.
"""

from __future__ import annotations

import bm25s
import numpy as np
import pandas as pd

from alignlab.lm.incontext import (  # noqa: F401  (LABEL_WORDS, SCORES_VERSION: read by tests and callers)
    INSTRUCTION,
    LABEL_WORDS,
    SCORES_VERSION,
    build_prompt,
    format_demo,
    label_scores,
    retrieve_random,
)
from alignlab.stats import auroc
from alignlab.studies.w2sg.config import RETRIEVERS, Config
from alignlab.training.w2s import cached_features

RANDOM_LABEL_FLIP = 0.5  # the `random` source: half the gold labels flipped


def flip_labels(labels, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of binary `labels` with round(fraction * n) of them, chosen at random, flipped."""
    labels = np.asarray(labels).copy()
    n_flip = int(round(fraction * len(labels)))
    where = rng.choice(len(labels), size=n_flip, replace=False)
    labels[where] = 1 - labels[where]
    return labels


def retrieve_knn(pool_embeddings, query_embeddings, k: int) -> np.ndarray:
    """(n_queries, k) indices of the most cosine-similar pool items, least similar first."""
    def unit(x):
        x = np.asarray(x, dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)

    similarity = unit(query_embeddings) @ unit(pool_embeddings).T
    top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return top[:, ::-1].copy()


def retrieve_bm25(pool_texts, query_texts, k: int) -> np.ndarray:
    """(n_queries, k) indices of the best BM25 matches in the pool, weakest first."""
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(list(pool_texts), stopwords="en", show_progress=False), show_progress=False)
    results, _ = retriever.retrieve(bm25s.tokenize(list(query_texts), stopwords="en", show_progress=False),
                                    k=k, show_progress=False)
    return np.asarray(results)[:, ::-1].copy()


def grid(retrievers: list[str], sources: list[str]) -> list[tuple[str, str]]:
    """(retriever, source) combinations: all sources with retrievers[0], all retrievers with sources[0]."""
    combos = [(retrievers[0], s) for s in sources] + [(r, sources[0]) for r in retrievers[1:]]
    return list(dict.fromkeys(combos))


def run_icl_seed(model_name: str, pool_texts, pool_gold, pool_weak_probs, pool_embeddings, queries: dict,
                 ks, retrievers, sources, seed: int, flip_fraction: float | None = None,
                 confidence_tags: bool = False, teacher_query_probs=None) -> list[dict]:
    """One seed: rows (seed, retriever, source, k, acc, cal_acc, auc, n, correct, teacher_acc) for the
    grid of `grid`. `queries`: {"test": (texts, gold labels, embeddings), "validation": (...)}, the
    validation set serving only the calibrated threshold; `teacher_query_probs`: the weak teacher's
    probabilities on the test queries (for `teacher_acc`)."""
    rng = np.random.default_rng([seed, 2])
    pool_gold = np.asarray(pool_gold)
    weak = np.asarray(pool_weak_probs).argmax(1)
    weak_error = float((weak != pool_gold).mean())
    fraction = weak_error if flip_fraction is None else flip_fraction
    shown = {"weak": weak, "gold": pool_gold, "flipped": flip_labels(pool_gold, fraction, rng),
             "random": flip_labels(pool_gold, RANDOM_LABEL_FLIP, rng)}
    flips = {"flipped": fraction, "random": RANDOM_LABEL_FLIP}
    confidence = np.asarray(pool_weak_probs)[np.arange(len(weak)), weak] if confidence_tags else None
    test_texts, test_gold, _ = queries["test"]
    test_gold = np.asarray(test_gold)
    teacher_acc = (float("nan") if teacher_query_probs is None
                   else float((np.asarray(teacher_query_probs).argmax(1) == test_gold).mean()))
    rows = []

    def picks_for(retriever, source, k, texts, embeddings):
        if k == 0:
            return [[] for _ in texts]
        if retriever == "random":
            return retrieve_random(shown[source], len(texts), k, rng)
        if retriever == "knn":
            return retrieve_knn(pool_embeddings, embeddings, k)
        if retriever == "bm25":
            return retrieve_bm25(pool_texts, texts, k)
        raise ValueError(f"unknown retriever {retriever!r}: use one of {', '.join(RETRIEVERS)}")

    def scores_of(retriever, source, k, split):
        texts, _, embeddings = queries[split]
        picks = picks_for(retriever, source, k, texts, embeddings)
        prompts = [build_prompt(text, [format_demo(pool_texts[i], shown[source][i],
                                                   None if confidence is None else confidence[i])
                                       for i in picks[q]])
                   for q, text in enumerate(texts)]
        return label_scores(model_name, prompts)

    def evaluate(retriever, source, k):
        scores = scores_of(retriever, source, k, "test")
        threshold = float(np.median(scores_of(retriever, source, k, "validation")))
        correct = ((scores > 0).astype(int) == test_gold).astype(int)
        cal_correct = ((scores > threshold).astype(int) == test_gold).astype(int)
        return {"seed": seed, "retriever": retriever, "source": source, "k": int(k),
                "acc": float(correct.mean()), "cal_acc": float(cal_correct.mean()),
                "auc": float(auroc(test_gold, scores)), "n": len(scores), "threshold": threshold,
                "correct": correct.tolist(), "cal_correct": cal_correct.tolist(),
                "teacher_acc": teacher_acc, "flip_fraction": flips.get(source, 0.0)}

    zero_shot = None
    for k in ks:
        for retriever, source in grid(retrievers, sources):
            if k == 0:  # no demonstrations: one zero-shot row, repeated under each setting's name
                zero_shot = zero_shot or evaluate(retriever, source, 0)
                rows.append({**zero_shot, "retriever": retriever, "source": source, "flip_fraction": 0.0})
            else:
                rows.append(evaluate(retriever, source, k))
    return rows


def query_subset(n: int, n_questions: int, salt: int = 12345) -> np.ndarray:
    """The fixed subset of a split's questions used for ICL (the same for every seed)."""
    return np.sort(np.random.default_rng(salt).permutation(n)[:min(n_questions, n)])


def run_icl_study(config: Config, texts: dict, labels: dict, teacher_labels: dict,
                  embedder: str = "minilm-l6") -> pd.DataFrame:
    """In-context W2SG with `config.icl_model` on the first pair's teachers, over `config.icl_seeds`.

    `teacher_labels` maps (pair, seed) -> (half-2 indices, the single weak teacher's soft labels on
    them, its probabilities on the test split), from `alignlab.studies.w2sg.pipeline.run_study`;
    `embedder` gives the features of the `knn` retriever. Returns a tidy DataFrame, one row per
    (seed, retriever, source, k), with the per-question correctness in `correct` / `cal_correct`."""
    embeddings = {split: cached_features(embedder, texts[split]) for split in ("train", "validation", "test")}
    picked = {"test": query_subset(len(texts["test"]), config.n_icl_questions),
              "validation": query_subset(len(texts["validation"]), config.n_icl_questions, salt=54321)}
    queries = {split: ([texts[split][i] for i in idx], np.asarray(labels[split])[idx], embeddings[split][idx])
               for split, idx in picked.items()}
    rows = []
    for seed in config.icl_seeds:
        half2, soft, teacher_test = teacher_labels[(config.first_pair, seed)]
        pool_texts = [texts["train"][i] for i in half2]
        rows += run_icl_seed(config.icl_model, pool_texts, np.asarray(labels["train"])[half2], soft,
                             embeddings["train"][half2], queries, config.icl_k, config.icl_retrievers,
                             config.icl_sources, seed, config.icl_flip_fraction, config.icl_confidence_tags,
                             teacher_query_probs=np.asarray(teacher_test)[picked["test"]])
    return pd.DataFrame(rows)
