"""Tables, the figure, metrics and the conclusion of study 06 (o1-style coding).

Every interval is a percentile bootstrap over PROBLEMS (the unit that varies between benchmarks):
per-problem values are first averaged over sampling seeds, then problems are resampled.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from alignlab.figures import bar_with_ci, figsize, use_style
from alignlab.stats import bootstrap_ci, format_ci, paired_bootstrap_ci
from alignlab.studies.coder.search import pass_at_k

METHOD_ORDER = ["greedy", "random-sample", "sample-best", "codet", "mcts", "mcts-oracle (upper bound)"]


def _summary(values, n_boot: int, seed: int) -> dict:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    lo, hi = bootstrap_ci(values, n_boot=n_boot, seed=seed) if values.size > 1 else (np.nan, np.nan)
    return {"mean": float(values.mean()) if values.size else np.nan, "lo": lo, "hi": hi, "problems": int(values.size)}


def search_table(search_rows: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    """pass@1 of each method's chosen program on the hidden tests, programs and tokens per problem."""
    per_problem = search_rows.groupby(["method", "task_id"], sort=False)[["passed", "programs", "tokens"]].mean()
    rows = []
    for method in [m for m in METHOD_ORDER if m in per_problem.index.get_level_values(0)]:
        part = per_problem.loc[method]
        rows.append({"method": method, **_summary(part["passed"], n_boot, seed),
                     "programs": float(part["programs"].mean()), "tokens": float(part["tokens"].mean())})
    return pd.DataFrame(rows)


def method_differences(search_rows: pd.DataFrame, baseline: str, n_boot: int, seed: int) -> pd.DataFrame:
    """Each method's pass@1 minus `baseline`'s, paired over problems, with a bootstrap CI."""
    wide = search_rows.groupby(["task_id", "method"])["passed"].mean().unstack()
    rows = []
    for method in [m for m in METHOD_ORDER if m in wide.columns and m != baseline]:
        lo, hi = paired_bootstrap_ci(wide[method], wide[baseline], n_boot=n_boot, seed=seed)
        rows.append({"method": method, "minus": baseline, "difference": float((wide[method] - wide[baseline]).mean()),
                     "lo": lo, "hi": hi})
    return pd.DataFrame(rows)


def pool_table(pool_rows: pd.DataFrame, pass_ks, n_boot: int, seed: int) -> pd.DataFrame:
    """Per prompting style: greedy pass@1, the average sampling pass rate (c/n), unbiased pass@k,
    and tokens per program; CIs over problems."""
    rows = []
    for style, part in pool_rows.groupby("style", sort=False):
        per_problem = part.assign(
            aspr=part["c"] / part["n"], **{f"pass@{k}": [pass_at_k(n, c, k) for n, c in zip(part["n"], part["c"])]
                                          for k in pass_ks},
            tokens=part["sample_tokens"] / part["n"]).groupby("task_id").mean(numeric_only=True)
        row = {"style": style}
        for column in ["greedy_pass", "aspr", *[f"pass@{k}" for k in pass_ks]]:
            s = _summary(per_problem[column], n_boot, seed)
            row[column] = format_ci(s["mean"], s["lo"], s["hi"])
            row[f"{column}_mean"] = s["mean"]
        row["tokens per program"] = float(per_problem["tokens"].mean())
        row["problems"] = len(per_problem)
        rows.append(row)
    return pd.DataFrame(rows)


TCG_STAGES = ["prompt-only", "SFT", "DPO"]


