"""Confidence intervals, metrics, and tidy aggregation.

Every study runs a few seeds (or a few thousand examples) and reports a number with an
interval. This module holds the small amount of statistics that takes:

- `t_ci` is the interval to use across a handful of seeds (n = 3..5): a Student-t interval
  of the mean. `bootstrap_ci` is the interval to use across many examples (percentile
  bootstrap); `paired_bootstrap_ci` compares two systems scored on the same examples.
- `summarize` turns per-seed rows into a tidy table (`*by, mean, lo, hi, n, std`) that
  notebooks print and `figures.bar_with_ci` draws; `format_ci` writes one cell of a paper
  table; `mean_ci` and `verdict` state an effect and whether its CI excludes 0 (the one rule
  of every notebook's conclusion).
- `auroc` (scikit-learn's, NaN instead of an error on one class) and
  `expected_calibration_error` are the shared binary metrics.

The percentile bootstrap is written out (vectorised, in chunks) rather than taken from
`scipy.stats.bootstrap`, whose resampling draws a different stream from the same seed: switching
would move every study's reported intervals.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from sklearn.metrics import roc_auc_score

# Resample in chunks of at most this many elements, so a bootstrap over 10^5 examples does
# not allocate an (n_boot x n) index matrix of gigabytes.
_BOOTSTRAP_CHUNK_ELEMENTS = 4_000_000


# -----------------------------------------------------------------------------
# confidence intervals

def _as_1d_float(values) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(-1)


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def _resampled_statistics(
    arrays: Sequence[np.ndarray],
    statistic: Callable,
    n_boot: int,
    seed: int,
    combine: Callable[[list[np.ndarray]], np.ndarray],
) -> np.ndarray:
    """`n_boot` bootstrap replicates of `combine([statistic(a[idx]) for a in arrays])`.

    All arrays are resampled with the same indices (so paired data stays paired). The
    statistic is applied row-wise with `axis=1` when it supports that (np.mean, np.median,
    ...), which is one vectorised call per chunk; otherwise it falls back to a loop.
    """
    n = len(arrays[0])
    rng = np.random.default_rng(seed)
    rows_per_chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // max(n, 1))
    out = []
    for start in range(0, n_boot, rows_per_chunk):
        rows = min(rows_per_chunk, n_boot - start)
        idx = rng.integers(0, n, size=(rows, n))
        parts = []
        for array in arrays:
            samples = array[idx]
            try:
                stat = np.asarray(statistic(samples, axis=1), dtype=float)
                if stat.shape != (rows,):
                    raise TypeError("statistic did not reduce along axis=1")
            except TypeError:
                stat = np.array([statistic(row) for row in samples], dtype=float)
            parts.append(stat)
        out.append(combine(parts))
    return np.concatenate(out)


def _percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(replicates, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_ci(
    values,
    statistic: Callable = np.mean,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(values)`.

    Resamples the values with replacement `n_boot` times (vectorised, seeded so that the
    same inputs give the same interval) and returns the (1-level)/2 and (1+level)/2
    quantiles of the replicated statistic. NaN values are dropped first; with no values
    left the interval is (nan, nan). Use it over examples (hundreds or more), not over
    three seeds: there `t_ci` is the honest choice.
    """
    _check_level(level)
    array = _as_1d_float(values)
    array = array[~np.isnan(array)]
    if array.size == 0:
        return (float("nan"), float("nan"))
    replicates = _resampled_statistics([array], statistic, n_boot, seed, lambda parts: parts[0])
    return _percentile_interval(replicates, level)


