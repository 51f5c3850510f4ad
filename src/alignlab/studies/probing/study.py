"""Factual probing with manual and tuned prompts, and MeCoD against object bias (study 03).

A relation (e.g. "currency") has a template ("The official currency of [X] is the [Y].") and a set
of candidate objects. A probe turns a subject into a query and ranks every candidate object; the
frozen language model does the ranking, only the prompt's parameters train. Four probes (METHODS):
`manual` (the template's own words, LAMA), `softprompt` (OptiPrompt), `ptuning` (P-tuning) and
`mecod` (P-tuning with MeCoD's Object Equalization and Biased Object Obstruction losses).

Top to bottom:
- alignlab.studies.probing.queries  templates to token-id queries, scored by the frozen LM (`QueryBuilder`,
                            `Scorer`), and the subject-hidden prompt-only query.
- alignlab.studies.probing.prompts  what trains: the prompt modules (`make_prompt`, `Gate`) and the losses
                            (`task_loss`, `oe_loss`, `boo_loss`, `mecod_losses`), with the methods.
- this module               settings and data (`TrainConfig`, `load_facts`), the training loop
                            (`train_probe`) and the study (`run_relation`, `run_study`), cached.

Training: a cross-entropy over candidates. Candidate sets can be large (currency: 151), so each
step scores a sample shared by the batch: the batch's gold objects, the objects the frozen manual
prompt-only query favours most, the most frequent training objects, then random others, up to
`n_candidates`. Evaluation ranks the relation's whole candidate set (`load_facts(max_candidates=...)`
can cap it, the same for every method). Metrics: alignlab.studies.probing.report.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from alignlab.studies.probing.prompts import (  # noqa: F401  (re-exported: probing.X)
    TUNED, Gate, boo_loss, make_prompt, mecod_losses, oe_loss, task_loss,
)
from alignlab.studies.probing.queries import (  # noqa: F401  (re-exported: probing.X)
    QueryBuilder, Scorer, frozen, is_masked_lm, manual_query, placeholder_id, subject_text,
)

_manual_query = manual_query  # the former name, kept for callers of probing._manual_query

METHODS = ("manual", "softprompt", "ptuning", "mecod")
PROMPT_INITS = ("manual", "random")
QUICK_RELATIONS = ("region", "subregion", "currency", "language", "element_period", "element_group")
VERSION = "1"  # bump when queries, scoring or training change: new cache keys


# ---------------------------------------------------------------------------------------------
# Settings and data

@dataclass
class TrainConfig:
    steps: int = 12             # optimizer steps per relation
    batch_size: int = 8         # subjects per step
    n_candidates: int = 24      # candidates scored per step (gold + biased + frequent + random)
    lr: float = 3e-3
    a1: float = 0.2             # weight of Object Equalization (mecod)
    a2: float = 0.1             # weight of Biased Object Obstruction (mecod)
    prompt_init: str = "manual"  # manual: slots start from the template's words; random: n_slots each side
    n_slots: int = 3            # slots before and after the subject when prompt_init is random
    hidden: int = 128           # prompt encoder width (ptuning, mecod)

    def check(self) -> None:
        for name in ("steps", "batch_size", "n_candidates", "n_slots", "hidden"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1; got {value!r}")
        if self.n_candidates < 2:
            raise ValueError(f"n_candidates must be >= 2; got {self.n_candidates}")
        for name in ("a1", "a2"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be a number >= 0 (paper default a1=0.2, a2=0.1); got {value!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a number > 0; got {self.lr!r}")
        if self.prompt_init not in PROMPT_INITS:
            raise ValueError(f"prompt_init must be one of: {', '.join(PROMPT_INITS)}; got {self.prompt_init!r}")


def check_settings(dataset: str, relations, methods, config: TrainConfig, info: dict | None = None) -> None:
    """Domain checks before any model loads; a ValueError naming the parameter and what is allowed."""
    if dataset not in ("facts-triples", "lama-trex"):
        raise ValueError(f"dataset must be one of: facts-triples, lama-trex; got {dataset!r}")
    if not methods or any(m not in METHODS for m in methods) or len(set(methods)) != len(methods):
        raise ValueError(f"methods must be distinct values from: {', '.join(METHODS)}; got {methods!r}")
    if info is not None:
        check_relations(relations, info)
    config.check()


def check_relations(relations, info: dict) -> None:
    if not relations or len(set(relations)) != len(relations):
        raise ValueError(f"relations must be a non-empty list without repeats; got {relations!r}")
    unknown = [r for r in relations if r not in info]
    if unknown:
        raise ValueError(f"unknown relation(s) {unknown}; known relations: {', '.join(info)}")


def load_facts(dataset: str = "facts-triples", relations=QUICK_RELATIONS, n_train: int = 48, n_test: int = 24,
               seed: int = 0, folder=None, max_candidates: int = 0):
    """(splits, info): splits = {"train": DataFrame, "test": DataFrame} restricted to `relations`,
    at most n_train / n_test subjects per relation (drawn with `seed`); info = {relation:
    {"template", "candidates"}} with candidates = every object of the relation.

    `max_candidates` > 0 caps a relation's candidate set (scoring cost grows with it: currency has
    151 objects): every gold object of the drawn test subjects stays, then the objects most
    frequent in the relation's full data fill the set up to the cap; training rows whose object is
    cut are dropped. The same set serves every method, so comparisons stay fair; the task gets
    easier than ranking all objects (fewer distractors), and entropies are divided by log of the
    smaller set."""
    import pandas as pd

    if max_candidates < 0:
        raise ValueError(f"max_candidates must be >= 0 (0: every object of the relation); got {max_candidates}")
    if dataset == "facts-triples":
        from alignlab.data import facts_triples
        info = facts_triples.relation_info()
        frames = {s: pd.DataFrame(list(facts_triples.rows()[s])) for s in ("train", "test")}
    elif dataset == "lama-trex":
        from alignlab.data import lama
        rows = lama.read_rows(folder)
        info = lama.relation_info(rows)
        frames = {s: pd.DataFrame(rows[s]) for s in ("train", "test")}
    else:
        raise ValueError(f"dataset must be one of: facts-triples, lama-trex; got {dataset!r}")
    check_relations(relations, info)
    out = {}
    for split, frame, cap in (("train", frames["train"], n_train), ("test", frames["test"], n_test)):
        parts = []
        for relation in relations:
            part = frame[frame["relation"] == relation]
            if len(part) > cap:
                part = part.sample(n=cap, random_state=seed)
            parts.append(part)
        out[split] = pd.concat(parts, ignore_index=True)
    info = {r: info[r] for r in relations}
    if max_candidates:
        info, out = cap_candidates(info, out, frames, max_candidates)
    return out, info


def cap_candidates(info: dict, splits: dict, full: dict, max_candidates: int):
    """(info, splits) with each relation's candidates cut to `max_candidates`: the test golds first,
    then the most frequent objects of the relation in `full` (all rows), in candidate order on ties."""
    import pandas as pd

    capped = {}
    for relation, spec in info.items():
        keep = set(splits["test"].loc[splits["test"]["relation"] == relation, "object"])  # every test gold
        counts = pd.concat([f[f["relation"] == relation] for f in full.values()])["object"].value_counts()
        for c in sorted(spec["candidates"], key=lambda c: -counts.get(c, 0)):
            if len(keep) >= max_candidates:
                break
            keep.add(c)
        capped[relation] = {**spec, "candidates": [c for c in spec["candidates"] if c in keep]}
    train = splits["train"]
    kept = {relation: set(spec["candidates"]) for relation, spec in capped.items()}
    allowed = [obj in kept[relation] for relation, obj in zip(train["relation"], train["object"])]
    return capped, {**splits, "train": train[allowed].reset_index(drop=True)}


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
                train_rows: list[dict], config: TrainConfig, seed: int = 0, priority=None, log=None):
    """Train one relation's prompt (softprompt, ptuning or mecod); returns (module, history).
    `priority`: candidate indices to include in every step's sample (e.g. the manual prompt-only
    query's favourites); history: one dict of losses per step."""
    import torch

    config.check()
    if not train_rows:
        raise ValueError(f"no training rows for relation {relation!r}")
    scorer = Scorer(model, tokenizer, candidates)
    module = make_prompt(method, model.get_input_embeddings(), tokenizer, template, config, seed)
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

