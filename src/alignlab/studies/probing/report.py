"""Accuracy and object-bias metrics for factual probes (study 03): tables, intervals, figures, the
conclusion and metrics.json.

Per relation, from the (n_test, C) candidate scores of a probe:

- P@1, P@5, MRR: the gold object's rank among the candidates, other true objects of the row
  (valid_objects) removed first, as LAMA does.
- top1_share: share of test predictions (argmax, unfiltered) taken by the single most-predicted object.
- pred_entropy: entropy of the predicted-object distribution, divided by log(C) (0: one object
  always, 1: all candidates equally often), so relations with different C average sensibly.
- kl: KL(predicted || gold) in nats, gold = the test set's object distribution smoothed with
  GOLD_SMOOTHING of uniform mass (so an object predicted but never gold costs log(C / eps), not inf).
- prompt_only_entropy: entropy of the softmax over candidates of the subject-masked query,
  divided by log(C).

Macro averages over relations; 95% CIs from a bootstrap that resamples test subjects within each
relation (the seeds are averaged inside every resample), so they show how much the numbers
depend on which subjects were tested; the seed spread is reported beside them. The prompt-only
entropy involves no test subject: its CI is a t-interval over seeds (zero width for `manual`).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy.special import entr, rel_entr, softmax

from alignlab.figures import figsize, use_style
from alignlab.stats import format_ci, t_ci, verdict
from alignlab.studies.probing.config import Config
from alignlab.studies.probing.facts import relation_rows

GOLD_SMOOTHING = 0.01
METRICS = ("p_at_1", "p_at_5", "mrr", "top1_share", "pred_entropy", "kl", "prompt_only_entropy")


# Entropy and KL from scipy's elementwise `entr` / `rel_entr`, not `scipy.stats.entropy`: the latter
# costs about 120 us a call here (25x more), which inside the 1000-resample bootstrap is most of a
# warm run. Same formulas: sum of -p log p, and of p log(p / q) (inf where q = 0 < p).
def normalized_entropy(p) -> float:
    """Entropy of a distribution (zeros allowed, normalized to sum 1) divided by log(len(p)):
    0 for all mass on one object, 1 for uniform."""
    p = np.asarray(p, dtype=np.float64)
    h = float(entr(p / p.sum()).sum())
    return h / np.log(len(p)) if len(p) > 1 else h


def kl_divergence(p, q) -> float:
    """KL(p || q) in nats, both normalized to sum 1 first; inf where q = 0 < p."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    return float(rel_entr(p / p.sum(), q / q.sum()).sum())


def distribution(indices, n: int) -> np.ndarray:
    """Empirical distribution of indices over n objects."""
    counts = np.bincount(np.asarray(indices, dtype=int), minlength=n).astype(float)
    return counts / max(counts.sum(), 1)


def smoothed_gold(gold, n: int, eps: float = GOLD_SMOOTHING) -> np.ndarray:
    return (1 - eps) * distribution(gold, n) + eps / n


def top1_share(pred) -> float:
    pred = np.asarray(pred)
    return float(np.bincount(pred).max() / len(pred)) if len(pred) else float("nan")


def gold_ranks(scores, gold, valid=None) -> np.ndarray:
    """1-based rank of each row's gold among candidates, other valid objects removed."""
    scores = np.array(scores, dtype=np.float64)
    for row, others in enumerate(valid or []):
        for v in others:
            if v != gold[row]:
                scores[row, v] = -np.inf
    gold_scores = scores[np.arange(len(gold)), gold]
    return 1 + (scores > gold_scores[:, None]).sum(1)


def scored_candidates(out: dict, info: dict, relation: str) -> list[str]:
    """The candidates a result's score columns stand for: the relation's objects, or (masked LMs,
    LAMA-style) the decoded vocabulary stored with the result."""
    stored = out.get("candidates")
    return [str(c) for c in stored] if stored is not None and len(stored) else info[relation]["candidates"]


def row_arrays(scores, candidates, rows) -> dict:
    """The per-row facts every metric is computed from: gold index, rank, predicted index."""
    index = {c: i for i, c in enumerate(candidates)}
    keep = [i for i, r in enumerate(rows) if r["object"] in index]
    rows = [rows[i] for i in keep]
    scores = np.asarray(scores)[keep]
    gold = np.array([index[r["object"]] for r in rows], dtype=int)
    valid = [[index[o] for o in r.get("valid_objects", [r["object"]]) if o in index] for r in rows]
    return {"gold": gold, "rank": gold_ranks(scores, gold, valid), "pred": scores.argmax(1) if len(rows) else gold}


