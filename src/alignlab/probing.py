"""Factual probing with manual and tuned prompts, and MeCoD against object bias (study 03).

A relation (e.g. "currency") has a template ("The official currency of [X] is the [Y].") and a set
of candidate objects. A probe turns a subject into a query and ranks every candidate object; the
frozen language model does the ranking, only the prompt's parameters train. Four probes (METHODS):

- `manual`      the template's own words (LAMA).
- `softprompt`  OptiPrompt-style: trainable vectors in place of the template's words, around the
                subject: [vectors] subject [vectors] object.
- `ptuning`     P-tuning-style: the same slots, filled by a prompt encoder (pseudo-token embeddings ->
                BiLSTM -> MLP).
- `mecod`       `ptuning` trained with MeCoD's two extra losses (Wang et al. 2023, "Towards
                Alleviating the Object Bias in Prompt Tuning-based Factual Knowledge Extraction"):
                a counterfactual query with the subject hidden gives the *prompt-only* distribution
                q over candidates; a learned sigmoid gate g picks the biased objects from it;
                Object Equalization (OE) = negative entropy of q restricted to the gated set
                (q~ = g*q / sum(g*q)), so minimizing it flattens the prompt's preference among
                them; Biased Object Obstruction (BOO) = -log p(gold) / (p(gold) + sum_o g_o p(o))
                over the factual distribution p, pushing the gold object above the gated ones.
                loss = task + a1 * OE + a2 * BOO (paper defaults a1=0.2, a2=0.1). The gate is
                g_o = sigmoid(scale * log(K * q_o) - threshold) with learnable scale and threshold,
                fed by q (detached): objects the prompt alone favours over uniform are "biased".
                Unlike the released MeCoD code, in which the biased set is a selection that gets
                no gradient, here OE and BOO both reach the gate (tests/test_probing.py checks it):
                BOO pulls the threshold up (a smaller set is easier to beat), OE pulls it down.

Scoring. Causal LMs rank candidates by log p(object tokens | prefix), multi-token objects
allowed: `candidate_logprobs` runs the (left-padded) prefix embeddings once, repeats the key/value
cache for every candidate and scores the candidates' tokens on top, so it is differentiable in the
prompt vectors and cheap in the number of candidates. Masked LMs (BERT on LAMA) predict the single
[MASK] token over the whole vocabulary, as LAMA does: the candidates are the vocabulary.

Prompt-only (counterfactual) query: the subject's tokens are replaced by ONE placeholder token
(the tokenizer's unk, else pad, else eos token; [MASK] for masked LMs), so no subject token
remains and the query is the same for every subject of a relation (computed once per relation).

Training: a cross-entropy over candidates. Candidate sets can be large (currency: 151), so each
step scores a sample shared by the batch: the batch's gold objects, the objects the frozen manual
prompt-only query favours most, the most frequent training objects, then random others, up to
`n_candidates`. Evaluation always ranks the full candidate set. Metrics: alignlab.probing_metrics.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass

import numpy as np

METHODS = ("manual", "softprompt", "ptuning", "mecod")
TUNED = ("softprompt", "ptuning", "mecod")
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
               seed: int = 0, folder=None):
    """(splits, info): splits = {"train": DataFrame, "test": DataFrame} restricted to `relations`,
    at most n_train / n_test subjects per relation (drawn with `seed`); info = {relation:
    {"template", "candidates"}} with candidates = every object of the relation."""
    import pandas as pd

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
    return out, {r: info[r] for r in relations}


# ---------------------------------------------------------------------------------------------
# Queries: token ids with slots for prompt vectors

SLOT = -1  # marks a prompt-vector slot in a list of token ids


def is_masked_lm(model) -> bool:
    return not getattr(model.config, "is_decoder", False) and "MaskedLM" in type(model).__name__


def template_parts(template: str) -> tuple[str, str]:
    """(text before [X], text between [X] and [Y]), e.g. ("The capital of", "is")."""
    if template.count("[X]") != 1 or template.count("[Y]") != 1 or template.index("[X]") > template.index("[Y]"):
        raise ValueError(f"a template needs one [X] before one [Y]; got {template!r}")
    before, rest = template.split("[X]")
    return before.strip(), rest.split("[Y]")[0].strip()


def subject_text(row: dict) -> str:
    """The subject as it reads in the filled query ("the Netherlands"), else the bare subject."""
    before, after = template_parts(row["template"])
    prefix = row["query"].split("[Y]")[0].strip()
    if prefix.casefold().startswith(before.casefold()) and prefix.endswith(after):
        text = prefix[len(before):len(prefix) - len(after)].strip()
        if text:
            return text
    return row["subject"]


def placeholder_id(tokenizer) -> int:
    for name in ("mask_token_id", "unk_token_id", "pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return value
    raise ValueError("the tokenizer has no mask, unk, pad or eos token to hide the subject with")


class QueryBuilder:
    """Token-id queries for one relation. `slots` gives the prompt layout: None for the manual
    template's words, or (n_before, n_after) prompt-vector slots around the subject. Causal LMs
    get [special tokens] before subject after (the object follows); masked LMs get
    [CLS] before subject after [MASK] [SEP]."""

    def __init__(self, tokenizer, template: str, masked: bool = False, slots: tuple[int, int] | None = None):
        self.tokenizer, self.masked, self.slots = tokenizer, masked, slots
        self.before, self.after = template_parts(template)
        tok = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"] if text else []  # noqa: E731
        self.before_ids, self.after_ids = tok(self.before), tok(self.after)
        specials = tokenizer("", add_special_tokens=True)["input_ids"]  # e.g. [BOS] or [CLS, SEP]
        if masked:
            self.head, self.tail = specials[:1], [tokenizer.mask_token_id] + specials[1:]
        else:
            self.head, self.tail = specials, []
        self._tok = tok

    def subject_ids(self, subject: str) -> list[int]:
        return self._tok((" " if self.before or self.slots and self.slots[0] else "") + subject)

    def _build(self, middle: list[int]) -> list[int]:
        if self.slots is None:
            ids = self.head + self.before_ids + middle + self.after_ids + self.tail
        else:
            ids = self.head + [SLOT] * self.slots[0] + middle + [SLOT] * self.slots[1] + self.tail
        if not self.masked and not ids:
            ids = [self.tokenizer.eos_token_id]
        return ids

    def query(self, subject: str) -> list[int]:
        return self._build(self.subject_ids(subject))

    def prompt_only(self) -> list[int]:
        """The counterfactual query: the subject replaced by one placeholder token."""
        return self._build([placeholder_id(self.tokenizer)])


def manual_slot_init(tokenizer, template: str) -> tuple[list[int], list[int]]:
    """Token ids of the template's words before and after the subject (to start slots from)."""
    builder = QueryBuilder(tokenizer, template)
    return builder.before_ids, builder.after_ids


