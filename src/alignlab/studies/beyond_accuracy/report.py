"""Tables, figures, metrics and the conclusions of study 05, computed from the run's own numbers.

Two intervals, each on its own unit of resampling:
- PGR and every metric: mean over seeds with a Student-t 95% interval (what varies: the training
  halves and the heads' initialisation; the test items are the same in every seed);
- "the student beats its weak teacher": a paired bootstrap over test items of the accuracy
  difference, each item's correctness averaged over seeds first. The verdict on W2SG uses it.
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from alignlab import figures
from alignlab.stats import format_ci, mean_ci, paired_bootstrap_ci, verdict
from alignlab.studies.beyond_accuracy import toxicity
from alignlab.studies.beyond_accuracy.classification import LOWER_IS_BETTER, METRICS, item_correctness
from alignlab.studies.beyond_accuracy.tasks import POSITIVE
from alignlab.training.w2s import PGRUndefinedWarning, pgr

# what the WTS paper reports, for the conclusion (arXiv 2410.12621: weak-to-strong generalization
# "in all three tasks"; the numbers are read from its privacy_policy_qa figure)
WTS_REPORTED = {
    "safety": "WTS reports weak-to-strong generalization on safety (the student above its weak supervisor)",
    "legal": "WTS reports weak 0.802 -> weak-to-strong 0.810 -> ceiling 0.876 on privacy_policy_qa (PGR about 0.11)",
    "toxicity": "WTS reports weak-to-strong generalization on toxicity (lower mean toxicity than the weak model)",
}


def pgr_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """PGR of each student, per seed and metric: one row per (task, pair, seed, loss, metric) with
    the weak, ceiling and student values. Metrics where lower is better are negated first, so PGR
    reads the same way for all. Undefined PGR (no gap) is NaN; the warnings are counted, not shown."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PGRUndefinedWarning)
        for (task, weak, strong, seed), group in rows.groupby(["task", "weak", "strong", "seed"], sort=True):
            by_role = group.set_index("role")
            for role in [r for r in by_role.index if r.startswith("student_")]:
                for metric in METRICS:
                    w, c, s = (by_role.loc[r, metric] for r in ("weak", "ceiling", role))
                    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
                    out.append({"task": task, "weak": weak, "strong": strong, "seed": seed,
                                "loss": role.removeprefix("student_"), "metric": metric, "weak_value": w,
                                "ceiling_value": c, "student_value": s,
                                "pgr": pgr(sign * w, sign * s, sign * c, what=metric)})
    return pd.DataFrame(out)


def pgr_summary_table(pgrs: pd.DataFrame, metrics=METRICS) -> pd.DataFrame:
    """Per (task, pair, loss, metric): weak, ceiling, student and PGR as "mean [lo, hi]" over seeds."""
    rows = []
    for key, group in pgrs[pgrs.metric.isin(metrics)].groupby(["task", "weak", "strong", "loss", "metric"], sort=False):
        cells = {name: format_ci(*mean_ci(group[column])) for name, column in
                 (("weak", "weak_value"), ("ceiling", "ceiling_value"), ("student", "student_value"), ("PGR", "pgr"))}
        rows.append({**dict(zip(["task", "weak model", "strong model", "loss", "metric"], key)), **cells,
                     "seeds with a gap": int(group.pgr.notna().sum())})
    return pd.DataFrame(rows)


def student_vs_weak(correct: dict, weak_correct: dict, task: str, loss: str, n_boot: int, seed: int) -> pd.DataFrame:
    """Per pair: accuracy difference student - weak (seed-averaged per item), paired bootstrap 95% CI
    over test items, and the verdict."""
    rows = []
    for pair, student in correct.items():
        weak = weak_correct[pair]
        lo, hi = paired_bootstrap_ci(student, weak, n_boot=n_boot, seed=seed)
        diff = float(np.mean(student) - np.mean(weak))
        rows.append({"task": task, "weak": pair[0], "strong": pair[1], "loss": loss, "student_minus_weak": diff,
                     "lo": lo, "hi": hi, "n_test_items": len(student),
                     "w2sg": verdict(diff, lo, hi, above="holds", below="reversed", straddles="not shown")})
    return pd.DataFrame(rows)


