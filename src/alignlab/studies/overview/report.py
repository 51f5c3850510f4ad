"""Tables, figures, metrics and the conclusion of study 00 (the zero-shot capability ladder).

    table = accuracy_table(predictions)                 # model, accuracy, lo, hi, auroc, questions
    comparisons = ladder_comparisons(predictions, models)
    print(conclusion(table, comparisons))
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from alignlab.data import binary_view
from alignlab.figures import bar_with_ci, figsize, use_style
from alignlab.stats import auroc, bootstrap_ci, format_ci, paired_bootstrap_ci, verdict

CHANCE = 0.5  # accuracy and AUROC of a random ranker on the binary view


# ---------------------------------------------------------------------------------------------
# Tables

def binary_view_preview(questions, seed: int, n: int = 6) -> pd.DataFrame:
    """The first `n` examples of the binary view drawn with `seed`: text, label (and kind)."""
    columns = ["text", "label"] + (["kind"] if "kind" in questions.column_names else [])
    return binary_view(questions, seed=seed).to_pandas()[columns].head(n)


def accuracy_table(predictions: pd.DataFrame, by: list[str] | None = None, n_boot: int = 2000) -> pd.DataFrame:
    """Accuracy and AUROC per model (and `by` columns), with a 95% CI over questions.

    The CI is a bootstrap over questions of each question's accuracy averaged over seeds (seeds
    redraw the shown answer; questions are the sampling unit). AUROC is the mean over seeds.
    """
    by = ["model", *(by or [])]
    rows = []
    for keys, group in predictions.groupby(by, sort=False):
        per_question = group.groupby("id")["correct"].mean().to_numpy()
        lo, hi = bootstrap_ci(per_question, n_boot=n_boot)
        aurocs = [auroc(g["label"].to_numpy(), g["prob"].to_numpy()) for _, g in group.groupby("seed")]
        keys = keys if isinstance(keys, tuple) else (keys,)
        rows.append({**dict(zip(by, keys)), "accuracy": per_question.mean(), "lo": lo, "hi": hi,
                     "auroc": float(np.nanmean(aurocs)), "questions": len(per_question)})
    return pd.DataFrame(rows)


def accuracy_by_kind(predictions: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """`accuracy_table` per fact type; `table` with kind "all" when the data has no fact types."""
    if "kind" in predictions:
        return accuracy_table(predictions, by=["kind"])
    return table.assign(kind="all")


def kind_grid(by_kind: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per fact type (rows) and model (columns, in the order of `by_kind`)."""
    grid = by_kind.pivot(index="kind", columns="model", values="accuracy")
    return grid[list(dict.fromkeys(by_kind["model"]))]


def ladder_comparisons(predictions: pd.DataFrame, models: list[str], n_boot: int = 2000) -> pd.DataFrame:
    """Paired bootstrap CI of the accuracy difference between each consecutive pair of models."""
    per_model = {name: g.groupby("id")["correct"].mean() for name, g in predictions.groupby("model")}
    rows = []
    for weaker, stronger in zip(models, models[1:]):
        a, b = per_model[stronger].align(per_model[weaker], join="inner")
        lo, hi = paired_bootstrap_ci(a.to_numpy(), b.to_numpy(), n_boot=n_boot)
        rows.append({"weaker": weaker, "stronger": stronger, "difference": float(a.mean() - b.mean()),
                     "lo": lo, "hi": hi, "holds": bool(lo > 0)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Conclusion and metrics

def conclusion(table: pd.DataFrame, comparisons: pd.DataFrame) -> str:
    """Markdown stating, with the numbers, whether the ladder weak < strong holds."""
    lines = ["**Zero-shot accuracy on the binary view** (chance 0.5; 95% CI over questions):", ""]
    for row in table.itertuples():
        lines.append(f"- `{row.model}`: {format_ci(row.accuracy, row.lo, row.hi)}, AUROC {row.auroc:.3f}")
    lines.append("")
    for row in comparisons.itertuples():
        said = verdict(row.difference, row.lo, row.hi, above="holds", below="is reversed",
                       straddles="is not established", unknown="is not established")
        lines.append(f"- `{row.weaker}` < `{row.stronger}` {said}: difference "
                     f"{format_ci(row.difference, row.lo, row.hi)} (paired bootstrap).")
    if len(comparisons):
        every = comparisons["holds"].all()
        lines += ["", "The ladder weak < strong "
                  + ("holds at every step" if every else "does **not** hold at every step")
                  + " here, so " + ("these models can serve as weak teacher and strong student in that order."
                                    if every else "choose weak/strong pairs only from steps that hold.")]
    return "\n".join(lines)


def metric_key(model_name: str) -> str:
    """A model name as it appears in metric keys: `Qwen/Qwen2.5-7B` -> `Qwen_Qwen2.5-7B`."""
    return model_name.replace("/", "_")


def metrics(table: pd.DataFrame, mc: pd.DataFrame, comparisons: pd.DataFrame) -> dict:
    """The flat metrics.json of the overview: zeroshot_acc_<model> and friends."""
    out = {}
    for row in table.itertuples():
        key = metric_key(row.model)
        out[f"zeroshot_acc_{key}"] = row.accuracy
        out[f"zeroshot_acc_lo_{key}"] = row.lo
        out[f"zeroshot_acc_hi_{key}"] = row.hi
        out[f"zeroshot_auroc_{key}"] = row.auroc
    for row in mc.itertuples():
        out[f"mc_acc_{metric_key(row.model)}"] = row.mc_accuracy
    if len(comparisons):
        out["ladder_holds"] = bool(comparisons["holds"].all())
    return out


# ---------------------------------------------------------------------------------------------
# Figures

def plot_accuracy(table: pd.DataFrame):
    """Bars of binary-view accuracy per model with 95% CIs, chance marked."""
    use_style()
    fig, ax = plt.subplots(figsize=figsize("column"))
    bar_with_ci(ax, table, x="model", y="accuracy")
    ax.axhline(CHANCE, color="0.4", linestyle="--", linewidth=0.8, label="chance")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("")
    ax.set_ylabel("zero-shot accuracy (binary view)")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, borderaxespad=0.2)
    return fig


def plot_by_kind(by_kind: pd.DataFrame):
    """Heatmap of accuracy per fact type (rows) and model (columns)."""
    use_style()
    fig, ax = plt.subplots(figsize=figsize("column", aspect=1.1))
    sns.heatmap(kind_grid(by_kind), annot=True, fmt=".2f", vmin=0.3, vmax=1.0, center=0.5, cmap="vlag", cbar=False,
                ax=ax)
    ax.set_xlabel("")
    ax.set_ylabel("fact type")
    ax.tick_params(axis="x", labelrotation=30)
    return fig