def relation_metrics(gold, rank, pred, n_candidates: int, prompt_only_scores) -> dict:
    pred_dist = distribution(pred, n_candidates)
    return {
        "p_at_1": float(np.mean(rank <= 1)),
        "p_at_5": float(np.mean(rank <= 5)),
        "mrr": float(np.mean(1.0 / rank)),
        "top1_share": top1_share(pred),
        "pred_entropy": normalized_entropy(pred_dist),
        "kl": kl_divergence(pred_dist, smoothed_gold(gold, n_candidates)),  # KL(predicted || gold)
        "prompt_only_entropy": normalized_entropy(softmax(np.asarray(prompt_only_scores, dtype=np.float64))),
    }


def data_summary(splits: dict, info: dict) -> pd.DataFrame:
    """Per relation: test subjects, the most common gold object and its share of them, candidates."""
    def most_common(objects):
        return objects.value_counts().index[0]

    def its_share(objects):
        return objects.value_counts(normalize=True).iloc[0]

    table = splits["test"].groupby("relation").agg(subjects=("subject", "size"),
                                                   most_common_object=("object", most_common),
                                                   its_share=("object", its_share))
    return table.assign(candidates=[len(info[r]["candidates"]) for r in table.index])


def per_relation(results: dict, info: dict, test) -> pd.DataFrame:
    """One row per (method, seed, relation) with every metric; `results` from probes.run_probes."""
    records = []
    for (method, seed, relation), out in results.items():
        rows = relation_rows(test, relation)
        candidates = scored_candidates(out, info, relation)
        arrays = row_arrays(out["scores"], candidates, rows)
        records.append({"method": method, "seed": seed, "relation": relation, "n": len(arrays["gold"]),
                        **relation_metrics(arrays["gold"], arrays["rank"], arrays["pred"],
                                           len(candidates), out["prompt_only"])})
    return pd.DataFrame(records)


def relation_table(table: pd.DataFrame) -> pd.DataFrame:
    """Every metric per (relation, method), mean over seeds, rounded for display."""
    return table.groupby(["relation", "method"])[list(METRICS)].mean().round(3)


# Statistics of the whole predicted-object distribution (not means over subjects): resampling
# subjects with replacement duplicates some of them, which concentrates the distribution, so the
# bootstrap replicates sit above the estimate (top-1 share, KL) or below it (entropy), and the plain
# percentile interval can miss the estimate altogether. Their interval is the percentile interval
# shifted by the bootstrap estimate of that bias (mean of the replicates - estimate).
DISTRIBUTIONAL = ("top1_share", "pred_entropy", "kl")


@dataclass
class Bootstrap:
    """estimates[method][metric]: the per-seed macro values over relations; replicates[method][metric]
    (n_boot,): the seed-averaged macro values on bootstrap resamples of test subjects within
    relations, the same resamples for every method (so differences between methods are paired)."""

    estimates: dict
    replicates: dict


