"""Better weak supervision: bagging and boosting of weak teachers.

Both work with any learner of `alignlab.training.learners` (`learner.fit(split, idx, targets, config,
sample_weight=..., val_labels=...)`, `learner.predict(model, split)`), so the same code ensembles
linear probes on cached features and fine-tuned models.

Bagging (Breiman 1996): K members, each trained on a bootstrap resample of the training indices,
drawn WITH replacement (n draws out of n; about 63% distinct), each with its own seed. Members
vote: soft voting averages their probabilities, hard voting counts their argmax votes (the vote
shares are the ensemble's probabilities). The number of members used is chosen on validation
(`choose_size`), never on test.

Boosting: discrete AdaBoost in its multi-class form SAMME (Zhu et al. 2009), as in scikit-learn:

    err_m   = sum_i w_i [h_m(x_i) != y_i] / sum_i w_i
    alpha_m = lr * (log((1 - err_m) / err_m) + log(K - 1))
    w_i    <- w_i * exp(alpha_m [h_m(x_i) != y_i]),   then normalised to sum to 1

with the weights passed into the member's loss (per-example weights). Boosting stops when a
member's weighted error reaches chance, err_m >= 1 - 1/K (that member is dropped), or is 0 (kept,
alpha = 1, nothing left to reweight). The ensemble's probabilities are the alpha-weighted mean of
its members' probabilities (`boosted_proba`); its hard prediction is the alpha-weighted vote.
tests/test_ensembles.py checks these updates against sklearn's AdaBoostClassifier.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


def bootstrap_indices(n: int, rng: np.random.Generator) -> np.ndarray:
    """n positions drawn uniformly with replacement from range(n)."""
    return rng.integers(0, n, size=n)


def vote(member_probs: list[np.ndarray], how: str = "soft") -> np.ndarray:
    """Combine members' probabilities (each (n, C)): 'soft' averages them, 'hard' gives vote shares."""
    stacked = np.stack(member_probs)  # (K, n, C)
    if how == "soft":
        return stacked.mean(0)
    if how == "hard":
        n_classes = stacked.shape[2]
        votes = np.eye(n_classes)[stacked.argmax(2)]  # (K, n, C) one-hot
        return votes.mean(0)
    raise ValueError(f"voting must be 'soft' or 'hard', got {how!r}")


def hard_vote_predict(shares: np.ndarray, tie_break: np.ndarray) -> np.ndarray:
    """Argmax of vote shares; exact ties are broken by `tie_break` (e.g. soft-vote probabilities)."""
    return (shares + 1e-9 * tie_break).argmax(1)


def bagging(learner, split, idx, labels, config, n_members: int, seed: int, val_labels=None) -> list:
    """Train `n_members` members, member j on a bootstrap resample of `idx` (with replacement)."""
    idx, labels = np.asarray(idx), np.asarray(labels)
    rng = np.random.default_rng(seed)
    members = []
    for _ in range(n_members):
        draw = bootstrap_indices(len(idx), rng)
        member_config = replace(config, seed=int(rng.integers(2**31)))
        members.append(learner.fit(split, idx[draw], labels[draw], member_config, val_labels=val_labels))
    return members


def choose_size(val_accuracy_by_size: dict) -> int:
    """The ensemble size with the best validation accuracy (the smallest among ties)."""
    best = max(val_accuracy_by_size.values())
    return min(k for k, acc in val_accuracy_by_size.items() if acc >= best - 1e-12)


# ---------------------------------------------------------------------------------------------
# SAMME


@dataclass
class SammeStep:
    weights: np.ndarray | None  # the next round's weights (normalised); None: stop, drop this member
    alpha: float | None
    error: float | None


def samme_update(sample_weight, y, pred, n_classes: int, learning_rate: float = 1.0) -> SammeStep:
    """One SAMME update from a member's predictions on its (weighted) training set."""
    w = np.asarray(sample_weight, dtype=np.float64)
    incorrect = np.asarray(pred) != np.asarray(y)
    error = float(np.average(incorrect, weights=w))
    if error <= 0:
        return SammeStep(w / w.sum(), 1.0, 0.0)
    if error >= 1.0 - 1.0 / n_classes:
        return SammeStep(None, None, error)
    alpha = learning_rate * (np.log((1.0 - error) / error) + np.log(n_classes - 1.0))
    w = np.exp(np.log(w) + alpha * incorrect * (w > 0))
    return SammeStep(w / w.sum(), float(alpha), error)


def samme(fit_predict, y, n_rounds: int, n_classes: int, learning_rate: float = 1.0):
    """Run SAMME: `fit_predict(sample_weight) -> (member, predictions on the training set)`.

    Returns (members, alphas, errors); stops early at a perfect member or one at chance.
    """
    y = np.asarray(y)
    w = np.full(len(y), 1.0 / len(y))
    members, alphas, errors = [], [], []
    for _ in range(n_rounds):
        member, pred = fit_predict(w)
        step = samme_update(w, y, pred, n_classes, learning_rate)
        if step.weights is None:  # at chance: drop it and stop
            errors.append(step.error)
            break
        members.append(member)
        alphas.append(step.alpha)
        errors.append(step.error)
        if step.error == 0:
            break
        w = step.weights
    return members, alphas, errors


def adaboost(learner, split, idx, labels, config, n_rounds: int, n_classes: int = 2, seed: int = 0, val_labels=None):
    """SAMME with `learner` members; the weights enter each member's loss (scaled to mean 1)."""
    idx, labels = np.asarray(idx), np.asarray(labels)
    counter = iter(range(10**9))

    def fit_predict(w):
        member_config = replace(config, seed=seed * 1000 + next(counter))
        member = learner.fit(split, idx, labels, member_config, sample_weight=w * len(w), val_labels=val_labels)
        return member, learner.predict(member, split, idx).argmax(1)

    members, alphas, errors = samme(fit_predict, labels, n_rounds, n_classes)
    if not members:
        raise ValueError("AdaBoost: the first weak member is already at chance on its training set")
    return members, alphas, errors


def boosted_proba(member_probs: list[np.ndarray], alphas) -> np.ndarray:
    """Alpha-weighted mean of the members' probabilities (n, C)."""
    alphas = np.asarray(alphas, dtype=np.float64)
    return np.tensordot(alphas / alphas.sum(), np.stack(member_probs), axes=1)


def boosted_predict(member_probs: list[np.ndarray], alphas) -> np.ndarray:
    """SAMME's hard prediction: the class with the largest alpha-weighted vote."""
    n_classes = member_probs[0].shape[1]
    votes = sum(a * np.eye(n_classes)[p.argmax(1)] for a, p in zip(alphas, member_probs))
    return votes.argmax(1)
