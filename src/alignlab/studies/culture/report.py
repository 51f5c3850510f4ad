"""Tables, figures, metrics and the conclusion of study 04 (cultural dimensions).

    dims = aggregation.aggregate(scores)
    consist, bias = aggregation.consistency(scores), aggregation.position_bias(scores)
    compare_with_paper(dims)                   # observed high/low/middle vs the paper's pattern
    print(conclusion(dims, consist, bias, aggregation.stability(scores, dims)))
    metrics(dims, consist, bias)               # the flat metrics.json
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import MatplotlibDeprecationWarning

from alignlab.data.cultural import DIMENSIONS
from alignlab.figures import bar_with_ci, figsize, use_style
from alignlab.stats import format_ci
from alignlab.studies.culture.aggregation import item_orientation
from alignlab.studies.culture.config import primary_method

# The source paper's pattern for most models (CDEval, Wang et al. 2024): orientation below,
# above, or near the middle (0.5).
PAPER_PATTERN = {"PDI": "low", "IDV": "middle", "UAI": "middle", "MAS": "low", "LTO": "high", "IVR": "high"}


# ---------------------------------------------------------------------------------------------
# Tables

def item_counts(items) -> pd.DataFrame:
    """Items per Dimension (rows, canonical order) x Domain (columns)."""
    return items.groupby(["Dimension", "Domain"]).size().unstack().reindex(list(DIMENSIONS))


def score_summary(scores) -> pd.DataFrame:
    """Mean p_first and p_high per model, method, template and order (rounded to 3 digits)."""
    return scores.groupby(["model", "method", "template", "order"])[["p_first", "p_high"]].mean().round(3)


def classify(lo: float, hi: float) -> str:
    """high if the CI lies above 0.5, low if below, middle if it contains 0.5."""
    return "high" if lo > 0.5 else "low" if hi < 0.5 else "middle"


def compare_with_paper(dim_table) -> pd.DataFrame:
    """Per model x method x dimension: observed (high/low/middle from the CI), the paper's
    pattern, and whether they match."""
    table = dim_table.copy()
    table["observed"] = [classify(lo, hi) for lo, hi in zip(table["lo"], table["hi"])]
    table["paper"] = table["Dimension"].map(PAPER_PATTERN)
    table["match"] = table["observed"] == table["paper"]
    return table


# ---------------------------------------------------------------------------------------------
# Conclusion and metrics

def conclusion(dim_table, consist, bias, stab) -> str:
    """Markdown stating what the run shows, with the numbers: the orientations against the
    paper's pattern, position bias, order-swap consistency, and stability."""
    compared = compare_with_paper(dim_table)
    lines = ["**Orientation per dimension** (probability of the high pole; 95% CI; paper's pattern: low PDI "
             "and MAS, high LTO and IVR, near-middle UAI and IDV):", ""]
    for (model, method), group in compared.groupby(["model", "method"], sort=False):
        cells = ", ".join(f"{r.Dimension} {format_ci(r.mean, r.lo, r.hi, 2)} ({r.observed})"
                          for r in group.itertuples())
        lines.append(f"- `{model}`, {method}: {cells}. Matches the paper's pattern on "
                     f"{int(group['match'].sum())} of {len(group)} dimensions"
                     + (f" ({', '.join(group.loc[group['match'], 'Dimension'])})." if group["match"].any() else "."))
    lines.append("")
    if len(bias):
        lines.append("**Position bias and order-swap consistency** (forced choice):")
        lines.append("")
        for r in bias.itertuples():
            c = consist[consist["model"] == r.model]
            cons = format_ci(c["consistency"].iloc[0], c["lo"].iloc[0], c["hi"].iloc[0], 2) if len(c) else "n/a"
            off = abs(r.first_share - 0.5)
            strength = "a strong" if off > 0.2 else "a moderate" if off > 0.05 else "little"
            lines.append(f"- `{r.model}` picks the first-listed option in {format_ci(r.first_share, r.lo, r.hi, 2)} of "
                         f"prompts ({strength} position bias); its choice survives swapping the options for "
                         f"{cons} of item-template pairs (1.0 = fully order-consistent; 0 = it always picks the "
                         f"same position).")
        lines.append("")
    lines.append("**Stability beyond position bias** (orientations averaged over both orders):")
    lines.append("")
    for r in stab.itertuples():
        stable = (r.dims_off_middle >= 1 and (np.isnan(r.template_agreement) or r.template_agreement > 0.3)
                  and (np.isnan(r.split_half) or r.split_half > 0.5))
        extra = "" if np.isnan(r.method_agreement) else f", agreement with loglik r = {r.method_agreement:.2f}"
        verdict = ("shows a stable orientation (CIs off 0.5 on some dimensions, and the item-level preferences "
                   "agree across templates and replicate across item halves)" if stable else
                   "shows **no stable orientation** by these checks: either no dimension's CI excludes 0.5, or "
                   "the item-level preferences change with the prompt template, or the dimension means do not "
                   "replicate across random halves of the items")
        lines.append(f"- `{r.model}`, {r.method}: {r.dims_off_middle}/{r.n_dims} dimensions off the middle; "
                     f"template agreement r = {r.template_agreement:.2f}; split-half r = {r.split_half:.2f}{extra}. "
                     f"It {verdict}.")
    return "\n".join(lines)


