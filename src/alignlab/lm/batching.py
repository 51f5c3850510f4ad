"""Padding a batch of token-id lists into tensors: the one helper every batched forward pass uses.

    input_ids, attention_mask = pad_batch(tokenizer, [[5, 6, 7], [8]], side="left")
    positions = position_ids(attention_mask)   # 0, 1, 2, ... over real tokens only

LEFT padding puts every sequence's end at the last position, which batched scoring (logits for
the last few positions only) and generation (new tokens appended in step) need; RIGHT padding
suits training a classifier that pools through the attention mask.
"""

from __future__ import annotations

import torch
from transformers.data.data_collator import pad_without_fast_tokenizer_warning


def pad_token_id(tokenizer) -> int:
    """The id that fills padded positions: the tokenizer's pad token, else its EOS token."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def pad_batch(tokenizer, sequences: list[list[int]], side: str = "left", device=None):
    """(input_ids, attention_mask), two long tensors (batch, longest), padded on `side` with
    `tokenizer.pad` ("left" or "right"); on `device` if given. The tokenizer needs a pad token
    (`alignlab.models.load.load_tokenizer` sets one)."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token: set tokenizer.pad_token (e.g. to its eos_token) first")
    batch = pad_without_fast_tokenizer_warning(
        tokenizer, {"input_ids": [list(ids) for ids in sequences]}, padding=True, padding_side=side,
        return_attention_mask=True, return_tensors="pt",
    )
    input_ids, mask = batch["input_ids"].to(torch.long), batch["attention_mask"].to(torch.long)
    if device is not None:
        input_ids, mask = input_ids.to(device), mask.to(device)
    return input_ids, mask


def position_ids(attention_mask):
    """Position ids that count real tokens only (0 at each sequence's first real token), so a
    left-padded sequence gets the positions it would have alone."""
    return (attention_mask.cumsum(1) - 1).clamp(min=0)
