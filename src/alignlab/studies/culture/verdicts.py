"""Verdicts of study 04: each model x method x dimension is "oriented high", "oriented low",
"equivalent to the middle" or "not determined", never a default.

- Oriented high (low): the 95% CI of the orientation (over questions) lies above (below) 0.5,
  and the orientation is further from 0.5 than the null model's in 95% of its simulations.
- Equivalent to the middle: TOST (two one-sided t-tests over questions, level 0.05) puts the
  orientation within 0.5 +- `margin`, AND the answers agree with each other more than the null
  model's do (the mean per-question `agreement` exceeds the null's in 95% of simulations). A
  model that answers at random sits at 0.5 too; only the second test tells it apart from a model
  that answers deliberately but evenly. With one vote per question (`loglik`) agreement is 1 for
  the model and the null alike, so this method never reaches "equivalent to the middle".
- Not determined: everything else, including when the model's position bias dominates
  (`aggregation.position_bias`), and groups with fewer than MIN_ITEMS questions. `reason` says why.

The null model answers every prompt at random, picking the first-listed option with the model's
own measured probability under each template (`first_share`; 0.5 for the votes whose orders are already combined,
`loglik` and debiased `choice`), keeps the model's unparseable answers unparsed, and goes through
the same votes and majority. Its answers carry no content, so whatever verdict it earns is the
verdict noise earns; `null_model_answers` draws such answer tables for the tests.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from alignlab.studies.culture.aggregation import question_answers, sort_dimensions
from alignlab.studies.culture.prompts import MIN_ITEMS

VERDICTS = ("oriented high", "oriented low", "equivalent to the middle", "not determined")
ALPHA = 0.05


def tost_middle(values, margin: float) -> float:
    """p-value of TOST for "the mean of `values` lies within 0.5 +- margin": the larger of the two
    one-sided t-test p-values (H0: mean <= 0.5 - margin; H0: mean >= 0.5 + margin). NaN with fewer
    than MIN_ITEMS values. With no spread the test is exact: 0 inside the margin, 1 outside."""
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    if len(values) < MIN_ITEMS:
        return float("nan")
    if np.ptp(values) == 0:
        return 0.0 if abs(values[0] - 0.5) < margin else 1.0
    above = scipy_stats.ttest_1samp(values, 0.5 - margin, alternative="greater").pvalue
    below = scipy_stats.ttest_1samp(values, 0.5 + margin, alternative="less").pvalue
    return float(max(above, below))


def _first_probability(vote_table, bias) -> np.ndarray:
    """Per vote row: the probability that the null model picks the first-listed option: the
    `first_share` of the row's (model, method[, template]) in `bias`, 0.5 for combined orders."""
    q = np.full(len(vote_table), 0.5)
    if bias is not None and len(bias):
        by = [c for c in ("model", "method", "template") if c in bias.columns]
        lookup = bias.set_index(by)["first_share"].to_dict()
        ordered = vote_table["order"].isin(["original", "swapped"]).to_numpy()
        keys = list(zip(*(vote_table[c] for c in by))) if len(by) > 1 else list(vote_table[by[0]])
        q = np.where(ordered, [lookup.get(k, 0.5) for k in keys], 0.5)
    return q


def simulate_null(vote_table, bias=None, n_sim: int = 1000, seed: int = 0) -> np.ndarray:
    """`n_sim` null-model vote columns for `vote_table` (n_rows x n_sim, NaN where the model's vote
    is NaN): first-listed picked with the model's first_share (0.5 for combined orders)."""
    rng = np.random.default_rng(seed)
    q = _first_probability(vote_table, bias)
    first = rng.random((len(vote_table), n_sim)) < q[:, None]
    swapped = (vote_table["order"] == "swapped").to_numpy()[:, None]
    high = np.where(swapped, ~first, first).astype(float)
    high[vote_table["vote_high"].isna().to_numpy()] = np.nan
    return high


def null_model_answers(vote_table, bias=None, seed: int = 0) -> pd.DataFrame:
    """One null-model draw as a vote table (the model's structure, random votes)."""
    return vote_table.assign(vote_high=simulate_null(vote_table, bias, n_sim=1, seed=seed)[:, 0])


