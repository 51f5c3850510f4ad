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
step scores a sample of the relation's objects shared by the batch: the batch's gold objects, the
objects the frozen manual prompt-only query favours most, the most frequent training objects, then
random others, up to `n_candidates`. Evaluation ranks the relation's candidate set (capped by
`max_candidates`, the same for every method).

Protocol (as the released P-tuning / MeCoD code): Adam with `weight_decay` and an exponential lr
decay `lr_decay` per epoch (ptuning, mecod); after every epoch the prompt is scored on the
validation subjects and the best one is kept (validation P@1, ties broken by the validation
cross-entropy; step 0, the initial prompt, competes too); training stops after `patience` epochs
without improvement, `steps` is only a cap. `mecod` starts from the trained `ptuning` prompt of
the same seed (the release loads P-tuning's saved prompt encoder) and trains at `mecod_lr`.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForMaskedLM, AutoTokenizer

from alignlab.cache import Cache
from alignlab.models.load import load_causal_lm, model_kind, pick_device, release
from alignlab.studies.probing.config import Config
from alignlab.studies.probing.facts import relation_rows
from alignlab.studies.probing.prompts import ENCODER_HIDDEN, RANDOM_SLOTS, make_prompt, mecod_losses, task_loss
from alignlab.studies.probing.queries import QueryBuilder, Scorer, frozen, is_masked_lm, manual_query, subject_text
from alignlab.studies.probing.report import gold_ranks

VERSION = "2"  # bump when queries, scoring or training change: new cache keys


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


def method_lr(config: Config, method: str) -> float:
    return {"softprompt": config.lr, "ptuning": config.ptuning_lr, "mecod": config.mecod_lr}[method]


def row_indices(scorer: Scorer, rows: list[dict]) -> tuple[np.ndarray, list[list[int]]]:
    """(gold column per row (-1: not a candidate), the columns of each row's true objects)."""
    gold = np.array(scorer.object_indices([r["object"] for r in rows]), dtype=int)
    valid = [[i for i in scorer.object_indices(r.get("valid_objects", [r["object"]])) if i >= 0] for r in rows]
    return gold, valid


def validation_score(scorer: Scorer, builder: QueryBuilder, module, rows: list[dict]) -> tuple[float, float]:
    """(P@1, -mean cross-entropy of the gold) of the current prompt on validation rows whose gold
    is a candidate (other true objects filtered, as at test time): the early-stopping criterion."""
    gold, valid = row_indices(scorer, rows)
    keep = gold >= 0
    if not keep.any():
        return 0.0, 0.0
    rows, gold, valid = [r for r, k in zip(rows, keep) if k], gold[keep], [v for v, k in zip(valid, keep) if k]
    with torch.no_grad():
        prompt = module() if module is not None else None
    scores = scorer.score_all([builder.query(subject_text(r)) for r in rows], prompt)
    for row, others in enumerate(valid):
        for other in others:
            if other != gold[row]:
                scores[row, other] = -np.inf
    logz = np.logaddexp.reduce(scores, axis=1)
    hit = scores.argmax(1) == gold
    return float(hit.mean()), float(np.mean(scores[np.arange(len(gold)), gold] - logz))


def train_probe(model, tokenizer, method: str, relation: str, template: str, objects: list[str] | None,
                train_rows: list[dict], config: Config, seed: int = 0, priority=None, log=None,
                validation_rows=(), validation_candidates=None, init_state=None):
    """Train one relation's prompt (softprompt, ptuning or mecod) with the settings of `config`;
    returns (module, history). `objects`: what training ranks (None: a masked LM's vocabulary);
    `validation_rows` ranked against `validation_candidates` (default `objects`) choose the
    step kept; `init_state`: a trained ptuning state to start from (mecod's warm start);
    `priority`: candidate indices to include in every step's sample. history: {"task", "oe",
    "boo", "gate_size", "loss": per step; "val_step", "val_p_at_1", "val_logprob": per evaluation;
    "chosen_step", "steps_run"}."""
    if not train_rows:
        raise ValueError(f"no training rows for relation {relation!r}")
    scorer = Scorer(model, tokenizer, objects)
    module = make_prompt(method, model.get_input_embeddings(), tokenizer, template, config.prompt_init, seed,
                         gate=config.gate)
    if init_state is not None:
        missing, unexpected = module.load_state_dict(init_state, strict=False)
        if unexpected or any(not k.startswith("gate.") for k in missing):
            raise ValueError(f"the warm-start state does not fit a {method} prompt: missing {missing}, "
                             f"unexpected {unexpected}")
    builder = QueryBuilder(tokenizer, template, scorer.masked, module.slots)
    val_scorer = scorer if validation_candidates is None else Scorer(model, tokenizer, validation_candidates)
    gold, valid = row_indices(scorer, train_rows)
    rows = [r for r, g in zip(train_rows, gold) if g >= 0]
    valid = [v for v, g in zip(valid, gold) if g >= 0]
    gold = gold[gold >= 0]
    if not rows:
        raise ValueError(f"no training row of {relation!r} has its object among the candidates")
    subjects = [builder.subject_ids(subject_text(r)) for r in rows]
    queries = [builder._build(ids) for ids in subjects]
    counterfactuals = [builder.prompt_only(len(ids)) for ids in subjects]
    counts = np.bincount(gold, minlength=len(scorer.candidates))
    frequent = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    priority = list(priority or [])[: config.n_candidates // 3] + frequent[: config.n_candidates // 3]
    embeddings = scorer.candidate_embeddings() if method == "mecod" and config.gate == "released" else None
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    decay = method != "softprompt"  # the released P-tuning / MeCoD schedule; OptiPrompt's lr stays
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=method_lr(config, method),
                                 weight_decay=config.weight_decay if decay else 0.0)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay if decay else 1.0)
    per_epoch = math.ceil(len(rows) / config.batch_size)
    history = {k: [] for k in ("loss", "task", "oe", "boo", "gate_size", "val_step", "val_p_at_1", "val_logprob")}

    def evaluate(step):
        if not validation_rows:
            return None
        module.eval()
        score = validation_score(val_scorer, builder, module, list(validation_rows))
        module.train()
        history["val_step"].append(step)
        history["val_p_at_1"].append(score[0])
        history["val_logprob"].append(score[1])
        return score

    with frozen(model):
        module.train()
        best, best_state, chosen, waited, step = evaluate(0), copy.deepcopy(module.state_dict()), 0, 0, 0
        order = []
        while step < config.steps:
            if len(order) == 0:
                order = list(rng.permutation(len(rows)))
            batch, order = np.array(order[:config.batch_size]), order[config.batch_size:]
            k = len(scorer.candidates) if scorer.masked else config.n_candidates
            subset = sample_candidates(rng, len(scorer.candidates), gold[batch], priority, k)
            position = {c: j for j, c in enumerate(subset)}
            target = torch.tensor([position[int(g)] for g in gold[batch]])
            prompt = module()
            chosen_ids = None if scorer.masked else subset
            logprobs = scorer([queries[i] for i in batch], prompt, chosen_ids)
            if method == "mecod":
                prompt_only = scorer([counterfactuals[i] for i in batch], prompt, chosen_ids)
                other_valid = torch.zeros_like(logprobs, dtype=torch.bool)
                for row, i in enumerate(batch):
                    for v in valid[i]:
                        if v in position and v != gold[i]:
                            other_valid[row, position[v]] = True
                emb = None if embeddings is None else embeddings[torch.tensor(subset)] if not scorer.masked \
                    else embeddings
                loss, parts = mecod_losses(logprobs, target, prompt_only, module.gate, config.a1, config.a2,
                                           other_valid, emb)
            else:
                loss = task_loss(logprobs, target)
                parts = {"task": loss}
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            history["loss"].append(float(loss.detach()))
            for name in ("task", "oe", "boo", "gate_size"):
                history[name].append(float(parts[name].detach()) if name in parts else float("nan"))
            if log:
                log(relation, method, step, history)
            if step % per_epoch == 0 or step == config.steps:
                schedule.step()
                score = evaluate(step)
                if score is None or score > best:
                    best, best_state, chosen, waited = score, copy.deepcopy(module.state_dict()), step, 0
                else:
                    waited += 1
                    if waited >= config.patience:
                        break
    module.load_state_dict(best_state)
    module.eval()
    history["chosen_step"], history["steps_run"] = chosen, step
    return module, history


