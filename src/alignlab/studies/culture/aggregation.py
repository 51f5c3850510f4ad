"""Aggregates of study 04's per-prompt scores, with bootstrap CIs.

- `aggregate()` averages orientation per model x method x dimension (x domain), with 95% CIs
  from a two-way percentile bootstrap: items AND templates resampled with replacement (for
  `loglik` there is one template, so it is a bootstrap over items).
- `consistency()` is the share of (item, template) pairs whose chosen pole survives swapping the
  options, `position_bias()` the share of forced-choice prompts won by the first-listed label;
  both with a bootstrap CI over items, and both empty when no forced choice was scored.
- `stability()` asks whether an orientation is left beyond noise and position bias.

The only randomness is the bootstrap (`seed`); scoring itself is deterministic.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from alignlab.data.cultural import DIMENSIONS, DOMAINS
from alignlab.stats import bootstrap_ci


def item_orientation(scores) -> pd.DataFrame:
    """Per model x method x item: orientation averaged over templates and orders."""
    return (scores.groupby(["model", "method", "id", "Dimension", "Domain"], sort=False)["p_high"]
            .mean().reset_index(name="orientation"))


def _item_template_matrix(group):
    """Items x templates matrix of order-averaged p_high (NaN where missing)."""
    return group.groupby(["id", "template"])["p_high"].mean().unstack("template").to_numpy()


def two_way_bootstrap(matrix, n_boot: int = 2000, level: float = 0.95, seed: int = 0):
    """Mean of an items x templates matrix, and a percentile CI from resampling items (rows) and
    templates (columns) independently with replacement. One column: a bootstrap over items.
    Written out because scipy.stats.bootstrap resamples one axis only."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.size == 0:
        raise ValueError(f"expected a non-empty 2-d matrix, got shape {matrix.shape}")
    rng = np.random.default_rng(seed)
    n_items, n_templates = matrix.shape
    rows = rng.integers(0, n_items, size=(n_boot, n_items))
    cols = rng.integers(0, n_templates, size=(n_boot, n_templates))
    stats = np.array([np.nanmean(matrix[np.ix_(r, c)]) for r, c in zip(rows, cols)])
    alpha = (1 - level) / 2
    return float(np.nanmean(matrix)), float(np.nanquantile(stats, alpha)), float(np.nanquantile(stats, 1 - alpha))


def _group_key(by, key) -> dict:
    return dict(zip(by, key if isinstance(key, tuple) else (key,)))


