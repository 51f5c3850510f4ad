"""From per-prompt answers to CDEval's orientation: votes, a majority per question, shares.

1. `votes()`: every answer becomes a vote for the high pole (1) or the low pole (0):
   - `loglik`    one vote per item: the option with the higher length-normalized log-likelihood;
   - `choice`    one vote per item x template, taken AFTER removing position bias in log-odds: the
                 high pole's log-odds are averaged over the two orders (a constant pull towards the
                 first label adds to one order and subtracts from the other, so it cancels), then
                 the vote is their sign;
   - `generate`  one vote per parsed answer (item x template x order x sample); unparseable
                 answers cast no vote. Both orders are asked equally often, so a pure position
                 preference splits the votes rather than moving them.
2. `question_answers()`: a hard majority vote per question: 1 (high pole), 0 (low pole), 0.5 on a
   tie, NaN without a vote; `agreement` is how one-sided the vote was (0: a tie, 1: unanimous).
3. `orientation_shares()`: the share of a group's questions answered with the high pole (CDEval's
   orientation likelihood), with a 95% bootstrap CI over questions, drawn only from at least
   MIN_ITEMS questions.
4. `position_bias()`: per model and ordered method, the share of answers that pick the first-listed
   option, the mean log-odds of the first label (`choice`), and the share of item x template
   (x sample) pairs answered by position alone (the same position in both orders): when that share
   exceeds `position_dominance`, position bias dominates and verdicts are withheld.
5. `paired_differences()`: model A minus model B on the same questions, paired bootstrap CI.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from alignlab.data.cultural import DIMENSIONS, DOMAINS
from alignlab.stats import bootstrap_ci, holm, paired_bootstrap_ci
from alignlab.studies.culture.prompts import MIN_ITEMS

ITEM_KEYS = ["model", "method", "id", "Dimension", "Domain"]
VOTE_COLUMNS = [*ITEM_KEYS, "template", "order", "sample", "vote_high"]


def votes(scores) -> pd.DataFrame:
    """One row per vote (VOTE_COLUMNS): vote_high is 1, 0, or NaN (an unparseable answer).
    `order` is "none" for loglik and "both" for choice (the two orders already combined)."""
    tables = []
    for method, part in scores.groupby("method", sort=False):
        if method == "loglik":
            high = part["logp_first"] - part["logp_second"]  # first is always Option 1 here
            tables.append(part.assign(order="none", sample=0, vote_high=_sign_vote(high)))
        elif method == "choice":
            high = (part["logp_first"] - part["logp_second"]).where(part["order"] == "original",
                                                                   part["logp_second"] - part["logp_first"])
            debiased = part.assign(high=high).groupby([*ITEM_KEYS, "template"], sort=False)["high"].mean()
            tables.append(debiased.reset_index().assign(order="both", sample=0,
                                                        vote_high=lambda t: _sign_vote(t["high"])))
        elif method == "generate":
            tables.append(part.assign(vote_high=part["chose_high"].astype(float)))
        else:
            raise ValueError(f"unknown method {method!r} in the scores")
    return pd.concat([t[VOTE_COLUMNS] for t in tables], ignore_index=True)


def _sign_vote(log_odds) -> np.ndarray:
    """1 above 0, 0 below, 0.5 at exactly 0 (no preference)."""
    return np.sign(np.asarray(log_odds, float)) / 2 + 0.5


def question_answers(vote_table) -> pd.DataFrame:
    """Per model x method x question: n_votes, high_share, answer (majority: 1 high, 0 low, 0.5 tie,
    NaN without a vote), agreement = |2 high_share - 1|."""
    grouped = vote_table.groupby(ITEM_KEYS, sort=False)["vote_high"]
    table = pd.DataFrame({"n_votes": grouped.count(), "high_share": grouped.mean()}).reset_index()
    share = table["high_share"].to_numpy(float)
    table["answer"] = np.where(share > 0.5, 1.0, np.where(share < 0.5, 0.0, 0.5))
    table.loc[table["n_votes"] == 0, "answer"] = np.nan
    table["agreement"] = np.abs(2 * share - 1)
    return table


def orientation_shares(answers, by=("model", "method", "Dimension"), n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Share of questions answered with the high pole per group (ties count one half): columns
    by..., orientation, lo, hi (95% bootstrap over questions; NaN below MIN_ITEMS questions),
    n_items (questions with a vote), n_ties, n_unanswered."""
    records = []
    for key, group in answers.groupby(list(by), sort=False):
        values = group["answer"].dropna().to_numpy(float)
        lo, hi = bootstrap_ci(values, n_boot=n_boot, seed=seed) if len(values) >= MIN_ITEMS else (np.nan, np.nan)
        records.append({**_group_key(by, key), "orientation": values.mean() if len(values) else np.nan,
                        "lo": lo, "hi": hi, "n_items": len(values), "n_ties": int((values == 0.5).sum()),
                        "n_unanswered": int(group["answer"].isna().sum())})
    return sort_dimensions(pd.DataFrame(records))


def _group_key(by, key) -> dict:
    return dict(zip(by, key if isinstance(key, tuple) else (key,)))


