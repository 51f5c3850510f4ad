"""Weak-to-strong training on toxicity: generators learn to continue RealToxicityPrompts' challenging
prompts non-toxically from best-of-k samples, and a strong generator learns from a weak one.

Generators are `toxicity_models`, causal LMs (an encoder such as minilm-l6 cannot continue a prompt),
separate from the classification tasks' `models` so that a profile can add a generator without
adding its features to the classifiers' cost; every (weaker, stronger) pair of them, in the ladder's
order, is one weak -> strong pair.

Prompts (`toxicity_prompts`): `toxicity_prompts_per_attribute` drawn from each chosen challenging
subset; of each subset's draw the first `toxicity_test_prompts_per_attribute` are the test prompts,
the same in every seed (so conditions and seeds are paired on them); the rest are cut, per seed,
into two disjoint halves A and B (`training_halves`, balanced within each subset).

Per seed and pair (`run_detox_seed`):
- weak: the weak base model samples k continuations of each prompt of A; its least toxic one among
  those that pass the fluency guard (`best_of_k`) is its training target; it is fine-tuned on them;
- weak-to-strong: the fine-tuned weak model continues the prompts of B, and its continuations train
  the strong model. With `toxicity_student_data = "as-is"` (the study's specification: "its
  continuations on a disjoint half of the prompts train the strong student") each prompt's first
  continuation that passes the fluency guard is taken, the toxicity scorer is not consulted on B;
  with "best-of-k" its least toxic fluent one;
- ceiling: the strong base model's own best-of-k continuations of B train it.
Prompts with no continuation that passes the guard are left out of training (a degenerate or empty
continuation is never a target). All three, and the two base models (seed-independent references),
sample k continuations of each test prompt, scored as in `toxicity` (raw and guarded).

Fine-tuning: `alignlab.training.causal.finetune_causal_lm` (LoRA of rank `toxicity_lora_r`, or all
weights at 0) on a private copy of the shared model. Deviations from WTS: LoRA on small models for a
few steps instead of full fine-tuning of GPT-2 and Pythia models; the scorer is alt-profanity-check,
not Perspective. Sampling follows WTS (temperature 0.7, nucleus `toxicity_top_p` 0.95 by default).

Cache: each trained adapter (kind "detox-adapter", keyed by model, training pairs and settings) and
each seed's continuations (kind "detox-seed") are cached; scores and fluency are computed outside
(the fluency of continuations is cached by `toxicity.fluency_of`), so a warm run loads no generator.
"""

from __future__ import annotations

import copy
from dataclasses import asdict

import numpy as np
import pandas as pd

from alignlab.cache import Cache
from alignlab.lm.generation import generate_with
from alignlab.models.load import load_causal_lm
from alignlab.studies.beyond_accuracy import toxicity
from alignlab.studies.beyond_accuracy.tasks import model_pairs
from alignlab.training.causal import (
    CausalFitConfig,
    adapter_weights,
    finetune_causal_lm,
    load_adapter_weights,
    merged,
)

DETOX_VERSION = "1"
ADAPTER_VERSION = "1"
ROLES = ("weak", "w2s", "ceiling")  # the trained generators of one seed
BASES = ("weak_base", "strong_base")  # the untuned models, on the same test prompts
CONDITIONS = ("weak_base", "weak", "w2s", "ceiling", "strong_base")


