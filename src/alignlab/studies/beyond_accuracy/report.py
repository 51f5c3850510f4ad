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
from alignlab.stats import bootstrap_ci, format_ci, mean_ci, paired_bootstrap_ci, verdict
from alignlab.studies.beyond_accuracy import toxicity
from alignlab.studies.beyond_accuracy.classification import LOWER_IS_BETTER, METRICS, item_correctness
from alignlab.studies.beyond_accuracy.tasks import POSITIVE
from alignlab.training.w2s import PGRUndefinedWarning, pgr

# what the WTS paper reports, for the conclusion (arXiv 2410.12621: weak-to-strong generalization
# "in all three tasks"; the numbers are read from its privacy_policy_qa figure)
WTS_REPORTED = {
    "safety": "WTS reports weak-to-strong generalization on safety (the student above its weak supervisor)",
    "legal": "WTS reports weak 0.802 -> weak-to-strong 0.810 -> ceiling 0.876 on privacy_policy_qa (PGR about 0.11)",
    "toxicity": "WTS reports weak-to-strong generalization on toxicity: the strong model trained on the fine-tuned "
                "weak generator's continuations is less toxic (mean toxicity) than the weak generator",
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


def _pgr_of_seed_means(group: pd.DataFrame, sign: float) -> float:
    """PGR of the weak, student and ceiling values each averaged over seeds (`sign` -1: lower is
    better); NaN without a warning where the averaged ceiling is not better than the averaged weak."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PGRUndefinedWarning)
        return pgr(*(sign * group[c].mean() for c in ("weak_value", "student_value", "ceiling_value")))


def pgr_over_seeds(group: pd.DataFrame, lower_is_better: bool = False) -> str:
    """PGR over a group of seeds (columns weak_value, student_value, ceiling_value, pgr), as text.
    Reported only where the gap (ceiling better than weak, per seed) has a t interval over seeds above
    0; then as the PGR of the seed-averaged values, not the mean of per-seed PGRs (a seed with a
    near-zero gap makes its own PGR explode: 1.8 [-13, 17] in a standard run), with the per-seed mean
    [t interval] only when every seed has a gap. Seeds without a gap are counted, never dropped
    silently."""
    sign = -1.0 if lower_is_better else 1.0
    gap = mean_ci((sign * (group.ceiling_value - group.weak_value)).to_numpy(dtype=float))
    defined = int(group.pgr.notna().sum())
    seeds = f"{defined} of {len(group)} seeds with a gap"
    if not gap[1] > 0:
        return f"not reported (the gap {format_ci(*gap)} is not established; {seeds})"
    point = _pgr_of_seed_means(group, sign)
    text = f"{point:.2f} (of the seed means; gap {format_ci(*gap)}; {seeds}"
    if defined == len(group) and defined >= 2:
        text += f"; per-seed mean {format_ci(*mean_ci(group.pgr))}"
    return text + ")"


def pgr_summary_table(pgrs: pd.DataFrame, metrics=METRICS) -> pd.DataFrame:
    """Per (task, pair, loss, metric): weak, ceiling, student and PGR as "mean [lo, hi]" over seeds."""
    rows = []
    for key, group in pgrs[pgrs.metric.isin(metrics)].groupby(["task", "weak", "strong", "loss", "metric"], sort=False):
        cells = {name: format_ci(*mean_ci(group[column])) for name, column in
                 (("weak", "weak_value"), ("ceiling", "ceiling_value"), ("student", "student_value"))}
        cells["PGR"] = pgr_over_seeds(group, key[-1] in LOWER_IS_BETTER)
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
            f"PGR {pgr_over_seeds(group)} over {len(group)} seeds; "
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


def metrics_of(pgrs: pd.DataFrame, verdicts: pd.DataFrame, toxicity: pd.DataFrame | None = None,
               detox_pgrs: pd.DataFrame | None = None, detox_verdicts: pd.DataFrame | None = None,
               detox_pgr_boot: pd.DataFrame | None = None) -> dict:
    """The flat metrics.json: mean weak, ceiling, student and PGR per task, pair, loss and metric;
    the student - weak accuracy difference and its CI; toxicity figures per model; for the
    weak-to-strong training on toxicity, the mean weak, w2s, ceiling and PGR per pair and metric
    the PGR over test prompts and the paired differences over test prompts, with their CIs."""
    out = {}
    for (task, weak, strong, loss, metric), group in (pgrs.groupby(["task", "weak", "strong", "loss", "metric"])
                                                      if len(pgrs) else ()):
        stem = f"{task}/{weak}->{strong}/{loss}/{metric}"
        for column in ("weak_value", "ceiling_value", "student_value", "pgr"):
            out[f"{stem}/{column.removesuffix('_value')}"] = mean_ci(group[column])[0]
    for row in verdicts.itertuples() if len(verdicts) else ():
        stem = f"{row.task}/{row.weak}->{row.strong}/{row.loss}/student_minus_weak_acc"
        out[stem], out[f"{stem}_lo"], out[f"{stem}_hi"] = row.student_minus_weak, row.lo, row.hi
    if toxicity is not None:
        for row in toxicity.itertuples():
            for column in ("expected_max_toxicity", "toxicity_probability", "fluent_share", "guarded_expected_max"):
                out[f"toxicity/{row.model}/{column}"] = getattr(row, column)
    if detox_pgrs is not None and len(detox_pgrs):
        for (weak, strong, metric), group in detox_pgrs.groupby(["weak", "strong", "metric"]):
            stem = f"toxicity-w2s/{weak}->{strong}/{metric}"
            for column in ("weak_value", "student_value", "ceiling_value"):
                out[f"{stem}/{column.removesuffix('_value')}"] = mean_ci(group[column])[0]
            out[f"{stem}/pgr"] = seed_pgr(group)
            out[f"{stem}/seeds_with_gap"] = int(group.pgr.notna().sum())
    if detox_pgr_boot is not None and len(detox_pgr_boot):
        for row in detox_pgr_boot.itertuples():
            stem = f"toxicity-w2s/{row.weak}->{row.strong}/guarded_expected_max/pgr_prompts"
            out[stem], out[f"{stem}_lo"], out[f"{stem}_hi"] = row.pgr, row.lo, row.hi
    if detox_verdicts is not None and len(detox_verdicts):
        for row in detox_verdicts.itertuples():
            stem = f"toxicity-w2s/{row.weak}->{row.strong}/{row.contrast.replace(' ', '')}"
            out[stem], out[f"{stem}_lo"], out[f"{stem}_hi"] = row.difference, row.lo, row.hi
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
        lines = ["**toxicity, the models as they are** (untuned, on the test prompts):"]
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


# ---------------------------------------------------------------------------------------------
# weak-to-strong training on toxicity (alignlab.studies.beyond_accuracy.detox)

DETOX_METRICS = ("guarded_expected_max", "expected_max_toxicity", "guarded_probability", "toxicity_probability",
                 "mean_toxicity")
DETOX_HEADLINE = "guarded_expected_max"  # PGR and the verdicts are stated on it
CONDITION_ORDER = ("weak_base", "weak", "w2s", "ceiling", "strong_base")


def toxicity_pgr(weak: float, student: float, ceiling: float, what: str = "toxicity") -> float:
    """PGR on a lower-is-better metric: `pgr` on the negated values, (weak - student) / (weak - ceiling),
    so 1 means the student is as little toxic as the ceiling; NaN when the ceiling is not below the weak."""
    return pgr(-weak, -student, -ceiling, what=what)


def detox_pgr_rows(conditions: pd.DataFrame) -> pd.DataFrame:
    """Per (pair, seed, toxicity metric): the weak, weak-to-strong and ceiling values and the PGR
    (`toxicity_pgr`; undefined PGR is NaN, its warnings counted, not shown)."""
    out = []
    if conditions is None or conditions.empty:
        return pd.DataFrame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PGRUndefinedWarning)
        for (weak, strong, seed), group in conditions.groupby(["weak", "strong", "seed"], sort=False):
            by = group.set_index("condition")
            for metric in DETOX_METRICS:
                w, s, c = (float(by.loc[role, metric]) for role in ("weak", "w2s", "ceiling"))
                out.append({"weak": weak, "strong": strong, "seed": seed, "metric": metric, "weak_value": w,
                            "student_value": s, "ceiling_value": c, "pgr": toxicity_pgr(w, s, c, metric)})
    return pd.DataFrame(out)


def seed_pgr(group: pd.DataFrame) -> float:
    """PGR of the seed-averaged values (weak, student and ceiling each averaged over seeds, then one
    ratio). Not the mean of per-seed PGRs: a seed whose ceiling is barely below its weak model has a
    gap near 0 and a PGR in the hundreds (-11 [-194, 172] over 3 seeds in a standard run), which
    the mean would carry."""
    return _pgr_of_seed_means(group, sign=-1.0)


def seed_pgr_text(group: pd.DataFrame) -> str:
    """`pgr_over_seeds` on a lower-is-better toxicity metric (the gap: weak - ceiling per seed)."""
    return pgr_over_seeds(group, lower_is_better=True)


def detox_table(conditions: pd.DataFrame, pgrs: pd.DataFrame) -> pd.DataFrame:
    """Per pair and condition: each toxicity metric and the fluency guard's pass rate and mean
    length, "mean [lo, hi]" over seeds (t interval); PGR per metric in the w2s rows."""
    rows = []
    if conditions is None or conditions.empty:
        return pd.DataFrame()
    for (weak, strong, condition), group in conditions.groupby(["weak", "strong", "condition"], sort=False):
        row = {"weak model": weak, "strong model": strong, "condition": condition, "seeds": group.seed.nunique()}
        for column in (*DETOX_METRICS, "fluent_share", "mean_tokens"):
            row[column] = format_ci(*mean_ci(group[column]))
        if condition == "w2s":
            for metric in DETOX_METRICS:
                part = pgrs[(pgrs.weak == weak) & (pgrs.strong == strong) & (pgrs.metric == metric)]
                row[f"PGR {metric}"] = seed_pgr_text(part)
        rows.append(row)
    order = {c: i for i, c in enumerate(CONDITION_ORDER)}
    return pd.DataFrame(rows).sort_values(["weak model", "strong model", "condition"],
                                          key=lambda s: s.map(order) if s.name == "condition" else s,
                                          kind="stable").reset_index(drop=True).fillna("")


DETOX_CONTRASTS = (  # (a, b, what a below b means, what a above b means)
    ("w2s", "weak", "student less toxic than its weak teacher", "student more toxic than its weak teacher"),
    ("ceiling", "weak", "ceiling less toxic than the weak model", "ceiling more toxic than the weak model"),
    ("w2s", "ceiling", "student less toxic than the ceiling", "student more toxic than the ceiling"),
    ("weak", "weak_base", "fine-tuning made the weak model less toxic", "fine-tuning made the weak model more toxic"),
    ("ceiling", "strong_base", "fine-tuning made the strong model less toxic",
     "fine-tuning made the strong model more toxic"),
)


def detox_verdicts(per_prompt: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    """Paired differences of guarded max toxicity on the same test prompts (each prompt's value
    averaged over seeds first), with a paired bootstrap 95% interval over prompts and the verdict."""
    rows = []
    if per_prompt is None or per_prompt.empty:
        return pd.DataFrame()
    for (weak, strong), wide in per_prompt.groupby(level=["weak", "strong"], sort=False):
        for a, b, below, above in DETOX_CONTRASTS:
            lo, hi = paired_bootstrap_ci(wide[a], wide[b], n_boot=n_boot, seed=seed)
            diff = float(wide[a].mean() - wide[b].mean())
            rows.append({"weak": weak, "strong": strong, "contrast": f"{a} - {b}", "difference": diff, "lo": lo,
                         "hi": hi, "test_prompts": len(wide),
                         "verdict": verdict(diff, lo, hi, above=above, below=below, straddles="no difference shown")})
    return pd.DataFrame(rows)


def toxicity_pgr_bootstrap(weak, student, ceiling, n_boot: int, seed: int, level: float = 0.95) -> dict:
    """PGR of the means of per-prompt values (lower is better), with a percentile bootstrap interval
    over prompts (the three arrays resampled jointly: paired). A resample where the ceiling is not
    below the weak model has no PGR; those are left out and their share is returned, so an
    interval resting on few resamples shows it. Written out rather than `scipy.stats.bootstrap`,
    which cannot leave undefined resamples out. When the whole sample has no gap, PGR and its
    interval are NaN."""
    arrays = [np.asarray(a, dtype=float) for a in (weak, student, ceiling)]
    n = len(arrays[0])
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    w, s, c = (a[idx].mean(axis=1) for a in arrays)
    defined = (w - c) > 0
    ratios = (w - s)[defined] / (w - c)[defined]
    gap = arrays[0].mean() - arrays[2].mean()
    point = (arrays[0].mean() - arrays[1].mean()) / gap if gap > 0 else float("nan")
    alpha = (1 - level) / 2
    # no interval around an undefined point: the resamples with a gap would describe another sample
    lo, hi = (np.quantile(ratios, [alpha, 1 - alpha]) if gap > 0 and len(ratios) >= 2
              else (float("nan"), float("nan")))
    return {"pgr": float(point), "lo": float(lo), "hi": float(hi), "undefined_share": float(1 - defined.mean())}


def detox_pgr_bootstrap(per_prompt: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    """Per pair: PGR on the guarded max toxicity per test prompt (averaged over seeds), with its
    paired bootstrap interval over prompts (`toxicity_pgr_bootstrap`)."""
    if per_prompt is None or per_prompt.empty:
        return pd.DataFrame()
    rows = []
    for (weak, strong), wide in per_prompt.groupby(level=["weak", "strong"], sort=False):
        rows.append({"weak": weak, "strong": strong, "test_prompts": len(wide),
                     **toxicity_pgr_bootstrap(wide["weak"], wide["w2s"], wide["ceiling"], n_boot, seed)})
    return pd.DataFrame(rows)


def detox_figure(per_prompt: pd.DataFrame, n_boot: int, seed: int):
    """Guarded maximum toxicity per test prompt (averaged over seeds) per condition: the mean with a
    95% bootstrap interval over prompts, one bar group per condition and one colour per pair."""
    if per_prompt is None or per_prompt.empty:
        return None
    summary = []
    for (weak, strong), wide in per_prompt.groupby(level=["weak", "strong"], sort=False):
        for condition in CONDITION_ORDER:
            lo, hi = bootstrap_ci(wide[condition], n_boot=n_boot, seed=seed)
            summary.append({"pair": f"{weak} -> {strong}", "condition": condition,
                            "mean": float(wide[condition].mean()), "lo": lo, "hi": hi})
    figures.use_style()
    fig, ax = plt.subplots(figsize=figures.figsize("text", 0.5))
    figures.bar_with_ci(ax, pd.DataFrame(summary), x="condition", hue="pair")
    ax.set_ylabel("guarded max toxicity per prompt\n(mean, 95% CI over prompts; lower is better)")
    ax.set_xlabel("")
    ax.legend(fontsize=6, loc="best")
    return fig


def _pgr_text(mean: float, lo: float, hi: float) -> str:
    return "undefined (the ceiling is not below the weak model)" if np.isnan(mean) else format_ci(mean, lo, hi)


def detox_conclusion(pgrs: pd.DataFrame, verdicts: pd.DataFrame, conditions: pd.DataFrame,
                     training: pd.DataFrame, pgr_boot: pd.DataFrame) -> str:
    """The weak-to-strong finding on toxicity, from the numbers, next to WTS's reported direction."""
    if pgrs is None or pgrs.empty:
        return ("**toxicity, weak-to-strong training**: not run (it needs toxicity among tasks and two causal LMs "
                "among models).")
    lines = [f"**toxicity, weak-to-strong training** — {WTS_REPORTED['toxicity']}. Here (guarded expected "
             f"maximum toxicity over k samples on the test prompts, lower is better; a continuation that fails the "
             f"fluency guard counts as toxic):"]
    head = pgrs[pgrs.metric == DETOX_HEADLINE]
    for (weak, strong), group in head.groupby(["weak", "strong"], sort=False):
        cond = conditions[(conditions.weak == weak) & (conditions.strong == strong)]
        values = {c: format_ci(*mean_ci(g[DETOX_HEADLINE])) for c, g in cond.groupby("condition", sort=False)}
        fluent = {c: float(g.fluent_share.mean()) for c, g in cond.groupby("condition", sort=False)}
        v = verdicts[(verdicts.weak == weak) & (verdicts.strong == strong)].set_index("contrast")
        train = training[(training.weak == weak) & (training.strong == strong)]
        b = pgr_boot[(pgr_boot.weak == weak) & (pgr_boot.strong == strong)].iloc[0]
        gap = v.loc["ceiling - weak"].verdict == DETOX_CONTRASTS[1][2]  # the ceiling detectably less toxic
        pairs = {r: int(g.pairs.mean()) for r, g in train.groupby("role")}
        lines.append(
            f"- {weak} -> {strong}, {group.seed.nunique()} seeds, {int(v.test_prompts.iloc[0])} test prompts "
            f"(about {pairs.get('weak', 0)}, {pairs.get('w2s', 0)} and {pairs.get('ceiling', 0)} training pairs for "
            f"weak, student and ceiling): weak base {values.get('weak_base')}, weak {values.get('weak')}, "
            f"student {values.get('w2s')}, ceiling {values.get('ceiling')}, strong base {values.get('strong_base')}; "
            f"PGR over seeds {seed_pgr_text(group)}; PGR of the seed-averaged prompts "
            + (f"{_pgr_text(b.pgr, b.lo, b.hi)} (bootstrap over prompts; {b.undefined_share:.0%} of resamples "
               f"without a gap)." if gap else
               f"not reported: the ceiling is not detectably less toxic than the weak model ({b.undefined_share:.0%} "
               f"of prompt resamples without a gap)."))
        mean_tox = {c: float(g.mean_toxicity.mean()) for c, g in cond.groupby("condition", sort=False)}
        lines.append("  - Mean toxicity of all continuations (WTS's metric): "
                     + ", ".join(f"{c} {mean_tox[c]:.3f}" for c in ("weak", "w2s", "ceiling")) + ".")
        for contrast in ("w2s - weak", "ceiling - weak", "weak - weak_base", "ceiling - strong_base"):
            row = v.loc[contrast]
            lines.append(f"  - {contrast}: {row.difference:+.3f} [{row.lo:+.3f}, {row.hi:+.3f}] (paired over "
                         f"prompts): {row.verdict}.")
        lines.append("  - Fluency guard pass rate: " + ", ".join(f"{c} {s:.0%}" for c, s in fluent.items()) + ".")
        moved = v.loc["w2s - weak"].verdict != "no difference shown"
        if not gap and not moved:
            lines.append(f"  - No weak-to-strong effect is detectable at this size: the student does not differ from "
                         f"its weak teacher beyond the interval, and the ceiling is not detectably less toxic than "
                         f"the weak model ({v.loc['ceiling - weak'].verdict}), so there is no gap for PGR to measure.")
        elif not gap:
            lines.append(f"  - The ceiling is not detectably less toxic than the weak model "
                         f"({v.loc['ceiling - weak'].verdict}): there is no gap to recover, so PGR says nothing here.")
        elif not moved:
            lines.append("  - The student does not differ detectably from its weak teacher.")
    return "\n".join(lines)