# ---------------------------------------------------------------------------------------------
# Prompt parameters

def make_prompt(method: str, embed, tokenizer, template: str, config: TrainConfig, seed: int):
    """The trainable module of a tuned probe: forward() -> (n_slots, dim) prompt vectors.
    `embed` is the model's input embedding module (kept frozen)."""
    import torch

    if method not in TUNED:
        raise ValueError(f"method must be one of: {', '.join(TUNED)}; got {method!r}")
    torch.manual_seed(seed)
    if config.prompt_init == "manual":
        before, after = manual_slot_init(tokenizer, template)
        with torch.no_grad():
            base = embed(torch.tensor(before + after, dtype=torch.long)).float()
        slots = (len(before), len(after))
    else:
        slots = (config.n_slots, config.n_slots)
        with torch.no_grad():
            scale = embed.weight.float().std().item()
        base = torch.zeros(sum(slots), embed.weight.shape[1])
        if method == "softprompt":
            base = torch.randn_like(base) * scale
    if method == "softprompt":
        module = SoftPrompt(base)
    else:
        module = PromptEncoder(base, config.hidden, zero_init=config.prompt_init == "manual")
    if method == "mecod":
        module.gate = Gate()
    module.slots = slots
    return module


@functools.lru_cache(maxsize=1)
def _module_classes():
    import torch
    from torch import nn

    class SoftPrompt(nn.Module):
        """OptiPrompt: the prompt vectors are the parameters."""

        def __init__(self, init):
            super().__init__()
            self.vectors = nn.Parameter(init.clone())

        def forward(self):
            return self.vectors

    class PromptEncoder(nn.Module):
        """P-tuning: pseudo-token embeddings -> BiLSTM -> MLP, added to a frozen base (the
        template's word embeddings with prompt_init="manual", zeros otherwise). With a manual
        base the MLP's last layer starts at zero, so training starts from the manual prompt."""

        def __init__(self, base, hidden: int, zero_init: bool):
            super().__init__()
            n, dim = base.shape
            self.register_buffer("base", base.clone())
            self.pseudo = nn.Parameter(torch.randn(n, hidden) * 0.1)
            self.lstm = nn.LSTM(hidden, hidden // 2, num_layers=2, bidirectional=True, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, dim))
            if zero_init:
                nn.init.zeros_(self.mlp[-1].weight)
                nn.init.zeros_(self.mlp[-1].bias)

        def forward(self):
            out, _ = self.lstm(self.pseudo.unsqueeze(0))
            return self.base + self.mlp(out[0])

    class Gate(nn.Module):
        """MeCoD's gate over candidates: g_o = sigmoid(scale * log(K q_o) - threshold)."""

        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(2.0))
            self.threshold = nn.Parameter(torch.tensor(0.0))

        def forward(self, prompt_only_logprobs):
            k = prompt_only_logprobs.shape[-1]
            return torch.sigmoid(self.scale * (prompt_only_logprobs + math.log(k)) - self.threshold)

    return SoftPrompt, PromptEncoder, Gate