def sort_dimensions(table):
    """Rows by model, method, then dimensions and domains in their canonical order."""
    if "Dimension" in table:
        table = table.assign(_d=table["Dimension"].map(DIMENSIONS.index))
        if "Domain" in table:
            table = table.assign(_m=table["Domain"].map(DOMAINS.index))
        table = table.sort_values([c for c in ("model", "method", "_d", "_m") if c in table], kind="stable")
        table = table.drop(columns=[c for c in ("_d", "_m") if c in table]).reset_index(drop=True)
    return table


def position_bias(scores, position_dominance: float = 0.5, by=("model", "method"), n_boot: int = 2000,
                  seed: int = 0) -> pd.DataFrame:
    """Per model x ordered method (choice, generate), or per `by` (e.g. with "template"):
    first_share (per item, the share of its read answers, over both orders, that pick the
    first-listed option; averaged over items, 0.5 = none) with a bootstrap CI over items: the same
    item-weighted statistic for both, so the estimate lies inside its interval even when items
    have different numbers of read answers (generate, where some answers are unparseable),
    first_logodds (mean log-odds of the first label over the second; choice only),
    position_driven (share of item x template x sample pairs whose two orders pick the same
    position, i.e. whose answer follows the position, not the content), dominated
    (position_driven > position_dominance), unparseable (share of answers not read; generate)."""
    records = []
    ordered = scores[scores["method"].isin(["choice", "generate"])]
    for key, part in ordered.groupby(list(by), sort=False):
        method = _group_key(by, key)["method"]
        part = part.assign(sample=part["sample"].fillna(0) if "sample" in part else 0)
        first = part["chose_first"].astype(float)
        per_item = first.groupby(part["id"]).mean().dropna()
        lo, hi = bootstrap_ci(per_item, n_boot=n_boot, seed=seed) if len(per_item) >= MIN_ITEMS else (np.nan, np.nan)
        pairs = part.assign(first=first).pivot_table(index=["id", "template", "sample"], columns="order",
                                                     values="first", aggfunc="first", dropna=False)
        both = pairs.dropna() if {"original", "swapped"} <= set(pairs.columns) else pairs.iloc[0:0]
        driven = float((both["original"] == both["swapped"]).mean()) if len(both) else np.nan
        logodds = float((part["logp_first"] - part["logp_second"]).mean()) if method == "choice" else np.nan
        share = float(per_item.mean()) if len(per_item) else np.nan
        records.append({**_group_key(by, key), "first_share": share, "lo": lo, "hi": hi,
                        "first_logodds": logodds, "position_driven": driven, "n_pairs": len(both),
                        "dominated": bool(driven > position_dominance) if len(both) else False,
                        "unparseable": float(1 - part["chose_first"].notna().mean())})
    return pd.DataFrame(records, columns=[*by, "first_share", "lo", "hi", "first_logodds",
                                          "position_driven", "n_pairs", "dominated", "unparseable"])


def signed_rank_p(differences) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (zeros dropped); 1.0 when no
    difference is non-zero, NaN below MIN_ITEMS pairs."""
    d = np.asarray(differences, dtype=float)
    if len(d) < MIN_ITEMS:
        return np.nan
    if not np.any(d != 0):
        return 1.0
    return float(scipy_stats.wilcoxon(d, zero_method="wilcox").pvalue)


def paired_differences(answers, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """For every pair of models, per method and dimension: mean difference of their per-question
    answers (A - B) on the questions both answered, with a 95% paired bootstrap CI over
    questions (NaN below MIN_ITEMS), the SD of the per-question differences, the Wilcoxon
    signed-rank p-value (`p`; 1 when no question differs) and Holm's adjustment of it over every
    row of the table (`p_holm`): with a hundred comparisons some CIs exclude 0 by chance alone."""
    records = []
    models = list(dict.fromkeys(answers["model"]))
    for (method, dim), part in answers.groupby(["method", "Dimension"], sort=False):
        wide = part.pivot_table(index="id", columns="model", values="answer", aggfunc="first")
        for a, b in itertools.combinations([m for m in models if m in wide.columns], 2):
            pair = wide[[a, b]].dropna()
            diff = (pair[a] - pair[b]).to_numpy(float)
            lo, hi = (paired_bootstrap_ci(pair[a], pair[b], n_boot=n_boot, seed=seed) if len(pair) >= MIN_ITEMS
                      else (np.nan, np.nan))
            records.append({"method": method, "Dimension": dim, "model_a": a, "model_b": b,
                            "difference": diff.mean() if len(diff) else np.nan, "lo": lo, "hi": hi,
                            "sd": diff.std(ddof=1) if len(diff) > 1 else np.nan, "n_items": len(diff),
                            "p": signed_rank_p(diff)})
    table = pd.DataFrame(records)
    if len(table):
        table["p_holm"] = holm(table["p"])
        table = table.assign(_d=table["Dimension"].map(DIMENSIONS.index)).sort_values(
            ["method", "model_a", "model_b", "_d"], kind="stable").drop(columns="_d").reset_index(drop=True)
    return table
