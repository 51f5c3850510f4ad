"""Direct preference optimisation (DPO, Rafailov et al., 2023) of a causal LM on (prompt, chosen,
rejected) triples, continuing from a (LoRA-)fine-tuned model.

    model, losses = finetune_dpo(sft_model, tokenizer, prompts, chosen, rejected, DPOFitConfig(...))

The loss is written here rather than taken from `trl`: `trl` is not a dependency, and the loss is
one line over sequence log-probabilities,
    -log sigmoid(beta * ((logp_chosen - ref_chosen) - (logp_rejected - ref_rejected))).
The reference model is the model as it is passed in (e.g. the SFT adapter): its log-probabilities
are computed once, before the first step, so no frozen copy is kept. Tokenization, left padding
and the continuation-only masking are those of `alignlab.training.causal`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from alignlab.training.causal import continuation_token_logps, encode_pairs
from alignlab.training.learners import length_batches


@dataclass(kw_only=True)
class DPOFitConfig:
    """The settings of one DPO run."""

    epochs: int
    lr: float
    beta: float
    batch_size: int
    seed: int
    max_length: int = 384  # prompt + continuation tokens, at most (the prompt's start is cut)
    strip: bool = True  # as in `CausalFitConfig`: False keeps each continuation exactly as given


def dpo_loss(logp_chosen, logp_rejected, ref_chosen, ref_rejected, beta: float) -> torch.Tensor:
    """Mean DPO loss over a batch of sequence log-probabilities (log 2 when policy == reference)."""
    margin = beta * ((logp_chosen - ref_chosen) - (logp_rejected - ref_rejected))
    return -F.logsigmoid(margin).mean()


def sequence_logps(model, tokenizer, batch: list[tuple[list[int], int]]) -> torch.Tensor:
    """Sum of the continuation tokens' log-probabilities, per item of `batch` (`encode_pairs` items)."""
    token_logps, counted = continuation_token_logps(model, tokenizer, batch)
    return (token_logps * counted).sum(dim=1)


def finetune_dpo(model, tokenizer, prompts, chosen, rejected, config: DPOFitConfig):
    """Train the trainable weights of `model` (e.g. the LoRA adapters of an SFT model; changed in
    place) with the DPO loss against `model` as it is now. Returns (the model, in eval mode; the
    mean loss of each epoch)."""
    if not (len(prompts) == len(chosen) == len(rejected)) or not len(prompts):
        raise ValueError(f"need as many chosen and rejected continuations as prompts, at least one; got "
                         f"{len(prompts)}, {len(chosen)} and {len(rejected)}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable weights (pass the model `finetune_causal_lm` returned)")
    good = encode_pairs(tokenizer, prompts, chosen, config.max_length, config.strip)
    bad = encode_pairs(tokenizer, prompts, rejected, config.max_length, config.strip)
    model.eval()
    with torch.no_grad():  # the reference: the model before any DPO step
        ref_good = torch.cat([sequence_logps(model, tokenizer, [g]) for g in good])
        ref_bad = torch.cat([sequence_logps(model, tokenizer, [b]) for b in bad])
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    rng = np.random.default_rng(config.seed)
    lengths = [len(g[0]) + len(b[0]) for g, b in zip(good, bad)]
    history = []
    model.train()
    for _ in range(config.epochs):
        total = 0.0
        for idx in length_batches(lengths, config.batch_size, rng):
            idx = [int(i) for i in idx]
            logps = sequence_logps(model, tokenizer, [good[i] for i in idx] + [bad[i] for i in idx])
            loss = dpo_loss(logps[:len(idx)], logps[len(idx):], ref_good[idx], ref_bad[idx], config.beta)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        history.append(total / len(prompts))
    model.eval()
    return model, history