# Thin constructors: the nn.Module classes are built on first use, so importing stays cheap.
def SoftPrompt(init):  # noqa: N802
    return _module_classes()[0](init)


def PromptEncoder(base, hidden, zero_init):  # noqa: N802
    return _module_classes()[1](base, hidden, zero_init)


def Gate():  # noqa: N802
    return _module_classes()[2]()


# ---------------------------------------------------------------------------------------------
# The differentiable scorer

def embed_queries(model, queries: list[list[int]], prompt=None, pad_id: int = 0, left: bool = True):
    """(embeds, mask): queries padded to one width (left for causal LMs) and embedded with the
    model's own embedding module; SLOT positions take the prompt vectors in order."""
    import torch

    embed = model.get_input_embeddings()
    device = embed.weight.device
    width = max(len(q) for q in queries)
    ids = torch.full((len(queries), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(queries), width), dtype=torch.long)
    for row, q in enumerate(queries):
        span = slice(width - len(q), width) if left else slice(0, len(q))
        ids[row, span] = torch.tensor(q)
        mask[row, span] = 1
    slots = ids == SLOT
    embeds = embed(ids.clamp(min=0).to(device))
    if slots.any():
        if prompt is None:
            raise ValueError("the queries have prompt slots but no prompt vectors were given")
        vectors = prompt.to(embeds.dtype)
        n = int(slots[0].sum())
        if vectors.shape[0] != n or not bool((slots.sum(1) == n).all()):
            raise ValueError(f"each query needs {vectors.shape[0]} prompt slots")
        slots = slots.to(device)
        embeds = torch.where(slots.unsqueeze(-1), _scatter_slots(embeds, slots, vectors), embeds)
    return embeds, mask.to(device), ids


def _scatter_slots(embeds, slots, vectors):
    """A tensor like embeds whose SLOT positions hold the prompt vectors, row by row."""
    import torch

    out = torch.zeros_like(embeds)
    rows, cols = slots.nonzero(as_tuple=True)
    order = torch.arange(len(rows), device=embeds.device) % vectors.shape[0]
    return out.index_put((rows, cols), vectors[order])


def encode_candidates(tokenizer, candidates: list[str], masked: bool = False):
    """(ids (K, L), mask (K, L)) of each candidate's tokens, right-padded; " " + text for causal LMs."""
    import torch

    if masked:  # LAMA: single-token objects only
        ids = []
        for c in candidates:
            tokens = tokenizer(c, add_special_tokens=False)["input_ids"]
            if len(tokens) != 1:
                raise ValueError(f"masked-LM candidates must be single tokens; {c!r} is {len(tokens)}")
            ids.append(tokens[0])
        return torch.tensor(ids).unsqueeze(1), torch.ones(len(ids), 1, dtype=torch.long)
    lists = tokenizer([" " + c for c in candidates], add_special_tokens=False)["input_ids"]
    for c, ids in zip(candidates, lists):
        if not ids:
            raise ValueError(f"candidate {c!r} has no tokens")
    width = max(len(x) for x in lists)
    ids = torch.zeros((len(lists), width), dtype=torch.long)
    mask = torch.zeros((len(lists), width), dtype=torch.long)
    for i, x in enumerate(lists):
        ids[i, :len(x)] = torch.tensor(x)
        mask[i, :len(x)] = 1
    return ids, mask


