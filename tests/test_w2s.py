"""PGR on known numbers (and the undefined case); the pipeline on synthetic features; finetune mode."""

import math
import warnings

import numpy as np
import pytest

from alignlab.studies.w2sg import pipeline as w2s
from alignlab.training.learners import FinetuneLearner, ProbeLearner, TrainConfig, finetune_classifier, length_batches


def test_pgr_known_numbers():
    assert w2s.pgr(0.6, 0.7, 0.8) == pytest.approx(0.5)
    assert w2s.pgr(0.6, 0.8, 0.8) == pytest.approx(1.0)
    assert w2s.pgr(0.6, 0.6, 0.8) == pytest.approx(0.0)
    assert w2s.pgr(0.6, 0.55, 0.8) == pytest.approx(-0.25)
    assert w2s.pgr(0.5, 0.9, 0.7) == pytest.approx(2.0)  # a student above its ceiling


@pytest.mark.parametrize("weak, ceiling", [(0.7, 0.7), (0.75, 0.7)])
def test_pgr_undefined_is_nan_with_a_warning(weak, ceiling):
    with pytest.warns(w2s.PGRUndefinedWarning, match="undefined"):
        value = w2s.pgr(weak, 0.9, ceiling)
    assert math.isnan(value)


def test_pgr_nan_input_is_nan_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(w2s.pgr(float("nan"), 0.7, 0.8))


def test_split_halves_partition_and_depend_on_seed():
    a1, a2 = w2s.split_halves(101, seed=0)
    assert len(a1) == 50 and len(a2) == 51
    assert sorted(np.concatenate([a1, a2]).tolist()) == list(range(101))
    b1, _ = w2s.split_halves(101, seed=1)
    assert not np.array_equal(a1, b1)
    np.testing.assert_array_equal(a1, w2s.split_halves(101, seed=0)[0])


def synthetic(n=600, seed=0):
    """A latent label; the strong features see it clearly, the weak ones through noise."""
    rng = np.random.default_rng(seed)
    splits, labels = {}, {}
    for split, size in (("train", n), ("validation", 200), ("test", 300)):
        y = rng.integers(0, 2, size)
        signal = (2 * y - 1)[:, None]
        strong = np.hstack([signal * 1.5 + rng.normal(size=(size, 1)), rng.normal(size=(size, 7))])
        weak = np.hstack([signal * 0.4 + rng.normal(size=(size, 1)), rng.normal(size=(size, 3))])
        splits[split], labels[split] = (weak.astype(np.float32), strong.astype(np.float32)), y
    weak = ProbeLearner({s: v[0] for s, v in splits.items()})
    strong = ProbeLearner({s: v[1] for s, v in splits.items()})
    return weak, strong, labels


def test_run_seed_orders_weak_below_ceiling_and_reports_every_method_and_loss():
    weak, strong, labels = synthetic()
    config = w2s.W2SConfig(n_bagging=4, n_boosting=3, epochs=60)
    out = w2s.run_seed(weak, strong, labels, config, seed=0)
    rows = out["rows"]
    assert {(r["method"], r["loss"]) for r in rows} == {(m, l) for m in w2s.METHODS for l in config.losses}
    single = next(r for r in rows if r["method"] == "single" and r["loss"] == "xent")
    assert single["weak_acc"] < single["ceiling_acc"]
    assert 0.55 < single["weak_acc"] < 0.8 and single["ceiling_acc"] > 0.85
    assert single["student_acc"] > single["weak_acc"]  # the strong student generalizes past its teacher here
    bag = next(r for r in rows if r["method"] == "bagging")
    assert 1 <= bag["ensemble_size"] <= 4
    curve = out["curve"]
    assert {c["voting"] for c in curve} == {"soft", "hard", "weighted"}
    assert max(c["size"] for c in curve if c["method"] == "bagging") == 4


def test_seeds_change_the_results_and_a_seed_reproduces():
    weak, strong, labels = synthetic()
    config = w2s.W2SConfig(methods=["single"], losses=["xent"], epochs=40)
    a = w2s.run_seed(weak, strong, labels, config, 0)["rows"][0]
    b = w2s.run_seed(weak, strong, labels, config, 1)["rows"][0]
    assert a == w2s.run_seed(weak, strong, labels, config, 0)["rows"][0]
    assert a["weak_label_acc"] != b["weak_label_acc"]


def test_check_config_names_the_parameter():
    with pytest.raises(ValueError, match="losses"):
        w2s.check_config(w2s.W2SConfig(losses=["hinge"]))
    with pytest.raises(ValueError, match="mode"):
        w2s.check_config(w2s.W2SConfig(mode="lora"))
    with pytest.raises(ValueError, match="alpha_max"):
        w2s.check_config(w2s.W2SConfig(alpha_max=2.0))
    with pytest.raises(ValueError, match="feature_layer"):
        w2s.check_config(w2s.W2SConfig(feature_layer=1.5))


