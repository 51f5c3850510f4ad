"""The losses: soft cross-entropy, the confidence loss's warm-up and class-balance threshold, product loss."""

import math

import pytest
import torch

from alignlab.training.losses import (
    balanced_threshold,
    compute_loss,
    confidence_loss,
    confidence_weight,
    harden,
    product_loss,
    soft_cross_entropy,
)


def test_soft_cross_entropy_matches_torch_on_hard_and_soft_targets():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.0]])
    hard = torch.tensor([0, 1, 1])
    onehot = torch.nn.functional.one_hot(hard, 2).float()
    expected = torch.nn.functional.cross_entropy(logits, hard).item()
    assert soft_cross_entropy(logits, onehot).item() == pytest.approx(expected)
    soft = torch.tensor([[0.7, 0.3], [0.5, 0.5], [0.1, 0.9]])
    expected = torch.nn.functional.cross_entropy(logits, soft).item()  # torch accepts probabilities too
    assert soft_cross_entropy(logits, soft).item() == pytest.approx(expected)
    weights = torch.tensor([3.0, 0.0, 0.0])  # sum(w * loss) / batch size
    assert soft_cross_entropy(logits, soft, weights).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits[:1], soft[:1]).item())


@pytest.mark.parametrize("step, expected", [(0, 0.0), (5, 0.1875), (10, 0.375), (19, 0.7125), (20, 0.75),
                                            (21, 0.75), (99, 0.75)])
def test_warmup_ramps_linearly_to_the_full_weight(step, expected):
    # 100 steps, warm-up fraction 0.2 -> 20 warm-up steps; a(t) = 0.75 * min(1, t / 20)
    assert confidence_weight(step, 100, alpha_max=0.75, warmup_frac=0.2) == pytest.approx(expected)


def test_warmup_reaches_full_value_continuously_without_a_jump():
    values = [confidence_weight(t, 1000, 1.0, 0.3) for t in range(1000)]
    assert max(b - a for a, b in zip(values, values[1:])) <= 1.0 / 300 + 1e-12  # no jump anywhere
    assert values[299] == pytest.approx(299 / 300) and values[300] == 1.0  # reaches the full value, not a tenth
    assert confidence_weight(0, 100, 0.5, 0.0) == 0.5  # no warm-up
    with pytest.raises(ValueError):
        confidence_weight(0, 100, 0.5, 1.5)


def test_threshold_keeps_the_weak_class_balance():
    torch.manual_seed(0)
    p = torch.rand(1000) * 0.3 + 0.6  # a student that says "positive" to everything at 0.5
    for rate in (0.2, 0.5, 0.8):
        tau = balanced_threshold(p, rate)
        assert (p > tau).float().mean().item() == pytest.approx(rate, abs=0.002)
    weak = torch.zeros(1000, 2)
    weak[:300, 1] = 1.0  # 30% positive weak labels
    weak[300:, 0] = 1.0
    probs = torch.stack([1 - p, p], 1)
    hardened = harden(probs, weak)
    assert hardened[:, 1].mean().item() == pytest.approx(0.3, abs=0.002)
    assert torch.all(hardened.sum(1) == 1)


def test_confidence_loss_endpoints():
    torch.manual_seed(1)
    logits = torch.randn(64, 2)
    weak = torch.softmax(torch.randn(64, 2), -1)
    assert confidence_loss(logits, weak, 0.0).item() == pytest.approx(soft_cross_entropy(logits, weak).item())
    hard = harden(torch.softmax(logits, -1), weak)
    assert confidence_loss(logits, weak, 1.0).item() == pytest.approx(soft_cross_entropy(logits, hard).item())
    # the mixture is linear in alpha
    mid = confidence_loss(logits, weak, 0.4).item()
    ends = soft_cross_entropy(logits, weak).item(), soft_cross_entropy(logits, hard).item()
    assert mid == pytest.approx(0.6 * ends[0] + 0.4 * ends[1], rel=1e-5)
    # the self-labels carry no gradient of their own: the gradient equals CE's against fixed targets
    logits.requires_grad_(True)
    confidence_loss(logits, weak, 0.5).backward()
    fixed = (0.5 * weak + 0.5 * hard).detach()
    expected = torch.autograd.grad(soft_cross_entropy(logits, fixed), logits)[0]
    assert torch.allclose(logits.grad, expected, atol=1e-6)


