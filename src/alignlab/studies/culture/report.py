"""Tables, figures, metrics and the conclusion of study 04 (cultural dimensions).

    votes = aggregation.votes(scores); answers = aggregation.question_answers(votes)
    dims = aggregation.orientation_shares(answers); bias = aggregation.position_bias(scores)
    table = verdicts.verdicts(votes, dims, bias, margin=0.15)
    dimension_table(table)                      # six dimensions x models, every method, with verdicts
    print(conclusion(table, bias, aggregation.paired_differences(answers), margin=0.15))
    metrics(table, bias)                        # the flat metrics.json
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy import stats as scipy_stats

from alignlab.data.cultural import DIMENSIONS, DOMAINS
from alignlab.figures import bar_with_ci, figsize, use_style
from alignlab.stats import format_ci
from alignlab.studies.culture.prompts import MIN_ITEMS

# The source paper's pattern for most models (CDEval, Wang et al. 2024): orientation below,
# above, or near the middle (0.5).
PAPER_PATTERN = {"PDI": "low", "IDV": "middle", "UAI": "middle", "MAS": "low", "LTO": "high", "IVR": "high"}
VERDICT_PATTERN = {"oriented high": "high", "oriented low": "low", "equivalent to the middle": "middle"}
VERDICT_CODE = {"oriented high": 1.0, "oriented low": -1.0, "equivalent to the middle": 0.0}
VERDICT_MARK = {"oriented high": "H", "oriented low": "L", "equivalent to the middle": "M", "not determined": "?"}


# ---------------------------------------------------------------------------------------------
# Tables

def item_counts(items) -> pd.DataFrame:
    """Items per Dimension (rows, canonical order) x Domain (columns)."""
    return (items.groupby(["Dimension", "Domain"]).size().unstack(fill_value=0)
            .reindex(index=list(DIMENSIONS), columns=[d for d in DOMAINS if d in set(items["Domain"])], fill_value=0))


def dimension_table(verdict_table) -> pd.DataFrame:
    """Rows model x Dimension, one column per method: "orientation [lo, hi] verdict"."""
    cells = verdict_table.assign(cell=[
        f"{_ci_text(r.orientation, r.lo, r.hi)} {r.verdict}" for r in verdict_table.itertuples()])
    table = cells.pivot_table(index=["model", "Dimension"], columns="method", values="cell", aggfunc="first",
                              sort=False)
    table.columns.name = None
    return table


def _ci_text(mean, lo, hi) -> str:
    if np.isnan(mean):
        return "n/a"
    return f"{mean:.2f}" if np.isnan(lo) else format_ci(mean, lo, hi, 2)


def compare_with_paper(verdict_table) -> pd.DataFrame:
    """Per model x method x dimension: the verdict, the paper's pattern, and `agrees` (True, False,
    or None when the verdict is "not determined")."""
    table = verdict_table[["model", "method", "Dimension", "orientation", "verdict"]].copy()
    table["paper"] = table["Dimension"].map(PAPER_PATTERN)
    observed = table["verdict"].map(VERDICT_PATTERN)
    table["agrees"] = [None if pd.isna(o) else o == p for o, p in zip(observed, table["paper"])]
    return table


def detectable_difference(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference a two-sided test at `alpha` detects with `power`, from `n`
    paired questions whose differences have standard deviation `sd` (normal approximation)."""
    if n < 2 or not np.isfinite(sd):
        return float("nan")
    z = scipy_stats.norm.ppf(1 - alpha / 2) + scipy_stats.norm.ppf(power)
    return float(z * sd / np.sqrt(n))


def detectable_by_size(differences, n_items) -> pd.DataFrame:
    """Per method: the median SD of per-question paired differences (between models, over
    dimensions) and the minimum detectable difference of one dimension with `n_items` questions
    each (a dict name -> count, e.g. {"this run": 21, "whole bank": 35})."""
    if not len(differences):
        return pd.DataFrame()
    sd = differences.groupby("method")["sd"].median()
    return pd.DataFrame({"sd_paired": sd, **{f"mdd ({name}, n={n})": [detectable_difference(s, n) for s in sd]
                                              for name, n in n_items.items()}})


