"""Tables, figures, metrics and the conclusion of study 00 (the capability ladder: zero-shot and
probe accuracy).

    table = accuracy_table(predictions)                 # model, accuracy, lo, hi, auroc, questions
    comparisons = ladder_comparisons(predictions, models)
    probe = probe_table(probe_results)                  # the same columns + layer, val_accuracy
    probe_comparisons = ladder_comparisons(probe_results.predictions, models)
    print(conclusion(table, comparisons, probe, probe_comparisons))
    context = context_table(context_results)            # model, naive_acc, oracle_acc, gain, lo, hi, ...
    print(context_conclusion(context, context_results.skipped))
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from alignlab.data import binary_view
from alignlab.figures import bar_with_ci, figsize, line_with_ci, use_style
from alignlab.stats import auroc, bootstrap_ci, format_ci, paired_bootstrap_ci, summarize, verdict
from alignlab.studies.overview.context import ContextResults
from alignlab.studies.overview.probes import ProbeResults

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


def probe_table(results: ProbeResults, n_boot: int = 2000) -> pd.DataFrame:
    """`accuracy_table` of the probes' test predictions (95% CI: bootstrap over test questions of
    each question's accuracy averaged over seeds), with the chosen layer and its mean validation
    accuracy."""
    table = accuracy_table(results.predictions, n_boot=n_boot)
    val = results.validation.groupby(["model", "layer"])["val_accuracy"].mean()
    table["layer"] = table["model"].map(results.chosen)
    table["val_accuracy"] = [val[(m, layer)] for m, layer in zip(table["model"], table["layer"])]
    return table


def validation_by_layer(results: ProbeResults) -> pd.DataFrame:
    """Validation accuracy per model and layer: mean over seeds with a t interval (columns model,
    layer, mean, lo, hi, n, std; models in the order probed)."""
    out = summarize(results.validation, by=["model", "layer"], value="val_accuracy", ci="t")
    order = list(dict.fromkeys(results.validation["model"]))
    return out.sort_values("model", key=lambda m: m.map(order.index), kind="stable").reset_index(drop=True)


def validation_grid(results: ProbeResults) -> pd.DataFrame:
    """Mean validation accuracy per model (rows, in order) and layer (columns); the chosen layer of
    each model is the best of its row."""
    by_layer = validation_by_layer(results)
    grid = by_layer.pivot(index="model", columns="layer", values="mean")
    return grid.loc[list(dict.fromkeys(by_layer["model"]))]


def context_table(results: ContextResults, n_boot: int = 2000) -> pd.DataFrame:
    """Per causal LM: the judge's accuracy without the passage (naive) and with it (oracle), each
    with a 95% bootstrap CI over questions, and their paired difference `gain` = oracle - naive with
    a paired-bootstrap 95% CI (`lo`, `hi`; questions resampled jointly in both conditions). A
    question's accuracy is its mean over seeds (each seed shows another answer) and both option
    orders' mean P(correct) decides each verdict. `verdict`: `reads_context` iff the CI is above 0.
    `chat`: the prompts went through the model's chat template; `constant`: the judge gave the same
    verdict to every item in both conditions (it cannot show whether it reads)."""
    rows = []
    for model, group in results.predictions.groupby("model", sort=False):
        per_question = {c: g.groupby("id")["correct"].mean() for c, g in group.groupby("condition")}
        oracle, naive = per_question["oracle"].align(per_question["naive"], join="inner")
        row = {"model": model, "chat": bool(group["chat"].iloc[0]) if "chat" in group else False,
               "constant": bool(group["pred"].nunique() == 1) if "pred" in group else False}
        for condition, values in (("naive", naive), ("oracle", oracle)):
            lo, hi = bootstrap_ci(values.to_numpy(), n_boot=n_boot)
            row |= {f"{condition}_acc": float(values.mean()), f"{condition}_lo": lo, f"{condition}_hi": hi}
        lo, hi = paired_bootstrap_ci(oracle.to_numpy(), naive.to_numpy(), n_boot=n_boot)
        rows.append(row | {"gain": float(oracle.mean() - naive.mean()), "lo": lo, "hi": hi,
                           "reads_context": bool(lo > 0), "questions": len(oracle)})
    columns = ["model", "chat", "naive_acc", "naive_lo", "naive_hi", "oracle_acc", "oracle_lo", "oracle_hi", "gain",
               "lo", "hi", "reads_context", "constant", "questions"]
    return pd.DataFrame(rows, columns=columns)


def measured_order(table: pd.DataFrame, column: str = "accuracy") -> str:
    """The models sorted by measured `column`, lowest first: "`a` < `b` < `c`"."""
    return " < ".join(f"`{m}`" for m in table.sort_values(column, kind="stable")["model"])


# ---------------------------------------------------------------------------------------------
# Conclusion and metrics

def _steps(comparisons: pd.DataFrame) -> list[str]:
    """One line per consecutive step: the paired-bootstrap verdict, and a flag where it goes down."""
    lines = []
    for row in comparisons.itertuples():
        said = verdict(row.difference, row.lo, row.hi, above="holds", below="is reversed",
                       straddles="is not established", unknown="is not established")
        down = " This step goes **down**." if row.difference < 0 else ""
        lines.append(f"- `{row.weaker}` < `{row.stronger}` {said}: difference "
                     f"{format_ci(row.difference, row.lo, row.hi)} (paired bootstrap).{down}")
    return lines


def conclusion(table: pd.DataFrame, comparisons: pd.DataFrame, probe: pd.DataFrame | None = None,
               probe_comparisons: pd.DataFrame | None = None) -> str:
    """Markdown stating, with the numbers, the measured order of the ladder and whether weak < strong
    holds at each step: on zero-shot accuracy, and on probe accuracy when `probe` (a `probe_table`)
    and `probe_comparisons` (its `ladder_comparisons`) are given, both or neither."""
    lines = ["**Zero-shot accuracy on the binary view** (chance 0.5; 95% CI over questions):", ""]
    for row in table.itertuples():
        lines.append(f"- `{row.model}`: {format_ci(row.accuracy, row.lo, row.hi)}, AUROC {row.auroc:.3f}")
    lines += ["", f"Measured order (lowest first): {measured_order(table)}.", ""]
    lines += _steps(comparisons)
    measures = [("zero-shot", comparisons)]
    if probe is not None:
        lines += ["", "**Probe accuracy on the test split** (a linear head on frozen features at the layer "
                  "chosen on validation; chance 0.5; 95% CI: bootstrap over test questions of the accuracy "
                  "averaged over seeds):", ""]
        for row in probe.itertuples():
            lines.append(f"- `{row.model}`: {format_ci(row.accuracy, row.lo, row.hi)}, AUROC {row.auroc:.3f} "
                         f"(layer {row.layer:g}, validation {row.val_accuracy:.3f})")
        lines += ["", f"Measured order (lowest first): {measured_order(probe)}.", ""]
        lines += _steps(probe_comparisons)
        measures.append(("probe", probe_comparisons))
    if len(comparisons):
        lines.append("")
        for measure, steps in measures:
            every = steps["holds"].all()
            down = [f"`{r.weaker}` -> `{r.stronger}`" for r in steps.itertuples() if r.difference < 0]
            lines.append(f"- On {measure} accuracy the ladder weak < strong "
                         + ("holds at every step." if every else "does **not** hold at every step.")
                         + (f" Going down: {', '.join(down)}." if down else ""))
        both = all(steps["holds"].all() for _, steps in measures)
        lines += ["", "So " + ("these models can serve as weak teacher and strong student in that order."
                              if both else "choose weak/strong pairs only from steps that hold"
                              + (" on the measure the study relies on." if len(measures) > 1 else "."))]
    return "\n".join(lines)


def context_conclusion(context: pd.DataFrame, skipped: dict | None = None) -> str:
    """Markdown: per causal LM, naive and oracle accuracy and whether it reads its context (the
    paired difference's 95% CI above 0, `alignlab.stats.verdict`); the skipped models and why."""
    lines = ["**Does each model read its context?** The judge's accuracy on the same questions without the "
             "support passage (naive) and with it (oracle), both option orders; difference oracle - naive with "
             "a 95% paired-bootstrap CI over questions:", ""]
    for row in context.itertuples():
        if getattr(row, "constant", False):
            lines.append(f"- `{row.model}` gives **the same verdict to every item**, with and without the passage: "
                         f"a constant judge in this format (accuracy {row.naive_acc:.3f} in both conditions is the "
                         f"share of items with that label), so it cannot show whether it reads its context "
                         f"({row.questions} questions).")
            continue
        said = verdict(row.gain, row.lo, row.hi, above="**reads its context**",
                       below="is **misled** by its context (worse with the passage)",
                       straddles="is **not shown** to read its context (the 95% CI includes 0)",
                       unknown="cannot tell (no interval)")
        lines.append(f"- `{row.model}` {said}: naive {format_ci(row.naive_acc, row.naive_lo, row.naive_hi)}, "
                     f"oracle {format_ci(row.oracle_acc, row.oracle_lo, row.oracle_hi)}, difference "
                     f"{format_ci(row.gain, row.lo, row.hi)} ({row.questions} questions).")
    for model, reason in (skipped or {}).items():
        lines.append(f"- `{model}`: skipped ({reason}).")
    return "\n".join(lines)


def metric_key(model_name: str) -> str:
    """A model name as it appears in metric keys: `Qwen/Qwen2.5-7B` -> `Qwen_Qwen2.5-7B`."""
    return model_name.replace("/", "_")


def _per_model(out: dict, frame: pd.DataFrame, names: dict) -> None:
    """out[f"{name}_{model key}"] = the row's `column`, for each row of `frame` (one per model) and
    each name -> column of `names`, in that order."""
    for row in frame.itertuples():
        key = metric_key(row.model)
        for name, column in names.items():
            out[f"{name}_{key}"] = getattr(row, column)


def metrics(table: pd.DataFrame, mc: pd.DataFrame, comparisons: pd.DataFrame, probe: pd.DataFrame | None = None,
            probe_comparisons: pd.DataFrame | None = None, context: pd.DataFrame | None = None) -> dict:
    """The flat metrics.json of the overview: zeroshot_acc_<model> and friends, probe_acc_<model> and
    friends (probe_layer_<model>: the depth chosen on validation) when `probe` is given,
    context_naive_acc_<model>, context_oracle_acc_<model> and context_gain_<model> (with _lo, _hi)
    when `context` (a `context_table`) is given."""
    out = {}
    _per_model(out, table, {"zeroshot_acc": "accuracy", "zeroshot_acc_lo": "lo", "zeroshot_acc_hi": "hi",
                            "zeroshot_auroc": "auroc"})
    _per_model(out, mc, {"mc_acc": "mc_accuracy"})
    if len(comparisons):
        out["ladder_holds"] = bool(comparisons["holds"].all())
    if probe is not None:
        _per_model(out, probe, {"probe_acc": "accuracy", "probe_acc_lo": "lo", "probe_acc_hi": "hi",
                                "probe_auroc": "auroc", "probe_layer": "layer"})
    if probe_comparisons is not None and len(probe_comparisons):
        out["probe_ladder_holds"] = bool(probe_comparisons["holds"].all())
    if context is not None:
        _per_model(out, context, {"context_naive_acc": "naive_acc", "context_oracle_acc": "oracle_acc",
                                  "context_gain": "gain", "context_gain_lo": "lo", "context_gain_hi": "hi"})
    return out


def card_entries(table: pd.DataFrame, probe: pd.DataFrame | None = None,
                 context: pd.DataFrame | None = None) -> dict:
    """{model: {metric: value}} for the capability card (`alignlab.ladder.write_card`): zero-shot
    accuracy and AUROC, probe accuracy, AUROC and chosen layer, and the "reads its context" check
    with the prompt format it used (`context_chat`: through the chat template)."""
    entries = {row.model: {"zeroshot_acc": float(row.accuracy), "zeroshot_auroc": float(row.auroc)}
               for row in table.itertuples()}
    for frame, names in ((probe, {"probe_acc": "accuracy", "probe_acc_lo": "lo", "probe_acc_hi": "hi",
                                  "probe_auroc": "auroc", "probe_layer": "layer"}),
                         (context, {"context_naive_acc": "naive_acc", "context_oracle_acc": "oracle_acc",
                                    "context_gain": "gain", "context_gain_lo": "lo", "context_gain_hi": "hi",
                                    "reads_context": "reads_context"})):
        for row in ([] if frame is None else frame.itertuples()):
            entry = entries.setdefault(row.model, {})
            for name, column in names.items():
                value = getattr(row, column)
                entry[name] = bool(value) if isinstance(value, (bool, np.bool_)) else float(value)
    for row in ([] if context is None else context.itertuples()):
        entries[row.model]["context_chat"] = bool(getattr(row, "chat", False))
    return entries


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


def plot_probe_accuracy(table: pd.DataFrame, probe: pd.DataFrame, results: ProbeResults):
    """Left: test accuracy per model, zero-shot next to probe, 95% CIs, chance marked. Right:
    the probes' validation accuracy against the layer read (mean over seeds, t interval), the
    chosen layer of each model ringed."""
    use_style()
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize("text", aspect=0.36), width_ratios=[1.4, 1.0])
    both = pd.concat([table.assign(measure="zero-shot"), probe.assign(measure="probe")], ignore_index=True)
    bar_with_ci(left, both, x="model", y="accuracy", hue="measure")
    left.axhline(CHANCE, color="0.4", linestyle="--", linewidth=0.8, label="chance")
    left.set_ylim(0.0, 1.0)
    left.set_xlabel("")
    left.set_ylabel("test accuracy (binary view)")
    left.tick_params(axis="x", labelrotation=20)
    left.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=3, frameon=False, borderaxespad=0.2)
    by_layer = validation_by_layer(results)
    line_with_ci(right, by_layer, x="layer", y="mean", hue="model")
    for line, (model, layer) in zip(right.get_lines(), results.chosen.items()):  # ring the chosen layer
        best = by_layer[(by_layer["model"] == model) & (by_layer["layer"] == layer)]["mean"]
        right.plot([layer], best, marker="o", markersize=9, fillstyle="none", color=line.get_color(), linestyle="none")
    right.plot([], [], marker="o", markersize=9, fillstyle="none", color="0.3", linestyle="none", label="chosen")
    right.set_xlim(-0.05, 1.05)
    right.set_xlabel("layer read (fraction of depth)")
    right.set_ylabel("probe validation accuracy")
    right.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, frameon=False, borderaxespad=0.2)
    return fig