def aggregate(scores, by=("model", "method", "Dimension"), n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Mean orientation per group with a 95% two-way (items x templates) bootstrap CI:
    columns by..., mean, lo, hi, n_items, n_templates."""
    records = []
    for key, group in scores.groupby(list(by), sort=False):
        mean, lo, hi = two_way_bootstrap(_item_template_matrix(group), n_boot=n_boot, seed=seed)
        records.append({**_group_key(by, key), "mean": mean, "lo": lo, "hi": hi,
                        "n_items": group["id"].nunique(), "n_templates": group["template"].nunique()})
    return _sort_dims(pd.DataFrame(records))


def _sort_dims(table):
    """Rows by model, method, then dimensions and domains in their canonical order."""
    if "Dimension" in table:
        table = table.assign(_d=table["Dimension"].map(DIMENSIONS.index))
        if "Domain" in table:
            table = table.assign(_m=table["Domain"].map(DOMAINS.index))
        table = table.sort_values([c for c in ("model", "method", "_d", "_m") if c in table], kind="stable")
        table = table.drop(columns=[c for c in ("_d", "_m") if c in table]).reset_index(drop=True)
    return table


def _bootstrap_share(per_item, n_boot, seed):
    per_item = np.asarray(per_item, float)
    lo, hi = bootstrap_ci(per_item, n_boot=n_boot, seed=seed) if len(per_item) > 1 else (np.nan, np.nan)
    return float(per_item.mean()), float(lo), float(hi)


def consistency(scores, by=("model",), n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Order-swap consistency of forced choice: the share of (item, template) pairs whose chosen
    pole is the same in both orders. CI: bootstrap over items (each item's share over templates).
    Columns by..., consistency, lo, hi, n_items; an empty table without forced-choice rows."""
    choice = scores[scores["method"] == "choice"]
    if choice.empty:
        return pd.DataFrame()
    wide = choice.pivot_table(index=["model", "template", "id"], columns="order", values="chose_high",
                              aggfunc="first").reset_index()
    wide["same"] = (wide["original"] == wide["swapped"]).astype(float)
    records = []
    for key, group in wide.groupby(list(by), sort=False):
        per_item = group.groupby("id")["same"].mean()
        mean, lo, hi = _bootstrap_share(per_item, n_boot, seed)
        records.append({**_group_key(by, key), "consistency": mean, "lo": lo, "hi": hi, "n_items": len(per_item)})
    return pd.DataFrame(records)


def position_bias(scores, by=("model",), n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The share of forced-choice prompts won by the first-listed label (0.5: no position bias),
    with a bootstrap CI over items. Columns by..., first_share, lo, hi; an empty table without
    forced-choice rows."""
    choice = scores[scores["method"] == "choice"]
    records = []
    for key, group in choice.groupby(list(by), sort=False):
        per_item = group.groupby("id")["chose_first"].mean()
        mean, lo, hi = _bootstrap_share(per_item, n_boot, seed)
        records.append({**_group_key(by, key), "first_share": mean, "lo": lo, "hi": hi})
    return pd.DataFrame(records)


def stability(scores, dim_table=None, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Is there an orientation beyond noise and position bias? Per model and method:

    - dims_off_middle: dimensions whose 95% CI excludes 0.5 (of 6);
    - template_agreement: mean pairwise Pearson r between templates of per-item orientation
      (order-averaged); near 0 means the item-level preferences depend on the prompt;
    - split_half: Pearson r over the six dimensions between the orientation of two random halves
      of the items (per dimension), averaged over 20 splits: do the dimension means replicate;
    - method_agreement: Pearson r between loglik and choice per-item orientation (choice row).
    """
    dim_table = aggregate(scores, n_boot=n_boot, seed=seed) if dim_table is None else dim_table
    items = item_orientation(scores)
    rng = np.random.default_rng(seed)
    records = []
    for (model, method), group in scores.groupby(["model", "method"], sort=False):
        dims = dim_table[(dim_table["model"] == model) & (dim_table["method"] == method)]
        off = int(((dims["lo"] > 0.5) | (dims["hi"] < 0.5)).sum())
        per_template = group.groupby(["id", "template"])["p_high"].mean().unstack("template")
        rs = [_corr(per_template[a], per_template[b]) for a, b in itertools.combinations(per_template.columns, 2)]
        mine = items[(items["model"] == model) & (items["method"] == method)]
        halves = []
        for _ in range(20):
            half = rng.random(len(mine)) < 0.5
            a = mine[half].groupby("Dimension")["orientation"].mean()
            b = mine[~half].groupby("Dimension")["orientation"].mean()
            both = a.index.intersection(b.index)
            if len(both) >= 3:
                halves.append(_corr(a[both], b[both]))
        agree = np.nan
        if method == "choice":
            other = items[(items["model"] == model) & (items["method"] == "loglik")]
            if len(other):
                joined = mine.merge(other, on="id", suffixes=("", "_loglik"))
                agree = _corr(joined["orientation"], joined["orientation_loglik"])
        records.append({"model": model, "method": method, "dims_off_middle": off, "n_dims": len(dims),
                        "template_agreement": float(np.nanmean(rs)) if rs else np.nan,
                        "split_half": float(np.nanmean(halves)) if halves else np.nan,
                        "method_agreement": agree})
    return pd.DataFrame(records)


def _corr(a, b) -> float:
    """Pearson r over the pairs without NaN; NaN with fewer than 3 pairs or no spread."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < 3 or a[ok].std() == 0 or b[ok].std() == 0:
        return np.nan
    return float(np.corrcoef(a[ok], b[ok])[0, 1])
