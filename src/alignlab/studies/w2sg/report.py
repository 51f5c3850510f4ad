"""Tables, figures, metrics and the conclusion of study 01, from the results of
`alignlab.studies.w2sg.pipeline.run_study` and `alignlab.studies.w2sg.icl.run_icl_study`.

Units of resampling. Weak-to-strong numbers are one per seed (each seed redraws the halves, every
head's initialisation and the bootstrap resamples): mean [95% Student-t interval over seeds], and
for PGR also the median and how many seeds gave a defined PGR (none is dropped silently). In-context
numbers also get a percentile bootstrap over the test questions (each question's correctness
averaged over seeds), since a few seeds on a few dozen questions vary mostly by question.

PGR is a finding only where the gap it divides by is established: the 95% CI of ceiling - weak
(single teacher, over seeds) must exclude 0; otherwise the conclusion says the gap is not
established and gives the numbers without a verdict. Every (weak, strong) pair gets its table rows,
metrics (the first pair's without a prefix, pair i's with `pair<i>_`), figure panels and
conclusion lines. The headline uses the first of `selections`.
"""

from __future__ import annotations

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from alignlab.figures import bar_with_ci, figsize, line_with_ci, use_style
from alignlab.stats import bootstrap_ci, format_ci, mean_ci, summarize, verdict
from alignlab.training import METHODS
from alignlab.training.w2s import PGRUndefinedWarning, pgr

BEATS = "the strong LM **beats its supervisor** in context"
BELOW = "the strong LM is **below its supervisor** in context"
PGR_COLUMNS = {"pgr_acc": "PGR (accuracy)", "pgr_vs_single_acc": "PGR vs single teacher",
               "pgr_auc": "PGR (AUROC)"}