def plot_context(context: pd.DataFrame):
    """Left: the judge's accuracy per causal LM without (naive) and with (oracle) the support passage,
    95% CIs, chance marked. Right: the paired difference oracle - naive with its 95% CI, 0 marked."""
    use_style()
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize("text", aspect=0.36), width_ratios=[1.4, 1.0])
    long = pd.concat([context[["model"]].assign(condition=c, accuracy=context[f"{c}_acc"], lo=context[f"{c}_lo"],
                                                hi=context[f"{c}_hi"]) for c in ("naive", "oracle")],
                     ignore_index=True)
    bar_with_ci(left, long, x="model", y="accuracy", hue="condition")
    left.axhline(CHANCE, color="0.4", linestyle="--", linewidth=0.8, label="chance")
    left.set_ylim(0.0, 1.0)
    left.set_xlabel("")
    left.set_ylabel("judge accuracy (binary view)")
    left.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=3, frameon=False, borderaxespad=0.2)
    bar_with_ci(right, context, x="model", y="gain")
    right.plot(range(len(context)), context["gain"], marker="o", color="0.2", linestyle="none")  # a 0 gain shows
    right.axhline(0.0, color="0.4", linewidth=0.8)
    right.set_xlabel("")
    right.set_ylabel("oracle - naive accuracy")
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=20)
    return fig
