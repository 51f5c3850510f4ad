"""Tuned prompts for factual probing (study 03): the modules that train and their losses.

Only a probe's prompt trains; the language model stays frozen (alignlab.studies.probing.queries scores the
queries). Three tuned probes (TUNED):

- `softprompt`  OptiPrompt-style: trainable vectors in place of the template's words, around the
                subject: [vectors] subject [vectors] object.
- `ptuning`     P-tuning-style: the same slots, filled by a prompt encoder (pseudo-token embeddings ->
                BiLSTM -> MLP).
- `mecod`       `ptuning` trained further with MeCoD's two extra losses (Wang et al. 2023, "Towards
                Alleviating the Object Bias in Prompt Tuning-based Factual Knowledge Extraction"),
                warm-started from the trained `ptuning` prompt as in the release. A counterfactual
                query with every subject token hidden gives the *prompt-only* distribution q over
                candidates; a gate picks "biased" objects S from it; Object Equalization (OE)
                flattens q on S and Biased Object Obstruction (BOO) = -log p_gold / (p_gold +
                sum_{o in S, o != gold} p_o) pushes the gold object above them, p the factual
                distribution. loss = task + a1 * OE + a2 * BOO (paper defaults a1=0.2, a2=0.1).

Two gates (config `gate`):

- "released" (default; astrodrew/MeCoD, p-tuning-MeCoD/model/modeling.py): the top-300 objects of
  q (TOP_BIASED) are candidates for S; a linear layer maps each one's output embedding (detached)
  to two logits, and a hard Gumbel-softmax (tau 1) puts the object in S when it picks the first.
  OE = sum_{o in S} q_o log q_o over the selected objects, q NOT renormalised on S. The release
  builds S in a Python loop from the hard sample, so no gradient reaches the linear layer: it
  stays at its random initialisation and S is a fresh random draw each step, shaped by it
  (`ReleasedGate`; the tests check both the selection and the absent gradient).
- "learned" (an ablation, this project's earlier reading of the paper's equations): soft
  g_o = sigmoid(scale * log(K q_o) - threshold) with learnable scale and threshold, fed by q
  (detached); OE = sum q~ log q~ with q~ = g q / sum(g q) renormalised, BOO with weights g_o.
  Both losses reach the gate, which is a flaw: BOO is smallest with an empty gate, and a negative
  scale selects the least-favoured objects; kept to show what that does (`Gate`).

Results are cached by alignlab.studies.probing.probes: bump its VERSION when this module's behaviour changes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from alignlab.studies.probing.config import TUNED
from alignlab.studies.probing.queries import manual_slot_init

# Prompt shape for prompt_init="random" and the prompt encoder's width; not study parameters, but
# part of the cache key of every trained probe (alignlab.studies.probing.probes.training_key).
RANDOM_SLOTS = 3  # slots before and after the subject
ENCODER_HIDDEN = 128


# ---------------------------------------------------------------------------------------------
# Prompt parameters

def make_prompt(method: str, embed, tokenizer, template: str, prompt_init: str, seed: int,
                n_slots: int = RANDOM_SLOTS, hidden: int = ENCODER_HIDDEN, gate: str = "released"):
    """The trainable module of a tuned probe: forward() -> (n_slots, dim) prompt vectors.
    `embed` is the model's input embedding module (kept frozen). prompt_init "manual": the slots
    start from the template's words; "random": `n_slots` slots on each side of the subject."""
    if method not in TUNED:
        raise ValueError(f"method must be one of: {', '.join(TUNED)}; got {method!r}")
    torch.manual_seed(seed)
    if prompt_init == "manual":
        before, after = manual_slot_init(tokenizer, template)
        with torch.no_grad():
            base = embed(torch.tensor(before + after, dtype=torch.long)).float()
        slots = (len(before), len(after))
    else:
        slots = (n_slots, n_slots)
        with torch.no_grad():
            scale = embed.weight.float().std().item()
        base = torch.zeros(sum(slots), embed.weight.shape[1])
        if method == "softprompt":
            base = torch.randn_like(base) * scale
    if method == "softprompt":
        module = SoftPrompt(base)
    else:
        module = PromptEncoder(base, hidden, zero_init=prompt_init == "manual")
    if method == "mecod":
        module.gate = ReleasedGate(embed.weight.shape[1]) if gate == "released" else Gate()
    module.slots = slots
    return module


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


TOP_BIASED = 300  # the released gate looks at this many top prompt-only predictions


