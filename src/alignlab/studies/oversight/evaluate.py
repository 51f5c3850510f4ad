"""Per seed: the judge's accuracy and calibration per protocol, and protocol labels as weak
supervision for the weak-to-strong student (`alignlab.training.w2s`).

What seeds vary. Generating transcripts is the expensive part, so it is done once for the pool of
questions; every seed then (i) splits the pool into two random halves (`w2s.split_halves`): the
W2SG half whose judge labels train the student, and the evaluation half on which judge accuracy
and the student are measured, and (ii) draws the consultancy assignment. Seeds therefore share
transcripts: their CIs understate question-sampling variance; `report.judge_table` also gives a
bootstrap CI over all pool questions, the more honest interval for judge accuracy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from alignlab.stats import expected_calibration_error
from alignlab.studies.oversight.config import Config
from alignlab.studies.oversight.protocols import assignment_for, protocol_probs
from alignlab.training.w2s import PGRUndefinedWarning, W2SConfig, make_learner, pgr, split_halves, train_on_labels

STUDENT_LABEL_SOURCES = ("naive", "interaction", "debate")  # protocols whose labels train a W2SG student


def student_w2s_config(config: Config) -> W2SConfig:
    """The W2SG settings of the student: `config.mode`, cross-entropy, one model (no ensemble)."""
    return W2SConfig(mode=config.mode, losses=["xent"], methods=["single"])


def _accuracy(p: np.ndarray, y: np.ndarray) -> float:
    return float(((p > 0.5) == y).mean())


def evaluate_protocols(items, probs, config: Config, label_sources=STUDENT_LABEL_SOURCES):
    """Per seed of `config.seeds`: judge accuracy and ECE per protocol and per debate round on the
    evaluation half; the W2SG student (`config.strong_model`) trained on each label source's judge
    probabilities on the other half. Returns (judge DataFrame, rounds DataFrame, w2s DataFrame)."""
    w2s_config = student_w2s_config(config)
    y = np.array([it["label"] for it in items])
    texts = [it["text"] for it in items]
    learner = None
    judge_rows, round_rows, w2s_rows = [], [], []
    for seed in config.seeds:
        train_idx, eval_idx = split_halves(len(items), seed)
        by_protocol = protocol_probs(probs, config, assignment_for(len(items), seed))
        for protocol, p in by_protocol.items():
            judge_rows.append({"seed": seed, "protocol": protocol, "acc": _accuracy(p[eval_idx], y[eval_idx]),
                               "ece": float(expected_calibration_error(y[eval_idx], p[eval_idx])),
                               "mean_p": float(p[eval_idx].mean())})
        if "debate" in config.protocols:
            for r in range(1, config.rounds + 1):
                p = probs[("debate", "", r)]
                round_rows.append({"seed": seed, "round": r, "acc": _accuracy(p[eval_idx], y[eval_idx])})
        sources = [s for s in label_sources if s in by_protocol]
        if sources:
            if learner is None:
                learner = make_learner(config.strong_model, {"pool": texts}, w2s_config)
            for source in sources:
                p = by_protocol[source]
                result = train_on_labels(learner, "pool", train_idx, np.stack([1 - p[train_idx], p[train_idx]], 1),
                                         y[train_idx], eval_idx, y[eval_idx], w2s_config, seed)
                w2s_rows.append({"seed": seed, "source": source, "weak_acc": _accuracy(p[eval_idx], y[eval_idx]),
                                 "weak_label_acc": _accuracy(p[train_idx], y[train_idx]), **result})
    w2s_df = pd.DataFrame(w2s_rows)
    if len(w2s_df):
        with warnings.catch_warnings():  # an undefined PGR is NaN; report.w2s_table counts the seeds that have one
            warnings.simplefilter("ignore", PGRUndefinedWarning)
            w2s_df["pgr"] = [pgr(w, s, c) for w, s, c in zip(w2s_df.weak_acc, w2s_df.student_acc, w2s_df.ceiling_acc)]
    return pd.DataFrame(judge_rows), pd.DataFrame(round_rows), w2s_df
