"""Tables, figures, metrics and the conclusion of study 01, from the results of
`alignlab.studies.w2sg.pipeline.run_study` and `alignlab.studies.w2sg.icl.run_icl_study`.

Every number is a mean over seeds with a 95% t-interval; metrics and figures come from the first
(weak, strong) pair.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from alignlab.figures import bar_with_ci, figsize, line_with_ci, use_style
from alignlab.stats import format_ci, mean_ci, summarize, t_ci, verdict
from alignlab.training import METHODS


def _first_pair(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame.pair == frame.pair.iloc[0]]


# ---------------------------------------------------------------------------------------------
# Tables


def examples_per_split(labels: dict) -> dict:
    """Examples per split."""
    return {split: len(y) for split, y in labels.items()}


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (pair, method, loss): mean [95% t-CI over seeds] of the key numbers."""
    columns = ["weak_label_acc", "weak_acc", "ceiling_acc", "student_acc", "pgr_acc", "pgr_auc"]
    table = None
    for column in columns:
        s = summarize(results, by=["pair", "method", "loss"], value=column)
        s[column] = [format_ci(m, lo, hi) for m, lo, hi in zip(s["mean"], s["lo"], s["hi"])]
        s = s[["pair", "method", "loss", column]]
        table = s if table is None else table.merge(s, on=["pair", "method", "loss"])
    order = {m: i for i, m in enumerate(METHODS)}
    table["_o"] = table["method"].map(order)
    return table.sort_values(["pair", "_o", "loss"]).drop(columns="_o").reset_index(drop=True)


def ensemble_size_table(results: pd.DataFrame) -> pd.DataFrame:
    """The ensemble size chosen on validation per teacher method: mean, min and max over seeds and pairs."""
    return results.groupby(["method"])["ensemble_size"].describe()[["mean", "min", "max"]]


def icl_summary_table(icl_results: pd.DataFrame) -> pd.DataFrame:
    """In-context accuracy per (retriever, source, k): mean and 95% t-CI over seeds, 3 decimals."""
    return summarize(icl_results, by=["retriever", "source", "k"], value="acc").round(3)


# ---------------------------------------------------------------------------------------------
# Metrics


def icl_headline(icl_results: pd.DataFrame) -> dict:
    """ICL metrics: accuracy at the largest k with the first retriever, per label source; zero-shot."""
    first = icl_results.retriever.iloc[0]
    k_max = icl_results.k.max()
    at = icl_results[(icl_results.retriever == first) & (icl_results.k == k_max)]
    out = {"icl_k_max": float(k_max),
           "icl_acc_zero_shot": float(icl_results[icl_results.k == 0].acc.mean())}
    for source in ("weak", "gold", "flipped"):
        rows = at[at.source == source]
        if len(rows):
            out[f"icl_acc_{source}_labels"] = float(rows.acc.mean())
            out[f"icl_auc_{source}_labels"] = float(rows.auc.mean())
    for retriever in set(icl_results.retriever):
        rows = icl_results[(icl_results.retriever == retriever) & (icl_results.k == k_max)
                           & (icl_results.source == icl_results.source.iloc[0])]
        out[f"icl_acc_{retriever}"] = float(rows.acc.mean())
    return out


def metrics(results: pd.DataFrame, curve: pd.DataFrame, icl_results: pd.DataFrame | None = None) -> dict:
    """The flat metrics of the study (means over seeds, first pair)."""
    first = _first_pair(results)

    def mean(method, loss, column):
        rows = first[(first.method == method) & (first.loss == loss)]
        return float(rows[column].mean()) if len(rows) else float("nan")

    def ci(method, loss, column):
        return t_ci(first[(first.method == method) & (first.loss == loss)][column].to_numpy())

    out = {
        "weak_acc": mean("single", "xent", "weak_acc"),
        "ceiling_acc": mean("single", "xent", "ceiling_acc"),
        "student_acc_xent": mean("single", "xent", "student_acc"),
        "student_acc_logconf": mean("single", "logconf", "student_acc"),
        "pgr_xent": mean("single", "xent", "pgr_acc"),
        "pgr_logconf": mean("single", "logconf", "pgr_acc"),
        "pgr_auc_xent": mean("single", "xent", "pgr_auc"),
        "pgr_auc_logconf": mean("single", "logconf", "pgr_auc"),
        "weak_label_acc": mean("single", "xent", "weak_label_acc"),
        "bagging_weak_acc": mean("bagging", "xent", "weak_acc"),
        "bagging_weak_label_acc": mean("bagging", "xent", "weak_label_acc"),
        "bagging_student_acc": mean("bagging", "xent", "student_acc"),
        "bagging_pgr": mean("bagging", "xent", "pgr_acc"),
        "bagging_pgr_logconf": mean("bagging", "logconf", "pgr_acc"),
        "bagging_size": mean("bagging", "xent", "ensemble_size"),
        "boosting_weak_acc": mean("boosting", "xent", "weak_acc"),
        "boosting_weak_label_acc": mean("boosting", "xent", "weak_label_acc"),
        "boosting_student_acc": mean("boosting", "xent", "student_acc"),
        "boosting_pgr": mean("boosting", "xent", "pgr_acc"),
        "boosting_pgr_logconf": mean("boosting", "logconf", "pgr_acc"),
        "boosting_rounds": mean("boosting", "xent", "ensemble_size"),
        "n_seeds": float(first.seed.nunique()),
    }
    if "product" in set(first.loss):
        out["student_acc_product"] = mean("single", "product", "student_acc")
        out["pgr_product"] = mean("single", "product", "pgr_acc")
    lo, hi = ci("single", "xent", "pgr_acc")
    out["pgr_xent_lo"], out["pgr_xent_hi"] = lo, hi
    lo, hi = ci("single", "logconf", "pgr_acc")
    out["pgr_logconf_lo"], out["pgr_logconf_hi"] = lo, hi
    if icl_results is not None and len(icl_results):
        out.update(icl_headline(icl_results))
    return out