class ReleasedGate(nn.Module):
    """MeCoD's released gate: forward(q_logprobs (B, K), embeddings (K, dim)) -> (B, K) 0/1 mask
    of the selected biased objects, drawn among each row's TOP_BIASED prompt-only favourites."""

    def __init__(self, dim: int, top_k: int = TOP_BIASED):
        super().__init__()
        self.linear = nn.Linear(dim, 2)
        self.top_k = top_k

    def forward(self, prompt_only_logprobs, embeddings):
        q = prompt_only_logprobs.detach()
        q = q.unsqueeze(0) if q.dim() == 1 else q
        top = q.topk(min(self.top_k, q.shape[-1]), dim=-1).indices               # (B, k)
        logits = self.linear(embeddings.detach()[top])                           # (B, k, 2)
        picked = torch.nn.functional.gumbel_softmax(logits, tau=1.0, hard=True)[..., 0]
        mask = torch.zeros_like(q)
        return mask.scatter(1, top, picked.detach())  # detached: the release's loop passes no gradient


class Gate(nn.Module):
    """The "learned" ablation gate over candidates: g_o = sigmoid(scale * log(K q_o) - threshold)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0))
        self.threshold = nn.Parameter(torch.tensor(0.0))

    def forward(self, prompt_only_logprobs):
        k = prompt_only_logprobs.shape[-1]
        return torch.sigmoid(self.scale * (prompt_only_logprobs + math.log(k)) - self.threshold)


# ---------------------------------------------------------------------------------------------
# Losses

def task_loss(logprobs, gold):
    """Cross-entropy over the scored candidates: logprobs (B, K), gold (B,) indices."""
    return torch.nn.functional.cross_entropy(logprobs, gold)


def oe_loss(prompt_only_logprobs, gate):
    """Object Equalization: negative entropy of the prompt-only distribution q restricted to
    the gated set, q~ = g*q / sum(g*q). prompt_only_logprobs: (K,) scores of the subject-masked
    query; gate: (K,) in (0, 1). Minimizing it flattens q over the biased objects."""
    q = torch.softmax(prompt_only_logprobs, dim=-1)
    weighted = gate * q
    q_tilde = weighted / weighted.sum().clamp(min=1e-12)
    return (q_tilde * torch.log(q_tilde.clamp(min=1e-12))).sum()


def boo_loss(logprobs, gold, gate, valid=None):
    """Biased Object Obstruction: mean over rows of -log p_gold / (p_gold + sum_o g_o p_o), gate
    (K,) shared or (B, K) per row, with p
    the softmax over candidates of the factual query, o over candidates other than the gold
    (and other than `valid` (B, K) bool, other true objects of the row)."""
    p = torch.softmax(logprobs, dim=-1)
    p_gold = p.gather(1, gold.unsqueeze(1)).squeeze(1)
    others = torch.ones_like(p)
    others.scatter_(1, gold.unsqueeze(1), 0.0)
    if valid is not None:
        others = others * (~valid).float()
    biased = (others * (gate if gate.dim() == 2 else gate.unsqueeze(0)) * p).sum(1)
    return -(torch.log(p_gold.clamp(min=1e-12)) - torch.log((p_gold + biased).clamp(min=1e-12))).mean()


def oe_loss_released(prompt_only_logprobs, mask):
    """Released Object Equalization: sum over the selected objects of q log q, q the softmax over
    all candidates (not renormalised on the selection); mean over rows of (B, K) inputs."""
    log_q = torch.log_softmax(prompt_only_logprobs, dim=-1)
    out = (log_q.exp() * log_q * mask).sum(-1)
    return out.mean()


def mecod_losses(logprobs, gold, prompt_only_logprobs, gate_module, a1: float, a2: float, valid=None,
                 embeddings=None):
    """(total, parts): task + a1*OE + a2*BOO. prompt_only_logprobs: (K,) or (B, K), one
    counterfactual per row (length-matched to its subject); the gate sees them detached.
    `embeddings` (K, dim): the candidates' output embeddings, needed by the released gate."""
    task = task_loss(logprobs, gold)
    if isinstance(gate_module, ReleasedGate):
        if embeddings is None:
            raise ValueError("the released MeCoD gate needs the candidates' output embeddings")
        mask = gate_module(prompt_only_logprobs, embeddings)
        mask = mask.expand(logprobs.shape[0], -1) if mask.shape[0] == 1 else mask
        oe = oe_loss_released(prompt_only_logprobs, mask)
        boo = boo_loss(logprobs, gold, mask, valid)
        size = mask.sum(-1).mean()
    else:
        rows = prompt_only_logprobs if prompt_only_logprobs.dim() == 2 else prompt_only_logprobs.unsqueeze(0)
        gates = gate_module(torch.log_softmax(rows, -1).detach())
        oe = torch.stack([oe_loss(r, g) for r, g in zip(rows, gates)]).mean()
        boo = boo_loss(logprobs, gold, gates if len(gates) == len(logprobs) else gates[0], valid)
        size = gates.sum(-1).mean()
    return task + a1 * oe + a2 * boo, {"task": task, "oe": oe, "boo": boo, "gate_size": size}
