"""Training and scoring the probes of study 03, cached: one per (method, seed, relation).

A relation (e.g. "currency") has a template ("The official currency of [X] is the [Y].") and a set
of candidate objects. A probe turns a subject into a query and ranks every candidate object; the
frozen language model does the ranking, only the prompt's parameters train. Four probes (METHODS):
`manual` (the template's own words, LAMA), `softprompt` (OptiPrompt), `ptuning` (P-tuning) and
`mecod` (P-tuning with MeCoD's Object Equalization and Biased Object Obstruction losses).

The study's modules, top to bottom:
- config   parameters and their checks (`Config`), the allowed values.
- facts    subjects and candidate objects per relation (`load_facts`).
- queries  templates to token-id queries, scored by the frozen LM (`QueryBuilder`, `Scorer`), and
           the subject-hidden prompt-only query.
- prompts  what trains: the prompt modules (`make_prompt`, `Gate`) and the losses (`task_loss`,
           `oe_loss`, `boo_loss`, `mecod_losses`).
- probes   (this module) the training loop (`train_probe`) and the cached runs (`run_relation`,
           `run_probes`).
- report   accuracy and bias metrics, bootstrap intervals, figures, the conclusion.

Training: a cross-entropy over candidates. Candidate sets can be large (currency: 151), so each
step scores a sample shared by the batch: the batch's gold objects, the objects the frozen manual
prompt-only query favours most, the most frequent training objects, then random others, up to
`n_candidates`. Evaluation ranks the relation's whole candidate set (capped by `max_candidates`,
the same for every method).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForMaskedLM, AutoTokenizer

from alignlab.cache import Cache
from alignlab.models.load import load_causal_lm, pick_device, release
from alignlab.studies.probing.config import Config
from alignlab.studies.probing.facts import relation_rows
from alignlab.studies.probing.prompts import ENCODER_HIDDEN, RANDOM_SLOTS, make_prompt, mecod_losses, task_loss
from alignlab.studies.probing.queries import QueryBuilder, Scorer, frozen, is_masked_lm, manual_query, subject_text

VERSION = "1"  # bump when queries, scoring or training change: new cache keys


# ---------------------------------------------------------------------------------------------
# Training one probe

def sample_candidates(rng, n_total: int, golds, priority, k: int) -> list[int]:
    """A shared candidate sample for one step: the golds, then `priority` (biased / frequent
    objects, in order), then random others, up to k (all candidates if there are <= k)."""
    if n_total <= k:
        return list(range(n_total))
    chosen = list(dict.fromkeys(int(g) for g in golds))
    for i in priority:
        if len(chosen) >= k:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    rest = [i for i in rng.permutation(n_total) if i not in set(chosen)]
    return chosen + [int(i) for i in rest[:max(0, k - len(chosen))]]


def train_probe(model, tokenizer, method: str, relation: str, template: str, candidates: list[str],
                train_rows: list[dict], config: Config, seed: int = 0, priority=None, log=None):
    """Train one relation's prompt (softprompt, ptuning or mecod) with the settings of `config`
    (steps, batch_size, n_candidates, lr, a1, a2, prompt_init); returns (module, history).
    `priority`: candidate indices to include in every step's sample (e.g. the manual prompt-only
    query's favourites); history: one dict of losses per step."""
    if not train_rows:
        raise ValueError(f"no training rows for relation {relation!r}")
    scorer = Scorer(model, tokenizer, candidates)
    module = make_prompt(method, model.get_input_embeddings(), tokenizer, template, config.prompt_init, seed)
    builder = QueryBuilder(tokenizer, template, scorer.masked, module.slots)
    index = {c: i for i, c in enumerate(scorer.candidates)}
    rows = [r for r in train_rows if r["object"] in index]
    if not rows:
        raise ValueError(f"no training row of {relation!r} has its object among the candidates")
    queries = [builder.query(subject_text(r)) for r in rows]
    gold = np.array([index[r["object"]] for r in rows])
    valid = [[index[o] for o in r.get("valid_objects", [r["object"]]) if o in index] for r in rows]
    counts = np.bincount(gold, minlength=len(scorer.candidates))
    frequent = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    priority = list(priority or [])[: config.n_candidates // 3] + frequent[: config.n_candidates // 3]
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr)
    history = []
    with frozen(model):
        module.train()
        for step in range(config.steps):
            batch = rng.choice(len(rows), size=min(config.batch_size, len(rows)), replace=False)
            k = len(scorer.candidates) if scorer.masked else config.n_candidates
            subset = sample_candidates(rng, len(scorer.candidates), gold[batch], priority, k)
            position = {c: j for j, c in enumerate(subset)}
            target = torch.tensor([position[int(g)] for g in gold[batch]])
            prompt = module()
            logprobs = scorer([queries[i] for i in batch], prompt, None if scorer.masked else subset)
            if method == "mecod":
                prompt_only = scorer([builder.prompt_only()], prompt, None if scorer.masked else subset)[0]
                other_valid = torch.zeros_like(logprobs, dtype=torch.bool)
                for row, i in enumerate(batch):
                    for v in valid[i]:
                        if v in position and v != gold[i]:
                            other_valid[row, position[v]] = True
                loss, parts = mecod_losses(logprobs, target, prompt_only, module.gate, config.a1, config.a2,
                                           other_valid)
            else:
                loss, parts = task_loss(logprobs, target), {}
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.append({"step": step, "loss": float(loss.detach()),
                            **{k: float(v.detach()) for k, v in parts.items()}})
            if log:
                log(relation, method, history[-1])
    module.eval()
    return module, history