def toxicity_prompts(config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(test prompts, training pool): `toxicity_prompts_per_attribute` prompts drawn from each subset,
    the first `toxicity_test_prompts_per_attribute` of each subset's draw are the test prompts."""
    prompts = toxicity.prompt_sample(config.toxicity_attributes, config.toxicity_prompts_per_attribute)
    rank = prompts.groupby("attribute", sort=False).cumcount()
    test = prompts[rank < config.toxicity_test_prompts_per_attribute].reset_index(drop=True)
    pool = prompts[rank >= config.toxicity_test_prompts_per_attribute].reset_index(drop=True)
    return test, pool


def training_halves(pool: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint halves (A, B) of the training pool for `seed`: prompts shuffled within each
    subset, then dealt alternately, so both halves differ in size by at most one, overall and
    within each subset."""
    rng = np.random.default_rng([seed, 5])
    order = []
    for _, group in pool.groupby("attribute", sort=True):
        order += list(rng.permutation(group.index.to_numpy()))
    first, second = order[0::2], order[1::2]
    return pool.loc[sorted(first)].reset_index(drop=True), pool.loc[sorted(second)].reset_index(drop=True)


def generator_pairs(ordered_models: list) -> list[tuple[str, str]]:
    """(weak, strong) pairs of the causal LMs among the ordered generators, weaker first."""
    return model_pairs(toxicity.causal_models(ordered_models))


def _pick(table: pd.DataFrame, max_perplexity: float, min_tokens: int, by_toxicity: bool) -> pd.DataFrame:
    ok = toxicity.fluent(table.n_tokens, table.perplexity, max_perplexity, min_tokens)
    kept = table[ok & table.continuation.str.strip().astype(bool)]
    keys = ["toxicity", "sample"] if by_toxicity else ["sample"]
    chosen = kept.sort_values(["prompt_id", *keys], kind="stable").groupby("prompt_id", sort=True).head(1)
    return chosen[["prompt_id", "prompt", "continuation", "toxicity", "sample"]].reset_index(drop=True)


def best_of_k(table: pd.DataFrame, max_perplexity: float, min_tokens: int) -> pd.DataFrame:
    """Per prompt, its least toxic continuation among those that pass the fluency guard (the lowest
    sample index among ties); prompts with none are left out. `table`: `toxicity.sample_table` rows."""
    return _pick(table, max_perplexity, min_tokens, by_toxicity=True)


def first_fluent(table: pd.DataFrame, max_perplexity: float, min_tokens: int) -> pd.DataFrame:
    """Per prompt, its first continuation (by sample index) that passes the fluency guard, toxicity
    not consulted; prompts with none are left out."""
    return _pick(table, max_perplexity, min_tokens, by_toxicity=False)


def fit_settings(config, seed: int) -> CausalFitConfig:
    """The fine-tuning settings of the study's parameters."""
    return CausalFitConfig(epochs=config.toxicity_epochs, lr=config.toxicity_lr, batch_size=config.toxicity_batch_size,
                           lora_r=config.toxicity_lora_r, seed=seed)


def fine_tuned(name: str, prompts: list, targets: list, settings: CausalFitConfig):
    """(model, tokenizer, training losses per epoch): a private copy of `name` fine-tuned on the
    pairs; the trained weights are cached, so a second call only puts them back."""
    shared, tokenizer = load_causal_lm(name)
    model = copy.deepcopy(shared)  # the shared copy is never changed

    key = dict(model=name, prompts=prompts, targets=targets, settings=asdict(settings))
    cache = Cache()
    found, value = cache.lookup("detox-adapter", ADAPTER_VERSION, **key)
    if found:
        return load_adapter_weights(model, value["weights"], settings.lora_r), tokenizer, list(value["losses"])
    trained, history = finetune_causal_lm(model, tokenizer, prompts, targets, settings)
    value = cache.memo("detox-adapter", ADAPTER_VERSION,
                       lambda: {"weights": adapter_weights(trained), "losses": [float(x) for x in history]}, **key)
    return trained, tokenizer, list(value["losses"])


def sample_with(model, tokenizer, prompts: list, k: int, config, seed: int) -> list[list[str]]:
    """k sampled continuations of each prompt by a loaded (fine-tuned) model: (prompts, k) texts."""
    samples = [generate_with(model, tokenizer, prompts, max_new_tokens=config.toxicity_max_new_tokens,
                             temperature=config.toxicity_temperature, seed=1000 * (seed + 1) + s, chat=False,
                             share_prefix=False, top_p=config.toxicity_top_p) for s in range(k)]
    return [list(per_prompt) for per_prompt in zip(*samples)]


def _scored(label: str, prompts: pd.DataFrame, texts, scorer, reference: str) -> pd.DataFrame:
    return toxicity.sample_table(label, prompts, texts, scorer, reference)


def _base_table(name: str, prompts: pd.DataFrame, config, scorer, reference: str) -> pd.DataFrame:
    texts = toxicity.continuations(name, list(prompts.text), config.toxicity_k, config.toxicity_max_new_tokens,
                                   config.toxicity_temperature, top_p=config.toxicity_top_p)
    return _scored(name, prompts, texts, scorer, reference)


def run_detox_seed(weak: str, strong: str, halves: tuple, test: pd.DataFrame, config, scorer, reference: str,
                   seed: int) -> dict:
    """One seed of one pair (see the module doc): {"continuations": {role: (test prompts, k) texts},
    "training": {role: {"prompts", "targets", "losses"}}}."""
    first, second = halves
    guard = (config.fluency_max_perplexity, config.fluency_min_tokens)
    settings = fit_settings(config, seed)
    k, out, training = config.toxicity_k, {}, {}

    def fit_and_sample(name, role, data, prompt_sets):
        prompts, targets = list(data.prompt), list(data.continuation)
        if not prompts:
            raise ValueError(f"no {role} training data: no continuation of {name} passed the fluency guard; "
                             f"raise fluency_max_perplexity or toxicity_k")
        model, tokenizer, losses = fine_tuned(name, prompts, targets, settings)
        training[role] = {"prompts": prompts, "targets": targets, "losses": losses}
        model = merged(model)  # adapters folded into the private copy's weights: faster sampling
        return [sample_with(model, tokenizer, list(p.text), k, config, seed) for p in prompt_sets]

    weak_data = best_of_k(_base_table(weak, first, config, scorer, reference), *guard)
    on_second, out["weak"] = fit_and_sample(weak, "weak", weak_data, [second, test])
    taught = _scored("weak", second, on_second, scorer, reference)
    student_data = (best_of_k if config.toxicity_student_data == "best-of-k" else first_fluent)(taught, *guard)
    (out["w2s"],) = fit_and_sample(strong, "w2s", student_data, [test])
    ceiling_data = best_of_k(_base_table(strong, second, config, scorer, reference), *guard)
    (out["ceiling"],) = fit_and_sample(strong, "ceiling", ceiling_data, [test])
    return {"continuations": out, "training": training}


def _seed_key(config, weak, strong, reference, halves, test, seed) -> dict:
    return dict(weak=weak, strong=strong, reference=reference, seed=seed,
                halves=[list(h.text) for h in halves], test=list(test.text),
                settings=asdict(fit_settings(config, seed)), k=config.toxicity_k,
                max_new_tokens=config.toxicity_max_new_tokens, temperature=config.toxicity_temperature,
                **({"top_p": config.toxicity_top_p} if config.toxicity_top_p < 1 else {}),
                guard=[config.fluency_max_perplexity, config.fluency_min_tokens],
                student_data=config.toxicity_student_data)


def run_detox(config, scorer, test: pd.DataFrame, pool: pd.DataFrame, ordered_models: list,
              base_samples: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every causal pair and seed: (test samples, training summary).

    Test samples: one row per (pair, seed, condition, test prompt, sample) with toxicity, tokens and
    perplexity under the reference (the strongest causal model); the base models' rows (from
    `base_samples`, `toxicity.run_toxicity`'s table on the same test prompts, else generated here)
    are repeated in every seed, so each seed holds all five conditions. Training summary: one row
    per (pair, seed, role) with the number of training pairs, the targets' mean toxicity and the
    first and last epoch's loss. Empty tables when toxicity is not a task or fewer than two causal
    models are listed."""
    pairs = generator_pairs(ordered_models)
    if "toxicity" not in config.tasks or not pairs:
        return pd.DataFrame(), pd.DataFrame()
    reference = toxicity.causal_models(ordered_models)[-1]
    cache = Cache()
    base = {}
    for name in dict.fromkeys(m for pair in pairs for m in pair):
        have = (base_samples is not None and len(base_samples) and name in set(base_samples.model)
                and (base_samples.reference == reference).all())  # perplexities under the same reference
        base[name] = (base_samples[base_samples.model == name].drop(columns="reference", errors="ignore")
                      if have else _base_table(name, test, config, scorer, reference))
    rows, train_rows = [], []
    for weak, strong in pairs:
        for seed in range(config.toxicity_n_seeds):
            halves = training_halves(pool, seed)
            result = cache.memo("detox-seed", DETOX_VERSION,
                                lambda weak=weak, strong=strong, halves=halves, seed=seed: run_detox_seed(
                                    weak, strong, halves, test, config, scorer, reference, seed),
                                **_seed_key(config, weak, strong, reference, halves, test, seed))
            tables = [base[weak].assign(model="weak_base"), base[strong].assign(model="strong_base")]
            tables += [_scored(role, test, result["continuations"][role], scorer, reference) for role in ROLES]
            rows.append(pd.concat(tables, ignore_index=True).assign(weak=weak, strong=strong, seed=seed))
            for role, data in result["training"].items():
                train_rows.append({"weak": weak, "strong": strong, "seed": seed, "role": role,
                                   "pairs": len(data["prompts"]),
                                   "target_toxicity": float(np.mean(scorer(data["targets"]))),
                                   "first_epoch_loss": data["losses"][0], "last_epoch_loss": data["losses"][-1]})
    samples = pd.concat(rows, ignore_index=True).rename(columns={"model": "condition"})
    return samples, pd.DataFrame(train_rows)


def condition_rows(samples: pd.DataFrame, config) -> pd.DataFrame:
    """Per (pair, seed, condition): `toxicity.summarize_models`'s metrics on the test prompts."""
    if samples is None or samples.empty:
        return pd.DataFrame()
    parts = []
    for (weak, strong, seed), group in samples.groupby(["weak", "strong", "seed"], sort=False):
        summary = toxicity.summarize_models(group.rename(columns={"condition": "model"}), config.toxicity_threshold,
                                            config.fluency_max_perplexity, config.fluency_min_tokens)
        parts.append(summary.rename(columns={"model": "condition"}).assign(weak=weak, strong=strong, seed=seed))
    return pd.concat(parts, ignore_index=True)


def per_prompt_guarded_max(samples: pd.DataFrame, config) -> pd.DataFrame:
    """Guarded maximum toxicity over the k samples, averaged over seeds: one row per (pair, test
    prompt), one column per condition (the unit of the paired bootstraps over prompts)."""
    if samples is None or samples.empty:
        return pd.DataFrame()
    ok = toxicity.fluent(samples.n_tokens, samples.perplexity, config.fluency_max_perplexity, config.fluency_min_tokens)
    df = samples.assign(g=toxicity.guarded(samples.toxicity, ok))
    per_seed = df.groupby(["weak", "strong", "seed", "prompt_id", "condition"], sort=False).g.max()
    return per_seed.groupby(["weak", "strong", "prompt_id", "condition"], sort=False).mean().unstack("condition")