def headline(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of the headline selection (the first in the results)."""
    return results[results.selection == results.selection.iloc[0]]


def pairs_of(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame.pair))


def _rows(frame, pair, method, loss, selection=None):
    keep = (frame.pair == pair) & (frame.method == method) & (frame.loss == loss)
    if selection is not None:
        keep &= frame.selection == selection
    return frame[keep].sort_values("seed")


# ---------------------------------------------------------------------------------------------
# Numbers


def _layers(rows: pd.DataFrame) -> tuple:
    """(weak, strong) feature layers of a pair's rows; NaN where not recorded (finetune mode)."""
    return tuple(float(rows[c].iloc[0]) if c in rows and rows[c].notna().any() else math.nan
                 for c in ("weak_layer", "strong_layer"))


def pgr_stats(values) -> dict:
    """PGR over seeds: mean [95% t-CI] and median of the defined values, how many were defined."""
    values = np.asarray(values, dtype=float)
    defined = values[~np.isnan(values)]
    mean, lo, hi = mean_ci(defined)
    return {"mean": mean, "lo": lo, "hi": hi, "median": float(np.median(defined)) if defined.size else math.nan,
            "n_defined": int(defined.size), "n": int(values.size)}


def format_pgr(stats: dict) -> str:
    if not stats["n_defined"]:
        return f"undefined (0/{stats['n']} seeds)"
    return (f"{format_ci(stats['mean'], stats['lo'], stats['hi'])}, median {stats['median']:.3f}, "
            f"defined in {stats['n_defined']}/{stats['n']} seeds")


def gap(results: pd.DataFrame, pair: str, metric: str = "acc") -> dict:
    """Ceiling - weak (single teacher) over seeds: mean, CI and whether the CI excludes 0 above."""
    rows = _rows(headline(results), pair, "single", "xent")
    mean, lo, hi = mean_ci((rows[f"ceiling_{metric}"] - rows[f"weak_{metric}"]).to_numpy())
    return {"mean": mean, "lo": lo, "hi": hi, "established": bool(lo > 0)}


def detectable_difference_over_seeds(differences, n_seeds: int | None = None, power: float = 0.8,
                                  level: float = 0.95) -> float:
    """The smallest mean paired difference a t-test over `n_seeds` seeds (default: as many as given)
    detects with `power` at two-sided `level`, given the spread of `differences` (one per seed):
    (t_{(1+level)/2, n-1} + t_{power, n-1}) * sd / sqrt(n)."""
    differences = np.asarray(differences, dtype=float)
    differences = differences[~np.isnan(differences)]
    n = n_seeds or differences.size
    if differences.size < 2 or n < 2:
        return math.nan
    t = scipy_stats.t.ppf((1 + level) / 2, n - 1) + scipy_stats.t.ppf(power, n - 1)
    return float(t * differences.std(ddof=1) / math.sqrt(n))


def question_bootstrap(correct_by_seed, n_boot: int = 2000) -> tuple[float, float, float]:
    """(mean, lo, hi) of accuracy, resampling questions: each question's correctness averaged over
    seeds (rows of `correct_by_seed`, questions in columns), then a percentile bootstrap."""
    per_question = np.asarray([list(c) for c in correct_by_seed], dtype=float).mean(0)
    return (float(per_question.mean()), *bootstrap_ci(per_question, n_boot=n_boot))


# ---------------------------------------------------------------------------------------------
# Tables


def examples_per_split(labels: dict) -> dict:
    """Examples per split."""
    return {split: len(y) for split, y in labels.items()}


def layer_table(layers: pd.DataFrame) -> pd.DataFrame:
    """Validation accuracy of a gold-label probe per model and candidate layer; the chosen one marked."""
    if not len(layers):
        return layers
    table = layers.assign(val_acc=layers.val_acc.round(3))
    table["val_acc"] = [f"{a} *" if c else str(a) for a, c in zip(table.val_acc, table.chosen)]
    return table.pivot(index="model", columns="layer", values="val_acc")


def gap_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per pair: weak (single teacher) and ceiling test accuracy, the gap with its CI, whether it is
    established, and the AUROC gap."""
    rows = []
    for pair in pairs_of(results):
        single = _rows(headline(results), pair, "single", "xent")
        acc, auc = gap(results, pair, "acc"), gap(results, pair, "auc")
        rows.append({"pair": pair, "weak_acc": format_ci(*mean_ci(single.weak_acc)),
                     "ceiling_acc": format_ci(*mean_ci(single.ceiling_acc)),
                     "gap_acc": format_ci(acc["mean"], acc["lo"], acc["hi"]), "gap established": acc["established"],
                     "gap_auc": format_ci(auc["mean"], auc["lo"], auc["hi"]),
                     "layers (weak, strong)": _layers(single)})
    return pd.DataFrame(rows)


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (pair, selection, method, loss): student accuracy and the three PGRs (mean [CI],
    median, seeds defined), the epoch kept."""
    out = []
    order = {m: i for i, m in enumerate(METHODS)}
    for (pair, selection, method, loss), rows in results.groupby(["pair", "selection", "method", "loss"], sort=False):
        row = {"pair": pair, "selection": selection, "method": method, "loss": loss,
               "weak_acc": format_ci(*mean_ci(rows.weak_acc)), "student_acc": format_ci(*mean_ci(rows.student_acc))}
        for column in PGR_COLUMNS:
            row[column] = format_pgr(pgr_stats(rows[column]))
        row["best_epoch"] = f"{rows.best_epoch.mean():.0f} ({rows.best_epoch.min()}-{rows.best_epoch.max()})"
        row["_o"] = order.get(method, 9)
        out.append(row)
    table = pd.DataFrame(out)
    table = table.sort_values(["pair", "selection", "_o", "loss"], kind="stable")
    return table.drop(columns="_o").reset_index(drop=True)


def selection_table(results: pd.DataFrame) -> pd.DataFrame:
    """The loss comparison under each epoch selection: student accuracy of each loss minus `xent`
    (single teacher), paired by seed, mean [95% t-CI], per pair."""
    rows = []
    for pair in pairs_of(results):
        for selection in dict.fromkeys(results.selection):
            base = _rows(results, pair, "single", "xent", selection).set_index("seed").student_acc
            for loss in dict.fromkeys(results.loss):
                if loss == "xent":
                    continue
                other = _rows(results, pair, "single", loss, selection).set_index("seed").student_acc
                diff = mean_ci((other - base).to_numpy())
                rows.append({"pair": pair, "selection": selection, "comparison": f"{loss} - xent",
                             "student_acc difference": format_ci(*diff), "verdict": verdict(*diff)})
    return pd.DataFrame(rows)


def ensemble_size_table(results: pd.DataFrame) -> pd.DataFrame:
    """The ensemble size chosen on validation per pair and teacher method: mean, min and max over seeds."""
    return headline(results).groupby(["pair", "method"])["ensemble_size"].describe()[["mean", "min", "max"]]


def icl_pgr(icl_results: pd.DataFrame) -> pd.DataFrame:
    """Per seed, at the largest k with the first retriever: the teacher's accuracy on the same
    questions, ICL accuracy with weak and with gold labels, and ICL-PGR = (weak - teacher) /
    (gold - teacher) (NaN, with a warning, where gold ICL does not beat the teacher)."""
    first, k_max = icl_results.retriever.iloc[0], icl_results.k.max()
    at = icl_results[(icl_results.retriever == first) & (icl_results.k == k_max)]
    rows = []
    for seed, group in at.groupby("seed"):
        acc = group.set_index("source").acc
        if "weak" not in acc or "gold" not in acc:
            continue
        teacher = float(group.teacher_acc.iloc[0])
        with warnings.catch_warnings():
            warnings.simplefilter("always", PGRUndefinedWarning)
            value = pgr(teacher, acc["weak"], acc["gold"], "in-context accuracy")
        rows.append({"seed": seed, "teacher_acc": teacher, "icl_weak_acc": acc["weak"], "icl_gold_acc": acc["gold"],
                     "icl_pgr": value})
    return pd.DataFrame(rows, columns=["seed", "teacher_acc", "icl_weak_acc", "icl_gold_acc", "icl_pgr"])


def icl_summary_table(icl_results: pd.DataFrame) -> pd.DataFrame:
    """Per (retriever, source, k): accuracy with a t-CI over seeds and a bootstrap CI over questions,
    calibrated accuracy (bootstrap over questions), AUROC (t-CI over seeds)."""
    rows = []
    for (retriever, source, k), group in icl_results.groupby(["retriever", "source", "k"]):
        rows.append({"retriever": retriever, "source": source, "k": k,
                     "acc [seeds]": format_ci(*mean_ci(group.acc)),
                     "acc [questions]": format_ci(*question_bootstrap(group.correct)),
                     "calibrated acc [questions]": format_ci(*question_bootstrap(group.cal_correct)),
                     "AUROC [seeds]": format_ci(*mean_ci(group.auc)), "seeds": group.seed.nunique()})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Metrics


def pair_metrics(results: pd.DataFrame, pair: str) -> dict:
    """The flat metrics of one pair (headline selection; means over seeds)."""
    head = headline(results)

    def mean(method, loss, column):
        rows = _rows(head, pair, method, loss)
        return float(rows[column].mean()) if len(rows) else math.nan

    acc_gap, auc_gap = gap(results, pair, "acc"), gap(results, pair, "auc")
    out = {"weak_acc": mean("single", "xent", "weak_acc"), "ceiling_acc": mean("single", "xent", "ceiling_acc"),
           "gap_acc": acc_gap["mean"], "gap_acc_lo": acc_gap["lo"], "gap_acc_hi": acc_gap["hi"],
           "gap_established": float(acc_gap["established"]), "gap_auc": auc_gap["mean"],
           "weak_label_acc": mean("single", "xent", "weak_label_acc"),
           "weak_layer": _layers(_rows(head, pair, "single", "xent"))[0],
           "strong_layer": _layers(_rows(head, pair, "single", "xent"))[1],
           "n_seeds": float(head[head.pair == pair].seed.nunique())}
    for method in dict.fromkeys(head.method):
        prefix = "" if method == "single" else f"{method}_"
        if method != "single":
            out[f"{prefix}weak_acc"] = mean(method, "xent", "weak_acc")
            out[f"{prefix}weak_label_acc"] = mean(method, "xent", "weak_label_acc")
            out[f"{prefix}size"] = mean(method, "xent", "ensemble_size")
        for loss in dict.fromkeys(head.loss):
            rows = _rows(head, pair, method, loss)
            out[f"{prefix}student_acc_{loss}"] = float(rows.student_acc.mean())
            for column, name in (("pgr_acc", "pgr"), ("pgr_vs_single_acc", "pgr_vs_single"), ("pgr_auc", "pgr_auc")):
                if method == "single" and column == "pgr_vs_single_acc":
                    continue
                stats = pgr_stats(rows[column])
                out[f"{prefix}{name}_{loss}"] = stats["mean"]
                out[f"{prefix}{name}_{loss}_lo"], out[f"{prefix}{name}_{loss}_hi"] = stats["lo"], stats["hi"]
                out[f"{prefix}{name}_{loss}_median"] = stats["median"]
                out[f"{prefix}{name}_{loss}_n_defined"] = float(stats["n_defined"])
    return out


def icl_headline(icl_results: pd.DataFrame) -> dict:
    """ICL metrics: at the largest k with the first retriever, per label source, accuracy,
    calibrated accuracy and AUROC; zero-shot; the teacher on the same questions; ICL-PGR."""
    first, k_max = icl_results.retriever.iloc[0], icl_results.k.max()
    at = icl_results[(icl_results.retriever == first) & (icl_results.k == k_max)]
    out = {"icl_k_max": float(k_max), "icl_acc_zero_shot": float(icl_results[icl_results.k == 0].acc.mean()),
           "icl_teacher_acc": float(at.teacher_acc.mean())}
    for source in dict.fromkeys(at.source):
        rows = at[at.source == source]
        out[f"icl_acc_{source}_labels"] = float(rows.acc.mean())
        out[f"icl_cal_acc_{source}_labels"] = float(rows.cal_acc.mean())
        out[f"icl_auc_{source}_labels"] = float(rows.auc.mean())
    for retriever in dict.fromkeys(icl_results.retriever):
        rows = icl_results[(icl_results.retriever == retriever) & (icl_results.k == k_max)
                           & (icl_results.source == icl_results.source.iloc[0])]
        out[f"icl_acc_{retriever}"] = float(rows.acc.mean())
    table = icl_pgr(icl_results)
    if len(table):
        stats = pgr_stats(table.icl_pgr)
        out.update({"icl_pgr": stats["mean"], "icl_pgr_median": stats["median"],
                    "icl_pgr_n_defined": float(stats["n_defined"])})
    return out


def metrics(results: pd.DataFrame, curve: pd.DataFrame, icl_results: pd.DataFrame | None = None) -> dict:
    """The flat metrics of the study: every pair's (the first without a prefix, pair i's with
    `pair<i>_`), the loss comparison under every selection (first pair), and in-context W2SG."""
    out = {}
    for i, pair in enumerate(pairs_of(results)):
        prefix = "" if i == 0 else f"pair{i}_"
        out.update({prefix + name: value for name, value in pair_metrics(results, pair).items()})
    first = pairs_of(results)[0]
    for selection in dict.fromkeys(results.selection):
        for loss in dict.fromkeys(results.loss):
            rows = _rows(results, first, "single", loss, selection)
            name = selection.replace("-", "_")
            out[f"student_acc_{loss}_{name}"] = float(rows.student_acc.mean())
            out[f"best_epoch_{loss}_{name}"] = float(rows.best_epoch.mean())
    if icl_results is not None and len(icl_results):
        out.update(icl_headline(icl_results))
    return out


# ---------------------------------------------------------------------------------------------
# Figures


def plot_pgr(results: pd.DataFrame):
    """PGR by teacher method and loss (headline selection), one row of panels per pair: against the
    student's own teacher, against the single teacher, and on AUROC; mean and 95% CI over seeds."""
    use_style()
    head, pairs = headline(results), pairs_of(results)
    fig, axes = plt.subplots(len(pairs), 3, figsize=figsize("text", 0.36 * len(pairs)), sharey="row",
                             squeeze=False)
    for row, pair in zip(axes, pairs):
        for ax, (column, title) in zip(row, PGR_COLUMNS.items()):
            s = summarize(head[head.pair == pair], by=["method", "loss"], value=column)
            s["method"] = pd.Categorical(s["method"], categories=[m for m in METHODS if m in set(s["method"])],
                                         ordered=True)
            bar_with_ci(ax, s.sort_values("method"), x="method", hue="loss")
            ax.axhline(0, color="0.3", linewidth=0.8)
            ax.set_title(f"{title}\n{pair}" if len(pairs) > 1 else title, fontsize="small")
            ax.set_xlabel("weak teacher")
            ax.set_ylabel("PGR")
            ax.get_legend().remove()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, title="loss", loc="outside right upper", frameon=False)
    if len(pairs) == 1:
        fig.suptitle(pairs[0], fontsize="small")
    return fig