def candidate_logprobs(model, embeds, mask, cand_ids, cand_mask):
    """(B, K) log p(candidate tokens | prefix) for every prefix row and every candidate, summed
    over the candidate's tokens. Prefixes are left-padded (positions from the mask, as in
    alignlab.scoring); the prefix runs once and its key/value cache is repeated per candidate."""
    import torch

    batch, k = embeds.shape[0], cand_ids.shape[0]
    device = embeds.device
    cand_ids, cand_mask = cand_ids.to(device), cand_mask.to(device)
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    multi = cand_ids.shape[1] > 1
    out = model(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids, use_cache=multi,
                logits_to_keep=1)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)[:, cand_ids[:, 0]]  # (B, K)
    if not multi:
        return first
    cache = out.past_key_values
    cache.batch_repeat_interleave(k)
    steps = cand_ids.shape[1] - 1
    inputs = cand_ids[:, :-1].repeat(batch, 1)                                 # (B*K, L-1)
    targets = cand_ids[:, 1:].repeat(batch, 1)
    target_mask = cand_mask[:, 1:].repeat(batch, 1).float()
    attention = torch.cat([mask.repeat_interleave(k, 0), cand_mask[:, :-1].repeat(batch, 1)], dim=1)
    start = mask.sum(1).repeat_interleave(k).unsqueeze(1)
    positions = start + torch.arange(steps, device=device).unsqueeze(0)
    logits = model(input_ids=inputs, attention_mask=attention, position_ids=positions, past_key_values=cache,
                   use_cache=True).logits.float()
    token_lp = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    rest = (token_lp * target_mask).sum(1).view(batch, k)
    return first + rest


def masked_lm_logprobs(model, embeds, mask, ids, cand_ids, mask_token_id: int):
    """(B, K) log p([MASK] = candidate token) for a masked LM; one forward pass."""
    import torch

    where = ids == mask_token_id
    if not bool(where.any(1).all()):
        raise ValueError("each masked-LM query needs a [MASK] token for the object")
    # the object's [MASK] is the last one (the prompt-only query also masks the subject)
    last = (where.long() * torch.arange(ids.shape[1])).argmax(1).to(embeds.device)
    logits = model(inputs_embeds=embeds, attention_mask=mask).logits
    rows = logits[torch.arange(len(last), device=embeds.device), last].float()
    return torch.log_softmax(rows, dim=-1)[:, cand_ids[:, 0].to(rows.device)]