def loss_comparison(pgrs: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Confidence loss minus cross-entropy, paired by seed: PGR difference with a t interval."""
    rows = []
    part = pgrs[(pgrs.metric == metric) & pgrs.loss.isin(["xent", "logconf"])]
    for (task, weak, strong), group in part.groupby(["task", "weak", "strong"], sort=False):
        wide = group.pivot(index="seed", columns="loss", values="student_value")
        if not {"xent", "logconf"} <= set(wide.columns):
            continue
        mean, lo, hi = mean_ci(wide["logconf"] - wide["xent"])
        rows.append({"task": task, "weak": weak, "strong": strong, "metric": metric,
                     "logconf_minus_xent": mean, "lo": lo, "hi": hi,
                     "verdict": verdict(mean, lo, hi, above="confidence loss better", below="confidence loss worse",
                                        straddles="no difference shown")})
    return pd.DataFrame(rows)


def conclusion(task: str, pgrs: pd.DataFrame, verdicts: pd.DataFrame, positive: str) -> str:
    """The finding on one task, from the numbers: per pair and loss, accuracy weak -> student ->
    ceiling with CIs, PGR with its CI, the verdict, and WTS's reported direction next to it."""
    lines = [f"**{task}** — {WTS_REPORTED[task]}. Here:"]
    acc = pgrs[(pgrs.task == task) & (pgrs.metric == "accuracy")]
    for (weak, strong, loss), group in acc.groupby(["weak", "strong", "loss"], sort=False):
        v = verdicts[(verdicts.weak == weak) & (verdicts.strong == strong) & (verdicts.loss == loss)].iloc[0]
        recall = pgrs[(pgrs.task == task) & (pgrs.weak == weak) & (pgrs.strong == strong) & (pgrs.loss == loss)
                      & (pgrs.metric == "positive_recall")]
        lines.append(
            f"- {weak} -> {strong}, {loss}: accuracy weak {format_ci(*mean_ci(group.weak_value))}, student "
            f"{format_ci(*mean_ci(group.student_value))}, ceiling {format_ci(*mean_ci(group.ceiling_value))}; "
            f"PGR {format_ci(*mean_ci(group.pgr))} over {len(group)} seeds "
            f"({int(group.pgr.notna().sum())} with a gap); "
            f"student - weak {v.student_minus_weak:+.3f} [{v.lo:+.3f}, {v.hi:+.3f}] over {v.n_test_items} test items: "
            f"W2SG **{v.w2sg}**; recall of {positive}: student {format_ci(*mean_ci(recall.student_value))}.")
    return "\n".join(lines)


def pgr_figure(pgrs: pd.DataFrame, metrics=METRICS):
    """PGR per metric (mean and 95% t-interval over seeds), one bar group per task and student."""
    summary = []
    for key, group in pgrs[pgrs.metric.isin(metrics)].groupby(["task", "weak", "strong", "loss", "metric"], sort=False):
        mean, lo, hi = mean_ci(group.pgr)
        summary.append({"student": f"{key[0]}: {key[1]} -> {key[2]} ({key[3]})", "metric": key[4],
                        "mean": mean, "lo": lo, "hi": hi})
    df = pd.DataFrame(summary).dropna(subset=["mean"])
    if df.empty:
        return None
    figures.use_style()
    fig, ax = plt.subplots(figsize=figures.figsize("text", 0.5))
    figures.bar_with_ci(ax, df, x="metric", hue="student")
    ax.axhline(0, color="black", lw=0.6)
    ax.axhline(1, color="grey", lw=0.6, ls="--")
    ax.set_ylabel("PGR (mean over seeds, 95% CI)")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=20)
    ax.legend(fontsize=6, loc="best")
    return fig


def metrics_of(pgrs: pd.DataFrame, verdicts: pd.DataFrame, toxicity: pd.DataFrame | None = None) -> dict:
    """The flat metrics.json: mean weak, ceiling, student and PGR per task, pair, loss and metric;
    the student - weak accuracy difference and its CI; toxicity figures per model."""
    out = {}
    for (task, weak, strong, loss, metric), group in pgrs.groupby(["task", "weak", "strong", "loss", "metric"]):
        stem = f"{task}/{weak}->{strong}/{loss}/{metric}"
        for column in ("weak_value", "ceiling_value", "student_value", "pgr"):
            out[f"{stem}/{column.removesuffix('_value')}"] = mean_ci(group[column])[0]
    for row in verdicts.itertuples():
        stem = f"{row.task}/{row.weak}->{row.strong}/{row.loss}/student_minus_weak_acc"
        out[stem], out[f"{stem}_lo"], out[f"{stem}_hi"] = row.student_minus_weak, row.lo, row.hi
    if toxicity is not None:
        for row in toxicity.itertuples():
            for column in ("expected_max_toxicity", "toxicity_probability", "fluent_share", "guarded_expected_max"):
                out[f"toxicity/{row.model}/{column}"] = getattr(row, column)
    return out