def test_add_pgr_and_metrics_keys():
    import pandas as pd

    weak, strong, labels = synthetic()
    out = w2s.run_seed(weak, strong, labels, w2s.W2SConfig(n_bagging=2, n_boosting=2, epochs=30), 0)
    results = w2s.add_pgr(pd.DataFrame([{"pair": "w -> s", **r} for r in out["rows"]]))
    m = w2s.metrics(results, pd.DataFrame(out["curve"]))
    for key in ("weak_acc", "ceiling_acc", "student_acc_xent", "student_acc_logconf", "pgr_xent", "pgr_logconf",
                "bagging_weak_acc", "bagging_pgr", "boosting_weak_acc", "boosting_pgr"):
        assert key in m and np.isfinite(m[key])
    assert len(w2s.summary_table(results)) == 9


# ---------------------------------------------------------------------------------------------
# finetune mode on a tiny random model


def tiny_classifier(seed=0):
    from alignlab.models import _make_classifier_class
    from alignlab.testing import tiny_causal_lm

    import torch

    torch.manual_seed(seed)
    model, tokenizer = tiny_causal_lm("llama", seed=seed)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return _make_classifier_class()(model.model, 2, "last"), tokenizer


def test_length_batches_cover_every_index_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 50, 103)
    batches = length_batches(lengths, 16, rng)
    assert sorted(np.concatenate(batches).tolist()) == list(range(103))
    assert all(np.ptp(lengths[b]) <= np.ptp(lengths) for b in batches)


@pytest.mark.parametrize("kwargs", [{}, {"train_layers": 1}, {"lora_r": 4}])
def test_finetune_learns_a_trivial_task(kwargs):
    texts = [("good " if i % 2 else "bad ") + "x " * (i % 5) for i in range(64)]
    labels = np.array([i % 2 for i in range(64)])
    config = TrainConfig(loss="xent", epochs=6, lr=3e-3, batch_size=16, weight_decay=0.0)
    model = finetune_classifier(tiny_classifier(), texts, labels, config, val_texts=texts, val_labels=labels, **kwargs)
    probs = model.predict_proba(texts)
    assert probs.shape == (64, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert (probs.argmax(1) == labels).mean() >= 0.9


def test_finetune_reads_the_last_real_token_not_pads():
    """Padding must not change a text's prediction (the head reads through the attention mask)."""
    classifier, tokenizer = tiny_classifier()
    model = finetune_classifier((classifier, tokenizer), ["a b", "c"] * 4, np.array([0, 1] * 4),
                                TrainConfig(epochs=1, batch_size=8, lr=1e-3))
    alone = model.predict_proba(["a b c d e"], batch_size=1)
    batched = model.predict_proba(["a b c d e", "a b c d e f g h i j k l m n o p"], batch_size=2)[:1]
    np.testing.assert_allclose(alone, batched, atol=1e-5)


def test_finetune_learner_has_the_probe_api(monkeypatch):
    import alignlab.training.learners as train

    monkeypatch.setattr("alignlab.models.load_classifier", lambda name, num_labels=2: tiny_classifier())
    texts = {"train": ["good a", "bad b"] * 8, "validation": ["good c", "bad d"], "test": ["good e", "bad f"]}
    learner = FinetuneLearner("tiny", texts)
    model = learner.fit("train", np.arange(16), np.array([0, 1] * 8), TrainConfig(epochs=2, batch_size=8, lr=1e-3),
                        val_labels=np.array([0, 1]))
    assert learner.predict(model, "test").shape == (2, 2)
    assert learner.predict(model, "train", [0, 1, 2]).shape == (3, 2)
    assert train.FinetuneLearner.mode == "finetune"


# ---------------------------------------------------------------------------------------------
# the notebook, end to end through the runner (smallest settings)

REQUIRED = ("weak_acc", "ceiling_acc", "student_acc_xent", "student_acc_logconf", "pgr_xent", "pgr_logconf",
            "bagging_weak_acc", "bagging_pgr", "boosting_weak_acc", "boosting_pgr", "icl_acc_weak_labels",
            "icl_acc_gold_labels")


@pytest.mark.slow
def test_notebook_smoke_run(run_study):
    result, metrics = run_study(
        "01_w2sg_ensembles", weak_models=["minilm-l6"], strong_models=["minilm-l6"], seeds=[0, 1], split_limit=60,
        n_bagging=2, n_boosting=2, epochs=20, losses=["xent", "logconf"], icl_model="smollm2-135m", icl_k=[0, 2],
        icl_retrievers=["random", "bm25"], icl_sources=["weak", "gold"], n_icl_questions=4)
    for key in REQUIRED:
        assert key in metrics, key
    for key in ("weak_acc", "ceiling_acc", "student_acc_xent", "student_acc_logconf", "bagging_weak_acc",
                "boosting_weak_acc", "icl_acc_weak_labels", "icl_acc_gold_labels"):
        assert 0.0 <= metrics[key] <= 1.0, key
    for key in ("pgr_xent", "pgr_logconf", "bagging_pgr", "boosting_pgr"):
        assert metrics[key] is None or np.isfinite(metrics[key])  # NaN (undefined) is stored as null
    assert metrics["n_seeds"] == 2
    assert result.status == "ok"