# ---------------------------------------------------------------------------------------------
# Figures


def plot_pgr(results: pd.DataFrame):
    """PGR (accuracy and AUROC) by teacher method and loss, mean and 95% CI over seeds (first pair)."""
    use_style()
    first = _first_pair(results)
    fig, axes = plt.subplots(1, 2, figsize=figsize("text", 0.36), sharey=True)
    for ax, column, title in zip(axes, ("pgr_acc", "pgr_auc"), ("PGR on accuracy", "PGR on AUROC")):
        s = summarize(first, by=["method", "loss"], value=column)
        s["method"] = pd.Categorical(s["method"], categories=[m for m in METHODS if m in set(s["method"])],
                                     ordered=True)
        bar_with_ci(ax, s.sort_values("method"), x="method", hue="loss")
        ax.axhline(0, color="0.3", linewidth=0.8)
        ax.set_title(title)
        ax.set_xlabel("weak teacher")
        ax.set_ylabel("PGR")
    axes[0].get_legend().remove()  # one legend, outside the bars
    legend = axes[1].get_legend()
    axes[1].legend(legend.legend_handles, [t.get_text() for t in legend.get_texts()], title="loss",
                   loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.suptitle(results.pair.iloc[0], fontsize="small")
    return fig


def plot_ensemble_size(curve: pd.DataFrame):
    """Weak-label accuracy (on the student's half) against ensemble size, per voting rule (first pair)."""
    use_style()
    first = _first_pair(curve).copy()
    first["rule"] = first["method"] + " (" + first["voting"] + ")"
    s = summarize(first, by=["rule", "size"], value="weak_label_acc")
    fig, ax = plt.subplots(figsize=figsize("column", 0.75))
    line_with_ci(ax, s, x="size", hue="rule")
    ax.set_xlabel("ensemble size (members or rounds)")
    ax.set_ylabel("weak-label accuracy")
    _legend_below(fig, ax, ncols=2)
    return fig


def plot_icl(icl_results: pd.DataFrame):
    """ICL accuracy against k, one line per (retriever, label source), mean and 95% CI over seeds."""
    use_style()
    df = icl_results.copy()
    df["demonstrations"] = df["retriever"] + ", " + df["source"] + " labels"
    s = summarize(df, by=["demonstrations", "k"], value="acc")
    fig, ax = plt.subplots(figsize=figsize("column", 0.9))
    line_with_ci(ax, s, x="k", hue="demonstrations")
    ax.axhline(0.5, color="0.5", linestyle=":", linewidth=0.8)
    ax.set_xticks(sorted(set(df["k"])))
    ax.set_xlabel("in-context demonstrations k")
    ax.set_ylabel("test accuracy")
    _legend_below(fig, ax, ncols=2)
    return fig


def _legend_below(fig, ax, ncols: int) -> None:
    """Move the axes' legend under the plot, outside the data (the layout makes room)."""
    legend = ax.get_legend()
    handles, labels = ax.get_legend_handles_labels()
    title = legend.get_title().get_text()
    legend.remove()
    fig.legend(handles, labels, title=title, loc="outside lower center", ncols=ncols)


# ---------------------------------------------------------------------------------------------
# The conclusion


def _paired(results: pd.DataFrame, column: str, a: tuple, b: tuple):
    """Mean and 95% t-CI over seeds of (a - b), where a and b are (method, loss)."""
    first = _first_pair(results)
    left = first[(first.method == a[0]) & (first.loss == a[1])].set_index("seed")[column]
    right = first[(first.method == b[0]) & (first.loss == b[1])].set_index("seed")[column]
    return mean_ci((left - right).to_numpy())


def conclusion(results: pd.DataFrame, curve: pd.DataFrame, icl_results: pd.DataFrame | None = None) -> str:
    """Markdown: which findings of the source studies hold in this run, with numbers and CIs."""
    first = _first_pair(results)
    n_seeds = first.seed.nunique()
    lines = [f"**Conclusion** ({results.pair.iloc[0]}, {n_seeds} seeds, mean [95% t-CI]; test split used once).", ""]

    def ci_of(method, loss, column):
        return mean_ci(first[(first.method == method) & (first.loss == loss)][column].to_numpy())

    weak, ceiling = ci_of("single", "xent", "weak_acc"), ci_of("single", "xent", "ceiling_acc")
    lines.append(f"- The ladder: weak teacher {format_ci(*weak)} vs strong ceiling {format_ci(*ceiling)} test accuracy"
                 + (" (a gap to recover)." if weak[0] < ceiling[0] else " — **no gap**: PGR is undefined (NaN)."))
    student = ci_of("single", "xent", "student_acc")
    single = first[(first.method == "single") & (first.loss == "xent")]
    diff = mean_ci((single.student_acc - single.weak_acc).to_numpy())
    lines.append(f"1. *A strong student trained on weak labels beats its teacher* (Burns et al.): "
                 f"student {format_ci(*student)}, student - teacher {format_ci(*diff)}, "
                 f"PGR {format_ci(*ci_of('single', 'xent', 'pgr_acc'))} — {verdict(*diff)}.")
    conf = _paired(results, "student_acc", ("single", "logconf"), ("single", "xent"))
    lines.append(f"2. *The auxiliary confidence loss raises PGR*: student accuracy logconf - xent {format_ci(*conf)}, "
                 f"PGR {format_ci(*ci_of('single', 'logconf', 'pgr_acc'))} "
                 f"vs {format_ci(*ci_of('single', 'xent', 'pgr_acc'))} — {verdict(*conf)}.")
    for method in ("bagging", "boosting"):
        if method not in set(first.method):
            continue
        label = _paired(results, "weak_label_acc", (method, "xent"), ("single", "xent"))
        stud = _paired(results, "student_acc", (method, "xent"), ("single", "xent"))
        number = 3 if method == "bagging" else 4
        lines.append(f"{number}. *{method.capitalize()} improves the weak labels* (the follow-up study): "
                     f"weak-label accuracy {method} - single {format_ci(*label)} — {verdict(*label)}; and the student: "
                     f"student accuracy {method} - single {format_ci(*stud)} — {verdict(*stud)}; "
                     f"PGR {format_ci(*ci_of(method, 'xent', 'pgr_acc'))}.")
    if icl_results is not None and len(icl_results):
        lines.append(icl_conclusion(icl_results))
    lines.append("")
    lines.append("Small models, a small embedded dataset and linear probes: a finding that does not show here is a "
                 "result at this scale, not evidence against the source study at its scale.")
    return "\n".join(lines)


def icl_conclusion(icl_results: pd.DataFrame) -> str:
    """The in-context finding (item 5 of `conclusion`): weak-labelled demonstrations against zero-shot,
    gold against weak labels, randomly flipped gold against weak labels."""
    k_max = icl_results.k.max()
    first = icl_results.retriever.iloc[0]
    at = icl_results[(icl_results.retriever == first) & (icl_results.k == k_max)].set_index(["source", "seed"]).acc
    zero = icl_results[icl_results.k == 0].groupby("seed").acc.first()

    def diff(a, b):
        return mean_ci((a - b).to_numpy())

    parts = []
    if "weak" in at.index.get_level_values(0):
        weak = at.xs("weak")
        gain = diff(weak, zero)
        parts.append(f"weak-labelled demonstrations (k={k_max}, {first}) - zero-shot {format_ci(*gain)} "
                     f"— {verdict(*gain)}")
        if "gold" in at.index.get_level_values(0):
            gold_gain = diff(at.xs("gold"), weak)
            parts.append(f"gold - weak labels {format_ci(*gold_gain)} — {verdict(*gold_gain)}")
        if "flipped" in at.index.get_level_values(0):
            parts.append(f"randomly flipped gold (same error rate) - weak labels "
                         f"{format_ci(*diff(at.xs('flipped'), weak))}")
    return "5. *In-context W2SG*: " + "; ".join(parts) + "."