# ---------------------------------------------------------------------------------------------
# Conclusion and metrics

def conclusion(verdict_table, bias, differences, margin: float) -> str:
    """Markdown stating what the run shows, with the numbers: the verdicts per model and method,
    position bias, agreement with the paper's pattern where a verdict exists, and the paired
    differences between models whose CI excludes 0."""
    lines = [f"**Verdicts per dimension** (share of questions answered with the high pole, 95% CI over questions; "
             f"\"middle\" = TOST within 0.5 ± {margin:g} and answers more consistent than the null model's):", ""]
    for (model, method), group in verdict_table.groupby(["model", "method"], sort=False):
        counts = group["verdict"].value_counts()
        cells = ", ".join(f"{r.Dimension} {_ci_text(r.orientation, r.lo, r.hi)} ({r.verdict})"
                          for r in group.itertuples())
        compared = compare_with_paper(group)
        decided = compared[compared["agrees"].notna()]
        paper = (f"where a verdict exists it agrees with the paper's pattern on {int(decided['agrees'].sum())} of "
                 f"{len(decided)} dimensions" if len(decided) else "no dimension gets a verdict to compare with "
                 "the paper's pattern")
        lines.append(f"- `{model}`, {method}: {cells}. {counts.get('not determined', 0)} of {len(group)} dimensions "
                     f"not determined; {paper}.")
    lines.append("")
    if len(bias):
        lines.append("**Position bias** (answers over both orders; position-driven = same position chosen in both "
                     "orders):")
        lines.append("")
        for r in bias.itertuples():
            logodds = "" if np.isnan(r.first_logodds) else f", mean log-odds of the first label {r.first_logodds:+.2f}"
            parse = f"; {r.unparseable:.0%} of its answers unparseable" if r.method == "generate" else ""
            verdict = ("**position bias dominates: its verdicts are withheld**" if r.dominated else
                       "content decides more pairs than position")
            lines.append(f"- `{r.model}`, {r.method}: first-listed option chosen in "
                         f"{_ci_text(r.first_share, r.lo, r.hi)} of answers{logodds}; {r.position_driven:.0%} of "
                         f"{r.n_pairs} pairs position-driven: {verdict}{parse}.")
        lines.append("")
    if len(differences):
        clear = differences[(differences["lo"] > 0) | (differences["hi"] < 0)]
        n = len(differences)
        holm_ok = differences["p_holm"] < 0.05 if "p_holm" in differences else pd.Series(False, differences.index)
        lines.append(f"**Paired differences between models** (same questions; 95% paired bootstrap CI): "
                     f"{len(clear)} of {n} model-pair x method x dimension differences exclude 0, where about "
                     f"{0.05 * n:.0f} would by chance alone; {int(holm_ok.sum())} survive Holm's correction "
                     f"for the {n} comparisons (Wilcoxon signed-rank p)" + (":" if len(clear) else "."))
        for r in clear.itertuples():
            holm_text = (f"; p = {r.p:.2g}, Holm {r.p_holm:.2g}" + (" (**survives**)" if r.p_holm < 0.05 else "")
                         if "p_holm" in differences else "")
            lines.append(f"- {r.method}, {r.Dimension}: `{r.model_a}` − `{r.model_b}` = "
                         f"{format_ci(r.difference, r.lo, r.hi, 2)} over {r.n_items} questions{holm_text}.")
    return "\n".join(lines)


def metrics(verdict_table, bias) -> dict:
    """The flat metrics.json: orientation_<method>_<model>_<DIM> with _lo/_hi, verdict_<method>_
    <model>_<DIM> (1 oriented high, -1 low, 0 middle, NaN not determined), and per model and
    ordered method position_first_share_, position_driven_ and (generate) unparseable_."""
    out = {}
    for r in verdict_table.itertuples():
        key = f"{r.method}_{r.model}_{r.Dimension}"
        out[f"orientation_{key}"] = float(r.orientation)
        out[f"orientation_{key}_lo"] = float(r.lo)
        out[f"orientation_{key}_hi"] = float(r.hi)
        out[f"verdict_{key}"] = VERDICT_CODE.get(r.verdict, float("nan"))
    for r in bias.itertuples():
        out[f"position_first_share_{r.method}_{r.model}"] = float(r.first_share)
        out[f"position_driven_{r.method}_{r.model}"] = float(r.position_driven)
        if r.method == "generate":
            out[f"unparseable_{r.model}"] = float(r.unparseable)
    return out


