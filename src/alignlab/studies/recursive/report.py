"""Tables, the chain figure, metrics and the conclusion of study 07 (recursive W2SG).

Intervals: every number is a mean over seeds with a 95% Student-t interval over seeds; a
comparison between two conditions is the mean of the per-seed differences (paired by seed: the
two share G, the pools, the first aligner and every initialisation seed) with its t interval.
Seeds, not test examples, are resampled: a seed redraws G, the pools and every head, which is the
variation a replication would see.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from scipy import stats as scipy_stats

from alignlab.figures import figsize, line_with_ci
from alignlab.stats import format_ci, mean_ci, summarize, verdict
from alignlab.studies.recursive.chain import StudyRun
from alignlab.studies.recursive.config import CONDITIONS

COMPARISONS = (("recursive", "direct"), ("recursive-ensemble", "direct"), ("self-relabel", "direct"),
               ("recursive-ensemble", "recursive"))
CHAINS = ("recursive", "recursive-ensemble", "self-relabel")


def _cell(values) -> str:
    return format_ci(*mean_ci(values))


def ladder_summary(run: StudyRun) -> pd.DataFrame:
    """Each listed model's capability (probe accuracy on G_check, trained on G_fit) with its t-CI
    over seeds, the step from the previous rung (paired by seed), and whether the ladder keeps it."""
    table = summarize(run.capability, ["model"], "capability")
    out = run.ladder_table.merge(table[["model", "lo", "hi"]], on="model")
    out["capability"] = [format_ci(r.capability, r.lo, r.hi) for r in out.itertuples()]
    out["step from previous rung"] = ["-" if np.isnan(r.step) else format_ci(r.step, r.step_lo, r.step_hi)
                                      for r in out.itertuples()]
    return out[["model", "capability", "step from previous rung", "status"]]


def plan_table(run: StudyRun) -> pd.DataFrame:
    """How many examples each part holds (the same for every seed) and who labels it."""
    plan = next(iter(run.plans.values()))
    rows = [{"part": "G_fit", "examples": len(plan.gold_fit), "labels": "human (gold): trains the first aligner"},
            {"part": "G_check", "examples": len(plan.gold_check),
             "labels": "human (gold): weighs ensemble members, measures the ladder; never trained on"}]
    rows += [{"part": f"P{k}", "examples": len(pool), "labels": "the step's supervisor (gold: evaluation only)"}
             for k, pool in enumerate(plan.pools, start=1)]
    rows += [{"part": "validation", "examples": len(run.labels["validation"]),
              "labels": "the current supervisor (a student's epoch choice)"},
             {"part": "test", "examples": len(run.labels["test"]), "labels": "gold, read once for the results"}]
    return pd.DataFrame(rows)


def weight_summary(weights: pd.DataFrame) -> pd.DataFrame:
    """The ensemble aligner's mean member weight at each step, mean [95% t-CI] over seeds."""
    table = summarize(weights, ["loss", "step", "member"], "weight")
    table["weight"] = [format_ci(r.mean, r.lo, r.hi) for r in table.itertuples()]
    return table[["loss", "step", "member", "weight"]]