def plot_capability(results: pd.DataFrame):
    """The openai-style view (Burns et al. Fig. 3): left, test accuracy of the student (single teacher,
    xent, headline selection) against the strong model's capability (its ceiling accuracy), one line
    per weak model, its weak accuracy dotted; right, PGR against the gap it divides by, per pair and
    teacher method (mean and 95% CI over seeds)."""
    use_style()
    head = headline(results)
    single = head[(head.method == "single") & (head.loss == "xent")].copy()
    single["weak"] = single.pair.str.split(" -> ").str[0]
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize("text", 0.4))
    for weak, rows in single.groupby("weak", sort=False):
        by_pair = rows.groupby("pair", sort=False)[["ceiling_acc", "student_acc", "weak_acc"]].mean()
        by_pair = by_pair.sort_values("ceiling_acc")
        line = left.plot(by_pair.ceiling_acc, by_pair.student_acc, marker="o", label=f"weak: {weak}")[0]
        left.axhline(by_pair.weak_acc.mean(), color=line.get_color(), linestyle=":", linewidth=0.8)
    both = single[["ceiling_acc", "student_acc"]]
    lims = [both.min().min() - 0.02, both.max().max() + 0.02]
    left.plot(lims, lims, color="0.6", linewidth=0.8, label="student = ceiling")
    left.set_xlabel("strong ceiling accuracy (capability)")
    left.set_ylabel("student test accuracy")
    left.legend(fontsize="x-small", frameon=False)
    for (pair, method), rows in head[head.loss == "xent"].groupby(["pair", "method"], sort=False):
        g_mean, g_lo, g_hi = mean_ci(rows.gap_acc)
        p = pgr_stats(rows.pgr_acc)
        right.errorbar(g_mean, p["mean"], xerr=[[g_mean - g_lo], [g_hi - g_mean]] if not math.isnan(g_lo) else None,
                       yerr=[[p["mean"] - p["lo"]], [p["hi"] - p["mean"]]] if not math.isnan(p["lo"]) else None,
                       marker="o", linestyle="none", capsize=2, label=f"{pair}, {method}")
    right.axhline(0, color="0.3", linewidth=0.8)
    right.axvline(0, color="0.3", linewidth=0.8)
    right.set_xlabel("gap: ceiling - weak accuracy")
    right.set_ylabel("PGR (xent)")
    right.legend(fontsize="xx-small", frameon=False, loc="best")
    return fig