def test_product_loss_and_dispatch():
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    weak = torch.tensor([[0.8, 0.2], [0.3, 0.7]])
    plain = soft_cross_entropy(logits, weak).item()
    assert product_loss(logits, weak, beta=0.0).item() == pytest.approx(plain, rel=1e-5)
    assert compute_loss("logconf", logits, weak, step=0, total_steps=10).item() == pytest.approx(
        soft_cross_entropy(logits, weak).item())  # weight 0 at step 0
    with pytest.raises(ValueError, match="unknown loss"):
        compute_loss("hinge", logits, weak, 0, 10)
    assert math.isfinite(compute_loss("product", logits, weak, 5, 10).item())


# ---------------------------------------------------------------------------------------------
# fixes: per-example weights over the batch size, the product loss's own weight, the rolling window


def test_weighted_loss_over_minibatches_is_the_global_weighted_loss():
    """AdaBoost weights (mean 1 over the training set) split into minibatches: the mean of the
    batch losses must equal the global weighted mean, which per-batch normalisation breaks."""
    torch.manual_seed(0)
    logits, targets = torch.randn(4, 2), torch.softmax(torch.randn(4, 2), -1)
    weights = torch.tensor([3.0, 1.0, 0.0, 0.0])  # mean 1
    per_example = -(targets * torch.log_softmax(logits, -1)).sum(-1)
    global_loss = (weights * per_example).sum() / 4
    batches = [soft_cross_entropy(logits[i:i + 2], targets[i:i + 2], weights[i:i + 2]) for i in (0, 2)]
    assert (sum(batches) / 2).item() == pytest.approx(global_loss.item(), rel=1e-6)


def test_product_loss_has_a_constant_weight_of_one_by_default():
    """openai/weak-to-strong: CE(p, normalize(weak * p)), beta = 1 from the first step, no warm-up."""
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    weak = torch.tensor([[0.8, 0.2], [0.3, 0.7]])
    expected = product_loss(logits, weak, beta=1.0).item()
    for step in (0, 5, 99):
        assert compute_loss("product", logits, weak, step=step, total_steps=100).item() == pytest.approx(expected)
    assert compute_loss("product", logits, weak, 0, 100, product_beta=0.0).item() == pytest.approx(
        soft_cross_entropy(logits, weak).item(), rel=1e-5)
    # alpha_max and warmup_frac shape the confidence loss only
    shaped = compute_loss("product", logits, weak, 0, 100, alpha_max=0.1, warmup_frac=0.9)
    assert shaped.item() == pytest.approx(expected)


def test_confidence_threshold_uses_a_rolling_window_not_a_batch_of_one():
    """On a final batch of one the within-batch quantile is the example itself, which always gave
    class 0; over a window of recent batches a confident positive prediction stays positive."""
    from alignlab.training import losses

    window = losses.ConfidenceWindow(64)
    torch.manual_seed(0)
    p = torch.rand(32)
    weak = torch.stack([1 - (p > 0.5).float(), (p > 0.5).float()], 1)
    losses.harden(torch.stack([1 - p, p], 1), weak, window)
    one = torch.tensor([[0.02, 0.98]])
    assert losses.harden(one, torch.tensor([[0.0, 1.0]]), window)[0, 1].item() == 1.0
    assert losses.harden(torch.tensor([[0.97, 0.03]]), torch.tensor([[1.0, 0.0]]), window)[0, 1].item() == 0.0
    assert len(window.p_positive) == 34


def test_a_batch_larger_than_the_window_is_thresholded_on_itself():
    """Full-batch probe heads: the threshold is over the whole batch, as without a window."""
    from alignlab.training import losses

    torch.manual_seed(2)
    p = torch.rand(600)
    probs = torch.stack([1 - p, p], 1)
    weak = torch.zeros(600, 2)
    weak[:150, 1] = 1.0
    weak[150:, 0] = 1.0
    with_window = losses.harden(probs, weak, losses.ConfidenceWindow(256))
    assert torch.equal(with_window, losses.harden(probs, weak))
