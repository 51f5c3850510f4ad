"""Bagging draws with replacement; SAMME matches scikit-learn's AdaBoostClassifier, binary and multiclass."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import AdaBoostClassifier
from sklearn.tree import DecisionTreeClassifier

from alignlab.training import ensembles
from alignlab.training.learners import FitConfig, ProbeLearner


def fit_config(**overrides) -> FitConfig:
    """Probe-mode settings of study 01's quick profile, with `overrides`."""
    return FitConfig(**{"loss": "xent", "epochs": 100, "lr": 1e-2, "batch_size": 4096, "weight_decay": 1e-3,
                        "alpha_max": 0.75, "warmup_frac": 0.2, "seed": 0, **overrides})


def test_bootstrap_draws_with_replacement():
    rng = np.random.default_rng(0)
    draws = [ensembles.bootstrap_indices(500, rng) for _ in range(20)]
    for d in draws:
        assert len(d) == 500 and d.min() >= 0 and d.max() < 500
        assert len(np.unique(d)) < 500  # duplicates: with replacement
        assert 0.55 < len(np.unique(d)) / 500 < 0.7  # about 1 - 1/e distinct
    assert not all(np.array_equal(draws[0], d) for d in draws[1:])  # each member its own resample


class RecordingLearner:
    """Remembers what each fit was given."""

    def __init__(self):
        self.calls = []

    def fit(self, split, idx, targets, config, sample_weight=None, val_labels=None):
        self.calls.append((np.asarray(idx), config.seed, sample_weight))
        return len(self.calls)

    def predict(self, model, split, idx=None):
        return np.tile([0.5, 0.5], (len(idx) if idx is not None else 3, 1))


def test_bagging_trains_members_on_resamples_of_the_given_indices():
    learner = RecordingLearner()
    idx = np.arange(100, 200)
    members = ensembles.bagging(learner, "train", idx, np.zeros(100, int), fit_config(), n_members=5, seed=3)
    assert members == [1, 2, 3, 4, 5]
    seen = [c[0] for c in learner.calls]
    assert all(np.isin(s, idx).all() and len(np.unique(s)) < 100 for s in seen)
    assert len({c[1] for c in learner.calls}) == 5  # distinct member seeds


def test_voting_and_size_choice():
    a = np.array([[0.9, 0.1], [0.4, 0.6]])
    b = np.array([[0.6, 0.4], [0.45, 0.55]])
    c = np.array([[0.2, 0.8], [0.7, 0.3]])
    np.testing.assert_allclose(ensembles.vote([a, b, c], "soft"), (a + b + c) / 3)
    np.testing.assert_allclose(ensembles.vote([a, b, c], "hard"), [[2 / 3, 1 / 3], [1 / 3, 2 / 3]])
    assert ensembles.choose_size({1: 0.6, 2: 0.7, 3: 0.7, 4: 0.65}) == 2
    with pytest.raises(ValueError):
        ensembles.vote([a], "majority")


@pytest.mark.parametrize("n_classes", [2, 3])
def test_samme_matches_sklearn(n_classes):
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1, flip_y=0.15, random_state=0)
    reference = AdaBoostClassifier(DecisionTreeClassifier(max_depth=1), n_estimators=15, random_state=0).fit(X, y)

    def fit_predict(w):
        stump = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y, sample_weight=w)
        return stump, stump.predict(X)

    members, alphas, errors = ensembles.samme(fit_predict, y, n_rounds=15, n_classes=n_classes)
    m = len(reference.estimators_)
    assert len(members) == m
    np.testing.assert_allclose(alphas, reference.estimator_weights_[:m], rtol=1e-6)
    np.testing.assert_allclose(errors[:m], reference.estimator_errors_[:m], rtol=1e-6)
    # the ensemble's hard prediction is sklearn's
    probs = [np.eye(n_classes)[s.predict(X)] for s in members]
    np.testing.assert_array_equal(ensembles.boosted_predict(probs, alphas), reference.predict(X))


def test_samme_update_by_hand_and_stopping_at_chance():
    w = np.full(4, 0.25)
    step = ensembles.samme_update(w, [0, 0, 1, 1], [0, 0, 1, 0], n_classes=2)
    assert step.error == pytest.approx(0.25)
    assert step.alpha == pytest.approx(np.log(3))
    np.testing.assert_allclose(step.weights, np.array([1, 1, 1, 3]) / 6)  # the mistake x3, renormalised
    three = ensembles.samme_update(w, [0, 1, 2, 2], [0, 1, 1, 1], n_classes=3)
    assert three.alpha == pytest.approx(np.log(1.0) + np.log(2))  # err 0.5 < 2/3: still useful with 3 classes
    at_chance = ensembles.samme_update(w, [0, 0, 1, 1], [1, 1, 1, 1], n_classes=2)
    assert at_chance.weights is None and at_chance.error == pytest.approx(0.5)


def test_adaboost_passes_weights_into_the_head_loss():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = (X[:, 0] + 0.8 * rng.normal(size=200) > 0).astype(int)
    learner = ProbeLearner({"train": X, "validation": X[:50]})
    members, alphas, errors = ensembles.adaboost(learner, "train", np.arange(200), y, fit_config(epochs=100),
                                                 n_rounds=4, seed=0)
    assert 1 <= len(members) <= 4 and all(a > 0 for a in alphas)
    assert errors[0] < 0.5
    if len(members) > 1:  # reweighting changes the second member
        assert not np.allclose(members[0].weight, members[1].weight)
    probs = ensembles.boosted_proba([learner.predict(m, "train") for m in members], alphas)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_boosting_weights_enter_finetune_minibatches_as_one_global_loss():
    """With minibatches, an example's boosting weight must count the same whichever batch it lands
    in: the loss of a batch is sum(w * loss) / batch size (see alignlab.training.losses)."""
    import torch

    from alignlab.training.losses import soft_cross_entropy

    logits = torch.zeros(4, 2)
    targets = torch.tensor([[0.0, 1.0]] * 4)
    heavy = soft_cross_entropy(logits[:2], targets[:2], torch.tensor([4.0, 0.0]))
    light = soft_cross_entropy(logits[2:], targets[2:], torch.tensor([0.0, 0.0]))
    # the heavy batch carries all the weight: twice the unweighted loss of its size, not the same
    assert heavy.item() == pytest.approx(2 * soft_cross_entropy(logits[:2], targets[:2]).item())
    assert light.item() == 0.0