def paired_bootstrap_ci(
    a,
    b,
    statistic: Callable = np.mean,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap interval of `statistic(a) - statistic(b)` for paired examples.

    `a[i]` and `b[i]` are two systems' scores on the same example i (e.g. per-example
    correctness of A and of B). Examples are resampled jointly, which keeps the pairing and
    so gives a much tighter interval than two independent CIs. "A beats B" when the whole
    interval is above 0. Pairs with a NaN on either side are dropped.
    """
    _check_level(level)
    a = _as_1d_float(a)
    b = _as_1d_float(b)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays must have the same length, got {a.size} and {b.size}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if a.size == 0:
        return (float("nan"), float("nan"))
    replicates = _resampled_statistics(
        [a, b], statistic, n_boot, seed, lambda parts: parts[0] - parts[1]
    )
    return _percentile_interval(replicates, level)


def t_ci(values, level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean: mean +- t_{(1+level)/2, n-1} * s / sqrt(n).

    This is the interval for a few seeds (n = 3..5), where a bootstrap would be too
    narrow. `s` is the sample standard deviation (ddof=1). NaNs are dropped; with fewer
    than two values there is no interval and the result is (nan, nan).
    """
    _check_level(level)
    array = _as_1d_float(values)
    array = array[~np.isnan(array)]
    n = array.size
    if n < 2:
        return (float("nan"), float("nan"))
    mean = array.mean()
    half_width = scipy_stats.t.ppf((1.0 + level) / 2.0, df=n - 1) * array.std(ddof=1) / np.sqrt(n)
    return (float(mean - half_width), float(mean + half_width))


# -----------------------------------------------------------------------------
# tidy aggregation

