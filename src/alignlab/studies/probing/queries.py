"""Queries for factual probing (study 03): templates to token ids, scored by the frozen LM.

A relation's template ("The official currency of [X] is the [Y].") becomes a list of token ids per
subject (`QueryBuilder`): the manual template's words, or SLOT positions that a tuned prompt's
vectors fill (`embed_queries`). `Scorer` ranks candidate objects for such queries; the model's own
weights stay frozen (`frozen`), so gradients reach only the prompt vectors.

Scoring. Causal LMs rank candidates by log p(object tokens | prefix), multi-token objects
allowed: `candidate_logprobs` runs the (left-padded) prefix embeddings once, repeats the key/value
cache for every candidate and scores the candidates' tokens on top, so it is differentiable in the
prompt vectors and cheap in the number of candidates. Masked LMs (BERT on LAMA) predict the single
[MASK] token over the whole vocabulary, as LAMA does: the candidates are the vocabulary.

Prompt-only (counterfactual) query: each subject token is replaced by one filler token, so the
query keeps the subject's length (as MeCoD's release does, which masks every subject token) and no
subject token remains. The filler is the [MASK] token for masked LMs and the word "something" for
causal LMs (FILLER_WORD): a neutral noun that reads as a sentence. Not the tokenizer's unk token:
for SmolLM2 that is <|endoftext|>, the document separator, after which the model predicts what
starts a new document rather than what the prompt favours.

Tokenization: the template's words keep the whitespace they have in the template ("The capital of
[X] is" -> "is" is tokenized as " is"), so a tuned prompt initialised from the manual words equals
the manual query token for token.

Results are cached by alignlab.studies.probing.probes: bump its VERSION when this module's behaviour changes.
"""

from __future__ import annotations

import contextlib
import inspect

import numpy as np
import torch

from alignlab.lm.batching import pad_batch, position_ids

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


def template_text(template: str) -> tuple[str, str]:
    """(text before [X], text between [X] and [Y]) with their whitespace, e.g. ("The capital of ", " is ")."""
    template_parts(template)  # checks the template
    before, rest = template.split("[X]")
    return before, rest.split("[Y]")[0]


FILLER_WORD = "something"  # the causal-LM filler of the prompt-only query (see the module docstring)


def filler_id(tokenizer, masked: bool, leading_space: bool = True) -> int:
    """The token that stands for each subject token in the prompt-only query: [MASK] for masked
    LMs, else FILLER_WORD's token (with a leading space inside a sentence; one token for SmolLM2,
    Gemma 3 and Qwen 2.5; its first token where a small vocabulary splits it)."""
    if masked:
        return tokenizer.mask_token_id
    return tokenizer((" " if leading_space else "") + FILLER_WORD, add_special_tokens=False)["input_ids"][0]


def placeholder_id(tokenizer) -> int:
    """The filler of a masked LM's prompt-only query ([MASK]); kept for callers of earlier versions."""
    return filler_id(tokenizer, masked=True)


class QueryBuilder:
    """Token-id queries for one relation. `slots` gives the prompt layout: None for the manual
    template's words, or (n_before, n_after) prompt-vector slots around the subject. Causal LMs
    get [special tokens] before subject after (the object follows); masked LMs get
    [CLS] before subject after [MASK] [SEP]."""

    def __init__(self, tokenizer, template: str, masked: bool = False, slots: tuple[int, int] | None = None):
        self.tokenizer, self.masked, self.slots = tokenizer, masked, slots
        self.before, self.after = template_parts(template)
        before, between = template_text(template)
        tok = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"] if text.strip() else []  # noqa: E731
        # the words keep their template whitespace: " is" after the subject, as in the filled query
        self.before_ids, self.after_ids = tok(before.rstrip()), tok(between.rstrip())
        self.space = bool(before.strip()) and before != before.rstrip()
        specials = tokenizer("", add_special_tokens=True)["input_ids"]  # e.g. [BOS] or [CLS, SEP]
        if masked:  # LAMA keeps the words after [Y] (its trailing " ."): [MASK] . [SEP]
            rest = tok(template.split("[Y]", 1)[1].strip())
            self.head, self.tail = specials[:1], [tokenizer.mask_token_id] + rest + specials[1:]
        else:
            self.head, self.tail = specials, []
        self._tok = tok

    def subject_ids(self, subject: str) -> list[int]:
        space = self.space or bool(self.slots and self.slots[0])
        return self._tok((" " if space else "") + subject)

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

    def prompt_only(self, n_tokens: int = 1) -> list[int]:
        """The counterfactual query: the subject replaced by `n_tokens` filler tokens (one per
        subject token: `prompt_only(len(subject_ids(s)))` is length-matched to subject s)."""
        space = self.space or bool(self.slots and self.slots[0])
        return self._build([filler_id(self.tokenizer, self.masked, space)] * max(1, n_tokens))


def manual_slot_init(tokenizer, template: str) -> tuple[list[int], list[int]]:
    """Token ids of the template's words before and after the subject (to start slots from)."""
    builder = QueryBuilder(tokenizer, template)
    return builder.before_ids, builder.after_ids


def manual_query(tokenizer, row: dict, masked: bool) -> list[int]:
    """The manual query's token ids: for causal LMs the filled query up to [Y] (the rest of the
    sentence is dropped: the object comes next); for masked LMs the whole filled query with [MASK]
    in place of [Y], LAMA's trailing " ." included."""
    prefix, rest = row["query"].split("[Y]", 1)
    if not masked:
        ids = tokenizer(prefix.rstrip(), add_special_tokens=True)["input_ids"]
        return ids or [tokenizer.eos_token_id]
    specials = tokenizer("", add_special_tokens=True)["input_ids"]
    words = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"] if text.strip() else []  # noqa: E731
    return specials[:1] + words(prefix.rstrip()) + [tokenizer.mask_token_id] + words(rest.strip()) + specials[1:]