# ---------------------------------------------------------------------------------------------
# Figures

def plot_domain_heatmaps(domain_table, method: str):
    """CDEval's dimension x domain view: one heatmap per model (side by side) of the share of
    questions answered with the high pole; a cell from fewer than MIN_ITEMS questions shows its n."""
    use_style()
    table = domain_table[domain_table["method"] == method]
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=figsize("text", aspect=0.42), squeeze=False, sharey=True)
    for i, (ax, model) in enumerate(zip(axes[0], models)):
        part = table[table["model"] == model]
        grid = part.pivot(index="Dimension", columns="Domain", values="orientation").reindex(
            index=list(DIMENSIONS), columns=list(DOMAINS))
        n = part.pivot(index="Dimension", columns="Domain", values="n_items").reindex(
            index=list(DIMENSIONS), columns=list(DOMAINS))
        notes = np.array([["" if np.isnan(v) else f"{v:.2f}" if c >= MIN_ITEMS else f"{v:.2f}\nn={int(c)}"
                           for v, c in zip(vs, cs)] for vs, cs in zip(grid.to_numpy(float), n.fillna(0).to_numpy())])
        sns.heatmap(grid, annot=notes, fmt="", annot_kws={"fontsize": 6}, cmap="RdBu_r", vmin=0, vmax=1, center=0.5,
                    cbar=i == len(models) - 1, cbar_kws={"label": "share answered high"}, ax=ax)
        ax.set_title(model, fontsize=8)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelrotation=60, labelsize=6)
        ax.tick_params(axis="y", labelrotation=0)
    fig.suptitle(f"Orientation per dimension and domain ({method})", fontsize=9)
    return fig


def plot_dimensions(verdict_table, margin: float):
    """The six dimensions, all models side by side: one panel per method, a bar per model with its
    95% CI, the band 0.5 ± margin shaded, and each verdict marked over its bar (H high, L low,
    M middle, ? not determined)."""
    use_style()
    methods = list(dict.fromkeys(verdict_table["method"]))
    fig, axes = plt.subplots(len(methods), 1, figsize=figsize("text", aspect=0.3 * len(methods) + 0.1),
                             squeeze=False, sharex=True)
    for ax, method in zip(axes[:, 0], methods):
        part = verdict_table[verdict_table["method"] == method].copy()
        part["Dimension"] = pd.Categorical(part["Dimension"], categories=list(DIMENSIONS))
        part = part.sort_values(["Dimension"], kind="stable")
        ax.axhspan(0.5 - margin, 0.5 + margin, color="0.9", zorder=0)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        bar_with_ci(ax, part, x="Dimension", y="orientation", hue="model")
        models = list(dict.fromkeys(part["model"]))
        width = 0.8 / len(models)
        for r in part.itertuples():
            x = list(DIMENSIONS).index(r.Dimension) - 0.4 + width * (models.index(r.model) + 0.5)
            top = r.hi if np.isfinite(r.hi) else r.orientation
            ax.text(x, min(top + 0.03, 1.02), VERDICT_MARK[r.verdict], ha="center", va="bottom", fontsize=6)
        ax.set_ylim(0, 1.1)
        ax.set_xlabel("")
        ax.set_ylabel(f"share high ({method})")
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside upper center", ncol=len(labels))
    return fig


def questions_per_dimension(items) -> int:
    """The fewest questions any dimension has in `items` (the n of a per-dimension test)."""
    return int(items.groupby("Dimension").size().reindex(list(DIMENSIONS), fill_value=0).min())
