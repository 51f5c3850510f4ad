"""The numbers of study 02: the judge scored once per question on the whole pool, protocols
compared on the same questions, and every protocol's labels fed to study 01's student.

The judge is never trained, so it has no seeds: every protocol's verdict on every pool question
is one observation. Intervals resample QUESTIONS: Wilson for accuracy (a rate, so it stays in
[0, 1]), a percentile bootstrap over questions for AUROC and ECE (which therefore stay in their
ranges), a paired bootstrap over questions and an exact McNemar test for the difference between
two protocols (or two information settings) judged on the same questions.

The student (`alignlab.training.w2s`, the functions study 01 trains with) is the only trained
thing, so seeds live there: each seed splits the pool into two halves (`w2s.split_halves`), the
student learns the judge's soft labels on one half and is tested on the other against gold; the
ceiling learns gold labels on the same half. A question is tested in about half of the seeds, so
its results across seeds are correlated: the loop's intervals resample question ids (all of a
question's test appearances together), and PGR is the ratio of the pooled means,
(student - judge) / (ceiling - judge), reported only where the gap's interval excludes 0.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from alignlab.stats import (
    auroc,
    auroc_resampled,
    ece_resampled,
    expected_calibration_error,
    mcnemar_test,
    paired_bootstrap_ci,
    wilson_ci,
)
from alignlab.studies.oversight.config import PROTOCOLS, Config
from alignlab.studies.oversight.protocols import SHARED, consultant_sides, protocol_probs
from alignlab.training.w2s import PGRUndefinedWarning, W2SConfig, make_learner, pgr, split_halves, train_on_labels

SETTING_FREE = SHARED  # judged without any helper text: the same numbers under every setting


def student_w2s_config(config: Config) -> W2SConfig:
    """The W2SG settings of the student: `config.mode` and `config.losses`, one model (no
    ensemble); everything else is `W2SConfig`'s defaults, shared with study 01."""
    return W2SConfig(mode=config.mode, losses=list(config.losses), methods=["single"])


# ---------------------------------------------------------------------------------------------
# The judge, once per question


def judge_outcomes(items, probs, config: Config) -> pd.DataFrame:
    """One row per (setting, protocol, question): P(correct), the verdict (> 0.5) and whether it
    is right. Consultancy takes the stratified side of `consultant_sides(labels, data_seed)`."""
    y = np.array([it["label"] for it in items])
    sides = consultant_sides(y, config.data_seed)
    frames = []
    for info in config.info:
        for protocol, p in protocol_probs(probs, config, info, sides).items():
            frames.append(pd.DataFrame({"info": info, "protocol": protocol, "item": np.arange(len(y)), "label": y,
                                        "p_correct": p, "correct": ((p > 0.5) == y).astype(int)}))
    return pd.concat(frames, ignore_index=True)