def object_token_id(tokenizer, obj: str) -> int:
    """The vocabulary id of a one-token object, -1 when the object is not one token. The form
    with a leading space comes first (RoBERTa's "ĠParis", the word inside a sentence), then the
    bare form (BERT's "Paris"; WordPiece ignores the space): ids, not decoded strings, so "ĠParis"
    and "Paris" never collide."""
    for text in (" " + obj, obj):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            return ids[0]
    return -1


# ---------------------------------------------------------------------------------------------
# The differentiable scorer

def embed_queries(model, tokenizer, queries: list[list[int]], prompt=None, left: bool = True):
    """(embeds, mask, ids): queries padded to one width (left for causal LMs) and embedded with the
    model's own embedding module; SLOT positions take the prompt vectors in order."""
    embed = model.get_input_embeddings()
    device = embed.weight.device
    ids, mask = pad_batch(tokenizer, queries, side="left" if left else "right")
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
    out = torch.zeros_like(embeds)
    rows, cols = slots.nonzero(as_tuple=True)
    order = torch.arange(len(rows), device=embeds.device) % vectors.shape[0]
    return out.index_put((rows, cols), vectors[order])


def encode_candidates(tokenizer, candidates: list[str], masked: bool = False):
    """(ids (K, L), mask (K, L)) of each candidate's tokens, right-padded; " " + text for causal LMs."""
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
    return pad_batch(tokenizer, lists, side="right")


def candidate_logprobs(model, embeds, mask, cand_ids, cand_mask):
    """(B, K) log p(candidate tokens | prefix) for every prefix row and every candidate, summed
    over the candidate's tokens. Prefixes are left-padded (positions from the mask, as in
    alignlab.lm.scoring); the prefix runs once and its key/value cache is repeated per candidate."""
    batch, k = embeds.shape[0], cand_ids.shape[0]
    device = embeds.device
    cand_ids, cand_mask = cand_ids.to(device), cand_mask.to(device)
    multi = cand_ids.shape[1] > 1
    out = model(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids(mask), use_cache=multi,
                logits_to_keep=1)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)[:, cand_ids[:, 0]]  # (B, K)
    if not multi:
        return first
    cache = getattr(out, "cache", None) or out.past_key_values
    cache.batch_repeat_interleave(k)
    steps = cand_ids.shape[1] - 1
    inputs = cand_ids[:, :-1].repeat(batch, 1)                                 # (B*K, L-1)
    targets = cand_ids[:, 1:].repeat(batch, 1)
    target_mask = cand_mask[:, 1:].repeat(batch, 1).float()
    attention = torch.cat([mask.repeat_interleave(k, 0), cand_mask[:, :-1].repeat(batch, 1)], dim=1)
    start = mask.sum(1).repeat_interleave(k).unsqueeze(1)
    positions = start + torch.arange(steps, device=device).unsqueeze(0)
    logits = model(input_ids=inputs, attention_mask=attention, position_ids=positions, use_cache=True,
                   **{cache_argument(model): cache}).logits.float()
    token_lp = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    rest = (token_lp * target_mask).sum(1).view(batch, k)
    return first + rest


def cache_argument(model) -> str:
    """The name under which `model.forward` takes a key/value cache: `cache` in recent transformers
    (5.x, where `past_key_values` is deprecated), `past_key_values` in older ones and other models."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def masked_lm_logprobs(model, embeds, mask, ids, cand_ids, mask_token_id: int):
    """(B, K) log p([MASK] = candidate token) for a masked LM; one forward pass."""
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
        self.vocabulary = self.masked and candidates is None
        if self.vocabulary:  # LAMA: the whole vocabulary, as decoded words
            self.candidates = [tokenizer.decode([i]).strip() for i in range(len(tokenizer))]
            self.cand_ids = torch.arange(len(tokenizer)).unsqueeze(1)
            self.cand_mask = torch.ones_like(self.cand_ids)
        else:
            self.candidates = list(candidates)
            self.cand_ids, self.cand_mask = encode_candidates(tokenizer, self.candidates, self.masked)

    def object_indices(self, objects) -> list[int]:
        """The column of each object among the candidates (-1: not a candidate). For a masked
        LM's vocabulary, by token id (`object_token_id`), never by decoded string."""
        if self.masked and self.vocabulary:
            return [object_token_id(self.tokenizer, o) for o in objects]
        index = {c: i for i, c in enumerate(self.candidates)}
        return [index.get(o, -1) for o in objects]

    def candidate_tokens(self) -> np.ndarray:
        """(C,) how many tokens each candidate has (for length-normalised scores)."""
        return self.cand_mask.sum(1).numpy()

    def candidate_embeddings(self):
        """(C, dim) each candidate's output embedding (mean over its tokens), detached: what
        MeCoD's released gate reads."""
        weight = self.model.get_output_embeddings().weight.detach()
        ids, mask = self.cand_ids.to(weight.device), self.cand_mask.to(weight.device).unsqueeze(-1).float()
        return (weight[ids] * mask).sum(1) / mask.sum(1)

    def __call__(self, queries, prompt=None, subset=None):
        """(B, K) log-probabilities of candidates (all, or the index list `subset`)."""
        embeds, mask, ids = embed_queries(self.model, self.tokenizer, queries, prompt, left=not self.masked)
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