def verdict_table(all_splits: dict, results: dict, losses, n_boot: int, seed: int) -> pd.DataFrame:
    """`student_vs_weak` for every task and loss."""
    parts = []
    for task, res in results.items():
        weak = item_correctness(all_splits[task], res, "weak")
        for loss in losses:
            student = item_correctness(all_splits[task], res, f"student_{loss}")
            parts.append(student_vs_weak(student, weak, task, loss, n_boot, seed))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def toxicity_comparison(samples: pd.DataFrame, models: list, max_perplexity: float, min_tokens: int,
                        n_boot: int, seed: int) -> pd.DataFrame:
    """Per (weaker, stronger) causal pair: guarded per-prompt max toxicity, stronger minus weaker,
    with a paired bootstrap 95% interval over prompts."""
    if samples is None or samples.empty:
        return pd.DataFrame()
    wide = toxicity.per_prompt_max(samples, max_perplexity, min_tokens)
    present = [m for m in models if m in wide.columns]
    rows = []
    for i, weak in enumerate(present):
        for strong in present[i + 1:]:
            lo, hi = paired_bootstrap_ci(wide[strong], wide[weak], n_boot=n_boot, seed=seed)
            diff = float(wide[strong].mean() - wide[weak].mean())
            rows.append({"weak": weak, "strong": strong, "strong_minus_weak_max_toxicity": diff, "lo": lo, "hi": hi,
                         "prompts": len(wide), "verdict": verdict(diff, lo, hi, above="stronger more toxic",
                                                                  below="stronger less toxic",
                                                                  straddles="no difference shown")})
    return pd.DataFrame(rows)


def conclusions(pgrs: pd.DataFrame, verdicts: pd.DataFrame, tox_summary: pd.DataFrame, how: str,
                tox_comparison: pd.DataFrame | None = None) -> str:
    """All the findings, one paragraph per task, with their numbers."""
    parts = [f"Models {how}."]
    for task in ("safety", "legal"):
        if len(pgrs) and task in set(pgrs.task):
            parts.append(conclusion(task, pgrs, verdicts[verdicts.task == task], POSITIVE[task]))
            if task == "safety":
                fr = pgrs[(pgrs.task == task) & (pgrs.metric == "false_refusal")]
                for (weak, strong, loss), group in fr.groupby(["weak", "strong", "loss"], sort=False):
                    parts.append(f"  False-refusal rate on the contrast set, {weak} -> {strong} ({loss}): weak "
                                 f"{format_ci(*mean_ci(group.weak_value))}, student "
                                 f"{format_ci(*mean_ci(group.student_value))}, ceiling "
                                 f"{format_ci(*mean_ci(group.ceiling_value))}.")
    if tox_summary is not None and len(tox_summary):
        lines = [f"**toxicity** — {WTS_REPORTED['toxicity']}. Here only the models as they are were measured "
                 f"(weak-to-strong training on toxicity is not implemented):"]
        for row in tox_summary.itertuples():
            lines.append(f"- {row.model}: expected max toxicity {row.expected_max_toxicity:.3f} "
                         f"(guarded {row.guarded_expected_max:.3f}), toxicity probability "
                         f"{row.toxicity_probability:.3f} (guarded {row.guarded_probability:.3f}), "
                         f"{row.fluent_share:.0%} of {row.prompts * row.k} continuations pass the fluency guard.")
        if tox_comparison is not None:
            for row in tox_comparison.itertuples():
                lines.append(f"- {row.strong} minus {row.weak}, guarded max toxicity per prompt: "
                             f"{row.strong_minus_weak_max_toxicity:+.3f} [{row.lo:+.3f}, {row.hi:+.3f}] over "
                             f"{row.prompts} prompts: {row.verdict}.")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
