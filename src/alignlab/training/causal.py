"""Fine-tuning a causal LM on (prompt, continuation) pairs: the next-token loss on the continuation's
tokens only, with LoRA adapters (`lora_r > 0`, through `peft`) or all weights.

    model, tokenizer = load_causal_lm("smollm2-135m", fresh=True)        # a private, trainable copy
    model, losses = finetune_causal_lm(model, tokenizer, prompts, continuations, CausalFitConfig(...))
    weights = adapter_weights(model)                                     # small, cacheable tensors
    plain = merged(model)                                                # a plain model for generate_with

Why a loop of its own: `alignlab.training.learners.finetune_classifier` trains a classification head
on a pooled state against class targets; a generator learns token by token, with the prompt's tokens
masked out of the loss. What can be shared is: batches of similar length (`length_batches`), padding
(`alignlab.lm.batching.pad_batch`) and the LoRA settings of the classifier loop (r, alpha 2r, no
dropout, every linear layer).

How. The prompt is tokenized with the tokenizer's special tokens, the continuation (with one leading
space) without, separately, as `alignlab.lm.scoring` scores them, so the trained tokens are the
scored ones. Batches are LEFT-padded with position ids over real tokens, so every continuation ends
at the last position and the vocabulary projection runs only on the last (longest continuation + 1)
positions (`logits_to_keep`). The loss is the mean negative log-likelihood per continuation token of
the batch; AdamW; the last epoch is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from alignlab.lm.batching import pad_batch, position_ids
from alignlab.training.learners import length_batches, with_lora


@dataclass(kw_only=True)
class CausalFitConfig:
    """The settings of one fine-tuning run of a generator."""

    epochs: int
    lr: float
    batch_size: int
    lora_r: int  # 0: every weight trains
    seed: int
    weight_decay: float = 0.0
    max_length: int = 256  # prompt + continuation tokens, at most (the prompt's start is cut)
    strip: bool = True  # continuations stripped and joined with one space (text); False: as given (code)


def encode_pairs(tokenizer, prompts, continuations, max_length: int = 256,
                 strip: bool = True) -> list[tuple[list[int], int]]:
    """(token ids of prompt + continuation, number of continuation tokens) per pair; pairs whose
    continuation has no token are dropped by the caller (they raise here).

    `strip`: a text continuation is stripped and follows the prompt after one space; False keeps it
    exactly as given, for code whose leading indentation is what the model must write."""
    context = tokenizer([str(p) for p in prompts], add_special_tokens=True)["input_ids"]
    joined = [" " + str(c).strip() if strip else str(c) for c in continuations]
    cont = tokenizer(joined, add_special_tokens=False)["input_ids"]
    out = []
    for i, (ctx, ids) in enumerate(zip(context, cont)):
        if not ids:
            raise ValueError(f"continuation {i} ({continuations[i]!r}) has no tokens")
        ctx = ctx or [tokenizer.eos_token_id]
        sequence = (ctx + ids)[-max_length:]
        if len(sequence) <= len(ids):
            raise ValueError(f"continuation {i} is longer than max_length={max_length}")
        out.append((sequence, len(ids)))
    return out


def continuation_token_logps(model, tokenizer, batch: list[tuple[list[int], int]]):
    """(token log-probabilities, mask) of `batch` (`encode_pairs` items), left-padded: both of
    shape (items, longest continuation); the mask marks each item's own continuation tokens."""
    device = next(model.parameters()).device
    input_ids, mask = pad_batch(tokenizer, [ids for ids, _ in batch], side="left", device=device)
    keep = max(n for _, n in batch) + 1
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids(mask),
                   logits_to_keep=keep, use_cache=False).logits.float()
    # logits[:, j] predicts the token at position L - keep + j + 1: read the last `keep - 1`
    predictions, targets = logits[:, :-1], input_ids[:, -(keep - 1):]
    lengths = torch.tensor([n for _, n in batch], device=device)
    counted = torch.arange(keep - 1, device=device)[None] >= (keep - 1 - lengths)[:, None]
    token_logps = -F.cross_entropy(predictions.reshape(-1, predictions.shape[-1]), targets.reshape(-1),
                                   reduction="none").view_as(targets)
    return token_logps, counted


def continuation_nll(model, tokenizer, batch: list[tuple[list[int], int]]) -> torch.Tensor:
    """Mean negative log-likelihood per continuation token over `batch` (a list of `encode_pairs` items)."""
    token_logps, counted = continuation_token_logps(model, tokenizer, batch)
    return -(token_logps * counted).sum() / counted.sum()


def finetune_causal_lm(model, tokenizer, prompts, continuations, config: CausalFitConfig):
    """Train `model` (a private copy: it is changed, and wrapped when `lora_r > 0`) on the pairs.
    Returns (the trained model, in eval mode; the mean training loss of each epoch)."""
    if len(prompts) != len(continuations) or not len(prompts):
        raise ValueError(f"need as many continuations as prompts, at least one; got {len(prompts)} prompts and "
                         f"{len(continuations)} continuations")
    torch.manual_seed(config.seed)  # LoRA initialisation
    if config.lora_r > 0:
        model = with_lora(model, config.lora_r)
    else:
        for p in model.parameters():
            p.requires_grad_(True)
    encoded = encode_pairs(tokenizer, prompts, continuations, config.max_length, config.strip)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    history = []
    model.train()
    for _ in range(config.epochs):
        total, tokens = 0.0, 0
        for idx in length_batches([len(ids) for ids, _ in encoded], config.batch_size, rng):
            batch = [encoded[i] for i in idx]
            loss = continuation_nll(model, tokenizer, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            n = sum(k for _, k in batch)
            total, tokens = total + loss.item() * n, tokens + n
        history.append(total / tokens)
    model.eval()
    return model, history


def adapter_weights(model) -> dict:
    """The trained weights of a fine-tuned model, as CPU tensors by name (LoRA: the adapters only)."""
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters() if p.requires_grad}


def load_adapter_weights(model, weights: dict, lora_r: int):
    """`model` with `weights` (from `adapter_weights`) put back: wrapped in LoRA of rank `lora_r`
    first when it is > 0 and the model has no adapters yet (a LoRA model gets its adapters'
    weights replaced). Every name must match."""
    if lora_r > 0 and not hasattr(model, "peft_config"):
        model = with_lora(model, lora_r)
    own = dict(model.named_parameters())
    missing = [name for name in weights if name not in own]
    if missing:
        raise ValueError(f"{len(missing)} weight(s) do not fit this model, e.g. {missing[0]!r}")
    with torch.no_grad():
        for name, value in weights.items():
            own[name].copy_(value.to(own[name].device, own[name].dtype))
    return model.eval()


def merged(model):
    """A plain transformers model: LoRA adapters merged into the weights (the model itself otherwise)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
