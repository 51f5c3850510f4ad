"""Accuracy and object-bias metrics for factual probes (study 03): tables, intervals, figures, the
conclusion and metrics.json.

Per relation, from a probe's (n_test, C) candidate scores (`scoring`: "sum" of the candidate's
token log-probs, "mean" per token (length-normalised), or "pmi": minus the row's prompt-only
log-prob, a calibration):

- P@1, P@5, MRR: the gold object's rank among the candidates, other true objects of the row
  (valid_objects) removed first, as LAMA does; a test row whose gold is not a candidate (cut by
  `max_candidates`) is a miss (rank infinite).
- top1_share: share of test predictions taken by the single most-predicted object, and
  excess_top1 = top1_share minus the same share of the gold objects (a perfect predictor: 0).
- pred_entropy: entropy of the predicted-object distribution divided by log(C).
- kl: KL(predicted || gold) in nats, gold = the test golds' distribution over the candidates plus
  one bin for golds outside them, smoothed with GOLD_SMOOTHING of uniform mass.
- po_agreement: share of test rows whose prediction is the argmax of the prompt-only query (the
  subject hidden behind fillers, one per subject token): the prediction the subject did not change.
- prompt_only_entropy: entropy of the prompt-only softmax over all candidates / log(C), mean over rows.
- mecod_entropy: MeCoD's own bias metric (released process_result.py): entropy in nats of the
  softmax over the 10 highest prompt-only scores (low: the prompt alone is sure of a few objects).

Macro averages over relations. 95% CIs from a hierarchical bootstrap: each replicate resamples the
training seeds, then the test subjects within each relation, the same draws for every method, so
an interval covers a new training run as well as new subjects, and differences between methods are
paired. Verdicts use Holm-adjusted bootstrap p-values over the family of differences the
conclusion states (VERDICTS).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy.special import entr, rel_entr, softmax
from scipy.stats import norm

from alignlab.figures import figsize, use_style
from alignlab.stats import bootstrap_pvalue, format_ci, holm, two_level_resample
from alignlab.studies.probing.config import Config
from alignlab.studies.probing.facts import relation_rows

GOLD_SMOOTHING = 0.01
MECOD_TOP = 10  # MeCoD's metric: entropy over the top-10 prompt-only predictions
METRICS = ("p_at_1", "p_at_5", "mrr", "top1_share", "excess_top1", "pred_entropy", "kl", "po_agreement",
           "prompt_only_entropy", "mecod_entropy")
TABLE_METRICS = ("p_at_1", "excess_top1", "kl", "po_agreement", "prompt_only_entropy", "mecod_entropy")


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
    """1-based rank of each row's gold among candidates, other valid objects removed; candidates
    tied with the gold count half (mid-rank), so a constant score never ranks the gold first; a
    gold index < 0 (not a candidate) ranks at infinity: a miss."""
    scores = np.array(scores, dtype=np.float64)
    gold = np.asarray(gold, dtype=int)
    for row, others in enumerate(valid or []):
        for v in others:
            if v != gold[row]:
                scores[row, v] = -np.inf
    gold_scores = scores[np.arange(len(gold)), np.maximum(gold, 0)]
    ties = (scores == gold_scores[:, None]).sum(1) - 1  # other candidates scored exactly as the gold
    rank = 1 + (scores > gold_scores[:, None]).sum(1) + 0.5 * ties  # ties share their ranks: no free P@1
    return np.where(gold < 0, np.inf, rank)


def mecod_entropy(prompt_only_scores, top: int = MECOD_TOP) -> float:
    """Entropy (nats) of the softmax over the `top` highest prompt-only scores (MeCoD's metric)."""
    s = np.sort(np.asarray(prompt_only_scores, dtype=np.float64))[::-1][:top]
    return float(entr(softmax(s)).sum())


def scored_candidates(out: dict, info: dict, relation: str) -> list[str]:
    """The candidates a result's score columns stand for: the relation's objects, or (masked LMs,
    LAMA-style) the decoded vocabulary stored with the result."""
    stored = out.get("candidates")
    return [str(c) for c in stored] if stored is not None and len(stored) else info[relation]["candidates"]


def prompt_only_rows(out: dict, n_rows: int) -> np.ndarray:
    """(n_rows, C) each test row's prompt-only log-probs, length-matched to its subject."""
    by_length = np.atleast_2d(np.asarray(out["prompt_only_by_length"], dtype=np.float64))
    lengths = np.asarray(out.get("subject_tokens", np.ones(n_rows, dtype=int)), dtype=int)
    return by_length[np.clip(lengths, 1, len(by_length)) - 1]


def rescore(out: dict, prompt_only, scoring: str) -> np.ndarray:
    """The candidate scores under `scoring`: sum (as stored), mean per candidate token, or pmi."""
    scores = np.asarray(out["scores"], dtype=np.float64)
    if scoring == "mean":
        return scores / np.maximum(np.asarray(out.get("candidate_tokens", np.ones(scores.shape[1]))), 1)
    if scoring == "pmi":
        return scores - prompt_only
    return scores


def row_arrays(out: dict, candidates, rows, scoring: str = "sum") -> dict:
    """The per-row facts every metric is computed from: gold index (-1: not a candidate), rank,
    predicted index, prompt-only argmax, and the row's prompt-only entropies."""
    po = prompt_only_rows(out, len(rows))
    if "gold_index" in out:  # lean results of a masked LM over its vocabulary (probes.lean_results)
        kind = "pmi" if scoring == "pmi" else "sum"  # one-token objects: "mean" is "sum"
        return {"gold": np.asarray(out["gold_index"], dtype=int), "rank": np.asarray(out[f"rank_{kind}"], float),
                "pred": np.asarray(out[f"pred_{kind}"], dtype=int), "po_pred": po.argmax(1),
                "po_entropy": np.array([normalized_entropy(softmax(r)) for r in po]),
                "mecod_entropy": np.array([mecod_entropy(r) for r in po]), "n_candidates": po.shape[1]}
    index = {c: i for i, c in enumerate(candidates)}
    scores = rescore(out, po, scoring)
    gold = np.array([index.get(r["object"], -1) for r in rows], dtype=int)
    valid = [[index[o] for o in r.get("valid_objects", [r["object"]]) if o in index] for r in rows]
    n = len(candidates)
    return {"gold": gold, "rank": gold_ranks(scores, gold, valid),
            "pred": scores.argmax(1) if len(rows) else gold, "po_pred": po.argmax(1) if len(rows) else gold,
            "po_entropy": np.array([normalized_entropy(softmax(r)) for r in po]) if n > 1 else np.zeros(len(rows)),
            "mecod_entropy": np.array([mecod_entropy(r) for r in po]), "n_candidates": n}


def relation_metrics(a: dict, idx=None) -> dict:
    """Every metric of one relation from `row_arrays` output (rows `idx`, default all)."""
    idx = np.arange(len(a["gold"])) if idx is None else idx
    gold, rank, pred, n = a["gold"][idx], a["rank"][idx], a["pred"][idx], a["n_candidates"]
    pred_dist = np.append(distribution(pred, n), 0.0)  # the last bin: golds outside the candidates
    gold_dist = distribution(np.where(gold < 0, n, gold), n + 1)
    gold_dist = (1 - GOLD_SMOOTHING) * gold_dist + GOLD_SMOOTHING / (n + 1)
    share = top1_share(pred)
    return {
        "p_at_1": float(np.mean(rank <= 1)),
        "p_at_5": float(np.mean(rank <= 5)),
        "mrr": float(np.mean(1.0 / rank)),
        "top1_share": share,
        "excess_top1": share - top1_share(np.where(gold < 0, n + np.arange(len(gold)), gold)),
        "pred_entropy": normalized_entropy(pred_dist[:n]),
        "kl": kl_divergence(pred_dist, gold_dist),
        "po_agreement": float(np.mean(pred == a["po_pred"][idx])),
        "prompt_only_entropy": float(np.mean(a["po_entropy"][idx])),
        "mecod_entropy": float(np.mean(a["mecod_entropy"][idx])),
    }


def data_summary(splits: dict, info: dict) -> pd.DataFrame:
    """Per relation: test subjects, the most common gold object and its share of them (the top-1
    share of a perfect predictor), candidates, and how many test golds are candidates."""
    def most_common(objects):
        return objects.value_counts().index[0]

    def its_share(objects):
        return objects.value_counts(normalize=True).iloc[0]

    test = splits["test"]
    table = test.groupby("relation").agg(subjects=("subject", "size"), most_common_object=("object", most_common),
                                         its_share=("object", its_share))
    covered = {r: int(test.loc[test.relation == r, "object"].isin(set(info[r]["candidates"])).sum())
               for r in table.index}
    return table.assign(candidates=[len(info[r]["candidates"]) for r in table.index],
                        golds_covered=[covered[r] for r in table.index])


def prior_baseline(info: dict, splits: dict, seeds) -> dict:
    """The class-prior baseline as results: every test row ranks the candidates by their
    frequency in the train + validation rows (add-one smoothed), the prompt-only query likewise;
    its top-1 is the majority class (the first candidate on equal counts), so its P@1 is the
    majority-class baseline's. Under scoring "pmi" it scores nothing (its prompt-only is itself)."""
    out = {}
    seen = pd.concat([splits[s] for s in ("train", "validation") if s in splits])
    for relation, spec in info.items():
        counts = seen.loc[seen.relation == relation, "object"].value_counts()
        prior = np.log(np.array([counts.get(c, 0) + 1.0 for c in spec["candidates"]]))
        prior -= np.logaddexp.reduce(prior)
        prior -= 1e-9 * np.arange(len(prior))  # equal counts: the first candidate wins, as the majority class
        n = int((splits["test"].relation == relation).sum())
        result = {"scores": np.tile(prior, (n, 1)), "prompt_only_by_length": prior[None],
                  "subject_tokens": np.ones(n, dtype=int), "candidate_tokens": np.ones(len(prior))}
        for seed in seeds:
            out[("prior", seed, relation)] = result
    return out


def per_relation(results: dict, info: dict, test, scoring: str = "sum") -> pd.DataFrame:
    """One row per (method, seed, relation) with every metric; `results` from probes.run_probes."""
    records = []
    for (method, seed, relation), out in results.items():
        rows = relation_rows(test, relation)
        a = row_arrays(out, scored_candidates(out, info, relation), rows, scoring)
        records.append({"method": method, "seed": seed, "relation": relation, "n": len(a["gold"]),
                        **relation_metrics(a)})
    return pd.DataFrame(records)


def relation_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table's metrics per (relation, method), mean over seeds, rounded for display."""
    return table.groupby(["relation", "method"], sort=False)[list(TABLE_METRICS)].mean().round(3)


def training_table(results: dict) -> pd.DataFrame:
    """Per tuned method: runs, mean chosen step (early stopping on validation), share of runs whose
    best step was the cap (still improving when stopped: under-trained), share that kept step 0
    (the initial prompt), mean validation P@1 at step 0 and at the chosen step."""
    records = []
    for (method, _, _), out in results.items():
        h = out.get("history") or {}
        if "chosen_step" not in h:
            continue
        val_steps, val_p1 = list(np.asarray(h["val_step"])), np.asarray(h["val_p_at_1"])
        chosen, run = int(h["chosen_step"]), int(h["steps_run"])
        records.append({"method": method, "chosen_step": chosen, "steps_run": run,
                        "at_cap": chosen == run and chosen > 0, "kept_initial": chosen == 0,
                        "val_p_at_1_start": float(val_p1[0]) if len(val_p1) else float("nan"),
                        "val_p_at_1_chosen": float(val_p1[val_steps.index(chosen)]) if chosen in val_steps
                        else float("nan")})
    if not records:
        return pd.DataFrame()
    frame = pd.DataFrame(records)
    return frame.groupby("method", sort=False).agg(runs=("chosen_step", "size"), chosen_step=("chosen_step", "mean"),
                                                   steps_run=("steps_run", "mean"), at_cap=("at_cap", "mean"),
                                                   kept_initial=("kept_initial", "mean"),
                                                   val_p_at_1_start=("val_p_at_1_start", "mean"),
                                                   val_p_at_1_chosen=("val_p_at_1_chosen", "mean")).round(3)


# Statistics of the whole predicted-object distribution (not means over subjects): resampling
# subjects with replacement duplicates some of them, which concentrates the distribution, so the
# bootstrap replicates sit above the estimate (top-1 share, KL) or below it (entropy), and the plain
# percentile interval can miss the estimate altogether. Their interval is the percentile interval
# shifted by the bootstrap estimate of that bias (mean of the replicates - estimate).
DISTRIBUTIONAL = ("top1_share", "excess_top1", "pred_entropy", "kl")


@dataclass
class Bootstrap:
    """estimates[method][metric]: the per-seed macro values over relations; replicates[method][metric]
    (n_boot,): the macro values on hierarchical resamples (seeds, then test subjects within
    relations), the same draws for every method (so differences between methods are paired)."""

    estimates: dict
    replicates: dict


def bootstrap(results: dict, info: dict, test, n_boot: int, seed: int = 0, scoring: str = "sum") -> Bootstrap:
    """Resample once (hierarchically: seeds, then subjects); `summarize_methods` and `compare` read it."""
    rng = np.random.default_rng(seed)
    arrays = {key: row_arrays(out, scored_candidates(out, info, key[2]), relation_rows(test, key[2]), scoring)
              for key, out in results.items()}
    methods = list(dict.fromkeys(k[0] for k in results))
    seeds = sorted(set(k[1] for k in results))
    relations = list(dict.fromkeys(k[2] for k in results))
    sizes = {r: len(arrays[(methods[0], seeds[0], r)]["gold"]) for r in relations}
    cache = {}

    def macro(method, s, picks, draw):
        values = []
        for r in relations:
            key = (method, s, r, draw)
            if key not in cache:
                cache[key] = relation_metrics(arrays[(method, s, r)], picks[r])
            values.append(cache[key])
        return {m: float(np.mean([v[m] for v in values])) for m in METRICS}

    full = {r: np.arange(sizes[r]) for r in relations}
    draws = [two_level_resample(rng, len(seeds), sizes) for _ in range(n_boot)]
    estimates, replicates = {}, {}
    for method in methods:
        estimates[method] = {m: [macro(method, s, full, -1)[m] for s in seeds] for m in METRICS}
        reps = []
        for d, (outer, picks) in enumerate(draws):
            per_seed = [macro(method, seeds[i], picks, d) for i in outer]
            reps.append({m: np.mean([p[m] for p in per_seed]) for m in METRICS})
        replicates[method] = {m: np.array([r[m] for r in reps]) for m in METRICS}
        cache.clear()
    return Bootstrap(estimates, replicates)


def _interval(metric: str, estimate: float, reps: np.ndarray) -> tuple[float, float]:
    """95% percentile interval of a macro statistic (or of a paired difference of two), shifted
    by the estimated bias for DISTRIBUTIONAL statistics."""
    lo, hi = np.percentile(reps, [2.5, 97.5])
    if metric in DISTRIBUTIONAL:
        bias = reps.mean() - estimate
        lo, hi = lo - bias, hi - bias
    return float(lo), float(hi)


def summarize_methods(boot: Bootstrap) -> pd.DataFrame:
    """Macro over relations, mean over seeds, per method: metric, mean, lo, hi (hierarchical
    bootstrap over seeds and test subjects), seed_std (spread of the per-seed values)."""
    records = []
    for method, by_metric in boot.estimates.items():
        for m in METRICS:
            values = by_metric[m]
            lo, hi = _interval(m, float(np.mean(values)), boot.replicates[method][m])
            records.append({"method": method, "metric": m, "mean": float(np.mean(values)), "lo": lo, "hi": hi,
                            "seed_std": float(np.std(values)), "n_seeds": len(values)})
    return pd.DataFrame(records)


def method_table(summary: pd.DataFrame, methods, with_ci: bool = True) -> pd.DataFrame:
    """One row per method (in the order of `methods`, then baselines), the TABLE_METRICS as
    "mean [lo, hi]" (or rounded means with with_ci=False)."""
    order = [m for m in methods if m in set(summary["method"])] + \
        [m for m in dict.fromkeys(summary["method"]) if m not in methods]
    part = summary[summary.metric.isin(TABLE_METRICS)]
    if not with_ci:
        return part.pivot(index="method", columns="metric", values="mean").reindex(order)[list(TABLE_METRICS)].round(3)
    cells = part.assign(cell=[format_ci(r.mean, r.lo, r.hi) for r in part.itertuples()])
    return cells.pivot(index="method", columns="metric", values="cell").reindex(order)[list(TABLE_METRICS)]


COMPARISONS = (("softprompt", "manual"), ("ptuning", "manual"), ("mecod", "manual"), ("mecod", "ptuning"),
               ("manual", "prior"))
# The family of differences the conclusion gives a verdict on (Holm-adjusted together).
VERDICTS = tuple((a, "manual", m) for a in ("softprompt", "ptuning", "mecod") for m in ("excess_top1", "p_at_1")) + \
    tuple(("mecod", "ptuning", m) for m in ("excess_top1", "kl", "mecod_entropy", "p_at_1"))


def compare(boot: Bootstrap, pairs=COMPARISONS, family=VERDICTS) -> pd.DataFrame:
    """Paired differences a - b of every metric for each (a, b) in `pairs` whose methods ran: the
    same seeds' and subjects' resamples for both, so the interval is that of the difference itself.
    Columns: a, b, metric, diff, lo, hi, p (two-sided bootstrap p-value), p_holm (Holm-adjusted
    over the rows in `family`; NaN for the rest)."""
    estimates, replicates = boot.estimates, boot.replicates
    records = []
    for a, b in pairs:
        if a not in estimates or b not in estimates:
            continue
        for m in METRICS:
            diff = float(np.mean(estimates[a][m]) - np.mean(estimates[b][m]))
            reps = replicates[a][m] - replicates[b][m]
            lo, hi = _interval(m, diff, reps)
            centred = reps - (reps.mean() - diff) if m in DISTRIBUTIONAL else reps
            records.append({"a": a, "b": b, "metric": m, "diff": diff, "lo": lo, "hi": hi,
                            "p": bootstrap_pvalue(centred) if np.ptp(reps) > 0 or diff != 0 else 1.0})
    frame = pd.DataFrame(records)
    if not len(frame):
        return frame
    in_family = np.array([(r.a, r.b, r.metric) in set(family) for r in frame.itertuples()])
    frame["p_holm"] = np.nan
    frame.loc[in_family, "p_holm"] = holm(frame.loc[in_family, "p"].to_numpy())
    return frame


def detectable_differences(comparisons: pd.DataFrame, power: float = 0.8) -> pd.DataFrame:
    """Per judged difference (`VERDICTS`): the smallest true difference this run would detect with
    probability `power` at a two-sided 5% level, (z_0.975 + z_power) times the bootstrap standard
    error read off the 95% CI ((hi - lo) / 3.92); Holm's correction makes the real threshold larger."""
    judged = comparisons.dropna(subset=["p_holm"])
    se = (judged["hi"] - judged["lo"]) / (2 * norm.ppf(0.975))
    return judged.assign(detectable=(norm.ppf(0.975) + norm.ppf(power)) * se)[["a", "b", "metric", "diff",
                                                                               "detectable"]].round(3)


def difference_table(comparisons: pd.DataFrame) -> pd.DataFrame:
    """The paired differences of `compare` as "diff [lo, hi]", one row per pair of methods."""
    part = comparisons[comparisons.metric.isin(TABLE_METRICS)]
    cells = part.assign(cell=[format_ci(r.diff, r.lo, r.hi) for r in part.itertuples()])
    return cells.pivot_table(index=["a", "b"], columns="metric", values="cell", aggfunc="first",
                             sort=False)[list(TABLE_METRICS)]


def metrics(summary, comparisons=None) -> dict:
    """The flat metrics.json mapping: every metric per method (e.g. p_at_1_mecod, excess_top1_manual),
    and the Holm-adjusted p-value of each verdict (e.g. p_holm_mecod_vs_ptuning_excess_top1)."""
    out = {f"{r.metric}_{r.method}": float(r.mean) for r in summary.itertuples()}
    if comparisons is not None and len(comparisons):
        for r in comparisons.dropna(subset=["p_holm"]).itertuples():
            out[f"p_holm_{r.a}_vs_{r.b}_{r.metric}"] = float(r.p_holm)
    return out


def _said(row, above: str, below: str, level: float = 0.05) -> str:
    """The verdict on one difference: its sign when the Holm-adjusted p-value is below `level`."""
    if np.isnan(row["p_holm"]):
        return "no verdict"
    if row["p_holm"] >= level:
        return f"not established (Holm p = {row['p_holm']:.2f})"
    return f"{above if row['diff'] > 0 else below} (Holm p = {row['p_holm']:.3f})"


def conclusion(summary, comparisons, training=None, coverage=None) -> str:
    """Markdown: are tuned prompts more biased than manual ones (relative to the gold objects), and
    does MeCoD reduce bias without losing accuracy; verdicts from the Holm-adjusted paired
    differences (`compare`), with the training status (`training_table`) and the candidate
    coverage of the test golds (`facts.candidate_coverage`)."""
    table = summary.set_index(["method", "metric"])
    diffs = comparisons.set_index(["a", "b", "metric"]) if len(comparisons) else None
    methods = list(dict.fromkeys(summary["method"]))

    def cell(method, metric):
        r = table.loc[(method, metric)]
        return format_ci(r["mean"], r["lo"], r["hi"])

    def diff(a, b, metric):
        r = diffs.loc[(a, b, metric)]
        return format_ci(r["diff"], r["lo"], r["hi"])

    lines = ["Mean [95% CI], hierarchical bootstrap (training seeds, then test subjects within relations; "
             "differences paired); a verdict needs a Holm-adjusted p < 0.05 over the "
             f"{int(comparisons['p_holm'].notna().sum()) if len(comparisons) else 0} differences judged here.", ""]
    if coverage is not None and len(coverage):
        lines.append(f"- **Candidates**: {int(coverage['covered'].sum())} of {int(coverage['test_rows'].sum())} "
                     "test golds are among the ranked candidates (chosen from train + validation frequencies); "
                     "the others count as misses for every method.")
    if training is not None and len(training):
        capped = training["at_cap"].max()
        status = ("**some prompts were still improving at the step cap: under-trained** "
                  f"(up to {capped:.0%} of a method's runs)" if capped > 0 else
                  "every run stopped early on validation before the step cap")
        steps = ", ".join(f"{m} {r.chosen_step:.1f}" for m, r in training.iterrows())
        lines.append(f"- **Training**: mean chosen step {steps}; {status}.")
    if "prior" in methods:
        lines.append(f"- **Baselines**: class prior (its top-1 is the majority class) P@1 {cell('prior', 'p_at_1')}; "
                     f"manual P@1 {cell('manual', 'p_at_1') if 'manual' in methods else 'n/a'}.")
    if "manual" in methods:
        for tuned in [m for m in ("softprompt", "ptuning", "mecod") if m in methods]:
            judged = diffs.loc[(tuned, "manual", "excess_top1")], diffs.loc[(tuned, "manual", "p_at_1")]
            lines.append(
                f"- **{tuned} vs manual**: excess top-1 share (over the gold's own) {cell(tuned, 'excess_top1')} vs "
                f"{cell('manual', 'excess_top1')}, difference {diff(tuned, 'manual', 'excess_top1')} — more biased: "
                f"{_said(judged[0], '**yes**', '**no, less**')}; KL to gold "
                f"difference {diff(tuned, 'manual', 'kl')}; P@1 {cell(tuned, 'p_at_1')} vs {cell('manual', 'p_at_1')}, "
                f"difference {diff(tuned, 'manual', 'p_at_1')} — "
                f"{_said(judged[1], 'more accurate', 'less accurate')}.")
    if "mecod" in methods and "ptuning" in methods:
        def judged(metric, above, below):
            return _said(diffs.loc[("mecod", "ptuning", metric)], above, below)

        lines.append(
            f"- **MeCoD vs P-tuning** (does MeCoD reduce bias?): excess top-1 share "
            f"{diff('mecod', 'ptuning', 'excess_top1')} — "
            f"{judged('excess_top1', '**no: more concentrated**', '**yes: less concentrated**')}; "
            f"KL to gold {diff('mecod', 'ptuning', 'kl')} — "
            f"{judged('kl', '**no: further from gold**', '**yes: closer to gold**')}; "
            f"MeCoD's metric (top-10 prompt-only entropy) {cell('mecod', 'mecod_entropy')} vs "
            f"{cell('ptuning', 'mecod_entropy')} — "
            f"{judged('mecod_entropy', 'flatter prompt-only distribution', 'sharper prompt-only distribution')}; "
            f"P@1 {diff('mecod', 'ptuning', 'p_at_1')} — {judged('p_at_1', 'higher', '**lower**')}.")
        if training is not None and "ptuning" in training.index and training.loc["ptuning", "at_cap"] > 0:
            lines.append(f"  Caveat: {training.loc['ptuning', 'at_cap']:.0%} of the P-tuning runs were still improving "
                         "at the step cap, and MeCoD continues from them: its extra steps are more training as well "
                         "as MeCoD's losses, so this comparison cannot separate the two.")
    lines.append("- A small model, a CPU step budget and few test subjects per relation: a difference without a "
                 "verdict is not a finding here, in either direction.")
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
            a = row_arrays(results[(method, seed, relation)], candidates, rows, config.scoring)
            dists[method] = distribution(a["pred"], len(candidates))
        gold = distribution(a["gold"][a["gold"] >= 0], len(candidates))
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
