"""Weak-to-strong on a classification task (safety, legal), through study 01's training layer.

Per seed and per (weak, strong) pair, as study 01 (`alignlab.studies.w2sg.pipeline`) does it:
the training split is cut into two random halves (`split_halves`); the weak model learns half 1 on
gold labels and labels half 2 (soft labels); the strong ceiling learns half 2 on gold labels; the
strong student learns half 2 on the weak soft labels, once per loss (`xent`, `logconf`: the
confidence loss, the WTS paper's "efficient strategy"). Teacher and ceiling pick their epoch on
validation accuracy with gold labels, the student keeps the last of the configured epochs (study
01's `fixed` selection). Learners, fits and losses are `alignlab.training`'s; nothing is copied.

Unlike the WTS code, the weak labels come from a *trained* weak model (the released code takes a
base model with an untrained head as the weak supervisor).

Test probabilities of each seed are cached; metrics and PGR are computed from them outside the
cache (`metric_rows`), so a warm run recomputes nothing but arithmetic.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

from alignlab.cache import Cache
from alignlab.studies.beyond_accuracy.config import Config
from alignlab.training.w2s import W2SConfig, accuracy_of, auroc_of, make_learner, split_halves

SEED_VERSION = "1"
METRICS = ("accuracy", "balanced_accuracy", "weighted_f1", "auroc", "positive_recall", "false_refusal")
LOWER_IS_BETTER = ("false_refusal",)


def classifier_settings(config: Config) -> W2SConfig:
    """The training settings of the study's parameters (part of each seed's cache key)."""
    return W2SConfig(mode=config.mode, feature_layer=config.feature_layer, losses=list(config.losses),
                     methods=["single"], epochs=config.epochs, lr=config.lr)


def classification_metrics(y, probs, contrast=None) -> dict:
    """The task metrics of (n, 2) probabilities against labels `y` (1 = unsafe / Relevant):
    accuracy, balanced accuracy, weighted F1, AUROC, recall of class 1, and the false-refusal rate
    (share of the `contrast` items, all benign, called class 1; NaN without contrast items)."""
    y = np.asarray(y).astype(int)
    predicted = np.asarray(probs).argmax(1)
    contrast = np.zeros(len(y), bool) if contrast is None else np.asarray(contrast, bool)
    return {
        "accuracy": accuracy_of(y, probs),
        "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
        "weighted_f1": float(f1_score(y, predicted, average="weighted")),
        "auroc": auroc_of(y, probs),
        "positive_recall": float(recall_score(y, predicted, zero_division=0.0)),
        "false_refusal": float(predicted[contrast].mean()) if contrast.any() else float("nan"),
    }


def run_classification_seed(weak, strong, labels: dict, settings: W2SConfig, seed: int) -> dict:
    """One seed: {"weak": test probs, "ceiling": test probs, "student_<loss>": test probs, ...} as
    lists, plus the weak labels' accuracy on half 2."""
    y, y_val = np.asarray(labels["train"]), np.asarray(labels["validation"])
    half1, half2 = split_halves(len(y), seed)
    base = settings.fit_config("xent", seed)
    teacher = weak.fit("train", half1, y[half1], base, val_labels=y_val)
    soft = weak.predict(teacher, "train", half2).astype(np.float32)
    ceiling = strong.fit("train", half2, y[half2], base, val_labels=y_val)
    out = {"weak": weak.predict(teacher, "test").tolist(), "ceiling": strong.predict(ceiling, "test").tolist(),
           "weak_label_acc": accuracy_of(y[half2], soft)}
    for loss in settings.losses:
        student = strong.fit("train", half2, soft, settings.fit_config(loss, seed))
        out[f"student_{loss}"] = strong.predict(student, "test").tolist()
    return out


def run_task(task: str, splits: dict, pairs: list, config: Config, progress: bool = False) -> dict:
    """Every pair and seed of one task: {(weak, strong): [seed results]} (cached per seed)."""
    texts = {s: list(df.text) for s, df in splits.items()}
    labels = {s: np.asarray(df.label) for s, df in splits.items()}
    settings = classifier_settings(config)
    cache, results = Cache(), {}
    learners = {}

    def learner(model):
        if model not in learners:
            learners[model] = make_learner(model, texts, settings, progress=progress)
        return learners[model]

    for weak, strong in pairs:
        results[(weak, strong)] = [
            cache.memo("beyond-accuracy-seed", SEED_VERSION,
                       lambda seed=seed, weak=weak, strong=strong: run_classification_seed(
                           learner(weak), learner(strong), labels, settings, seed),
                       task=task, weak=weak, strong=strong, texts=texts,
                       labels={s: y.tolist() for s, y in labels.items()}, settings=asdict(settings), seed=seed)
            for seed in range(config.n_seeds)]
    return results


def metric_rows(task: str, splits: dict, results: dict) -> pd.DataFrame:
    """One row per (pair, seed, role): role weak, ceiling or student_<loss>, with every metric."""
    y, contrast = np.asarray(splits["test"].label), np.asarray(splits["test"].contrast)
    rows = []
    for (weak, strong), seeds in results.items():
        for seed, out in enumerate(seeds):
            for role, probs in out.items():
                if role == "weak_label_acc":
                    continue
                rows.append({"task": task, "weak": weak, "strong": strong, "seed": seed, "role": role,
                             "weak_label_acc": out["weak_label_acc"],
                             **classification_metrics(y, np.asarray(probs), contrast)})
    return pd.DataFrame(rows)


def item_correctness(splits: dict, results: dict, role: str) -> dict:
    """{(weak, strong): per-test-item correctness of `role`, averaged over seeds} (for paired
    bootstraps over test items)."""
    y = np.asarray(splits["test"].label)
    return {pair: np.mean([np.asarray(out[role]).argmax(1) == y for out in seeds], axis=0)
            for pair, seeds in results.items()}


def run_tasks(all_splits: dict, pairs: list, config: Config, progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """`run_task` on every task of `all_splits`: (metric rows of all tasks, {task: results})."""
    results = {task: run_task(task, splits, pairs, config, progress) for task, splits in all_splits.items()}
    rows = [metric_rows(task, all_splits[task], res) for task, res in results.items()]
    return (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()), results
