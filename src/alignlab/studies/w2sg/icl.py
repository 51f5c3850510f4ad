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
tokens): score = log p(" Yes") - log p(" No"); the prediction is
Yes when the score is positive (accuracy), and the score ranks examples (AUROC, threshold-free).

Demonstrations come from the weak teacher's labelled pool (half 2 of the training split, the data
the student learns from), with labels from one of three sources (`config.SOURCES`):
  `weak`     the weak teacher's predictions,
  `gold`     the true labels,
  `flipped`  the true labels with a random fraction flipped, by default the weak labels' own
             error rate, which separates "how many labels are wrong" from "which ones".
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

from alignlab.cache import Cache
from alignlab.lm.scoring import score_labels
from alignlab.models.load import load_causal_lm
from alignlab.stats import auroc
from alignlab.studies.w2sg.config import RETRIEVERS, Config
from alignlab.training.w2s import cached_features

INSTRUCTION = "Decide whether each answer is correct."
LABEL_WORDS = (" No", " Yes")  # index = label
SCORES_VERSION = "1"


def format_demo(text: str, label: int, confidence: float | None = None) -> str:
    tag = "" if confidence is None else f"\nTeacher confidence: {round(100 * confidence)}%"
    return f"{text}{tag}\nCorrect:{LABEL_WORDS[int(label)]}"


def build_prompt(query: str, demos: list[str]) -> str:
    return "\n\n".join([INSTRUCTION, *demos, f"{query}\nCorrect:"])


def flip_labels(labels, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of binary `labels` with round(fraction * n) of them, chosen at random, flipped."""
    labels = np.asarray(labels).copy()
    n_flip = int(round(fraction * len(labels)))
    where = rng.choice(len(labels), size=n_flip, replace=False)
    labels[where] = 1 - labels[where]
    return labels


def retrieve_random(shown_labels, n_queries: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n_queries, k) pool indices: k//2 shown-positive, k - k//2 shown-negative, shuffled per query."""
    shown_labels = np.asarray(shown_labels)
    positive, negative = np.flatnonzero(shown_labels == 1), np.flatnonzero(shown_labels == 0)
    out = np.zeros((n_queries, k), dtype=int)
    for q in range(n_queries):
        n_pos = k // 2 if q % 2 == 0 else k - k // 2  # alternate the odd one out
        n_pos = min(n_pos, len(positive))
        picks = np.concatenate([rng.choice(positive, n_pos, replace=False),
                                rng.choice(negative, k - n_pos, replace=False)])
        out[q] = rng.permutation(picks)
    return out


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


def label_scores(model_name: str, prompts: list[str], batch_size: int = 16) -> np.ndarray:
    """log p(" Yes") - log p(" No") after each prompt, through alignlab.lm.scoring; cached by prompts."""

    def compute():
        model, tokenizer = load_causal_lm(model_name)
        scores = score_labels(model, tokenizer, prompts, list(LABEL_WORDS), batch_size=batch_size)
        return scores[:, 1] - scores[:, 0]

    return Cache().memo("icl_label_scores", SCORES_VERSION, compute, model=model_name, prompts=list(prompts))


def grid(retrievers: list[str], sources: list[str]) -> list[tuple[str, str]]:
    """(retriever, source) combinations: all sources with retrievers[0], all retrievers with sources[0]."""
    combos = [(retrievers[0], s) for s in sources] + [(r, sources[0]) for r in retrievers[1:]]
    return list(dict.fromkeys(combos))


def run_icl_seed(model_name: str, pool_texts, pool_gold, pool_weak_probs, pool_embeddings, query_texts,
                 query_gold, query_embeddings, ks, retrievers, sources, seed: int,
                 flip_fraction: float | None = None, confidence_tags: bool = False) -> list[dict]:
    """One seed: rows (seed, retriever, source, k, acc, auc, n) for the grid of `grid`."""
    rng = np.random.default_rng([seed, 2])
    pool_gold = np.asarray(pool_gold)
    weak = np.asarray(pool_weak_probs).argmax(1)
    weak_error = float((weak != pool_gold).mean())
    fraction = weak_error if flip_fraction is None else flip_fraction
    shown = {"weak": weak, "gold": pool_gold, "flipped": flip_labels(pool_gold, fraction, rng)}
    confidence = np.asarray(pool_weak_probs)[np.arange(len(weak)), weak] if confidence_tags else None
    query_gold = np.asarray(query_gold)
    rows = []

    def evaluate(retriever, source, k, picks):
        prompts = []
        for q, text in enumerate(query_texts):
            demos = [format_demo(pool_texts[i], shown[source][i], None if confidence is None else confidence[i])
                     for i in (picks[q] if k else [])]
            prompts.append(build_prompt(text, demos))
        scores = label_scores(model_name, prompts)
        rows.append({"seed": seed, "retriever": retriever, "source": source, "k": int(k),
                     "acc": float(((scores > 0).astype(int) == query_gold).mean()),
                     "auc": float(auroc(query_gold, scores)), "n": len(prompts),
                     "flip_fraction": fraction if source == "flipped" else 0.0})

    zero_shot = None
    for k in ks:
        for retriever, source in grid(retrievers, sources):
            if k == 0:
                if zero_shot is None:
                    evaluate(retriever, source, 0, None)
                    zero_shot = rows[-1]
                else:
                    rows.append({**zero_shot, "retriever": retriever, "source": source})
                continue
            if retriever == "random":
                picks = retrieve_random(shown[source], len(query_texts), k, rng)
            elif retriever == "knn":
                picks = retrieve_knn(pool_embeddings, query_embeddings, k)
            elif retriever == "bm25":
                picks = retrieve_bm25(pool_texts, query_texts, k)
            else:
                raise ValueError(f"unknown retriever {retriever!r}: use one of {', '.join(RETRIEVERS)}")
            evaluate(retriever, source, k, picks)
    return rows


def query_subset(n_test: int, n_questions: int) -> np.ndarray:
    """The fixed subset of test questions used for ICL (the same for every seed)."""
    return np.sort(np.random.default_rng(12345).permutation(n_test)[:min(n_questions, n_test)])


def run_icl_study(config: Config, texts: dict, labels: dict, teacher_labels: dict,
                  embedder: str = "minilm-l6") -> pd.DataFrame:
    """In-context W2SG with `config.icl_model` on the first pair's teachers, over `config.icl_seeds`.

    `teacher_labels` maps (pair, seed) -> (half-2 indices, the single weak teacher's soft labels on
    them), from `alignlab.studies.w2sg.pipeline.run_study`; `embedder` gives the features of the
    `knn` retriever. Returns a tidy DataFrame, one row per (seed, retriever, source, k)."""
    train_emb = cached_features(embedder, texts["train"])
    test_emb = cached_features(embedder, texts["test"])
    queries = query_subset(len(texts["test"]), config.n_icl_questions)
    rows = []
    for seed in config.icl_seeds:
        half2, soft = teacher_labels[(config.first_pair, seed)]
        pool_texts = [texts["train"][i] for i in half2]
        rows += run_icl_seed(config.icl_model, pool_texts, np.asarray(labels["train"])[half2], soft, train_emb[half2],
                             [texts["test"][i] for i in queries], np.asarray(labels["test"])[queries],
                             test_emb[queries], config.icl_k, config.icl_retrievers, config.icl_sources, seed,
                             config.icl_flip_fraction, config.icl_confidence_tags)
    return pd.DataFrame(rows)