def condition_table(finals: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """Per loss and condition: final accuracy and AUROC, PGR, per-step PGR, error inheritance
    (and its excess over the strongest ceiling's), each mean [95% t-CI] over seeds."""
    rows = []
    n_steps = int(steps["step"].max())
    for (loss, condition), group in finals.groupby(["loss", "condition"], sort=False):
        row = {"loss": loss, "condition": condition, "final acc": _cell(group["final_acc"]),
               "final AUROC": _cell(group["final_auc"]), "PGR": _cell(group["pgr_acc"])}
        mine = steps[(steps["loss"] == loss) & (steps["condition"] == condition) & (steps["step"] > 0)]
        for step in range(1, n_steps + 1):
            values = mine.loc[mine["step"] == step, "step_pgr"]
            row[f"PGR step {step}"] = _cell(values) if len(values) else "-"
        row["inheritance"] = _cell(group["inheritance"])
        row["excess inheritance"] = _cell(group["excess_inheritance"])
        rows.append(row)
    return pd.DataFrame(rows)


def supervisor_table(steps: pd.DataFrame) -> pd.DataFrame:
    """Per loss, condition and step: the supervisor's label error and ECE on the pool it labels,
    its test accuracy, and the student's."""
    rows = []
    mine = steps[steps["step"] > 0]
    for (loss, condition, step), group in mine.groupby(["loss", "condition", "step"], sort=False):
        rows.append({"loss": loss, "condition": condition, "step": step, "student": group["student"].iloc[0],
                     "label error": _cell(group["label_error"]), "label ECE": _cell(group["label_ece"]),
                     "supervisor acc": _cell(group["supervisor_acc"]), "student acc": _cell(group["student_acc"]),
                     "ceiling acc": _cell(group["ceiling_acc"])})
    return pd.DataFrame(rows)


def per_seed_difference(table: pd.DataFrame, column: str, a: str, b: str, loss: str) -> np.ndarray:
    """Per-seed `column` of condition a minus condition b for `loss` (aligned on seed)."""
    one = table[table["loss"] == loss].pivot_table(index="seed", columns="condition", values=column)
    return (one[a] - one[b]).to_numpy(dtype=float)


def minimum_detectable_difference(sd: float, n_seeds: int, power: float = 0.8) -> float:
    """Smallest true mean difference a two-sided paired t-test at 5% detects with `power`, for a
    per-seed difference with standard deviation `sd`: (t_{0.975, n-1} + t_{power, n-1}) sd / sqrt(n)."""
    df = n_seeds - 1
    return float((scipy_stats.t.ppf(0.975, df) + scipy_stats.t.ppf(power, df)) * sd / np.sqrt(n_seeds))


def condition_differences(finals: pd.DataFrame, n_seeds_planned: int = 5) -> pd.DataFrame:
    """Paired comparisons of final accuracy (per-seed differences, t-CI), with the minimum
    detectable difference at `n_seeds_planned` seeds if the seed-to-seed sd is as measured."""
    rows = []
    for loss in finals["loss"].unique():
        for a, b in COMPARISONS:
            diff = per_seed_difference(finals, "final_acc", a, b, loss)
            mean, lo, hi = mean_ci(diff)
            sd = float(np.nanstd(diff, ddof=1)) if len(diff) > 1 else float("nan")
            rows.append({"loss": loss, "comparison": f"{a} - {b}", "difference": mean, "lo": lo, "hi": hi,
                         "sd": sd, "mdd": minimum_detectable_difference(sd, n_seeds_planned),
                         "verdict": verdict(mean, lo, hi, above="better", below="worse",
                                            straddles="no difference shown", unknown="cannot tell")})
    return pd.DataFrame(rows)


def compounding(steps: pd.DataFrame) -> pd.DataFrame:
    """Label error of each chain's last supervisor minus its first (paired by seed): > 0 means
    errors compound along the chain. Empty with a single pool."""
    rows = []
    last = int(steps["step"].max())
    if last < 2:
        return pd.DataFrame(columns=["loss", "condition", "first", "last", "growth", "lo", "hi"])
    for loss in steps["loss"].unique():
        for condition in CHAINS:
            mine = steps[(steps["loss"] == loss) & (steps["condition"] == condition)].set_index("seed")
            first = mine.loc[mine["step"] == 1, "label_error"]
            final = mine.loc[mine["step"] == last, "label_error"]
            growth = (final - first).to_numpy(dtype=float)
            mean, lo, hi = mean_ci(growth)
            rows.append({"loss": loss, "condition": condition, "first": float(first.mean()),
                         "last": float(final.mean()), "growth": mean, "lo": lo, "hi": hi})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# figure


def plot_chain(steps: pd.DataFrame, ceilings: pd.DataFrame, ladder: list):
    """Test accuracy of each step's student along the chain (self-relabel trains the strongest
    model at every step; direct has no middle step), one panel per loss, mean and 95%
    t-CI over seeds; grey squares: each rung's gold ceiling on one pool; dotted line: the strongest
    model's ceiling on all pools."""
    losses = list(steps["loss"].unique())
    fig, axes = plt.subplots(1, len(losses), figsize=figsize("text", 0.55), sharey=True, squeeze=False)
    n_steps = int(steps["step"].max())
    # rung k's ceiling: its model on pool k (the weakest, which learns G, on pool 1)
    rung = ceilings.assign(step=[ladder.index(m) for m in ceilings["model"]])
    rung = rung[rung["pool"] == [str(max(k, 1)) for k in rung["step"]]]
    rung_summary = summarize(rung, ["step"], "accuracy")
    top = summarize(ceilings[ceilings["pool"] == "all"], [], "accuracy").iloc[0]
    for ax, loss in zip(axes[0], losses):
        table = summarize(steps[steps["loss"] == loss], ["condition", "step"], "student_acc")
        table["condition"] = pd.Categorical(table["condition"], categories=list(CONDITIONS))
        line_with_ci(ax, table.sort_values(["condition", "step"]), "step", hue="condition")
        ax.errorbar(rung_summary["step"], rung_summary["mean"],
                    yerr=[rung_summary["mean"] - rung_summary["lo"], rung_summary["hi"] - rung_summary["mean"]],
                    fmt="s", color="0.5", label="gold ceiling (one pool)")
        ax.axhline(top["mean"], color="0.3", linestyle=":", label=f"{ladder[-1]} ceiling (all pools)")
        ax.set_xticks(range(n_steps + 1))
        ax.set_xticklabels([f"{k}\n{ladder[k]}" for k in range(n_steps + 1)], fontsize="x-small")
        ax.set_title(f"loss: {loss}")
        ax.set_xlabel("step (student of the recursive chains)", fontsize="small")
        ax.set_ylabel("test accuracy")
        ax.get_legend().remove()
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize="x-small", frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return fig


# ---------------------------------------------------------------------------------------------
# findings


def conclusion(finals: pd.DataFrame, steps: pd.DataFrame, ladder: list) -> str:
    """Markdown findings computed from the tables: does recursion beat direct supervision, does the
    ensemble aligner help, do errors compound, with each number and its interval."""
    diffs, growth = condition_differences(finals), compounding(steps)
    n_seeds = finals["seed"].nunique()
    rungs = " < ".join(f"`{m}`" for m in ladder)
    lines = [f"Ladder: {rungs} (its check on G: the ladder table). {n_seeds} seeds; every interval is a 95% "
             f"t-interval over seeds, comparisons paired by seed.", ""]
    for loss in finals["loss"].unique():
        lines.append(f"**Loss `{loss}`.**")
        for row in diffs[diffs["loss"] == loss].itertuples():
            said = {"better": "is **better**", "worse": "is **worse**",
                    "no difference shown": "shows **no difference** (null result: the CI includes 0)",
                    "cannot tell": "cannot be told apart (fewer than 2 seeds)"}[row.verdict]
            lines.append(f"- Final accuracy, {row.comparison.replace(' - ', ' vs ')}: {said}, difference "
                         f"{format_ci(row.difference, row.lo, row.hi)}; the smallest difference 5 seeds would detect "
                         f"at this spread is {row.mdd:.3f}.")
        for row in growth[growth["loss"] == loss].itertuples():
            said = verdict(row.growth, row.lo, row.hi, above="errors **compound** (label error grows)",
                           below="label error **falls** along the chain",
                           straddles="no growth of label error is shown", unknown="cannot tell")
            lines.append(f"- `{row.condition}`: {said}: the first supervisor mislabels {row.first:.3f} of its pool, "
                         f"the last {row.last:.3f} (change {format_ci(row.growth, row.lo, row.hi)}).")
        mine = finals[finals["loss"] == loss]
        for condition in CONDITIONS:
            values = mine.loc[mine["condition"] == condition, "excess_inheritance"]
            mean, lo, hi = mean_ci(values)
            said = verdict(mean, lo, hi, above="inherits the first aligner's errors beyond shared difficulty",
                           below="shares fewer of the first aligner's errors than the gold ceiling does",
                           straddles="inherits no more of the first aligner's errors than the gold ceiling does "
                                     "(CI includes 0)", unknown="cannot tell")
            lines.append(f"- `{condition}`'s final student {said}: excess inheritance "
                         f"{format_ci(mean, lo, hi)}.")
        lines.append("")
    headline = diffs[diffs["comparison"] == "recursive - direct"]
    beats = [r.loss for r in headline.itertuples() if r.verdict == "better"]
    said = "; ".join(f"`{r.loss}`: {r.verdict}" for r in headline.itertuples())
    grows = [f"`{r.condition}` ({r.loss})" for r in growth.itertuples() if r.lo > 0]
    where = ("with the " + ", ".join(f"`{b}`" for b in beats) + " loss") if beats else "under neither loss"
    chains = ", ".join(grows) if grows else "no chain"
    lines[2:2] = [f"**In short:** recursion beats direct supervision {where} here ({said}); label error "
                  f"compounds along {chains} (CI of the last minus the first supervisor's error above 0).", ""]
    lines.append(f"{len(diffs)} comparisons of final accuracy are made above without a correction for multiplicity: "
                 f"a single interval just clear of 0 is weak evidence on its own.")
    lines.append("")
    lines.append("Direct supervision's final student learns all pools; a chain's final student learns one pool "
                 "(its supervisor learned the others), so a chain must win with fewer examples at the last step.")
    return "\n".join(lines)


def metrics(finals: pd.DataFrame, steps: pd.DataFrame, run: StudyRun) -> dict:
    """Flat metrics.json: <condition>_<loss>_final_acc / _final_auc / _pgr / _excess_inheritance
    (means over seeds), diff_<a>_vs_<b>_<loss> with _lo and _hi, ladder size and seeds."""
    out = {"n_seeds": int(finals["seed"].nunique()), "ladder_size": len(run.ladder)}
    key = {c: c.replace("-", "_") for c in CONDITIONS}
    for (loss, condition), group in finals.groupby(["loss", "condition"]):
        name = f"{key[condition]}_{loss}"
        out[f"{name}_final_acc"] = float(group["final_acc"].mean())
        out[f"{name}_final_auc"] = float(group["final_auc"].mean())
        out[f"{name}_pgr"] = float(group["pgr_acc"].mean())
        out[f"{name}_excess_inheritance"] = float(group["excess_inheritance"].mean())
    for row in condition_differences(finals).itertuples():
        a, b = row.comparison.split(" - ")
        name = f"diff_{key[a]}_vs_{key[b]}_{row.loss}"
        out[name], out[f"{name}_lo"], out[f"{name}_hi"] = row.difference, row.lo, row.hi
    for loss in run.losses:
        first = steps[(steps["loss"] == loss) & (steps["step"] == 0)]
        out[f"first_aligner_acc_{loss}"] = float(first["student_acc"].mean())
    return out