def summarize(
    df: pd.DataFrame,
    by: list[str],
    value: str,
    ci: str = "t",
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Aggregate rows (typically one per seed) into one row per group with an interval.

    Returns a tidy DataFrame with columns `*by, mean, lo, hi, n, std`, one row per
    combination of `by` (sorted; `by=[]` gives a single overall row). `ci="t"` uses
    `t_ci` (right for a few seeds), `ci="bootstrap"` uses `bootstrap_ci` (right for many
    per-example rows). NaN values are ignored and `n` counts the values used. A group with
    one value has `lo = hi = std = nan`.
    """
    if ci not in ("t", "bootstrap"):
        raise ValueError(f"ci must be 't' or 'bootstrap', got {ci!r}")
    by = list(by)
    missing = [column for column in [*by, value] if column not in df.columns]
    if missing:
        raise KeyError(f"summarize: columns {missing} not in the table (has {list(df.columns)})")

    def one_group(values: pd.Series) -> dict:
        values = values.dropna().to_numpy(dtype=float)
        if ci == "t":
            lo, hi = t_ci(values, level=level)
        else:
            lo, hi = bootstrap_ci(values, n_boot=n_boot, level=level, seed=seed)
            if values.size < 2:
                lo, hi = float("nan"), float("nan")
        return {
            "mean": float(values.mean()) if values.size else float("nan"),
            "lo": lo,
            "hi": hi,
            "n": int(values.size),
            "std": float(values.std(ddof=1)) if values.size > 1 else float("nan"),
        }

    columns = [*by, "mean", "lo", "hi", "n", "std"]
    if not by:
        return pd.DataFrame([one_group(df[value])], columns=columns)
    rows = []
    for group_key, group in df.groupby(by, sort=True, dropna=False, observed=True):
        group_key = group_key if isinstance(group_key, tuple) else (group_key,)
        rows.append({**dict(zip(by, group_key)), **one_group(group[value])})
    out = pd.DataFrame(rows, columns=columns)
    out["n"] = out["n"].astype(int)
    return out


def format_ci(mean: float, lo: float, hi: float, digits: int = 3) -> str:
    """One table cell: `format_ci(0.8123, 0.79, 0.834) -> "0.812 [0.790, 0.834]"`.

    When there is no interval (lo and hi are NaN, e.g. a single seed) only the mean is
    written, so a table never shows "[nan, nan]".
    """
    text = f"{mean:.{digits}f}"
    if np.isnan(lo) and np.isnan(hi):
        return text
    return f"{text} [{lo:.{digits}f}, {hi:.{digits}f}]"


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi) of `values` with NaNs dropped: the mean and its Student-t interval.

    Every study's conclusion states an effect this way (one number per seed). With no values the
    mean is NaN; with one the interval is (nan, nan), as in `t_ci`.
    """
    array = _as_1d_float(values)
    array = array[~np.isnan(array)]
    mean = float(array.mean()) if array.size else float("nan")
    return (mean, *t_ci(array, level))


def verdict(mean: float, lo: float, hi: float, above: str = "**holds**", below: str = "**reversed** here",
            straddles: str = "**not shown** here (the 95% CI includes no effect)",
            unknown: str = "cannot tell (fewer than 2 seeds)") -> str:
    """The one rule every conclusion applies to an effect (a difference, 0 = no effect):

    the whole 95% CI above 0 -> `above`; the whole CI below 0 -> `below`; a CI that contains 0
    -> `straddles`; no CI (NaN: fewer than two values) -> `unknown`. Callers choose the words.
    """
    if any(math.isnan(float(v)) for v in (mean, lo, hi)):
        return unknown
    if lo > 0:
        return above
    if hi < 0:
        return below
    return straddles


# -----------------------------------------------------------------------------
# metrics (binary labels are 0/1 or bool)

def _binary_labels(y, name: str = "y") -> np.ndarray:
    labels = np.asarray(y)
    if labels.dtype == bool:
        return labels.astype(int).reshape(-1)
    labels = labels.reshape(-1)
    unexpected = set(np.unique(labels).tolist()) - {0, 1}
    if unexpected:
        raise ValueError(f"{name} must hold binary labels 0/1, found {sorted(unexpected)[:5]}")
    return labels.astype(int)


def _check_same_length(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{names} must have the same length, got {a.shape[0]} and {b.shape[0]}")


def auroc(y, score) -> float:
    """Area under the ROC curve of `score` for binary labels `y` (ties count one half), by
    `sklearn.metrics.roc_auc_score`. With only one class present the AUROC is undefined: this
    returns NaN with a `RuntimeWarning` instead of raising, so one degenerate split does not
    crash a sweep.
    """
    y = _binary_labels(y)
    score = _as_1d_float(score)
    _check_same_length(y, score, "y and score")
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        warnings.warn(
            f"auroc: only one class present in y ({n_pos} positives, {n_neg} negatives); "
            "AUROC is undefined, returning nan",
            RuntimeWarning,
            stacklevel=2,
        )
        return float("nan")
    return float(roc_auc_score(y, score))


def expected_calibration_error(y, prob, n_bins: int = 10) -> float:
    """Expected calibration error of binary probabilities (Guo et al., 2017).

    `prob[i]` is the predicted probability that `y[i] == 1`. The predicted class is
    `prob >= 0.5` and its confidence `max(prob, 1 - prob)`, in [0.5, 1]. Confidences are put
    into `n_bins` equal-width bins over [0, 1], right-closed: ((m-1)/M, m/M] (so with the
    default 10 bins only the upper five are used), and

        ECE = sum_m |B_m| / n * |accuracy(B_m) - mean confidence(B_m)|.

    This is the "top-label" ECE, the definition most papers report.
    """
    n = len(y)
    return float("nan") if n == 0 else float(ece_resampled(y, prob, np.arange(n)[None], n_bins)[0])


def auroc_resampled(y, score, idx) -> np.ndarray:
    """`auroc(y[i], score[i])` for every row `i` of the (resamples x n) index array `idx`, at once:
    the Mann-Whitney form with midranks (ties count one half, as `roc_auc_score`); NaN for a
    resample with one class, without a warning per row. A bootstrap of a few thousand resamples
    costs one ranking instead of a few thousand sklearn calls."""
    y, score = _binary_labels(y), _as_1d_float(score)
    _check_same_length(y, score, "y and score")
    idx = np.asarray(idx)
    labels, ranks = y[idx], scipy_stats.rankdata(score[idx], axis=1)
    n_pos = labels.sum(axis=1)
    n_neg = idx.shape[1] - n_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = ((ranks * labels).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos == 0) | (n_neg == 0), np.nan, auc)


def ece_resampled(y, prob, idx, n_bins: int = 10) -> np.ndarray:
    """`expected_calibration_error(y[i], prob[i], n_bins)` for every row `i` of the (resamples x n)
    index array `idx`, at once (`expected_calibration_error` is this with the one row range(n))."""
    y, prob = _binary_labels(y), _as_1d_float(prob)
    _check_same_length(y, prob, "y and prob")
    if np.any((prob < 0) | (prob > 1)):
        raise ValueError("prob must lie in [0, 1]")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    idx = np.asarray(idx)
    pred = (prob >= 0.5).astype(int)
    confidence = np.where(pred == 1, prob, 1.0 - prob)
    correct = (pred == y).astype(float)
    bins = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], confidence, side="left")  # right-closed
    cells = np.repeat(np.arange(idx.shape[0]), idx.shape[1]) * n_bins + bins[idx].ravel()  # (row, bin)
    size = idx.shape[0] * n_bins
    correct_sum = np.bincount(cells, weights=correct[idx].ravel(), minlength=size).reshape(-1, n_bins)
    confidence_sum = np.bincount(cells, weights=confidence[idx].ravel(), minlength=size).reshape(-1, n_bins)
    return np.abs(correct_sum - confidence_sum).sum(axis=1) / idx.shape[1]  # |B_m| * |acc_m - conf_m|, summed / n