# ---------------------------------------------------------------------------------------------
# The study: train (cached), score the test set (cached)

def training_key(config: Config, method: str) -> dict:
    """The settings that shape a trained probe of `method`: part of its cache key."""
    key = {"steps": config.steps, "patience": config.patience, "batch_size": config.batch_size,
           "n_candidates": config.n_candidates, "lr": method_lr(config, method), "prompt_init": config.prompt_init,
           "n_slots": RANDOM_SLOTS, "hidden": ENCODER_HIDDEN}
    if method != "softprompt":
        key.update(weight_decay=config.weight_decay, lr_decay=config.lr_decay)
    if method == "mecod":
        key.update(a1=config.a1, a2=config.a2, gate=config.gate, warm_start=training_key(config, "ptuning"))
    return key


def prompt_state(module) -> dict:
    """A trained prompt's parameters and buffers as numpy arrays (cacheable)."""
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def run_relation(config: Config, method: str, seed: int, relation: str, info: dict, splits: dict,
                 model=None, tokenizer=None):
    """One probe of `config.model` on one relation, cached by model, data and settings:
    {"scores": (n_test, C) log-probs of the candidates (summed over their tokens),
    "prompt_only_by_length": (L, C) log-probs of the prompt-only query with 1..L filler tokens,
    "subject_tokens": (n_test,) each test subject's token count (its row of the former is
    prompt_only_by_length[n - 1]), "candidate_tokens": (C,), "candidates" (masked LMs' vocabulary;
    empty otherwise), "state" (the trained prompt), "history" (train_probe's)}.
    `model`, `tokenizer`: an already loaded model to use."""
    spec = info[relation]
    template, candidates = spec["template"], spec["candidates"]
    objects = spec.get("objects", candidates)
    train_rows, val_rows, test_rows = (relation_rows(splits[s], relation) if s in splits else []
                                       for s in ("train", "validation", "test"))
    tuned = method != "manual"
    key = dict(model=config.model, method=method, relation=relation, template=template, candidates=candidates,
               objects=objects if tuned else [],
               train=[(r["subject"], r["object"]) for r in train_rows] if tuned else [],
               validation=[(r["subject"], r["object"]) for r in val_rows] if tuned else [],
               test=[(r["subject"], r["query"]) for r in test_rows],
               config=training_key(config, method) if tuned else {}, seed=seed if tuned else 0)

    def compute():
        lm, tok = (model, tokenizer) if model is not None else load_model(config.model)
        masked = is_masked_lm(lm)
        scorer = Scorer(lm, tok, None if masked else candidates)
        if not tuned:
            builder, prompt, history, state = QueryBuilder(tok, template, masked), None, {}, {}
            queries = [manual_query(tok, r, masked) for r in test_rows]
        else:
            init = None
            if method == "mecod":  # warm start from the trained ptuning prompt, as released
                init = {k: torch.from_numpy(np.asarray(v)) for k, v in
                        run_relation(config, "ptuning", seed, relation, info, splits, lm, tok)["state"].items()}
            # the manual prompt-only favourites join every training step's candidate sample
            train_scorer = Scorer(lm, tok, None if masked else objects)
            manual_only = train_scorer.score_all([QueryBuilder(tok, template, masked).prompt_only()])[0]
            priority = list(np.argsort(-np.asarray(manual_only)))
            module, history = train_probe(lm, tok, method, relation, template, None if masked else objects,
                                          train_rows, config, seed, priority, validation_rows=val_rows,
                                          validation_candidates=None if masked else candidates, init_state=init)
            builder = QueryBuilder(tok, template, masked, module.slots)
            with torch.no_grad():
                prompt = module().detach()
            queries = [builder.query(subject_text(r)) for r in test_rows]
            state = prompt_state(module)
        scores = scorer.score_all(queries, prompt) if queries else np.zeros((0, len(scorer.candidates)))
        lengths = np.array([len(builder.subject_ids(subject_text(r))) for r in test_rows], dtype=int)
        longest = int(lengths.max()) if len(lengths) else 1
        prompt_only = scorer.score_all([builder.prompt_only(n) for n in range(1, longest + 1)], prompt)
        if scorer.vocabulary:  # a masked LM over its vocabulary: lean results, not (n_test, V) floats
            gold, valid = row_indices(scorer, test_rows)
            flat = lean_results(scores, gold, valid, prompt_only[np.clip(lengths, 1, None) - 1])
            flat.update(prompt_only_by_length=prompt_only.astype(np.float32), subject_tokens=lengths,
                        candidates=np.array(scorer.candidates, dtype=str))
        else:
            flat = {"scores": scores, "prompt_only_by_length": prompt_only, "subject_tokens": lengths,
                    "candidate_tokens": scorer.candidate_tokens()}
        flat.update({f"state.{k}": np.asarray(v) for k, v in state.items()})
        flat.update({f"history.{k}": np.asarray(v) for k, v in history.items()})
        return flat

    return nested(Cache().memo("probing-relation", VERSION, compute, **key))