def tcg_summary(tcg_rows: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    """Per TCG stage and fold: generated tests kept per problem, validity, discrimination and
    copied share."""
    rows = []
    tcg_rows = tcg_rows if "stage" in tcg_rows else tcg_rows.assign(stage="prompt-only")
    for stage in [s for s in TCG_STAGES if s in set(tcg_rows["stage"])]:
        for fold, part in tcg_rows[tcg_rows["stage"] == stage].groupby("fold", sort=True):
            row = {"stage": stage, "fold": fold, "problems": len(part),
                   "tests per problem": float(part["tests"].mean())}
            for column in ("validity", "discrimination", "copied"):
                s = _summary(part[column], n_boot, seed)
                row[column] = format_ci(s["mean"], s["lo"], s["hi"]) if s["problems"] else "n/a"
                row[f"{column}_mean"] = s["mean"]
                row[f"{column}_problems"] = s["problems"]
            rows.append(row)
    return pd.DataFrame(rows)


def policy_table(before: pd.DataFrame, after: pd.DataFrame | None, n_boot: int, seed: int) -> pd.DataFrame:
    """Fold-B greedy pass@1 and sampled pass rate before and after the policy-improvement round,
    and after minus before paired over problems (NaN after when the round did not train)."""
    rows = []
    b = before.groupby("task_id")[["greedy_pass", "sample_pass"]].mean()
    a = after.groupby("task_id")[["greedy_pass", "sample_pass"]].mean().reindex(b.index) if after is not None \
        else None
    for column, name in (("greedy_pass", "greedy pass@1"), ("sample_pass", "sampled pass rate")):
        sb = _summary(b[column], n_boot, seed)
        row = {"metric": name, "problems": len(b), "before": format_ci(sb["mean"], sb["lo"], sb["hi"]),
               "before_mean": sb["mean"], "after": "not trained", "after_mean": np.nan, "after - before": "n/a",
               "difference_mean": np.nan, "difference_lo": np.nan, "difference_hi": np.nan}
        if a is not None:
            sa = _summary(a[column], n_boot, seed)
            diff = float((a[column] - b[column]).mean())
            lo, hi = paired_bootstrap_ci(a[column], b[column], n_boot=n_boot, seed=seed) if len(b) > 1 \
                else (np.nan, np.nan)
            row.update({"after": format_ci(sa["mean"], sa["lo"], sa["hi"]), "after_mean": sa["mean"],
                        "after - before": format_ci(diff, lo, hi), "difference_mean": diff,
                        "difference_lo": lo, "difference_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """A table without its helper columns (`*_mean`, `*_problems`), for the notebook."""
    return table[[c for c in table.columns if not c.endswith(("_mean", "_problems", "_lo", "_hi"))]]


def plot_search(table: pd.DataFrame):
    use_style()
    fig, ax = plt.subplots(figsize=figsize("column", aspect=0.7))
    bar_with_ci(ax, table, x="method")
    ax.set_ylabel("pass@1 on hidden tests (fold B)")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    fig.tight_layout()
    return fig


def metrics(search: pd.DataFrame, pools: pd.DataFrame, tcg: pd.DataFrame, pass_ks) -> dict:
    out = {}
    for _, r in search.iterrows():
        key = r["method"].split(" ")[0].replace("-", "_")
        out[f"pass1_{key}"] = r["mean"]
        out[f"tokens_{key}"] = r["tokens"]
    for _, r in pools.iterrows():
        out[f"greedy_pass1_{r['style']}"] = r["greedy_pass_mean"]
        out[f"aspr_{r['style']}"] = r["aspr_mean"]
        for k in pass_ks:
            out[f"pass{k}_{r['style']}"] = r[f"pass@{k}_mean"]
    for _, r in tcg.iterrows():
        stage = "" if r.get("stage", "prompt-only") == "prompt-only" else f"_{r['stage'].lower()}"
        for column in ("validity", "discrimination", "copied"):
            out[f"tcg_{column}_fold{r['fold']}{stage}"] = r[f"{column}_mean"]
    out["problems_scored"] = int(search["problems"].max()) if len(search) else 0
    return {k: float(v) for k, v in out.items()}  # NaN (e.g. no wrong programs) is written as null


def conclusion(search: pd.DataFrame, differences: pd.DataFrame, pools: pd.DataFrame, tcg: pd.DataFrame,
               n_dpo_pairs: int, isolation: str) -> str:
    n = int(search["problems"].max())
    lines = [f"**Scale.** {n} fold-B problem(s) scored; every interval is a bootstrap over problems, so with this few "
             "problems the intervals are wide and no difference below is a finding unless its interval excludes 0."]
    best = search.set_index("method")
    parts = [f"{m} {format_ci(r['mean'], r['lo'], r['hi'])}" for m, r in best.iterrows()]
    lines.append("**Search at equal budget** (pass@1 on hidden tests): " + "; ".join(parts) + ".")
    for _, d in differences.iterrows():
        excluded = not (np.isnan(d["lo"]) or d["lo"] <= 0 <= d["hi"])
        word = ("better than" if d["difference"] > 0 else "worse than") if excluded else "not distinguishable from"
        gap = format_ci(d["difference"], d["lo"], d["hi"])
        lines.append(f"- {d['method']} is {word} {d['minus']}: difference {gap}.")
    if "mcts" in best.index and "mcts-oracle (upper bound)" in best.index:
        lines.append(f"The oracle-reward MCTS (hidden tests as reward, an upper bound only) reaches "
                     f"{best.loc['mcts-oracle (upper bound)', 'mean']:.3f} against {best.loc['mcts', 'mean']:.3f} with "
                     "generated tests: the gap is what better generated tests could buy.")
    if len(pools) == 2:
        v, p = pools.set_index("style").loc["vanilla"], pools.set_index("style").loc["pseudocode"]
        lines.append(f"**Pseudocode vs vanilla prompting** (O1-CODER Table 1: pass@1 55.8 -> 46.7, average sampling "
                     f"pass rate 49.9 -> 54.5 for Qwen2.5-1.5B on MBPP): here greedy pass@1 {v['greedy_pass']} -> "
                     f"{p['greedy_pass']}, average sampling pass rate {v['aspr']} -> {p['aspr']}.")
    for _, r in tcg[tcg["stage"] == "prompt-only"].iterrows():
        lines.append(f"**Generated tests, fold {r['fold']}** ({r['problems']} problems, {r['tests per problem']:.1f} "
                     f"tests each): validity {r['validity']} (O1-CODER: 80.8% after SFT, 89.2% after DPO, on TACO), "
                     f"discrimination {r['discrimination']}, copied from the prompt's examples {r['copied']}.")
    lines.append(f"{n_dpo_pairs} DPO pair(s) could be built from the prompt-only tests of fold A (O1-CODER's "
                 "shuffled-output negatives); the trained stages below use the reference-checked SFT tests instead.")
    lines.append(f"**Sandbox:** every program ran in `alignlab.sandbox` with isolation `{isolation}`.")
    return "\n\n".join(lines)


def _verdict(lo: float, hi: float, diff: float) -> str:
    if np.isnan(lo) or lo <= 0 <= hi:
        return "not distinguishable from no change"
    return "an improvement" if diff > 0 else "a degradation"


def training_conclusion(tcg: pd.DataFrame, tcg_training: dict, policy: pd.DataFrame, improvement: dict) -> str:
    """The findings of the two training steps, from the run's numbers."""
    lines = []
    examples, losses = tcg_training["examples"], tcg_training["losses"]
    if not examples["SFT"]:
        lines.append("**TCG training:** no fold-A problem had a test its reference solution passes, so neither SFT "
                     "nor DPO ran; only the prompt-only row exists.")
    else:
        trained = f"SFT on {examples['SFT']} fold-A problem(s) (loss per epoch {_losses(losses.get('SFT'))})"
        trained += (f", then DPO on {examples['DPO']} pair(s) (loss per epoch {_losses(losses.get('DPO'))}, log 2 = "
                    "0.693 at the start)") if examples["DPO"] else "; no DPO pair (fewer than two tests, or one output)"
        lines.append(f"**TCG training:** {trained}.")
        b = tcg[tcg["fold"] == "B"].set_index("stage")
        parts = [f"{stage}: validity {r['validity']}, discrimination {r['discrimination']}, copied {r['copied']}"
                 for stage, r in b.iterrows()]
        lines.append("On fold B (never trained on) the generated tests are " + "; ".join(parts) + ".")
        if "prompt-only" in b.index and len(b) > 1:
            base = b.loc["prompt-only", "validity_mean"]
            for stage in [s for s in b.index if s != "prompt-only"]:
                v = b.loc[stage, "validity_mean"]
                if np.isnan(v) or np.isnan(base):
                    lines.append(f"- {stage}: validity not comparable (a stage left no parsable test).")
                else:
                    n = int(b.loc[stage, "problems"])
                    lines.append(f"- {stage} changes mean validity by {v - base:+.3f} over {n} problem(s); with this "
                                 "few problems the intervals above decide, not the sign.")
    n_traces = sum(len(v) for v in improvement["traces"].values())
    if improvement["after"] is None:
        lines.append(f"**Policy improvement:** the search on fold A found no program passing fold A's hidden tests "
                     f"(0 of {improvement['fold_a_programs']} programs), so there was nothing to fine-tune on and the "
                     "round did not train; fold B's numbers are the untrained policy's.")
    else:
        parts = []
        for _, r in policy.iterrows():
            verdict = _verdict(r["difference_lo"], r["difference_hi"], r["difference_mean"])
            parts.append(f"{r['metric']} {r['before']} -> {r['after']} (after - before {r['after - before']}: "
                         f"{verdict})")
        lines.append(f"**Policy improvement:** {n_traces} valid trace(s) from {len(improvement['traces'])} fold-A "
                     f"problem(s) (of {improvement['fold_a_programs']} programs searched); after one round of SFT "
                     "on them, on fold B: " + "; ".join(parts) + ".")
    return "\n\n".join(lines)


def _losses(values) -> str:
    return ", ".join(f"{v:.3f}" for v in values) if values else "n/a"


def training_metrics(policy: pd.DataFrame, tcg_training: dict, improvement: dict) -> dict:
    """Flat numbers of the two training steps (NaN when a step did not train)."""
    out = {"tcg_sft_examples": tcg_training["examples"]["SFT"], "tcg_dpo_pairs": tcg_training["examples"]["DPO"],
           "policy_traces": sum(len(v) for v in improvement["traces"].values())}
    for _, r in policy.iterrows():
        key = "greedy" if r["metric"].startswith("greedy") else "sample"
        out[f"policy_{key}_before"], out[f"policy_{key}_after"] = r["before_mean"], r["after_mean"]
    return {k: float(v) for k, v in out.items()}