# -----------------------------------------------------------------------------
# rates and paired binary outcomes

def wilson_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a rate `successes / n` (`scipy.stats.binomtest`'s). Unlike a
    t-interval or a normal approximation it stays inside [0, 1] and is not degenerate at 0 or n
    successes. With n = 0 the interval is (nan, nan)."""
    _check_level(level)
    if n == 0:
        return (float("nan"), float("nan"))
    ci = scipy_stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))


def mcnemar_test(a_correct, b_correct) -> dict:
    """Exact McNemar test of two systems judged right/wrong on the same examples.

    Only discordant examples carry information: `a_only` (A right, B wrong) and `b_only`. Under
    "A and B are equally accurate" each discordant example is A's with probability 1/2, so the
    two-sided p-value is the binomial test of a_only out of a_only + b_only (1.0 when there is no
    discordant example). Returns {"a_only", "b_only", "p_value"}."""
    a = _binary_labels(a_correct, "a_correct")
    b = _binary_labels(b_correct, "b_correct")
    _check_same_length(a, b, "a_correct and b_correct")
    a_only, b_only = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    p = scipy_stats.binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    return {"a_only": a_only, "b_only": b_only, "p_value": float(p)}


def paired_minimum_detectable_difference(n: int, discordant_rate: float, level: float = 0.95,
                                         power: float = 0.8) -> float:
    """The smallest accuracy difference between two systems scored on the same `n` examples that a
    two-sided test at `level` detects with probability `power`, when a share `discordant_rate` of
    the examples gets different verdicts from the two (normal approximation to McNemar's test:
    the difference has standard error about sqrt(discordant_rate / n))."""
    _check_level(level)
    if n < 1 or not 0.0 < discordant_rate <= 1.0:
        raise ValueError(f"need n >= 1 and 0 < discordant_rate <= 1, got n={n}, discordant_rate={discordant_rate}")
    z = scipy_stats.norm.ppf((1.0 + level) / 2.0) + scipy_stats.norm.ppf(power)
    return float(z * math.sqrt(discordant_rate / n))


# -----------------------------------------------------------------------------
# two-level (hierarchical) bootstrap and multiple comparisons

def two_level_resample(rng, n_outer: int, inner_sizes: dict) -> tuple[np.ndarray, dict]:
    """One hierarchical bootstrap draw: `n_outer` outer units (e.g. training seeds) drawn with
    replacement, and within each inner group (e.g. a relation's test subjects) its items drawn
    with replacement. Returns (outer indices (n_outer,), {group: item indices}). Use it when a
    result should hold for the method (new seeds) and not only for the seeds that were run: the
    spread between seeds then enters the interval."""
    outer = rng.integers(0, n_outer, n_outer)
    return outer, {g: rng.integers(0, n, n) for g, n in inner_sizes.items()}


def bootstrap_pvalue(replicates, null: float = 0.0) -> float:
    """Two-sided bootstrap p-value of "the statistic differs from `null`": twice the smaller
    share of replicates on either side of it (ties count half), at most 1, at least 1/(n+1)."""
    reps = _as_1d_float(replicates)
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return float("nan")
    below = (np.sum(reps < null) + 0.5 * np.sum(reps == null)) / reps.size
    return float(min(1.0, max(2 * min(below, 1 - below), 1.0 / (reps.size + 1))))


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (controls the family-wise error):
    the i-th smallest p times (m - i + 1), made monotone, capped at 1; NaNs stay NaN and do not
    count in m. Reject where the adjusted p-value is below the level."""
    p = _as_1d_float(pvalues)
    out = np.full(p.shape, np.nan)
    keep = np.flatnonzero(~np.isnan(p))
    order = keep[np.argsort(p[keep], kind="stable")]
    m, running = len(order), 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out