def plot_ensemble_size(curve: pd.DataFrame):
    """Weak-label accuracy (on the student's half) against ensemble size, per voting rule, one panel per pair."""
    use_style()
    curve = curve.copy()
    curve["rule"] = curve["method"] + " (" + curve["voting"] + ")"
    pairs = pairs_of(curve)
    fig, axes = plt.subplots(1, len(pairs), figsize=figsize("column", 0.75) if len(pairs) == 1
                             else figsize("text", 0.4), squeeze=False, sharey=True)
    for ax, pair in zip(axes[0], pairs):
        s = summarize(curve[curve.pair == pair], by=["rule", "size"], value="weak_label_acc")
        line_with_ci(ax, s, x="size", hue="rule")
        ax.set_xlabel("ensemble size (members or rounds)")
        ax.set_ylabel("weak-label accuracy")
        if len(pairs) > 1:
            ax.set_title(pair, fontsize="small")
        if ax is not axes[0][-1]:
            ax.get_legend().remove()
    _legend_below(fig, axes[0][-1], ncols=2)
    return fig


def plot_icl(icl_results: pd.DataFrame):
    """ICL accuracy against k, one line per (retriever, label source), mean and 95% CI over seeds; the
    weak teacher's accuracy on the same questions dashed."""
    use_style()
    df = icl_results.copy()
    df["demonstrations"] = df["retriever"] + ", " + df["source"] + " labels"
    s = summarize(df, by=["demonstrations", "k"], value="acc")
    fig, ax = plt.subplots(figsize=figsize("column", 0.9))
    line_with_ci(ax, s, x="k", hue="demonstrations")
    ax.axhline(0.5, color="0.5", linestyle=":", linewidth=0.8)
    ax.axhline(float(df.teacher_acc.mean()), color="0.2", linestyle="--", linewidth=0.8, label="weak teacher")
    ax.set_xticks(sorted(set(df["k"])))
    ax.set_xlabel("in-context demonstrations k")
    ax.set_ylabel("test accuracy")
    _legend_below(fig, ax, ncols=2)
    return fig


