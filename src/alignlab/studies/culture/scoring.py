"""Scoring the prompts of study 04: each model's answer to each prompt.

- `loglik`  the two options' length-normalized log-likelihoods (mean log-probability per token)
            given the question. Order plays no role.
- `choice`  the model's next-token log-probabilities of the two labels. `aggregation.votes`
            averages the high pole's log-odds over the two orders before taking the choice, which
            removes position bias (the bias itself is reported by `aggregation.position_bias`).
- `generate` (in `generated`) the answer the model writes, parsed.

Scoring is deterministic and cached per model, items, method and the templates' text (generations
per prompt), so a warm re-run reads every table from the artifact cache.

    items = prompts.load_items("cultural-items", n_per_cell=3, seed=0)
    scores, timings = score_models(items, ["smollm2-135m"], ["loglik", "choice"], ["numbered"], batch_size=16)
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy.special import expit

from alignlab.cache import Cache
from alignlab.lm.scoring import score_labels, score_pairs
from alignlab.models.load import load_causal_lm, release
from alignlab.studies.culture.config import TEMPLATES
from alignlab.studies.culture.generated import generate_answers
from alignlab.studies.culture.prompts import ITEM_COLUMNS, build_prompts, item_records

SCORES_VERSION = "1"  # bump when prompts or scoring change: new cache keys


def score_prompts(model, tokenizer, prompts, method: str, batch_size: int = 16, progress: bool = False):
    """(logp_first, logp_second) for every prompt: one batched scoring call for the whole table.
    `loglik`: length-normalized log-likelihood of each option; `choice`: label log-probability."""
    if len(prompts) == 0:
        return np.zeros(0), np.zeros(0)
    if method == "loglik":
        pairs = [(c, x) for c, a, b in zip(prompts["context"], prompts["first"], prompts["second"]) for x in (a, b)]
        means = score_pairs(model, tokenizer, pairs, batch_size=batch_size, progress=progress).mean
        return means[0::2], means[1::2]
    labels = sorted(set(zip(prompts["first"], prompts["second"])))
    out_first, out_second = np.zeros(len(prompts)), np.zeros(len(prompts))
    for pair in labels:  # one call per label pair, i.e. per template
        rows = np.flatnonzero((prompts["first"] == pair[0]).to_numpy() & (prompts["second"] == pair[1]).to_numpy())
        logp = score_labels(model, tokenizer, prompts["context"].iloc[rows].tolist(), list(pair),
                            batch_size=batch_size, progress=progress)
        out_first[rows], out_second[rows] = logp[:, 0], logp[:, 1]
    return out_first, out_second


def orientation(prompts, logp_first, logp_second) -> pd.DataFrame:
    """Add p_first (probability of the first-listed continuation, the two renormalized),
    p_high (probability of the high-pole option: p_first in the original order, 1 - p_first
    when swapped), chose_first and chose_high."""
    logp_first, logp_second = np.asarray(logp_first, float), np.asarray(logp_second, float)
    p_first = expit(logp_first - logp_second)  # softmax over the two
    swapped = (prompts["order"] == "swapped").to_numpy()
    p_high = np.where(swapped, 1.0 - p_first, p_first)
    return prompts.drop(columns=["context"]).assign(
        logp_first=logp_first, logp_second=logp_second, p_first=p_first, p_high=p_high,
        chose_first=p_first > 0.5, chose_high=p_high > 0.5)


def score_model(name: str, items, method: str, templates=(), batch_size: int = 16, use_cache: bool = True,
                progress: bool = False) -> pd.DataFrame:
    """Score every item under one model and method: one row per item x template x order, with
    model and method columns. Cached by model, items, method and the templates' text."""
    items = pd.DataFrame(item_records(items))[ITEM_COLUMNS]
    templates = list(templates) if method == "choice" else []

    def compute():
        model, tokenizer = load_causal_lm(name)
        prompts = build_prompts(items, method, templates, tokenizer)
        first, second = score_prompts(model, tokenizer, prompts, method, batch_size, progress)
        return orientation(prompts, first, second)

    if not use_cache:
        table = compute()
    else:
        table = Cache().memo("culture_scores", SCORES_VERSION, compute, model=name, items=items, method=method,
                             templates={t: list(TEMPLATES[t][:2]) + list(TEMPLATES[t][2]) for t in templates})
    return table.assign(model=name, method=method)


def score_models(items, models, methods, templates, batch_size: int, generate_samples: int = 1,
                 generate_temperature: float = 0.0, max_new_tokens: int = 8):
    """Every model under every method, in that order: (scores, timings). `scores` is one table
    (loglik and choice rows from `score_model`, generate rows from `generated.generate_answers`);
    `timings` has model, method, n_prompts, seconds and seconds_per_item (wall time of the call:
    a cold cost on a first run, a cache read on a warm one). Each model is freed after its last
    method."""
    tables, timings = [], []
    for model in models:
        for method in methods:
            start = time.perf_counter()
            if method == "generate":
                table = generate_answers(model, items, templates, generate_samples, generate_temperature,
                                         max_new_tokens, batch_size=batch_size)
            else:
                table = score_model(model, items, method, templates, batch_size=batch_size)
            seconds = time.perf_counter() - start
            timings.append({"model": model, "method": method, "n_prompts": len(table), "seconds": seconds,
                            "seconds_per_item": seconds / max(len(items), 1)})
            tables.append(table)
        release(model)
    return pd.concat(tables, ignore_index=True), pd.DataFrame(timings)