def question_resamples(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """(n_boot x n) indices: `n_boot` resamples of range(n) with replacement, the unit being the question."""
    return np.random.default_rng([seed, 13]).integers(0, n, (n_boot, n))


def _interval(replicates) -> tuple[float, float]:
    if len(replicates) < 2:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(replicates, [0.025, 0.975])
    return float(lo), float(hi)


def judge_summary(outcomes: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    """Per (setting, protocol): accuracy [Wilson 95%], AUROC and ECE [bootstrap 95% over
    questions], mean P(correct), the share of "correct" verdicts, n questions."""
    return pd.DataFrame([{"info": info, "protocol": protocol, **_judge_row(g, n_boot)}
                         for (info, protocol), g in outcomes.groupby(["info", "protocol"], sort=False)])


def _judge_row(g: pd.DataFrame, n_boot: int) -> dict:
    y, p = g["label"].to_numpy(), g["p_correct"].to_numpy()
    k, n = int(g["correct"].sum()), len(g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        auc = auroc(y, p)
    acc_lo, acc_hi = wilson_ci(k, n)
    idx = question_resamples(n, n_boot)
    aucs = auroc_resampled(y, p, idx)  # NaN replicates (a resample with one class) are dropped
    auc_lo, auc_hi = _interval(aucs[~np.isnan(aucs)])
    ece_lo, ece_hi = _interval(ece_resampled(y, p, idx))
    return {"n": n, "acc": k / n, "acc_lo": acc_lo, "acc_hi": acc_hi, "auroc": auc, "auroc_lo": auc_lo,
            "auroc_hi": auc_hi, "ece": expected_calibration_error(y, p), "ece_lo": ece_lo, "ece_hi": ece_hi,
            "mean_p": float(p.mean()), "says_correct": float((p > 0.5).mean()), "shown_correct": float(y.mean())}


def compare_on_same_questions(outcomes: pd.DataFrame, a: tuple, b: tuple, n_boot: int) -> dict:
    """Protocol-in-setting `a` = (info, protocol) against `b` on the same questions: accuracy
    difference with a paired bootstrap 95% CI over questions, and the exact McNemar test."""
    def correct(key):
        g = outcomes[(outcomes["info"] == key[0]) & (outcomes["protocol"] == key[1])].sort_values("item")
        return g["correct"].to_numpy()

    ca, cb = correct(a), correct(b)
    lo, hi = paired_bootstrap_ci(ca, cb, n_boot=n_boot)
    return {"a": f"{a[1]} ({a[0]})", "b": f"{b[1]} ({b[0]})", "acc_a": float(ca.mean()), "acc_b": float(cb.mean()),
            "diff": float(ca.mean() - cb.mean()), "lo": lo, "hi": hi, **mcnemar_test(ca, cb), "n": len(ca)}


def comparisons(config: Config) -> list[tuple]:
    """The pairs the study compares: within each setting every protocol against the naive judge,
    debate against consultancy and interaction, the expert against debate; across settings, each
    setting-dependent protocol in `passage` against `closed-book`."""
    have = set(config.protocols)
    pairs = []
    for info in config.info:
        pairs += [((info, p), (info, "naive")) for p in PROTOCOLS if p in have and p != "naive" and "naive" in have]
        pairs += [((info, "debate"), (info, b)) for b in ("consultancy", "interaction") if {"debate", b} <= have]
        if {"expert", "debate"} <= have:
            pairs.append(((info, "expert"), (info, "debate")))
    if {"passage", "closed-book"} <= set(config.info):
        pairs += [(("passage", p), ("closed-book", p)) for p in PROTOCOLS if p in have and p not in SETTING_FREE]
    return pairs


def paired_comparisons(outcomes: pd.DataFrame, config: Config) -> pd.DataFrame:
    """`compare_on_same_questions` for every pair of `comparisons(config)`."""
    return pd.DataFrame([compare_on_same_questions(outcomes, a, b, config.n_boot) for a, b in comparisons(config)])


def consultancy_by_side(items, probs, config: Config) -> pd.DataFrame:
    """Per setting: the judge's accuracy when the consultant argues for the truth and when it
    argues against it (every question is judged with both), Wilson 95%; and the mean of the two,
    the accuracy of consultancy over a random assignment."""
    if "consultancy" not in config.protocols:
        return pd.DataFrame()
    y = np.array([it["label"] for it in items])
    rows = []
    for info in config.info:
        honest = np.where(y == 1, probs[(info, "consultancy", "correct", 0)], probs[(info, "consultancy", "wrong", 0)])
        lying = np.where(y == 1, probs[(info, "consultancy", "wrong", 0)], probs[(info, "consultancy", "correct", 0)])
        for what, p in (("argues for the truth", honest), ("argues against the truth", lying)):
            k = int(((p > 0.5) == y).sum())
            rows.append({"info": info, "consultant": what, "acc": k / len(y), **dict(zip(("lo", "hi"),
                                                                                       wilson_ci(k, len(y)))),
                         "n": len(y)})
    return pd.DataFrame(rows)


def rounds_summary(items, probs, config: Config) -> pd.DataFrame:
    """Debate accuracy per setting and number of rounds the judge read, Wilson 95%."""
    if "debate" not in config.protocols:
        return pd.DataFrame()
    y = np.array([it["label"] for it in items])
    rows = []
    for info in config.info:
        for r in range(1, config.rounds + 1):
            k = int(((probs[(info, "debate", "", r)] > 0.5) == y).sum())
            rows.append({"info": info, "round": r, "acc": k / len(y), **dict(zip(("lo", "hi"), wilson_ci(k, len(y)))),
                         "n": len(y)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Closing the loop: every protocol's labels train study 01's student


class _KeepTestPredictions:
    """A learner that passes everything to `learner` and keeps what the models it fitted predict
    on `test_idx`, by role: "ceiling" (fitted on gold labels, 1-D) or "student" (soft labels,
    (n, 2)). `train_on_labels` returns accuracies only; the question-level intervals need each
    prediction, and wrapping it keeps the training itself in `alignlab.training`."""

    def __init__(self, learner, test_idx):
        self.learner, self.test_idx, self.roles, self.predictions = learner, np.asarray(test_idx), {}, {}

    def fit(self, split, idx, labels, *args, **kwargs):
        model = self.learner.fit(split, idx, labels, *args, **kwargs)
        self.roles[id(model)] = "student" if np.ndim(labels) == 2 else "ceiling"
        return model

    def predict(self, model, split, idx=None, *args, **kwargs):
        out = self.learner.predict(model, split, idx, *args, **kwargs)
        if idx is not None and np.array_equal(np.asarray(idx), self.test_idx):
            self.predictions[self.roles.get(id(model), "other")] = np.asarray(out)
        return out


def student_loop(items, probs, config: Config, learner=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per student seed, setting, label source (every protocol) and loss: the student on the
    judge's soft labels of the training half, its ceiling on gold labels, both tested on the other
    half (`train_on_labels`). Returns (per test question: seed, info, source, loss, item, label,
    judge/student/ceiling correct; per seed: the judge's accuracy on its training labels)."""
    w2s_config = student_w2s_config(config)
    y = np.array([it["label"] for it in items])
    sides = consultant_sides(y, config.data_seed)
    if learner is None:
        learner = make_learner(config.strong_model, {"pool": [it["text"] for it in items]}, w2s_config)
    rows, label_rows, done = [], [], {}
    for seed in config.seeds:
        train_idx, test_idx = split_halves(len(items), seed)
        for info in config.info:
            for source, p in protocol_probs(probs, config, info, sides).items():
                label_rows.append({"seed": seed, "info": info, "source": source,
                                   "weak_label_acc": float(((p[train_idx] > 0.5) == y[train_idx]).mean())})
                for loss in config.losses:
                    key = (seed, source, loss) if source in SETTING_FREE else (seed, info, source, loss)
                    if key not in done:
                        keeper = _KeepTestPredictions(learner, test_idx)
                        soft = np.stack([1 - p[train_idx], p[train_idx]], 1).astype(np.float32)
                        train_on_labels(keeper, "pool", train_idx, soft, y[train_idx], test_idx, y[test_idx],
                                        w2s_config, seed, loss=loss)
                        done[key] = {role: (keeper.predictions[role].argmax(1) == y[test_idx]).astype(int)
                                     for role in ("student", "ceiling")}
                    rows.append(pd.DataFrame({"seed": seed, "info": info, "source": source, "loss": loss,
                                              "item": test_idx, "label": y[test_idx],
                                              "judge": ((p[test_idx] > 0.5) == y[test_idx]).astype(int),
                                              "student": done[key]["student"], "ceiling": done[key]["ceiling"]}))
    return pd.concat(rows, ignore_index=True), pd.DataFrame(label_rows)


def _question_weights(items: np.ndarray, n_boot: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct question ids, (n_boot, n_questions) counts of each id in a resample of ids)."""
    ids = np.unique(items)
    rng = np.random.default_rng([seed, 17])
    draws = rng.integers(0, len(ids), size=(n_boot, len(ids)))
    counts = np.stack([np.bincount(row, minlength=len(ids)) for row in draws])
    return ids, counts


def _pooled(frame: pd.DataFrame, column: str, ids: np.ndarray, counts: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean of `column` over all rows, and its replicates when question ids are resampled."""
    by_q = frame.groupby("item")[column].agg(["sum", "count"]).reindex(ids, fill_value=0)
    replicates = (counts @ by_q["sum"].to_numpy()) / np.maximum(counts @ by_q["count"].to_numpy(), 1)
    return float(frame[column].mean()), replicates


def loop_summary(rows: pd.DataFrame, label_rows: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    """Per setting, label source and loss: the judge's accuracy on the student's training labels
    (mean over seeds) and on the test halves, the student's and the ceiling's accuracy, the gap
    ceiling - judge, PGR, and student(source) - student(naive labels): means pooled over seeds,
    95% bootstrap CIs resampling question ids (paired: one resample for every column). PGR is
    reported where the gap's CI is above 0; otherwise `pgr_note` says why it is not."""
    if not len(rows):
        return pd.DataFrame()
    ids, counts = _question_weights(rows["item"].to_numpy(), n_boot)
    out = []
    for (info, loss), g in rows.groupby(["info", "loss"], sort=False):
        naive = g[g.source == "naive"]
        _, naive_student = _pooled(naive, "student", ids, counts) if len(naive) else (None, None)
        for source in [s for s in PROTOCOLS if s in set(g.source)]:
            s = g[g.source == source]
            (j, jr), (st, sr), (c, cr) = (_pooled(s, col, ids, counts) for col in ("judge", "student", "ceiling"))
            row = {"info": info, "source": source, "loss": loss, "seeds": s.seed.nunique(), "n tests": len(s),
                   "weak_label_acc": float(label_rows[(label_rows["info"] == info)
                                                      & (label_rows.source == source)].weak_label_acc.mean()),
                   "judge_acc": j, **_ci("judge_acc", jr), "student_acc": st, **_ci("student_acc", sr),
                   "ceiling_acc": c, **_ci("ceiling_acc", cr), "gap": c - j, **_ci("gap", cr - jr)}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", PGRUndefinedWarning)
                value = pgr(j, st, c)
            if caught:
                row.update(pgr=float("nan"), pgr_lo=float("nan"), pgr_hi=float("nan"),
                           pgr_note=f"undefined: the ceiling ({c:.3f}) is not above the judge ({j:.3f})")
            elif not row["gap_lo"] > 0:
                row.update(pgr=value, pgr_lo=float("nan"), pgr_hi=float("nan"),
                           pgr_note="not reported: the gap's CI includes 0")
            else:
                ok = (cr - jr) > 0
                row.update(pgr=value, **_ci("pgr", (sr[ok] - jr[ok]) / (cr[ok] - jr[ok])), pgr_note="")
            if naive_student is not None and source != "naive":
                row.update(vs_naive=st - float(naive.student.mean()), **_ci("vs_naive", sr - naive_student))
            out.append(row)
    return pd.DataFrame(out)


def _ci(name: str, replicates) -> dict:
    lo, hi = _interval(np.asarray(replicates)[~np.isnan(replicates)])
    return {f"{name}_lo": lo, f"{name}_hi": hi}