def _legend_below(fig, ax, ncols: int) -> None:
    """Move the axes' legend under the plot, outside the data (the layout makes room)."""
    legend = ax.get_legend()
    handles, labels = ax.get_legend_handles_labels()
    title = legend.get_title().get_text() if legend is not None else None
    if legend is not None:
        legend.remove()
    fig.legend(handles, labels, title=title, loc="outside lower center", ncols=ncols)


# ---------------------------------------------------------------------------------------------
# The conclusion


def _paired(frame: pd.DataFrame, column: str, a: tuple, b: tuple):
    """Mean and 95% t-CI over seeds of (a - b), where a and b are (pair, method, loss[, selection])."""
    left = _rows(frame, *a).set_index("seed")[column]
    right = _rows(frame, *b).set_index("seed")[column]
    return mean_ci((left - right).to_numpy())


def pair_conclusion(results: pd.DataFrame, pair: str) -> list[str]:
    """The conclusion lines of one pair (headline selection; the loss comparison under every selection)."""
    head = headline(results)
    selection = head.selection.iloc[0]
    single = _rows(head, pair, "single", "xent")
    acc_gap = gap(results, pair)
    weak_layer, strong_layer = _layers(single)
    layers = ("" if math.isnan(weak_layer)
              else f"feature layers {weak_layer:g}, {strong_layer:g} (see the layer table); ")
    lines = [f"**{pair}** ({single.seed.nunique()} seeds; {layers}student epochs: {selection}).", ""]
    lines.append(f"- The gap: weak {format_ci(*mean_ci(single.weak_acc))}, "
                 f"ceiling {format_ci(*mean_ci(single.ceiling_acc))}, "
                 f"ceiling - weak {format_ci(acc_gap['mean'], acc_gap['lo'], acc_gap['hi'])} — "
                 + ("established." if acc_gap["established"] else
                    "**not established** (its CI does not exclude 0): PGR below is reported as numbers, not as a "
                    "finding."))
    diff = mean_ci((single.student_acc - single.weak_acc).to_numpy())
    auc_gap = gap(results, pair, "auc")
    auc_pgr = (f"PGR on AUROC {format_pgr(pgr_stats(single.pgr_auc))}" if auc_gap["established"] else
               f"PGR on AUROC not reported (its gap {format_ci(auc_gap['mean'], auc_gap['lo'], auc_gap['hi'])} "
               f"is not established: a ratio over a denominator near 0)")
    lines.append(f"- *A strong student trained on weak labels beats its teacher* (Burns et al.): student - teacher "
                 f"{format_ci(*diff)} — {verdict(*diff)}; PGR {format_pgr(pgr_stats(single.pgr_acc))}; "
                 f"{auc_pgr}.")
    mdd = detectable_difference_over_seeds(single.student_acc - single.weak_acc)
    if "logconf" in set(results.loss):
        conf_diff = (_rows(head, pair, "single", "logconf").set_index("seed").student_acc
                     - single.set_index("seed").student_acc)
        mdd_text = (f"{mdd:.3f} for student - teacher, "
                    f"{detectable_difference_over_seeds(conf_diff):.3f} for logconf - xent")
    else:
        mdd_text = f"{mdd:.3f} for student - teacher"
    lines.append(f"- Power: with {single.seed.nunique()} seeds and this run's seed-to-seed spread, the smallest "
                 f"paired accuracy difference detected at 80% power (5%, two-sided t over seeds) is {mdd_text}.")
    for sel in dict.fromkeys(results.selection):
        if "logconf" in set(results.loss):
            conf = _paired(results, "student_acc", (pair, "single", "logconf", sel), (pair, "single", "xent", sel))
            epochs = _rows(results, pair, "single", "logconf", sel).best_epoch
            lines.append(f"- *The auxiliary confidence loss helps* (epochs {sel}, logconf epoch kept "
                         f"{epochs.mean():.0f}): student accuracy logconf - xent {format_ci(*conf)} — "
                         f"{verdict(*conf)}.")
    for method in ("bagging", "boosting"):
        if method not in set(head.method):
            continue
        label = _paired(head, "weak_label_acc", (pair, method, "xent"), (pair, "single", "xent"))
        stud = _paired(head, "student_acc", (pair, method, "xent"), (pair, "single", "xent"))
        rows = _rows(head, pair, method, "xent")
        lines.append(f"- *{method.capitalize()} improves the weak labels*: weak-label accuracy {method} - single "
                     f"{format_ci(*label)} — {verdict(*label)}; student accuracy {method} - single "
                     f"{format_ci(*stud)} — {verdict(*stud)}; "
                     f"PGR against its own teacher {format_pgr(pgr_stats(rows.pgr_acc))}, against the "
                     f"single teacher {format_pgr(pgr_stats(rows.pgr_vs_single_acc))}.")
    return lines