class Scorer:
    """Scores queries of one relation against candidates with a frozen model (causal or masked)."""

    def __init__(self, model, tokenizer, candidates: list[str] | None):
        self.model, self.tokenizer = model, tokenizer
        self.masked = is_masked_lm(model)
        if self.masked and candidates is None:  # LAMA: the whole vocabulary, as decoded words
            import torch

            self.candidates = [tokenizer.decode([i]).strip() for i in range(len(tokenizer))]
            self.cand_ids = torch.arange(len(tokenizer)).unsqueeze(1)
            self.cand_mask = torch.ones_like(self.cand_ids)
        else:
            self.candidates = list(candidates)
            self.cand_ids, self.cand_mask = encode_candidates(tokenizer, self.candidates, self.masked)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (tokenizer.eos_token_id or 0)

    def __call__(self, queries, prompt=None, subset=None):
        """(B, K) log-probabilities of candidates (all, or the index list `subset`)."""
        embeds, mask, ids = embed_queries(self.model, queries, prompt, self.pad_id, left=not self.masked)
        cand_ids, cand_mask = self.cand_ids, self.cand_mask
        if subset is not None:
            cand_ids, cand_mask = cand_ids[subset], cand_mask[subset]
            width = int(cand_mask.sum(1).max())
            cand_ids, cand_mask = cand_ids[:, :width], cand_mask[:, :width]
        if self.masked:
            return masked_lm_logprobs(self.model, embeds, mask, ids, cand_ids, self.tokenizer.mask_token_id)
        return candidate_logprobs(self.model, embeds, mask, cand_ids, cand_mask)

    def score_all(self, queries, prompt=None, batch_size: int = 8, max_positions: int = 2048) -> np.ndarray:
        """(n, C) log-probabilities of every candidate, no gradient; candidates of similar token
        length are scored together in chunks of about max_positions candidate tokens per batch."""
        import torch

        out = np.zeros((len(queries), len(self.candidates)))
        lengths = self.cand_mask.sum(1).numpy()
        order = np.argsort(lengths, kind="stable")
        with torch.no_grad():
            for start in range(0, len(queries), batch_size):
                rows = queries[start:start + batch_size]
                if self.masked:
                    out[start:start + len(rows)] = self(rows, prompt).cpu().numpy()
                    continue
                i = 0
                while i < len(order):
                    width = max(int(lengths[order[i]]), 1)
                    per_chunk = max(8, max_positions // (len(rows) * width))
                    chunk = order[i:i + per_chunk]
                    out[start:start + len(rows), chunk] = self(rows, prompt, list(chunk)).cpu().numpy()
                    i += len(chunk)
        return out


@contextlib.contextmanager
def frozen(model):
    """Turn off gradients of the model's own weights (restored on exit): prompts train alone."""
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


# ---------------------------------------------------------------------------------------------
# Losses

def task_loss(logprobs, gold):
    """Cross-entropy over the scored candidates: logprobs (B, K), gold (B,) indices."""
    import torch

    return torch.nn.functional.cross_entropy(logprobs, gold)


def oe_loss(prompt_only_logprobs, gate):
    """Object Equalization: negative entropy of the prompt-only distribution q restricted to
    the gated set, q~ = g*q / sum(g*q). prompt_only_logprobs: (K,) scores of the subject-masked
    query; gate: (K,) in (0, 1). Minimizing it flattens q over the biased objects."""
    import torch

    q = torch.softmax(prompt_only_logprobs, dim=-1)
    weighted = gate * q
    q_tilde = weighted / weighted.sum().clamp(min=1e-12)
    return (q_tilde * torch.log(q_tilde.clamp(min=1e-12))).sum()


def boo_loss(logprobs, gold, gate, valid=None):
    """Biased Object Obstruction: mean over rows of -log p_gold / (p_gold + sum_o g_o p_o), with p
    the softmax over candidates of the factual query, o over candidates other than the gold
    (and other than `valid` (B, K) bool, other true objects of the row)."""
    import torch

    p = torch.softmax(logprobs, dim=-1)
    p_gold = p.gather(1, gold.unsqueeze(1)).squeeze(1)
    others = torch.ones_like(p)
    others.scatter_(1, gold.unsqueeze(1), 0.0)
    if valid is not None:
        others = others * (~valid).float()
    biased = (others * gate.unsqueeze(0) * p).sum(1)
    return -(torch.log(p_gold.clamp(min=1e-12)) - torch.log((p_gold + biased).clamp(min=1e-12))).mean()


def mecod_losses(logprobs, gold, prompt_only_logprobs, gate_module, a1: float, a2: float, valid=None):
    """(total, parts): task + a1*OE + a2*BOO; the gate sees the prompt-only log-probs (detached)."""
    if a1 < 0 or a2 < 0:
        raise ValueError(f"a1 and a2 must be >= 0; got a1={a1}, a2={a2}")
    import torch

    gate = gate_module(torch.log_softmax(prompt_only_logprobs, -1).detach())
    task = task_loss(logprobs, gold)
    oe = oe_loss(prompt_only_logprobs, gate)
    boo = boo_loss(logprobs, gold, gate, valid)
    return task + a1 * oe + a2 * boo, {"task": task, "oe": oe, "boo": boo, "gate_size": gate.sum()}


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
            queries = [_manual_query(tok, r, scorer.masked) for r in test_rows]
        else:
            manual_only = run_relation(model_name, "manual", relation, info, train, test, config, seed,
                                       model=lm, tokenizer=tok)["prompt_only"]
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


def _manual_query(tokenizer, row: dict, masked: bool) -> list[int]:
    """The manual query's token ids: the filled query up to [Y] (as LAMA; for causal LMs the
    rest of the sentence is dropped), with [MASK] in place of [Y] for masked LMs."""
    prefix = row["query"].split("[Y]")[0].rstrip()
    if not masked:
        ids = tokenizer(prefix, add_special_tokens=True)["input_ids"]
        return ids or [tokenizer.eos_token_id]
    return QueryBuilder(tokenizer, row["template"], masked=True).head + \
        tokenizer(prefix, add_special_tokens=False)["input_ids"] + \
        QueryBuilder(tokenizer, row["template"], masked=True).tail


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
