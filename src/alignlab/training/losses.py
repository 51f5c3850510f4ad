"""Losses for training a classifier on (possibly soft, possibly weak) labels.

All losses take `logits` (n, C) and `targets` (n, C), a probability distribution per row (one-hot
for gold labels, the teacher's predicted probabilities for weak labels), and optional per-example
`sample_weight` (n,) (AdaBoost passes its weights here, scaled to mean 1 over the training set).
They return a scalar: sum_i w_i * loss_i / batch size. Dividing by the batch size, not by the
batch's weight sum, keeps every minibatch step an unbiased piece of the global weighted loss
sum_i w_i * loss_i / n (normalising per batch would give each batch the same total weight).

- `soft_cross_entropy`: CE(p, q) = -sum_c q_c log p_c. The plain weak-to-strong loss ("xent").
- `confidence_loss`: the auxiliary confidence loss of Burns et al. (2023) ("logconf"),

      L(t) = (1 - a(t)) * CE(p, weak) + a(t) * CE(p, hard(p))

  where hard(p) are the student's own predictions hardened to one-hot. In the binary case a
  prediction is positive when p_1 > tau, with tau the (1 - r) quantile of p_1 in the batch and r the
  weak labels' positive rate in the batch, so the hardened labels keep the weak labels' class
  balance (a student cannot collapse onto one class through its own labels). Both tau and r are
  taken over a rolling window of the recent batches' predictions and weak labels
  (`ConfidenceWindow`, as EleutherAI's w2s does), so a small final batch is not thresholded on its
  own (on a batch of one the within-batch quantile is the example itself, which always gave class
  0). With more than two classes hard(p) is the argmax. The weight follows `confidence_weight`:

      a(t) = a_max * min(1, t / (f * T))

  for step t (0-based count of optimizer steps done) out of T total steps and a warm-up fraction f:
  a linear ramp from 0 that reaches a_max exactly at the end of the warm-up and stays there (no
  jump; f = 0 means a_max from the first step).
- `product_loss`: CE(p, normalize(weak^a * p^b)) with the student's p detached (the "product" loss
  of openai/weak-to-strong's code), with a constant b = `product_beta` (openai: 1, no warm-up) and a = 1.

Targets built from the student's own predictions are detached: they are labels, not paths for
gradients.
"""

from __future__ import annotations

from collections import deque

import torch
import torch.nn.functional as F

from alignlab.training import LOSSES


def _weighted_mean(values: torch.Tensor, sample_weight: torch.Tensor | None) -> torch.Tensor:
    if sample_weight is None:
        return values.mean()
    return (values * sample_weight.to(values.dtype)).sum() / len(values)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, sample_weight: torch.Tensor | None = None):
    """Cross-entropy against a target distribution per row (soft labels)."""
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape")
    per_example = -(targets.to(logits.dtype) * F.log_softmax(logits, dim=-1)).sum(-1)
    return _weighted_mean(per_example, sample_weight)


def confidence_weight(step: int, total_steps: int, alpha_max: float = 0.75, warmup_frac: float = 0.2) -> float:
    """a(t) = a_max * min(1, t / (f * T)): 0 at step 0, a_max at the end of the warm-up, then constant."""
    if not 0.0 <= warmup_frac <= 1.0:
        raise ValueError(f"warmup_frac must be in [0, 1], got {warmup_frac}")
    warmup_steps = warmup_frac * total_steps
    if warmup_steps <= 0:
        return float(alpha_max)
    return float(alpha_max) * min(1.0, step / warmup_steps)


def balanced_threshold(p_positive: torch.Tensor, positive_rate: float) -> torch.Tensor:
    """tau such that about `positive_rate` of the values of `p_positive` are above it: the
    (1 - positive_rate) quantile."""
    positive_rate = float(min(max(positive_rate, 0.0), 1.0))
    return torch.quantile(p_positive.detach().float(), 1.0 - positive_rate)


class ConfidenceWindow:
    """The last `size` examples' positive-class probabilities and weak positive labels, across
    batches: the confidence loss thresholds on them instead of on one (possibly tiny) batch."""

    def __init__(self, size: int = 256):
        self.p_positive, self.weak_positive = deque(maxlen=size), deque(maxlen=size)

    def add(self, p_positive: torch.Tensor, weak_positive: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Add a batch; return (the window's probabilities, the window's weak positive rate). A batch
        at least as large as the window is its own window (full-batch probe heads: as before)."""
        p_positive, weak_positive = p_positive.detach().float().cpu(), weak_positive.detach().float().cpu()
        self.p_positive.extend(p_positive.tolist())
        self.weak_positive.extend(weak_positive.tolist())
        if len(p_positive) >= (self.p_positive.maxlen or 0):
            return p_positive, float(weak_positive.mean())
        return torch.tensor(list(self.p_positive)), sum(self.weak_positive) / len(self.weak_positive)


def harden(probs: torch.Tensor, weak_targets: torch.Tensor, window: ConfidenceWindow | None = None) -> torch.Tensor:
    """The student's predictions as one-hot labels; binary: thresholded to keep the weak class balance
    (over `window` and this batch when a window is given, else over this batch)."""
    probs = probs.detach()
    n_classes = probs.shape[-1]
    if n_classes == 2:
        if window is None:
            tau = balanced_threshold(probs[:, 1], weak_targets[:, 1].float().mean().item())
        else:
            recent, rate = window.add(probs[:, 1], weak_targets[:, 1])
            tau = balanced_threshold(recent, rate).to(probs.device)
        positive = (probs[:, 1] > tau).long()
        return F.one_hot(positive, 2).to(probs.dtype)
    return F.one_hot(probs.argmax(-1), n_classes).to(probs.dtype)


def confidence_loss(logits, weak_targets, alpha: float, sample_weight=None, window: ConfidenceWindow | None = None):
    """(1 - alpha) * CE(p, weak) + alpha * CE(p, hard(p)); see the module docstring."""
    hard = harden(torch.softmax(logits, dim=-1), weak_targets, window)
    target = (1.0 - alpha) * weak_targets.to(logits.dtype) + alpha * hard
    return soft_cross_entropy(logits, target, sample_weight)


def product_loss(logits, weak_targets, beta: float, alpha: float = 1.0, sample_weight=None):
    """CE(p, normalize(weak^alpha * p^beta)), p detached."""
    probs = torch.softmax(logits, dim=-1).detach()
    target = weak_targets.to(logits.dtype).clamp(min=1e-8).pow(alpha) * probs.clamp(min=1e-8).pow(beta)
    target = target / target.sum(-1, keepdim=True)
    return soft_cross_entropy(logits, target, sample_weight)


def compute_loss(name: str, logits, targets, step: int, total_steps: int, *, alpha_max: float = 0.75,
                 warmup_frac: float = 0.2, sample_weight=None, product_beta: float = 1.0,
                 window: ConfidenceWindow | None = None):
    """The loss `name` (one of LOSSES) at optimizer step `step` of `total_steps`. `alpha_max` and
    `warmup_frac` shape the confidence loss only; the product loss has its own constant weight."""
    if name == "xent":
        return soft_cross_entropy(logits, targets, sample_weight)
    if name == "logconf":
        weight = confidence_weight(step, total_steps, alpha_max, warmup_frac)
        return confidence_loss(logits, targets, weight, sample_weight, window)
    if name == "product":
        return product_loss(logits, targets, beta=product_beta, sample_weight=sample_weight)
    raise ValueError(f"unknown loss {name!r}: use one of {', '.join(LOSSES)}")