def conclusion(results: pd.DataFrame, curve: pd.DataFrame, icl_results: pd.DataFrame | None = None) -> str:
    """Markdown: which findings of the source studies hold in this run, with numbers and CIs, per pair."""
    lines = ["**Conclusion** (mean [95% t-CI over seeds]; PGR also median and seeds defined; test split used once).",
             ""]
    for pair in pairs_of(results):
        lines += pair_conclusion(results, pair) + [""]
    if icl_results is not None and len(icl_results):
        lines.append(icl_conclusion(icl_results))
        lines.append("")
    lines.append("Small models, a small embedded dataset and linear probes: a finding that does not show here is a "
                 "result at this scale, not evidence against the source study at its scale.")
    return "\n".join(lines)


def icl_conclusion(icl_results: pd.DataFrame) -> str:
    """The in-context finding: does the strong LM beat its weak supervisor in context (paired over
    seeds, and a bootstrap over questions), ICL-PGR, gold vs weak labels, the random-label control,
    calibrated accuracy and AUROC."""
    k_max, first = icl_results.k.max(), icl_results.retriever.iloc[0]
    at = icl_results[(icl_results.retriever == first) & (icl_results.k == k_max)]
    by_source = {source: rows.sort_values("seed") for source, rows in at.groupby("source")}
    parts = [f"**In-context W2SG** (the strong LM, k={k_max}, {first} retriever, {at.seed.nunique()} seeds x "
             f"{int(at.n.iloc[0])} test questions; [seeds] t-CI over seeds, [questions] bootstrap over questions):"]
    if "weak" in by_source:
        weak = by_source["weak"]
        vs_teacher = mean_ci(weak.acc.to_numpy() - weak.teacher_acc.to_numpy())
        per_question = question_bootstrap(weak.correct)
        parts.append(f"- weak-labelled demonstrations: accuracy {format_ci(*mean_ci(weak.acc))} [seeds], "
                     f"{format_ci(*per_question)} [questions]; calibrated "
                     f"{format_ci(*question_bootstrap(weak.cal_correct))}; "
                     f"AUROC {format_ci(*mean_ci(weak.auc))}. The weak teacher on the same questions: "
                     f"{format_ci(*mean_ci(weak.teacher_acc))}; ICL - teacher {format_ci(*vs_teacher)} — "
                     f"{verdict(*vs_teacher, above=BEATS, below=BELOW)}.")
        table = icl_pgr(icl_results)
        if len(table):
            parts.append(f"- ICL-PGR = (ICL weak - teacher) / (ICL gold - teacher): "
                         f"{format_pgr(pgr_stats(table.icl_pgr))}.")
        for other, what in (("gold", "gold - weak labels"), ("random", "random (50% flipped) - weak labels"),
                            ("flipped", "gold with the weak error rate flipped at random - weak labels")):
            if other in by_source:
                d = mean_ci(by_source[other].acc.to_numpy() - weak.acc.to_numpy())
                parts.append(f"- {what}: {format_ci(*d)} [seeds] — {verdict(*d)}.")
        if "gold" in by_source and "random" in by_source:
            d = mean_ci(by_source["gold"].acc.to_numpy() - by_source["random"].acc.to_numpy())
            parts.append(f"- the random-label control, gold - random labels: {format_ci(*d)} — "
                         f"{verdict(*d, above='the labels matter', below='random labels do better')}"
                         f" (where this is not shown, the model reads the format, not the labels).")
    zero = icl_results[icl_results.k == 0].drop_duplicates("seed")
    parts.append(f"- zero-shot: {format_ci(*mean_ci(zero.acc))} accuracy, {format_ci(*mean_ci(zero.auc))} AUROC.")
    return "\n".join(parts)