LEAN_TOP = 10  # top predictions kept per test row in lean results


def lean_results(scores, gold, valid, prompt_only) -> dict:
    """What the metrics need from (n, V) vocabulary scores, per test row: the gold's column
    ("gold_index", -1: not one token), and for the summed and the PMI score (minus the row's
    prompt-only log-prob) the gold's rank with other true objects filtered ("rank_sum",
    "rank_pmi") and the argmax ("pred_sum", "pred_pmi"); plus the LEAN_TOP best ids and scores.
    About 1 kB a row instead of V floats (41 LAMA relations x 16 runs x (1000, 29k) float64
    would be about 150 GB)."""
    out = {"gold_index": np.asarray(gold, dtype=int)}
    for name, s in (("sum", scores), ("pmi", scores - prompt_only)):
        out[f"rank_{name}"] = gold_ranks(s, gold, valid)
        out[f"pred_{name}"] = s.argmax(1) if len(s) else np.zeros(0, dtype=int)
    top = np.argsort(-scores, axis=1)[:, :LEAN_TOP]
    out["top_ids"], out["top_scores"] = top, np.take_along_axis(scores, top, 1).astype(np.float32)
    return out


def nested(flat: dict) -> dict:
    """A cached result with its "state.*" and "history.*" arrays gathered into dicts (the cache
    stores flat dicts of arrays); history's scalars back to ints."""
    out = {"state": {}, "history": {}}
    for k, v in flat.items():
        group, _, name = k.partition(".")
        if name and group in out:
            out[group][name] = int(v) if np.ndim(v) == 0 else v
        else:
            out[k] = v
    return out


def load_model(name: str):
    """(model, tokenizer): a hub masked LM (bert-base-cased, roberta-large, ...) when the model's
    config is an encoder's, else a causal LM from the zoo or the hub."""
    if is_masked_config(name):
        return load_masked_lm(name)
    return load_causal_lm(name)


def is_masked_config(name: str) -> bool:
    """Whether `name` is an encoder (masked LM, LAMA's setting), read from its config, not its name."""
    return model_kind(name) == "encoder"


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
        result = run_relation(config, method, seed, relation, info, splits)
        out[(method, seed, relation)] = result
        if method == "manual":
            manual[relation] = result
    release(config.model)
    return out