def _row_dicts(frame) -> list[dict]:
    return [dict(r) for r in frame.to_dict("records")]


def run_relation(model_name: str, method: str, relation: str, info: dict, train, test, config: TrainConfig,
                 seed: int, model=None, tokenizer=None):
    """{"scores": (n_test, C) log-probs, "prompt_only": (C,) log-probs, "history": [...]} for one
    probe on one relation; trained prompts and scores are cached by model, data and settings."""
    from alignlab.cache import Cache

    if method not in METHODS:
        raise ValueError(f"method must be one of: {', '.join(METHODS)}; got {method!r}")
    template, candidates = info[relation]["template"], info[relation]["candidates"]
    train_rows = _row_dicts(train[train["relation"] == relation])
    test_rows = _row_dicts(test[test["relation"] == relation])
    key = dict(model=model_name, method=method, relation=relation, template=template, candidates=candidates,
               train=[(r["subject"], r["object"]) for r in train_rows] if method != "manual" else [],
               test=[(r["subject"], r["query"]) for r in test_rows],
               config=vars(config) if method != "manual" else {}, seed=seed if method != "manual" else 0,
               a=(config.a1, config.a2) if method == "mecod" else None)

    def load():
        return (model, tokenizer) if model is not None else load_model(model_name)

    def compute():
        import torch

        lm, tok = load()
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
    """A causal LM from the zoo, or a masked LM (hub id such as bert-base-cased)."""
    from alignlab.models import load_causal_lm

    if "bert" in name.lower():  # bert-base-cased, roberta-large, ...: hub masked LMs (LAMA)
        return _load_masked_lm(name)
    return load_causal_lm(name)


@functools.lru_cache(maxsize=2)
def _load_masked_lm(name: str):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from alignlab.models import pick_device

    return AutoModelForMaskedLM.from_pretrained(name).to(pick_device()).eval(), AutoTokenizer.from_pretrained(name)


def run_study(model_name: str, methods, relations, info: dict, splits: dict, config: TrainConfig, seeds,
              progress: bool = True) -> dict:
    """{(method, seed, relation): run_relation(...)} for every combination (manual once, as seed 0
    of every seed since it does not train)."""
    from tqdm.auto import tqdm

    jobs = [(m, s, r) for m in methods for s in seeds for r in relations]
    out, manual = {}, {}
    for method, seed, relation in tqdm(jobs, desc="probes", disable=not progress):
        if method == "manual" and relation in manual:
            out[(method, seed, relation)] = manual[relation]
            continue
        result = run_relation(model_name, method, relation, info, splits["train"], splits["test"], config, seed)
        out[(method, seed, relation)] = result
        if method == "manual":
            manual[relation] = result
    return out
