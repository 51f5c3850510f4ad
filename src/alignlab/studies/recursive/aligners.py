"""Aligners: the supervisors that label a pool for the next student.

An aligner is one trained model or a weighted ensemble of trained models; either way it predicts
probabilities (n, 2) on any split through the learners it was trained with, so the chain code
treats both alike.

The ensemble aligner (the "synchronously enhanced" teacher) weighs member j by the log-odds of
its accuracy on G_check, the held-out part of the human-labelled set G:

    w_j = max(0, log(acc_j / (1 - acc_j))),   normalised to sum to 1

and averages the members' probabilities with those weights. Log-odds weights are the optimal
weighted vote for members that err independently (Nitzan & Paroush 1982); for two classes they
equal SAMME's member weight (`alignlab.training.ensembles`), whose weighted mean of probabilities
(`boosted_proba`) combines the members here. A member at or below chance gets weight 0; if every
member is, the weights are uniform. Accuracies are clipped to [0.001, 0.999] so a perfect member
gets a large, finite weight. G_check is never trained on, so the accuracies are unbiased for every
member, the first aligner included (it trains on G_fit only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alignlab.training import ensembles


def member_weights(check_accuracy) -> np.ndarray:
    """Normalised log-odds weights of ensemble members from their accuracies on G_check."""
    acc = np.clip(np.asarray(check_accuracy, dtype=float), 1e-3, 1 - 1e-3)
    weights = np.maximum(np.log(acc / (1.0 - acc)), 0.0)
    if weights.sum() <= 0:
        weights = np.ones_like(weights)
    return weights / weights.sum()


@dataclass
class Aligner:
    """Members (learner, trained model) and their weights; one member is a plain model."""

    members: list
    weights: np.ndarray

    @classmethod
    def single(cls, learner, model) -> Aligner:
        return cls([(learner, model)], np.ones(1))

    def predict(self, split: str, idx=None) -> np.ndarray:
        probs = [learner.predict(model, split, idx) for learner, model in self.members]
        if len(probs) == 1:
            return probs[0]
        return ensembles.boosted_proba(probs, self.weights)