def metrics(dim_table, consist, bias=None) -> dict:
    """The flat metrics.json: orientation_<model>_<DIM> (forced choice averaged over templates
    and orders; loglik when choice was not run), its CI, orientation_loglik_<model>_<DIM>,
    consistency_<model> and position_bias_<model> (when `bias` has rows)."""
    out = {}
    primary = primary_method(set(dim_table["method"]))
    for r in dim_table.itertuples():
        if r.method == primary:
            out[f"orientation_{r.model}_{r.Dimension}"] = r.mean
            out[f"orientation_{r.model}_{r.Dimension}_lo"] = r.lo
            out[f"orientation_{r.model}_{r.Dimension}_hi"] = r.hi
        if r.method == "loglik":
            out[f"orientation_loglik_{r.model}_{r.Dimension}"] = r.mean
    for model in dim_table["model"].unique():
        c = consist[consist["model"] == model] if len(consist) else consist
        out[f"consistency_{model}"] = float(c["consistency"].iloc[0]) if len(c) else float("nan")
    if bias is not None:
        for r in bias.itertuples():
            out[f"position_bias_{r.model}"] = r.first_share
    return out


# ---------------------------------------------------------------------------------------------
# Figures

def plot_heatmap(dim_table, method: str = "choice"):
    """Models x dimensions heatmap of orientation (0.5 = middle), annotated with the means."""
    use_style()
    table = dim_table[dim_table["method"] == method]
    grid = table.pivot(index="model", columns="Dimension", values="mean").reindex(columns=list(DIMENSIONS))
    fig, ax = plt.subplots(figsize=figsize("column", aspect=0.25 + 0.15 * len(grid)))
    sns.heatmap(grid, annot=True, fmt=".2f", annot_kws={"fontsize": 7}, cmap="RdBu_r", vmin=0, vmax=1,
                cbar_kws={"label": "P(high pole)"}, ax=ax)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="y", labelrotation=0)
    ax.set_title(f"Orientation ({method})")
    return fig


def heatmaps(dim_table, methods) -> dict:
    """One heatmap per method, by figure name: `heatmap` for the main method (forced choice
    when it was run), `heatmap-<method>` for the other."""
    main = primary_method(methods)
    return {"heatmap" if method == main else f"heatmap-{method}": plot_heatmap(dim_table, method)
            for method in methods}


def plot_domains(domain_table, method: str = "choice"):
    """One panel per dimension: orientation per domain, a bar per model with its 95% CI."""
    use_style()
    table = domain_table[domain_table["method"] == method]
    fig, axes = plt.subplots(2, 3, figsize=figsize("text", aspect=0.6), sharey=True)
    for ax, dim in zip(axes.flat, DIMENSIONS):
        part = table[table["Dimension"] == dim]
        if len(part):
            bar_with_ci(ax, part, x="Domain", hue="model" if part["model"].nunique() > 1 else None)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_title(dim)
        ax.set_ylim(0, 1)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelrotation=60, labelsize=6)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.flat:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if handles:  # one legend for all panels, above them, so it covers no bar
        fig.legend(handles, labels, loc="outside upper center", ncol=len(labels))
    axes[0, 0].set_ylabel("P(high pole)")
    axes[1, 0].set_ylabel("P(high pole)")
    return fig


def plot_item_orientations(scores, method: str = "choice"):
    """Per dimension, the distribution of per-item orientation (averaged over templates and
    orders): a box per model with the items drawn over it."""
    use_style()
    items = item_orientation(scores[scores["method"] == method])
    models = sorted(items["model"].unique())  # the colours of plot_domains, whose table is sorted by model
    fig, ax = plt.subplots(figsize=figsize("text", aspect=0.4))
    common = {"data": items, "x": "Dimension", "y": "orientation", "hue": "model", "order": list(DIMENSIONS),
              "hue_order": models, "ax": ax}
    with warnings.catch_warnings():  # seaborn 0.13 still passes matplotlib's deprecated `vert`
        warnings.simplefilter("ignore", MatplotlibDeprecationWarning)
        sns.boxplot(**common, showfliers=False, boxprops={"alpha": 0.6}, linewidth=0.8)
    sns.stripplot(**common, dodge=True, size=2, alpha=0.6, jitter=0.15, legend=False)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1)
    ax.set_xlabel("")
    ax.set_ylabel("P(high pole), per item")
    ax.set_title(f"Per-item orientation ({method})")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), title=None)
    return fig