def _null_statistics(vote_table, bias, n_sim, seed):
    """Per (model, method, Dimension): the null's orientation and mean agreement, each (n_sim,)."""
    high = simulate_null(vote_table, bias, n_sim, seed)
    out = {}
    keys = vote_table[["model", "method", "Dimension", "id"]].astype(str).agg("\x1f".join, axis=1)
    codes, uniques = pd.factorize(keys)
    counts = np.zeros((len(uniques), n_sim))
    sums = np.zeros((len(uniques), n_sim))
    valid = ~np.isnan(high)
    np.add.at(counts, codes, valid.astype(float))
    np.add.at(sums, codes, np.nan_to_num(high))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = sums / counts
    answer = np.where(share > 0.5, 1.0, np.where(share < 0.5, 0.0, 0.5))
    answer[counts == 0] = np.nan
    agreement = np.abs(2 * share - 1)
    group = pd.Series([u.rsplit("\x1f", 1)[0] for u in uniques])
    for name, rows in group.groupby(group).groups.items():
        rows = np.asarray(list(rows))
        with warnings.catch_warnings():  # a dimension without any vote: NaN, said so by n_items = 0
            warnings.simplefilter("ignore", RuntimeWarning)
            out[tuple(name.split("\x1f"))] = (np.nanmean(answer[rows], axis=0), np.nanmean(agreement[rows], axis=0))
    return out


def verdicts(vote_table, dimension_table, bias=None, template_bias=None, margin: float = 0.15, n_sim: int = 1000,
             seed: int = 0) -> pd.DataFrame:
    """`dimension_table` (aggregation.orientation by model, method, Dimension) with p_tost,
    p_null (two-sided: null orientations at least as far from 0.5), agreement, p_agreement (null
    agreement at least as high), position_dominated, verdict and reason. `bias`: position_bias
    per model and method (which verdicts to withhold); `template_bias`: per model, method and
    template (the null model's first-pick probabilities; `bias` when None)."""
    answers = question_answers(vote_table)
    null = _null_statistics(vote_table, bias if template_bias is None else template_bias, n_sim, seed)
    dominated = {} if bias is None or not len(bias) else bias.set_index(["model", "method"])["dominated"].to_dict()
    driven = {} if bias is None or not len(bias) else bias.set_index(["model", "method"])["position_driven"].to_dict()
    records = []
    for r in dimension_table.itertuples(index=False):
        mine = answers[(answers["model"] == r.model) & (answers["method"] == r.method)
                       & (answers["Dimension"] == r.Dimension)]
        values = mine["answer"].dropna().to_numpy(float)
        agreement = float(mine.loc[mine["answer"].notna(), "agreement"].mean()) if len(values) else np.nan
        null_orientation, null_agreement = null[(str(r.model), str(r.method), str(r.Dimension))]
        p_null = float(np.mean(np.abs(null_orientation - 0.5) >= abs(r.orientation - 0.5) - 1e-12))
        p_agreement = float(np.mean(null_agreement >= agreement - 1e-12))
        p_tost = tost_middle(values, margin)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            null_agreement_mean = float(np.nanmean(null_agreement))
        is_dominated = bool(dominated.get((r.model, r.method), False))
        verdict, reason = decide(r.orientation, r.lo, r.hi, len(values), p_tost, p_null, p_agreement, is_dominated,
                                 driven.get((r.model, r.method), np.nan), r.method)
        records.append({**r._asdict(), "p_tost": p_tost, "p_null": p_null, "agreement": agreement,
                        "null_agreement": null_agreement_mean, "p_agreement": p_agreement,
                        "position_dominated": is_dominated, "verdict": verdict, "reason": reason})
    return sort_dimensions(pd.DataFrame(records))


def decide(orientation, lo, hi, n_items, p_tost, p_null, p_agreement, dominated, position_driven=np.nan,
           method="") -> tuple[str, str]:
    """(verdict, reason) from the numbers; see the module doc."""
    if dominated:
        return "not determined", (f"position bias dominates: {position_driven:.0%} of item-template pairs get the "
                                  "same position in both orders")
    if n_items < MIN_ITEMS:
        return "not determined", f"{n_items} questions (fewer than {MIN_ITEMS})"
    if lo > 0.5 and p_null < ALPHA:
        return "oriented high", "CI above 0.5 and beyond the null model"
    if hi < 0.5 and p_null < ALPHA:
        return "oriented low", "CI below 0.5 and beyond the null model"
    if p_tost < ALPHA and p_agreement < ALPHA:
        return "equivalent to the middle", "TOST within the margin, answers more consistent than the null model's"
    if p_tost < ALPHA:
        why = ("one vote per question cannot be told from random answers" if method == "loglik"
               else "answers no more consistent than the null model's")
        return "not determined", f"within the margin, but {why}"
    if lo > 0.5 or hi < 0.5:
        return "not determined", "CI excludes 0.5 but the null model reaches as far"
    return "not determined", "CI neither excludes 0.5 nor lies within the margin"