def bootstrap(results: dict, info: dict, test, n_boot: int, seed: int = 0) -> Bootstrap:
    """Resample the test subjects once; `summarize_methods` and `compare` both read the result."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for (method, s, relation), out in results.items():
        rows = relation_rows(test, relation)
        candidates = scored_candidates(out, info, relation)
        arrays[(method, s, relation)] = (row_arrays(out["scores"], candidates, rows), out["prompt_only"],
                                         len(candidates))
    methods = list(dict.fromkeys(k[0] for k in results))
    seeds = sorted(set(k[1] for k in results))
    relations = list(dict.fromkeys(k[2] for k in results))
    sizes = {r: len(arrays[(methods[0], seeds[0], r)][0]["gold"]) for r in relations}

    def macro(method, s, picks):
        values = []
        for r in relations:
            a, prompt_only, n_candidates = arrays[(method, s, r)]
            idx = picks[r]
            values.append(relation_metrics(a["gold"][idx], a["rank"][idx], a["pred"][idx], n_candidates, prompt_only))
        return {m: float(np.mean([v[m] for v in values])) for m in METRICS}

    full = {r: np.arange(sizes[r]) for r in relations}
    resamples = [{r: rng.integers(0, sizes[r], sizes[r]) for r in relations} for _ in range(n_boot)]
    estimates, replicates = {}, {}
    for method in methods:
        per_seed = [macro(method, s, full) for s in seeds]
        boot = [[macro(method, s, picks) for s in seeds] for picks in resamples]
        estimates[method] = {m: [p[m] for p in per_seed] for m in METRICS}
        replicates[method] = {m: np.array([np.mean([b[m] for b in bs]) for bs in boot]) for m in METRICS}
    return Bootstrap(estimates, replicates)


def _interval(metric: str, estimate: float, reps: np.ndarray, per_seed) -> tuple[float, float]:
    """95% interval of a macro statistic (or of a paired difference of two): a t-interval over
    seeds for the prompt-only entropy (no test subjects involved), the bootstrap percentile
    interval for per-subject means, shifted by the estimated bias for DISTRIBUTIONAL statistics."""
    if metric == "prompt_only_entropy":
        return t_ci(per_seed) if len(per_seed) > 1 and np.std(per_seed) > 0 else (estimate, estimate)
    lo, hi = np.percentile(reps, [2.5, 97.5])
    if metric in DISTRIBUTIONAL:
        bias = reps.mean() - estimate
        lo, hi = lo - bias, hi - bias
    return float(lo), float(hi)


def summarize_methods(boot: Bootstrap) -> pd.DataFrame:
    """Macro over relations, mean over seeds, per method: metric, mean, lo, hi (bootstrap over
    test subjects within relations: percentile intervals for per-subject means such as P@1,
    bias-shifted ones for the DISTRIBUTIONAL statistics), seed_std (spread of the per-seed values)."""
    estimates, replicates = boot.estimates, boot.replicates
    records = []
    for method, by_metric in estimates.items():
        for m in METRICS:
            values = by_metric[m]
            lo, hi = _interval(m, float(np.mean(values)), replicates[method][m], values)
            records.append({"method": method, "metric": m, "mean": float(np.mean(values)), "lo": lo, "hi": hi,
                            "seed_std": float(np.std(values)), "n_seeds": len(values)})
    return pd.DataFrame(records)


def method_table(summary: pd.DataFrame, methods) -> pd.DataFrame:
    """The macro means of `summarize_methods`, one row per method (in the order of `methods`)."""
    return summary.pivot(index="method", columns="metric", values="mean").reindex(methods)[list(METRICS)].round(3)


COMPARISONS = (("softprompt", "manual"), ("ptuning", "manual"), ("mecod", "manual"), ("mecod", "ptuning"))


def compare(boot: Bootstrap, pairs=COMPARISONS) -> pd.DataFrame:
    """Paired differences a - b of every metric for each (a, b) in `pairs` whose methods ran: the
    same test subjects and the same bootstrap resamples for both, so the interval is that of the
    difference itself (much tighter than comparing two intervals). Columns: a, b, metric, diff, lo, hi."""
    estimates, replicates = boot.estimates, boot.replicates
    records = []
    for a, b in pairs:
        if a not in estimates or b not in estimates:
            continue
        for m in METRICS:
            per_seed = np.subtract(estimates[a][m], estimates[b][m])
            diff = float(np.mean(estimates[a][m]) - np.mean(estimates[b][m]))
            lo, hi = _interval(m, diff, replicates[a][m] - replicates[b][m], per_seed)
            records.append({"a": a, "b": b, "metric": m, "diff": diff, "lo": lo, "hi": hi})
    return pd.DataFrame(records)


def difference_table(comparisons: pd.DataFrame) -> pd.DataFrame:
    """The paired differences of `compare`, one row per pair of methods, rounded for display."""
    wide = comparisons.pivot_table(index=["a", "b"], columns="metric", values="diff", sort=False)
    return wide[list(METRICS)].round(3)


def metrics(summary) -> dict:
    """The flat metrics.json mapping: accuracy and bias per method, e.g. p_at_1_mecod, bias_kl_manual."""
    names = {"p_at_1": "p_at_1", "mrr": "mrr", "top1_share": "bias_top1_share", "kl": "bias_kl",
             "prompt_only_entropy": "prompt_only_entropy", "p_at_5": "p_at_5", "pred_entropy": "bias_entropy"}
    return {f"{names[r.metric]}_{r.method}": float(r.mean) for r in summary.itertuples() if r.metric in names}


def conclusion(summary, comparisons) -> str:
    """Markdown: are tuned prompts more biased than manual ones, and does MeCoD reduce bias
    without losing accuracy, from the paired differences of this run (`compare`)."""
    table = summary.set_index(["method", "metric"])
    diffs = comparisons.set_index(["a", "b", "metric"]) if len(comparisons) else None

    def cell(method, metric):
        r = table.loc[(method, metric)]
        return format_ci(r["mean"], r["lo"], r["hi"])

    def diff(a, b, metric):
        r = diffs.loc[(a, b, metric)]
        return r["diff"], r["lo"], r["hi"]

    def said(a, b, metric, above, below):
        return verdict(*diff(a, b, metric), above=above, below=below,
                       straddles="not established (the 95% CI includes 0)")

    methods = list(dict.fromkeys(summary["method"]))
    lines = ["Differences are paired (same test subjects, same bootstrap resamples), mean [95% CI]:", ""]
    if "manual" in methods:
        for tuned in [m for m in ("softprompt", "ptuning", "mecod") if m in methods]:
            lines.append(
                f"- **{tuned} vs manual**: top-1 share {cell(tuned, 'top1_share')} vs "
                f"{cell('manual', 'top1_share')}, difference {format_ci(*diff(tuned, 'manual', 'top1_share'))} — "
                f"more concentrated on one object: {said(tuned, 'manual', 'top1_share', '**yes**', '**no, less**')}; "
                f"KL to gold difference {format_ci(*diff(tuned, 'manual', 'kl'))}; P@1 {cell(tuned, 'p_at_1')} vs "
                f"{cell('manual', 'p_at_1')}, difference {format_ci(*diff(tuned, 'manual', 'p_at_1'))} — "
                f"{said(tuned, 'manual', 'p_at_1', 'more accurate', 'less accurate')}.")
    if "mecod" in methods and "ptuning" in methods:
        flatter = said("mecod", "ptuning", "prompt_only_entropy", "flatter prompt-only distribution",
                       "sharper prompt-only distribution")
        lines.append(
            f"- **MeCoD vs P-tuning** (does MeCoD reduce bias?): top-1 share difference "
            f"{format_ci(*diff('mecod', 'ptuning', 'top1_share'))} — "
            f"{said('mecod', 'ptuning', 'top1_share', '**no: more concentrated**', '**yes: less concentrated**')}; "
            f"KL to gold {format_ci(*diff('mecod', 'ptuning', 'kl'))} — "
            f"{said('mecod', 'ptuning', 'kl', '**no: further from gold**', '**yes: closer to gold**')}; "
            f"prompt-only entropy {format_ci(*diff('mecod', 'ptuning', 'prompt_only_entropy'))} "
            f"(t-interval over seeds) — {flatter}; "
            f"and accuracy: P@1 {format_ci(*diff('mecod', 'ptuning', 'p_at_1'))} — "
            f"{said('mecod', 'ptuning', 'p_at_1', 'higher', '**lower**')}.")
    lines.append("- A small model, few training steps and few test subjects per relation: a difference whose CI "
                 "includes 0 is not a finding here, in either direction.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Figures

def plotted_relations(config: Config) -> list:
    """The relations of `figure_relations` that the run has, else its first two relations."""
    return [r for r in config.figure_relations if r in config.relations] or config.relations[:2]


def plot_object_distributions(results: dict, info: dict, test, config: Config, top: int = 8):
    """Predicted vs gold object distribution for the `plotted_relations` (first seed): bars per method."""
    relations, seed = plotted_relations(config), config.seeds[0]
    use_style()
    methods = list(dict.fromkeys(k[0] for k in results))
    fig, axes = plt.subplots(1, len(relations), figsize=figsize("text", 0.45 if len(relations) > 1 else 0.62),
                             squeeze=False)
    for ax, relation in zip(axes[0], relations):
        candidates = scored_candidates(results[(methods[0], seed, relation)], info, relation)
        rows = relation_rows(test, relation)
        dists = {}
        for method in methods:
            a = row_arrays(results[(method, seed, relation)]["scores"], candidates, rows)
            dists[method] = distribution(a["pred"], len(candidates))
        gold = distribution(a["gold"], len(candidates))
        order = np.argsort(-(gold + sum(dists.values())), kind="stable")[:top]
        width = 0.8 / (len(methods) + 1)
        x = np.arange(len(order))
        ax.bar(x, gold[order], width, label="gold", color="black")
        for j, method in enumerate(methods):
            ax.bar(x + (j + 1) * width, dists[method][order], width, label=method)
        ax.set_xticks(x + 0.4 - width / 2, [candidates[i][:14] for i in order], rotation=45, ha="right",
                      rotation_mode="anchor", fontsize=6)
        ax.set_title(relation)
    axes[0][0].set_ylabel("share of test predictions")
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_bias_vs_accuracy(table):
    """Top-1 share vs P@1 per method and relation (small dots, mean over seeds) and the macro
    means (big dots); the CIs are in the summary table."""
    use_style()
    fig, ax = plt.subplots(figsize=figsize("column"))
    per = table.groupby(["method", "relation"], sort=False)[["p_at_1", "top1_share"]].mean().reset_index()
    groups = list(per.groupby("method", sort=False))
    for color, (method, part) in zip(sns.color_palette(n_colors=len(groups)), groups):
        ax.scatter(part["top1_share"], part["p_at_1"], s=10, alpha=0.4, color=color)
        ax.scatter(part["top1_share"].mean(), part["p_at_1"].mean(), s=60, color=color, edgecolor="black",
                   label=method, zorder=3)
    ax.set_xlabel("bias: top-1 share of predictions")
    ax.set_ylabel("P@1")
    ax.legend()
    return fig