# ---------------------------------------------------------------------------------------------
# The study: train (cached), score the test set (cached)

def training_key(config: Config) -> dict:
    """The training settings in a trained probe's cache key: the same names, values and order as
    the settings object of earlier versions, so their cached probes stay valid."""
    return {"steps": config.steps, "batch_size": config.batch_size, "n_candidates": config.n_candidates,
            "lr": config.lr, "a1": config.a1, "a2": config.a2, "prompt_init": config.prompt_init,
            "n_slots": RANDOM_SLOTS, "hidden": ENCODER_HIDDEN}


def run_relation(config: Config, method: str, seed: int, relation: str, info: dict, train, test,
                 model=None, tokenizer=None):
    """{"scores": (n_test, C) log-probs, "prompt_only": (C,) log-probs, "loss": per-step losses,
    "candidates"} for one probe of `config.model` on one relation; trained prompts and scores are
    cached by model, data and settings. `model`, `tokenizer`: an already loaded model to use."""
    template, candidates = info[relation]["template"], info[relation]["candidates"]
    train_rows = relation_rows(train, relation)
    test_rows = relation_rows(test, relation)
    key = dict(model=config.model, method=method, relation=relation, template=template, candidates=candidates,
               train=[(r["subject"], r["object"]) for r in train_rows] if method != "manual" else [],
               test=[(r["subject"], r["query"]) for r in test_rows],
               config=training_key(config) if method != "manual" else {}, seed=seed if method != "manual" else 0,
               a=(config.a1, config.a2) if method == "mecod" else None)

    def compute():
        lm, tok = (model, tokenizer) if model is not None else load_model(config.model)
        scorer = Scorer(lm, tok, None if is_masked_lm(lm) else candidates)
        if method == "manual":
            builder, prompt, history = QueryBuilder(tok, template, scorer.masked), None, []
            queries = [manual_query(tok, r, scorer.masked) for r in test_rows]
        else:
            # the manual prompt-only favourites join every training step's candidate sample
            manual_only = scorer.score_all([QueryBuilder(tok, template, scorer.masked).prompt_only()])[0]
            priority = list(np.argsort(-np.asarray(manual_only)))
            module, history = train_probe(lm, tok, method, relation, template, scorer.candidates, train_rows,
                                          config, seed, priority)
            builder = QueryBuilder(tok, template, scorer.masked, module.slots)
            with torch.no_grad():
                prompt = module().detach()
            queries = [builder.query(subject_text(r)) for r in test_rows]
        scores = scorer.score_all(queries, prompt) if queries else np.zeros((0, len(scorer.candidates)))
        prompt_only = scorer.score_all([builder.prompt_only()], prompt)[0]
        return {"scores": scores, "prompt_only": prompt_only,
                "loss": np.array([h["loss"] for h in history], dtype=float),
                "candidates": np.array(scorer.candidates if scorer.masked else [], dtype=str)}

    return Cache().memo("probing-relation", VERSION, compute, **key)


def load_model(name: str):
    """(model, tokenizer): a causal LM from the zoo, or a masked LM (hub id such as bert-base-cased)."""
    if "bert" in name.lower():  # bert-base-cased, roberta-large, ...: hub masked LMs (LAMA)
        return load_masked_lm(name)
    return load_causal_lm(name)


@functools.lru_cache(maxsize=2)
def load_masked_lm(name: str):
    """(model, tokenizer) of a hub masked LM, in eval mode on the default device."""
    return AutoModelForMaskedLM.from_pretrained(name).to(pick_device()).eval(), AutoTokenizer.from_pretrained(name)


def run_probes(config: Config, info: dict, splits: dict, progress: bool = True) -> dict:
    """{(method, seed, relation): run_relation(...)} for every combination of the config's
    methods, seeds and relations (manual once, as every seed, since it does not train)."""
    jobs = [(m, s, r) for m in config.methods for s in config.seeds for r in config.relations]
    out, manual = {}, {}
    for method, seed, relation in tqdm(jobs, desc="probes", disable=not progress):
        if method == "manual" and relation in manual:
            out[(method, seed, relation)] = manual[relation]
            continue
        result = run_relation(config, method, seed, relation, info, splits["train"], splits["test"])
        out[(method, seed, relation)] = result
        if method == "manual":
            manual[relation] = result
    release(config.model)
    return out
