"""In-context W2SG on oversight labels (Sang et al. 2024, section 5): the strong model learns in
context from demonstrations labelled by a protocol's judge.

Per student seed the pool is split into the same halves as `evaluate.student_loop`
(`w2s.split_halves`). Each test-half question gets k demonstrations drawn from the training half,
uniformly at random and the same questions for every label source of that seed and question, so
the sources differ only in the labels shown: each protocol's verdicts (P(correct) > 0.5), `gold`
(the true labels, the ceiling) and `zero-shot` (k = 0, no demonstration). Study 01's retriever
balances by the labels shown, which would pick different questions per source and has nothing to
balance for a judge that gives one verdict throughout; here it runs with no labels to balance, so
the draw is uniform. Prompts and scores are
study 01's, shared through `alignlab.lm.incontext` (`build_prompt`, `format_demo`, `retrieve_random`,
`label_scores`); a question is judged correct when log p(" Yes") - log p(" No") > 0.

ICL-PGR = (ICL with protocol labels - ICL with naive labels) / (ICL with gold - ICL with naive).
Intervals resample seeds and question ids together (a question is tested in about half of the
seeds); the paired comparison with naive labels goes through `report.paired_verdict`, its exact
test a sign test over questions (McNemar's test when there is one seed).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from alignlab.lm.incontext import build_prompt, format_demo, label_scores, retrieve_random
from alignlab.models.load import model_kind
from alignlab.stats import mcnemar_test
from alignlab.studies.oversight.config import PROTOCOLS, Config
from alignlab.studies.oversight.protocols import consultant_sides, protocol_probs
from alignlab.training.w2s import PGRUndefinedWarning, pgr, split_halves

GOLD, ZERO_SHOT = "gold", "zero-shot"
SOURCES_SHOWN = (ZERO_SHOT, *PROTOCOLS, GOLD)  # table order


def icl_model_name(config: Config) -> str:
    """`config.icl_model`, else `strong_model` if it is a causal LM, else `debater_model`; raises
    ValueError when the model picked is not a decoder."""
    if config.icl_model is not None:
        name = config.icl_model
    else:
        name = config.strong_model if model_kind(config.strong_model) == "decoder" else config.debater_model
    if model_kind(name) != "decoder":
        raise ValueError(f"in-context W2SG needs a causal LM (a decoder) to score ' Yes' / ' No'; "
                         f"'{name}' is an encoder: set icl_model to a decoder")
    return name


def demonstration_picks(n_train: int, n_test: int, k: int, seed: int) -> np.ndarray:
    """(n_test, min(k, n_train)) positions in the training half: k distinct questions per test
    question, uniformly at random (study 01's class-balanced `retrieve_random` with no labels to
    balance), shuffled; set by `seed`."""
    k = min(k, n_train)
    return retrieve_random(np.zeros(n_train, dtype=int), n_test, k, np.random.default_rng([seed, 23]))


def shown_labels(items, probs, config: Config) -> dict:
    """{(info, source): 0/1 label per pool question}: each protocol's verdicts in each setting and
    the gold labels (under every setting's name)."""
    y = np.array([it["label"] for it in items])
    sides = consultant_sides(y, config.data_seed)
    out = {}
    for info in config.info:
        for protocol, p in protocol_probs(probs, config, info, sides).items():
            out[(info, protocol)] = (np.asarray(p) > 0.5).astype(int)
        out[(info, GOLD)] = y.astype(int)
    return out


def icl_plan(items, probs, config: Config) -> tuple[list[dict], pd.DataFrame]:
    """The prompts of every seed, setting and label source: ([{seed, info, source, k, test (item
    ids of the test half), demos ((n_test, k) item ids from the training half), prompts}], per seed,
    setting and source the accuracy of the labels shown in the demonstrations)."""
    texts = [it["text"] for it in items]
    y = np.array([it["label"] for it in items])
    labels = shown_labels(items, probs, config)
    plan, label_rows = [], []
    for seed in config.seeds:
        train_idx, test_idx = split_halves(len(items), seed)
        demos = train_idx[demonstration_picks(len(train_idx), len(test_idx), config.icl_k, seed)]
        for info in config.info:
            for source in [ZERO_SHOT, *[p for p in PROTOCOLS if p in config.protocols], GOLD]:
                k = 0 if source == ZERO_SHOT else demos.shape[1]
                shown = labels[(info, GOLD if source == ZERO_SHOT else source)]
                prompts = [build_prompt(texts[t], [format_demo(texts[d], shown[d]) for d in demos[q, :k]])
                           for q, t in enumerate(test_idx)]
                plan.append({"seed": seed, "info": info, "source": source, "k": k, "test": test_idx,
                             "demos": demos[:, :k], "prompts": prompts})
                label_rows.append({"seed": seed, "info": info, "source": source, "k": k,
                                   "demo_label_acc": float((shown[demos[:, :k]] == y[demos[:, :k]]).mean())
                                   if k else float("nan")})
    return plan, pd.DataFrame(label_rows)


def icl_loop(items, probs, config: Config, scorer=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`icl_plan`'s prompts scored by `scorer(model, prompts)` (default: study 01's `label_scores`,
    cached by prompts; every distinct prompt of the run in one call). Returns (per test question:
    model, seed, info, source, k, item, label, score, correct; `icl_plan`'s label accuracies).
    Both empty when `config.icl` is off."""
    if not config.icl:
        return pd.DataFrame(), pd.DataFrame()
    model = icl_model_name(config)
    scorer = scorer or label_scores
    y = np.array([it["label"] for it in items])
    plan, label_rows = icl_plan(items, probs, config)
    unique = list(dict.fromkeys(p for entry in plan for p in entry["prompts"]))
    score_of = dict(zip(unique, np.asarray(scorer(model, unique), dtype=float)))
    rows = []
    for entry in plan:
        test, scores = entry["test"], np.array([score_of[p] for p in entry["prompts"]])
        rows.append(pd.DataFrame({"model": model, "seed": entry["seed"], "info": entry["info"],
                                  "source": entry["source"], "k": entry["k"], "item": test, "label": y[test],
                                  "score": scores, "correct": ((scores > 0).astype(int) == y[test]).astype(int)}))
    return pd.concat(rows, ignore_index=True), label_rows


def _seed_question_weights(rows: pd.DataFrame, n_boot: int, seed: int = 0):
    """(seeds, question ids, (n_boot, n_seeds) and (n_boot, n_ids) resample counts): seeds are
    resampled where there are several, question ids always."""
    seeds, ids = np.unique(rows["seed"]), np.unique(rows["item"])
    rng = np.random.default_rng([seed, 19])
    seed_counts = (rng.multinomial(len(seeds), np.full(len(seeds), 1 / len(seeds)), size=n_boot)
                   if len(seeds) > 1 else np.ones((n_boot, 1), dtype=int))
    id_counts = rng.multinomial(len(ids), np.full(len(ids), 1 / len(ids)), size=n_boot)
    return seeds, ids, seed_counts, id_counts


def _pooled_acc(g: pd.DataFrame, weights) -> tuple[float, np.ndarray]:
    """The mean of `correct` over all rows, and its replicates under the resample `weights`."""
    seeds, ids, seed_counts, id_counts = weights
    table = g.groupby(["seed", "item"])["correct"].agg(["sum", "count"])
    sums, counts = (table[c].unstack().reindex(index=seeds, columns=ids).fillna(0).to_numpy() for c in ("sum", "count"))
    num = np.einsum("bs,si,bi->b", seed_counts, sums, id_counts)
    den = np.einsum("bs,si,bi->b", seed_counts, counts, id_counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(g["correct"].mean()), np.where(den > 0, num / den, np.nan)


def _interval(replicates) -> tuple[float, float]:
    r = np.asarray(replicates, dtype=float)
    r = r[~np.isnan(r)]
    if len(r) < 2:
        return float("nan"), float("nan")
    lo, hi = np.quantile(r, [0.025, 0.975])
    return float(lo), float(hi)


def sign_test(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """The exact test of "A and B equally accurate" over questions: per question id, A's mean
    correctness over its seeds against B's; a question counts for A (B) where A's mean is higher
    (lower), and `mcnemar_test` tests those counts (McNemar's test itself with one seed)."""
    d = (a.groupby("item")["correct"].mean() - b.groupby("item")["correct"].mean()).dropna()
    return mcnemar_test((d > 0).astype(int).to_numpy(), (d < 0).astype(int).to_numpy())


def protocol_icl_pgr(source_acc: float, naive_acc: float, gold_acc: float) -> float:
    """(source - naive) / (gold - naive): NaN, never a number, when gold is not above naive."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PGRUndefinedWarning)
        return pgr(naive_acc, source_acc, gold_acc, what="ICL accuracy")


def icl_summary(rows: pd.DataFrame, label_rows: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    """Per setting and label source: the accuracy of the labels shown in the demonstrations, ICL
    accuracy on the test halves, ICL-PGR and the difference from ICL with naive labels (paired, with
    the sign test), 95% CIs resampling seeds and question ids (one resample for every source).
    ICL-PGR's interval is given where the CI of gold - naive is above 0; otherwise `pgr_note` says
    why not (undefined where gold is not above naive)."""
    if not len(rows):
        return pd.DataFrame()
    weights = _seed_question_weights(rows, n_boot)
    out = []
    for info, g in rows.groupby("info", sort=False):
        acc = {s: _pooled_acc(g[g.source == s], weights) for s in SOURCES_SHOWN if s in set(g.source)}
        naive, gold = acc.get("naive"), acc.get(GOLD)
        gap_lo = _interval(gold[1] - naive[1])[0] if naive and gold else float("nan")
        for source, (value, reps) in acc.items():
            s = g[g.source == source]
            shown = label_rows[(label_rows["info"] == info) & (label_rows["source"] == source)]
            row = {"model": s["model"].iloc[0], "info": info, "source": source, "k": int(s["k"].iloc[0]),
                   "seeds": s.seed.nunique(), "n tests": len(s),
                   "demo_label_acc": float(shown["demo_label_acc"].mean()), "icl_acc": value, **_ci("icl_acc", reps)}
            if naive and gold:
                row["pgr"] = protocol_icl_pgr(value, naive[0], gold[0])
                if np.isnan(row["pgr"]):
                    note = (f"undefined: ICL with gold labels ({gold[0]:.3f}) is not above ICL with naive "
                            f"labels ({naive[0]:.3f})")
                    row.update(pgr=float("nan"), pgr_lo=float("nan"), pgr_hi=float("nan"), pgr_note=note)
                elif not gap_lo > 0:
                    row.update(pgr_lo=float("nan"), pgr_hi=float("nan"),
                               pgr_note="not reported: the CI of gold - naive includes 0")
                else:
                    ok = (gold[1] - naive[1]) > 0
                    row.update(**_ci("pgr", (reps[ok] - naive[1][ok]) / (gold[1][ok] - naive[1][ok])), pgr_note="")
            if naive and source != "naive":
                lo, hi = _interval(reps - naive[1])
                row.update(diff=value - naive[0], lo=lo, hi=hi, **sign_test(s, g[g.source == "naive"]))
            out.append(row)
    return pd.DataFrame(out)


def _ci(name: str, replicates) -> dict:
    lo, hi = _interval(replicates)
    return {f"{name}_lo": lo, f"{name}_hi": hi}
