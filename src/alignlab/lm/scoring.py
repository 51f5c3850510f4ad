"""Batched log-likelihood of candidate continuations given a context, for causal LMs.

Every study scores candidates the same way: zero-shot answers, factual-probe objects, cultural
options, in-context labels, a judge's verdict tokens. This is the one implementation.

    scores = score_pairs(model, tokenizer, [("Q: capital of France? A:", " Paris"), ...])
    scores.sum        # log p(continuation | context), summed over continuation tokens
    scores.mean       # the same divided by the number of continuation tokens (length-normalized)
    label_logprobs = score_labels(model, tokenizer, contexts, [" A", " B"])   # (n_contexts, n_labels)

How. The context is tokenized with the tokenizer's special tokens (e.g. Gemma's <bos>), the
continuation without, separately, so the scored tokens are exactly the continuation's own (no
merge across the boundary). The sequences go through `alignlab.lm.prefix.final_hidden`: those
that share a prefix (demonstrations before every question, a question before each candidate, a
transcript before a verdict in both orders) run it once and reuse its key/value cache; the rest
run in length-sorted, padded batches. The vocabulary projection is computed only at the positions
that are scored (`output_logits`), and the last token of a continuation is never run (nothing
reads the prediction after it). Position ids are given explicitly, so every sequence is scored
exactly as it would be alone (tests/test_scoring.py and tests/test_prefix.py check this against
an unbatched reference). `share_prefix=False` turns the sharing off (benchmarks compare the two);
`alignlab.lm.prefix.TOKENS` counts the tokens before and after sharing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from alignlab.lm.prefix import final_hidden, output_logits


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
                progress: bool = False, share_prefix: bool = True) -> Scores:
    """Log-likelihood of each (context, continuation) pair under a causal LM."""
    pairs = list(pairs)
    if not pairs:
        return Scores(np.zeros(0), np.zeros(0, dtype=int))
    contexts, continuations = zip(*pairs)
    sequences = _encode(tokenizer, list(contexts), list(continuations), max_length)
    totals = np.zeros(len(sequences), dtype=np.float64)
    lengths = np.array([n for _, n in sequences], dtype=int)
    # the hidden state at position t predicts token t+1: run every token but the last, read the last n
    inputs = [ids[:-1] for ids, _ in sequences]
    batches = final_hidden(model, tokenizer, inputs, list(lengths), batch_size, share=share_prefix)
    with torch.inference_mode():
        for rows, hidden in tqdm(batches, desc="scoring", disable=not progress,
                                 total=-(-len(sequences) // batch_size)):
            logprobs = torch.log_softmax(output_logits(model, torch.cat(hidden)).float(), dim=-1)
            targets = torch.tensor([t for i in rows for t in sequences[i][0][-lengths[i]:]], device=logprobs.device)
            token_logprobs = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu().numpy()
            ends = np.cumsum([lengths[i] for i in rows])
            for i, part in zip(rows, np.split(token_logprobs, ends[:-1])):
                totals[i] = part.sum()
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
                 progress: bool = False, share_prefix: bool = True) -> np.ndarray:
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
        return score_pairs(model, tokenizer, pairs, batch_size=batch_size, progress=progress,
                           share_prefix=share_prefix).sum.reshape(len(contexts), len(labels))
    targets = [ids[0] for ids in label_ids]
    context_ids = tokenizer(contexts, add_special_tokens=True)["input_ids"]
    sequences = [(ids or [tokenizer.eos_token_id])[-1024:] for ids in context_ids]
    out = np.zeros((len(sequences), len(labels)))
    batches = final_hidden(model, tokenizer, sequences, [1] * len(sequences), batch_size, share=share_prefix)
    with torch.inference_mode():
        for rows, hidden in tqdm(batches, desc="scoring", disable=not progress,
                                 total=-(-len(sequences) // batch_size)):
            logits = output_logits(model, torch.cat(hidden)).float()
            out[rows] = torch.log_softmax(logits, dim=-1)[:, targets].cpu().numpy()
    return out
