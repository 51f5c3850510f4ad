"""Batched log-likelihood of candidate continuations given a context, for causal LMs.

Every study scores candidates the same way: zero-shot answers, factual-probe objects, cultural
options, in-context labels, a judge's verdict tokens. This is the one implementation.

    scores = score_pairs(model, tokenizer, [("Q: capital of France? A:", " Paris"), ...])
    scores.sum        # log p(continuation | context), summed over continuation tokens
    scores.mean       # the same divided by the number of continuation tokens (length-normalized)
    label_logprobs = score_labels(model, tokenizer, contexts, [" A", " B"])   # (n_contexts, n_labels)

How. The context is tokenized with the tokenizer's special tokens (e.g. Gemma's <bos>), the
continuation without, separately, so the scored tokens are exactly the continuation's own (no
merge across the boundary). Pairs are sorted by length and batched; each batch is LEFT-padded
(`alignlab.lm.batching.pad_batch`) so that every sequence ends at the last position, which lets
the model compute logits for only the last few positions (`logits_to_keep`), skipping the
vocabulary projection everywhere else. Position ids are taken from the attention mask, so a
padded sequence is scored exactly as it would be alone (tests/test_scoring.py checks this
against an unbatched reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from alignlab.lm.batching import pad_batch, position_ids


@dataclass
class Scores:
    sum: np.ndarray  # (n,) float64: total log-probability of each continuation
    n_tokens: np.ndarray  # (n,) int: tokens in each continuation

    @property
    def mean(self) -> np.ndarray:
        return self.sum / np.maximum(self.n_tokens, 1)

    def get(self, normalize: bool) -> np.ndarray:
        """Length-normalized scores if `normalize`, else summed."""
        return self.mean if normalize else self.sum


def _encode(tokenizer, contexts: list[str], continuations: list[str], max_length: int):
    context_ids = tokenizer(contexts, add_special_tokens=True)["input_ids"]
    continuation_ids = tokenizer(continuations, add_special_tokens=False)["input_ids"]
    sequences = []
    for i, (ctx, cont) in enumerate(zip(context_ids, continuation_ids)):
        if not cont:
            raise ValueError(f"continuation {i} ({continuations[i]!r}) has no tokens")
        if not ctx:  # a model without BOS and an empty context: condition on EOS instead
            ctx = [tokenizer.eos_token_id]
        ids = (ctx + cont)[-max_length:]  # keep the end: the continuation must survive truncation
        if len(ids) <= len(cont):
            raise ValueError(f"continuation {i} is longer than max_length={max_length}")
        sequences.append((ids, len(cont)))
    return sequences


def score_pairs(model, tokenizer, pairs, batch_size: int = 32, max_length: int = 1024,
                progress: bool = False) -> Scores:
    """Log-likelihood of each (context, continuation) pair under a causal LM."""
    pairs = list(pairs)
    if not pairs:
        return Scores(np.zeros(0), np.zeros(0, dtype=int))
    contexts, continuations = zip(*pairs)
    sequences = _encode(tokenizer, list(contexts), list(continuations), max_length)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]), reverse=True)
    device = next(model.parameters()).device
    totals = np.zeros(len(sequences), dtype=np.float64)
    lengths = np.array([n for _, n in sequences], dtype=int)

    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc="scoring", disable=not progress):
        input_ids, mask = pad_batch(tokenizer, [sequences[i][0] for i in batch], side="left", device=device)
        width = input_ids.shape[1]
        keep = max(sequences[i][1] for i in batch) + 1  # logits at position t predict token t+1
        with torch.inference_mode():
            logits = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids(mask),
                           logits_to_keep=keep, use_cache=False).logits
        # logits[:, j] is the prediction made at position width-keep+j for the token after it
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # predictions for the last keep-1 tokens
        targets = input_ids[:, width - keep + 1:]
        token_logprobs = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (batch, keep-1)
        for row, i in enumerate(batch):
            n = sequences[i][1]
            totals[i] = token_logprobs[row, -n:].sum().item()
    return Scores(totals, lengths)


def score_pairs_naive(model, tokenizer, pairs) -> Scores:
    """The textbook reference: one unpadded forward pass per pair, full logits. Used by the tests
    (as ground truth) and by benchmarks/ (as the baseline)."""
    sequences = _encode(tokenizer, [c for c, _ in pairs], [x for _, x in pairs], max_length=10**9)
    device = next(model.parameters()).device
    totals = np.zeros(len(sequences))
    for i, (ids, n) in enumerate(sequences):
        input_ids = torch.tensor([ids], device=device)
        with torch.inference_mode():
            logits = model(input_ids=input_ids, use_cache=False).logits[0].float()
        logprobs = torch.log_softmax(logits[:-1], dim=-1)
        token_logprobs = logprobs.gather(-1, input_ids[0, 1:].unsqueeze(-1)).squeeze(-1)
        totals[i] = token_logprobs[-n:].sum().item()
    return Scores(totals, np.array([n for _, n in sequences]))


def score_labels(model, tokenizer, contexts: list[str], labels: list[str], batch_size: int = 32,
                 progress: bool = False) -> np.ndarray:
    """Log-probability of each of a few answer labels (e.g. [" A", " B"]) after each context: an
    (n_contexts, n_labels) array. When every label is one token, one forward pass per context
    gives all of them (the logits at the last position); otherwise it falls back to
    `score_pairs` on every (context, label) pair. Same numbers either way."""
    contexts, labels = list(contexts), list(labels)
    label_ids = tokenizer(labels, add_special_tokens=False)["input_ids"]
    if not contexts:
        return np.zeros((0, len(labels)))
    if any(len(ids) != 1 for ids in label_ids):
        pairs = [(c, label) for c in contexts for label in labels]
        return score_pairs(model, tokenizer, pairs, batch_size=batch_size, progress=progress).sum.reshape(
            len(contexts), len(labels))
    targets = [ids[0] for ids in label_ids]
    context_ids = tokenizer(contexts, add_special_tokens=True)["input_ids"]
    sequences = [(ids or [tokenizer.eos_token_id])[-1024:] for ids in context_ids]
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]), reverse=True)
    device = next(model.parameters()).device
    out = np.zeros((len(sequences), len(labels)))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc="scoring", disable=not progress):
        input_ids, mask = pad_batch(tokenizer, [sequences[i] for i in batch], side="left", device=device)
        with torch.inference_mode():
            logits = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids(mask),
                           logits_to_keep=1, use_cache=False).logits
        out[batch] = torch.log_softmax(logits[:, -1].float(), dim=-1)[:, targets].cpu().numpy()
    return out
