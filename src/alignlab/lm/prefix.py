"""Forward passes that run a shared prefix once: the engine under `alignlab.lm.scoring`.

    for rows, hidden in final_hidden(model, tokenizer, sequences, keep, batch_size=32):
        ...   # hidden[j]: final hidden states at the last keep[rows[j]] positions of sequences[rows[j]]
    TOKENS.snapshot()   # {"sequence_tokens": ..., "computed_tokens": ..., "padded_tokens": ...}

Why. Most prompts the studies score share long prefixes: k in-context demonstrations before every
test question, one question before each of its candidates, one transcript before a verdict asked
in both orders, one template before every item. A causal LM's keys and values at a position depend
only on the tokens up to it, so a prefix's key/value cache can be computed once and reused by every
sequence that starts with it.

How. `group_by_prefix` sorts the token sequences lexicographically (sequences with a common prefix
become neighbours, and a run of sorted neighbours shares the least of its neighbours' common
prefixes) and cuts the sorted list into runs that save the most tokens: a run is one group, or is
split where its neighbours share least and each part is grouped the same way (a header shared by
all, under it a question shared by its candidates: whichever saves more). A prefix never reaches the
positions whose hidden states are asked for. `final_hidden` runs the prefixes of up to `batch_size`
groups in one left-padded pass that fills a `DynamicCache`, then the groups' suffixes in RIGHT-
padded batches on top of that cache, each row reading the cache row of its group (gathered along the
batch axis, cut to the longest prefix in the batch). The layout of a row is then [pads, prefix,
suffix, pads]: real tokens are contiguous at the positions they have alone (position ids are given
explicitly), left pads are masked, and right pads come after every real token, so a causal model
never sees them. This is also why sliding-window attention (Gemma 3) stays exact: distances between
real tokens are their true distances. The cache is built without the model config on purpose: every
layer then keeps the whole prefix (a sliding-window cache layer keeps only the last window - 1
positions, which a prefix longer than the window would lose).

Sequences that share nothing run alone in right-padded batches. The hidden states are the base
model's output (after the final norm); `output_logits` applies the LM head (and Gemma's final
soft-capping where configured), so the vocabulary projection is computed only where it is read.
tests/test_prefix.py checks the results against an unbatched, unshared reference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from transformers import DynamicCache

from alignlab.lm.batching import pad_batch, position_ids

MIN_PREFIX = 4  # shorter common prefixes are not worth a separate pass


@dataclass
class TokenCount:
    """Tokens run through the models by `final_hidden` since the last `reset()`.

    sequence_tokens: the tokens of the sequences as given (what a pass without sharing runs);
    computed_tokens: real tokens actually run (each shared prefix once); padded_tokens: positions of
    the padded batches (pads included); attended_pairs: causal (query, key) pairs of real tokens
    computed (what attention costs, for FLOP counts). Read `TOKENS` before and after a study step."""
    sequence_tokens: int = 0
    computed_tokens: int = 0
    padded_tokens: int = 0
    attended_pairs: int = 0

    def reset(self) -> None:
        self.sequence_tokens = self.computed_tokens = self.padded_tokens = self.attended_pairs = 0

    def snapshot(self) -> dict:
        return asdict(self)

    def add(self, sequence_tokens: int = 0, computed_tokens: int = 0, padded_tokens: int = 0,
            attended_pairs: int = 0) -> None:
        self.sequence_tokens += sequence_tokens
        self.computed_tokens += computed_tokens
        self.padded_tokens += padded_tokens
        self.attended_pairs += attended_pairs


TOKENS = TokenCount()


def causal_pairs(length: int, start: int = 0) -> int:
    """(query, key) pairs a causal model attends for positions start..length-1 (keys 0..query)."""
    return length * (length + 1) // 2 - start * (start + 1) // 2


@dataclass
class Group:
    members: list[int]  # indices into the sequences
    prefix: int  # tokens they all share and that run once; 0 for a sequence alone


def common_prefix_length(a, b) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def group_by_prefix(sequences: list[list[int]], keep: list[int], min_prefix: int = MIN_PREFIX) -> list[Group]:
    """Groups of sequences that share a prefix of at least `min_prefix` tokens, chosen to save the
    most tokens (see the module doc). A group's prefix leaves the last `keep[i]` positions of each
    member outside it; a sequence that shares nothing worth sharing is a group alone (prefix 0)."""
    order = sorted(range(len(sequences)), key=lambda i: sequences[i])
    limit = [len(s) - k for s, k in zip(sequences, keep)]
    # shareable[j]: the prefix that sorted neighbours j and j+1 can share; a run of neighbours
    # shares the minimum over it, and grouping the run saves (members - 1) x that minimum
    shareable = [min(limit[a], limit[b], common_prefix_length(sequences[a], sequences[b]))
                 for a, b in zip(order, order[1:])]

    def best(lo, hi, depth=0):
        """(tokens saved, groups) for the sorted run lo..hi: the whole run as one group, or the
        runs between the positions where it shares least, each grouped at its best."""
        if lo == hi:
            return 0, [Group([order[lo]], 0)]
        least = min(shareable[lo:hi])
        whole = (hi - lo) * least if least >= min_prefix else 0
        saved, groups, start = 0, [], lo
        if depth < 64:  # deeper splits would save little and recurse far
            for end in [j for j in range(lo, hi) if shareable[j] == least] + [hi]:
                part_saved, part_groups = best(start, end, depth + 1)
                saved, groups, start = saved + part_saved, groups + part_groups, end + 1
        if whole and whole >= saved:
            return whole, [Group(order[lo:hi + 1], least)]
        if not groups:
            groups = [Group([i], 0) for i in order[lo:hi + 1]]
        return saved, groups

    return best(0, len(order) - 1)[1] if sequences else []


def _chunks(items: list, size: int):
    return [items[i:i + size] for i in range(0, len(items), size)]


@torch.inference_mode()
def final_hidden(model, tokenizer, sequences: list[list[int]], keep: list[int], batch_size: int = 32,
                 share: bool = True):
    """Yield (rows, hidden) per batch: for each row index i in `rows`, a tensor (keep[i], dim) of
    the model's final hidden states at the last keep[i] positions of sequences[i]. Sequences that
    share a prefix run it once when `share` (see the module doc); every sequence is yielded once."""
    if any(k < 1 or k > len(s) for s, k in zip(sequences, keep)):
        raise ValueError("keep[i] must be between 1 and the length of sequence i")
    base = model.base_model
    device = next(model.parameters()).device
    groups = group_by_prefix(sequences, keep) if share else [Group([i], 0) for i in range(len(sequences))]
    TOKENS.add(sequence_tokens=sum(len(s) for s in sequences))

    alone = sorted((g.members[0] for g in groups if not g.prefix), key=lambda i: len(sequences[i]), reverse=True)
    for batch in _chunks(alone, batch_size):
        input_ids, mask = pad_batch(tokenizer, [sequences[i] for i in batch], side="right", device=device)
        TOKENS.add(computed_tokens=int(mask.sum()), padded_tokens=mask.numel(),
                   attended_pairs=sum(causal_pairs(len(sequences[i])) for i in batch))
        hidden = base(input_ids=input_ids, attention_mask=mask, position_ids=position_ids(mask),
                      use_cache=False).last_hidden_state
        yield batch, [hidden[row, len(sequences[i]) - keep[i]:len(sequences[i])] for row, i in enumerate(batch)]

    shared = sorted((g for g in groups if g.prefix), key=lambda g: g.prefix, reverse=True)
    for group_batch in _chunks(shared, batch_size):
        yield from _shared_batches(base, tokenizer, sequences, keep, group_batch, batch_size, device)


def _shared_batches(base, tokenizer, sequences, keep, groups: list[Group], batch_size: int, device):
    prefixes = [sequences[g.members[0]][:g.prefix] for g in groups]
    prefix_ids, prefix_mask = pad_batch(tokenizer, prefixes, side="left", device=device)
    TOKENS.add(computed_tokens=int(prefix_mask.sum()), padded_tokens=prefix_mask.numel(),
               attended_pairs=sum(causal_pairs(g.prefix) for g in groups))
    cache = DynamicCache()
    base(input_ids=prefix_ids, attention_mask=prefix_mask, position_ids=position_ids(prefix_mask), cache=cache,
         use_cache=True)
    kv = [(layer.keys, layer.values) for layer in cache.layers]
    del cache

    rows = [(g, i) for g in range(len(groups)) for i in groups[g].members]
    rows.sort(key=lambda r: len(sequences[r[1]]) - groups[r[0]].prefix, reverse=True)
    for batch in _chunks(rows, batch_size):
        which = torch.tensor([g for g, _ in batch], device=device)
        starts = torch.tensor([groups[g].prefix for g, _ in batch], device=device)
        width = int(starts.max())  # the prefixes are left-padded: the last `width` columns hold them all
        if len(set(g for g, _ in batch)) == 1:  # one group: a broadcast view, no copy (the cache update copies)
            g = batch[0][0]
            past = DynamicCache([(k[g:g + 1, :, -width:].expand(len(batch), -1, -1, -1),
                                  v[g:g + 1, :, -width:].expand(len(batch), -1, -1, -1)) for k, v in kv])
        else:
            past = DynamicCache([(k[which, :, -width:], v[which, :, -width:]) for k, v in kv])
        suffixes = [sequences[i][groups[g].prefix:] for g, i in batch]
        input_ids, mask = pad_batch(tokenizer, suffixes, side="right", device=device)
        TOKENS.add(computed_tokens=int(mask.sum()), padded_tokens=mask.numel(),
                   attended_pairs=sum(causal_pairs(len(sequences[i]), groups[g].prefix) for g, i in batch))
        attention_mask = torch.cat([prefix_mask[which, -width:], mask], dim=1)
        positions = starts[:, None] + position_ids(mask)
        hidden = base(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, cache=past,
                      use_cache=True).last_hidden_state
        yield ([i for _, i in batch],
               [hidden[row, len(s) - keep[i]:len(s)] for row, ((_, i), s) in enumerate(zip(batch, suffixes))])


def output_logits(model, hidden):
    """Logits from final hidden states: the model's LM head, then Gemma's final soft-capping where
    its config sets one (what `model(...).logits` computes, but only for the rows given)."""
    logits = model.get_output_embeddings()(hidden)
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap is not None:
        logits = torch.tanh(logits / cap) * cap
    return logits
