"""PGR on known numbers (and the undefined case); the study's parameters; the pipeline on synthetic
features; finetune mode; the notebook end to end."""

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from alignlab.lm.batching import pad_batch
from alignlab.models.load import SequenceClassifier
from alignlab.run.params import read_parameters
from alignlab.studies.w2sg import pipeline, report
from alignlab.studies.w2sg.config import Config
from alignlab.study_config import ParameterError
from alignlab.training import LOSSES, METHODS, w2s
from alignlab.training.learners import (
    FinetuneLearner,
    FitConfig,
    LinearHead,
    ProbeLearner,
    finetune_classifier,
    length_batches,
)


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


# ---------------------------------------------------------------------------------------------
# Parameters: the notebook's parameters cell gives the defaults, Config.check validates


def notebook_defaults() -> dict:
    return {name: p.default for name, p in read_parameters("01_w2sg_ensembles").items()}


def quick_config(**overrides) -> Config:
    """The quick configuration (the notebook's defaults) with `overrides`, checked."""
    return Config.from_params({**notebook_defaults(), **overrides})


def test_config_takes_the_notebook_defaults():
    config = quick_config()
    assert dataclasses.asdict(config) == notebook_defaults()
    assert config.pairs == [("minilm-l6", "gemma3-270m"), ("minilm-l6", "smollm2-135m"),
                            ("smollm2-135m", "gemma3-270m")]
    assert config.first_pair == "minilm-l6 -> gemma3-270m"
    assert config.icl_seeds == [0, 1, 2]


def test_the_seed_cache_key_is_unchanged():
    """W2SConfig is hashed into each seed's cache key: the quick profile must give these values."""
    assert dataclasses.asdict(pipeline.w2s_config(quick_config())) == {
        "mode": "probe", "feature_layer": 0.5, "losses": ["xent", "logconf", "product"],
        "methods": ["single", "bagging", "boosting"], "n_bagging": 10, "n_boosting": 10, "epochs": 100, "lr": 0.01,
        "batch_size": 4096, "weight_decay": 1e-3, "alpha_max": 0.75, "warmup_frac": 0.2, "product_beta": 1.0,
        "selections": ["fixed", "weak-val"], "train_layers": None, "lora_r": 0, "finetune_epochs": 2,
        "finetune_lr": 5e-5, "finetune_batch_size": 16}


def test_w2s_config_defaults_serve_the_judge_student():
    """Study 02 builds W2SConfig(mode=..., losses=["xent"], methods=["single"]) and trains with the rest."""
    config = w2s.W2SConfig(mode="probe", losses=["xent"], methods=["single"])
    assert (config.feature_layer, config.epochs, config.lr, config.batch_size) == (0.5, 100, 1e-2, 4096)
    assert config.fit_config("xent", 3) == FitConfig(loss="xent", epochs=100, lr=1e-2, batch_size=4096,
                                                     weight_decay=1e-3, alpha_max=0.75, warmup_frac=0.2, seed=3)
    finetune = w2s.W2SConfig(mode="finetune", losses=["xent"], methods=["single"]).fit_config("logconf", 1)
    assert (finetune.epochs, finetune.lr, finetune.batch_size, finetune.weight_decay) == (2, 5e-5, 16, 0.0)


@pytest.mark.parametrize("name, value", [
    ("strong_models", ["gemma3-270m", "smollm2-135m"]),  # two strong models for one weak one
    ("strong_models", []),
    ("mode", "lora"),
    ("feature_layers", [1.5]),
    ("feature_layers", [-0.1]),
    ("feature_layers", []),
    ("dataset", "sciq-local"),
    ("product_beta", -1.0),
    ("selections", ["best"]),
    ("selections", []),
    ("seeds", []),
    ("losses", ["hinge"]),
    ("losses", []),
    ("n_bagging", 0),
    ("n_boosting", 0),
    ("epochs", 0),
    ("finetune_epochs", 0),
    ("lr", 0.0),
    ("finetune_lr", -1e-5),
    ("alpha_max", 2.0),
    ("warmup_frac", -0.5),
    ("split_limit", -1),
    ("lora_r", -4),
    ("icl_k", []),
    ("icl_k", [0, -2]),
    ("icl_retrievers", []),
    ("icl_retrievers", ["dense"]),
    ("icl_sources", ["noisy"]),
    ("n_icl_questions", 0),
    ("icl_n_seeds", 0),
    ("icl_flip_fraction", 1.5),
    ("icl_flip_fraction", "half"),
])
def test_config_check_rejects_bad_values_naming_the_parameter(name, value):
    with pytest.raises(ParameterError, match=f"parameter '{name}' of 01_w2sg_ensembles") as error:
        quick_config(**{name: value})
    assert repr(value) in str(error.value) or name == "strong_models"


def test_config_accepts_edge_values():
    quick_config(feature_layers=[1.0], split_limit=60, selections=["gold-val"], icl_sources=["random"], icl_k=[0],
                 icl_flip_fraction=0.0, alpha_max=0.0, lora_r=8,
                 weak_models=["minilm-l6", "minilm-l6"], strong_models=["gemma3-270m", "smollm2-135m"])


# ---------------------------------------------------------------------------------------------
# The pipeline on synthetic features


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
    config = w2s.W2SConfig(losses=list(LOSSES), methods=list(METHODS), n_bagging=4, n_boosting=3, epochs=60)
    out = pipeline.run_seed(weak, strong, labels, config, seed=0)
    rows = out["rows"]
    assert {(r["method"], r["loss"]) for r in rows} == {(m, loss) for m in METHODS for loss in config.losses}
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
    a = pipeline.run_seed(weak, strong, labels, config, 0)["rows"][0]
    b = pipeline.run_seed(weak, strong, labels, config, 1)["rows"][0]
    assert a == pipeline.run_seed(weak, strong, labels, config, 0)["rows"][0]
    assert a["weak_label_acc"] != b["weak_label_acc"]


def test_add_pgr_and_metrics_keys():
    weak, strong, labels = synthetic()
    config = w2s.W2SConfig(losses=list(LOSSES), methods=list(METHODS), n_bagging=2, n_boosting=2, epochs=30)
    out = pipeline.run_seed(weak, strong, labels, config, 0)
    results = pipeline.add_pgr(pd.DataFrame([{"pair": "w -> s", **r} for r in out["rows"]]))
    m = report.metrics(results, pd.DataFrame(out["curve"]))
    for key in ("weak_acc", "ceiling_acc", "student_acc_xent", "student_acc_logconf", "pgr_xent", "pgr_logconf",
                "bagging_weak_acc", "bagging_pgr_xent", "boosting_weak_acc", "boosting_pgr_xent", "gap_acc"):
        assert key in m and np.isfinite(m[key])
    assert len(report.summary_table(results)) == 9
    assert "**w -> s** (1 seeds" in report.conclusion(results, pd.DataFrame(out["curve"]))


def test_add_pgr_counts_every_undefined_row_in_one_warning():
    rows = pd.DataFrame({"weak_acc": [0.7, 0.7, 0.6], "student_acc": [0.8, 0.8, 0.7], "ceiling_acc": [0.7, 0.65, 0.8],
                         "weak_auc": [0.7, 0.7, 0.6], "student_auc": [0.8, 0.8, 0.7], "ceiling_auc": [0.9, 0.9, 0.8]})
    rows["single_weak_acc"], rows["single_weak_auc"] = rows.weak_acc, rows.weak_auc
    rows["pair"] = "w -> s"
    for _ in range(2):  # the second call warns again, too
        with pytest.warns(w2s.PGRUndefinedWarning) as record:
            out = pipeline.add_pgr(rows)
        assert len(record) == 1  # one warning, not one per row
        text = str(record[0].message)
        assert "w -> s: pgr_acc 2/3, pgr_vs_single_acc 2/3" in text and "pgr_auc" not in text
    assert out.pgr_acc.isna().tolist() == [True, True, False] and out.pgr_acc.iloc[2] == pytest.approx(0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every PGR defined: no warning at all
        pipeline.add_pgr(rows.assign(ceiling_acc=0.9))


def test_linear_head_probabilities_are_a_softmax_of_its_logits():
    rng = np.random.default_rng(0)
    head = LinearHead(np.zeros(3, np.float32), np.ones(3, np.float32), rng.normal(size=(2, 3)).astype(np.float32),
                      np.zeros(2, np.float32))
    X = rng.normal(size=(5, 3)).astype(np.float32) * 30
    z = head.logits(X)
    by_hand = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_array_equal(head.predict_proba(X), by_hand / by_hand.sum(1, keepdims=True))


# ---------------------------------------------------------------------------------------------
# finetune mode on a tiny random model


def tiny_classifier(seed=0):
    from alignlab.testing import tiny_causal_lm

    torch.manual_seed(seed)
    model, tokenizer = tiny_causal_lm("llama", seed=seed)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return SequenceClassifier(model.model, 2, "last"), tokenizer


def test_right_padding_is_the_training_loops_own():
    """The loop pads with `pad_batch(..., side="right")`: pad ids after each sequence, mask 1 on real tokens."""
    _, tokenizer = tiny_classifier()
    encoded = [[5, 6, 7], [8], [9, 10]]
    input_ids, mask = pad_batch(tokenizer, encoded, side="right")
    pad = tokenizer.pad_token_id
    assert input_ids.dtype == torch.long and mask.dtype == torch.long
    assert input_ids.tolist() == [[5, 6, 7], [8, pad, pad], [9, 10, pad]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]


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
    config = FitConfig(loss="xent", epochs=6, lr=3e-3, batch_size=16, weight_decay=0.0, alpha_max=0.75,
                       warmup_frac=0.2, seed=0)
    model = finetune_classifier(tiny_classifier(), texts, labels, config, val_texts=texts, val_labels=labels, **kwargs)
    probs = model.predict_proba(texts)
    assert probs.shape == (64, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert (probs.argmax(1) == labels).mean() >= 0.9


def test_finetune_reads_the_last_real_token_not_pads():
    """Padding must not change a text's prediction (the head reads through the attention mask)."""
    classifier, tokenizer = tiny_classifier()
    model = finetune_classifier((classifier, tokenizer), ["a b", "c"] * 4, np.array([0, 1] * 4),
                                FitConfig(loss="xent", epochs=1, batch_size=8, lr=1e-3, weight_decay=1e-3,
                                          alpha_max=0.75, warmup_frac=0.2, seed=0))
    alone = model.predict_proba(["a b c d e"], batch_size=1)
    batched = model.predict_proba(["a b c d e", "a b c d e f g h i j k l m n o p"], batch_size=2)[:1]
    np.testing.assert_allclose(alone, batched, atol=1e-5)


def test_finetune_learner_has_the_probe_api(monkeypatch):
    monkeypatch.setattr("alignlab.training.learners.load_classifier", lambda name, num_labels=2: tiny_classifier())
    texts = {"train": ["good a", "bad b"] * 8, "validation": ["good c", "bad d"], "test": ["good e", "bad f"]}
    learner = FinetuneLearner("tiny", texts)
    config = FitConfig(loss="xent", epochs=2, batch_size=8, lr=1e-3, weight_decay=1e-3, alpha_max=0.75,
                       warmup_frac=0.2, seed=0)
    model = learner.fit("train", np.arange(16), np.array([0, 1] * 8), config, val_labels=np.array([0, 1]))
    assert learner.predict(model, "test").shape == (2, 2)
    assert learner.predict(model, "train", [0, 1, 2]).shape == (3, 2)
    assert FinetuneLearner.mode == "finetune"


# ---------------------------------------------------------------------------------------------
# the notebook, end to end through the runner (smallest settings)

REQUIRED = ("weak_acc", "ceiling_acc", "gap_acc", "student_acc_xent", "student_acc_logconf", "pgr_xent", "pgr_logconf",
            "bagging_weak_acc", "bagging_pgr_xent", "boosting_weak_acc", "boosting_pgr_xent", "icl_acc_weak_labels",
            "icl_acc_gold_labels", "icl_teacher_acc")


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
    for key in ("pgr_xent", "pgr_logconf", "bagging_pgr_xent", "boosting_pgr_xent"):
        assert metrics[key] is None or np.isfinite(metrics[key])  # NaN (undefined) is stored as null
    assert metrics["n_seeds"] == 2
    assert result.status == "ok"


# ---------------------------------------------------------------------------------------------
# epoch selection, the layer chosen on validation, finetune mode through run_seed


def test_fixed_selection_keeps_the_last_epoch_and_records_it():
    weak, strong, labels = synthetic()
    config = w2s.W2SConfig(losses=["xent"], methods=["single"], epochs=25).fit_config("xent", 0)
    head = strong.fit("train", np.arange(100), labels["train"][:100], config)
    assert head.best_epoch == 25


def test_weak_val_ties_keep_the_later_epoch():
    """Constant validation accuracy (every epoch ties): the last epoch is kept, not the first, which
    would be an epoch before the confidence loss's weight has ramped up."""
    weak, strong, labels = synthetic()
    config = w2s.W2SConfig(losses=["logconf"], methods=["single"], epochs=12).fit_config("logconf", 0)
    constant = np.zeros(len(labels["validation"]), int)
    X_val = np.zeros_like(strong.features["validation"])  # every epoch predicts the same on validation
    learner = ProbeLearner({"train": strong.features["train"], "validation": X_val})
    head = learner.fit("train", np.arange(200), labels["train"][:200], config, val_labels=constant)
    assert head.best_epoch == 12


def test_run_seed_trains_one_student_per_selection_and_records_the_epoch():
    weak, strong, labels = synthetic()
    config = w2s.W2SConfig(losses=["xent", "logconf"], methods=["single"], epochs=20,
                           selections=["fixed", "weak-val"])
    rows = pipeline.run_seed(weak, strong, labels, config, seed=0)["rows"]
    assert {(r["selection"], r["loss"]) for r in rows} == {(s, loss) for s in ("fixed", "weak-val")
                                                           for loss in ("xent", "logconf")}
    assert all(r["best_epoch"] == 20 for r in rows if r["selection"] == "fixed")
    assert all(1 <= r["best_epoch"] <= 20 for r in rows)


def test_layer_is_chosen_on_validation_without_reading_test(monkeypatch):
    """Layer 0.5 carries the label, 1.0 is noise; the test split's features are never asked for."""
    rng = np.random.default_rng(0)
    texts = {"train": [f"t{i}" for i in range(300)], "validation": [f"v{i}" for i in range(100)],
             "test": [f"x{i}" for i in range(100)]}
    labels = {"train": rng.integers(0, 2, 300), "validation": rng.integers(0, 2, 100)}
    asked = []

    def fake_features_at(model, split_texts, layers, **kwargs):
        asked.append(split_texts[0][0])
        y = labels["train"] if split_texts[0][0] == "t" else labels["validation"]
        good = (2 * y - 1)[:, None] * 2.0 + rng.normal(size=(len(y), 4))
        return {float(x): (good if x == 0.5 else rng.normal(size=(len(y), 4))).astype(np.float32) for x in layers}

    monkeypatch.setattr(w2s, "cached_features_at", fake_features_at)
    config = w2s.W2SConfig(losses=["xent"], methods=["single"], epochs=30)
    layer, accuracy = w2s.choose_feature_layer("m", texts, labels, [0.5, 1.0], config)
    assert layer == 0.5 and accuracy[0.5] > 0.8 > accuracy[1.0]
    assert sorted(set(asked)) == ["t", "v"]


def test_finetune_mode_runs_the_whole_seed(monkeypatch):
    """run_seed in finetune mode, every teacher method, at tiny scale (a random tiny Llama)."""
    monkeypatch.setattr("alignlab.training.learners.load_classifier", lambda name, num_labels=2: tiny_classifier())
    words = ["good", "bad"]
    texts = {split: [f"{words[i % 2]} item {i}" for i in range(n)]
             for split, n in (("train", 24), ("validation", 8), ("test", 8))}
    labels = {split: np.array([1 - i % 2 for i in range(len(t))]) for split, t in texts.items()}
    config = w2s.W2SConfig(mode="finetune", losses=["xent", "logconf"], methods=list(METHODS), n_bagging=2,
                           n_boosting=2, finetune_epochs=1, finetune_batch_size=5, selections=["fixed", "weak-val"])
    weak, strong = (w2s.make_learner("tiny", texts, config) for _ in range(2))
    out = pipeline.run_seed(weak, strong, labels, config, seed=0)
    assert {r["method"] for r in out["rows"]} <= set(METHODS) and "single" in {r["method"] for r in out["rows"]}
    assert all(r["best_epoch"] == 1 and 0 <= r["student_acc"] <= 1 for r in out["rows"])
    assert len(out["single_test_probs"]) == 8


# ---------------------------------------------------------------------------------------------
# PGR reporting: the gap with its CI, seeds with a defined PGR, the single-teacher baseline, every pair


def fake_results(gaps: dict, n_seeds: int = 5, undefined_seeds: int = 0) -> pd.DataFrame:
    """Results rows for pairs {pair: (mean gap, spread)} with known numbers."""
    rng = np.random.default_rng(0)
    rows = []
    for pair, (mean_gap, spread) in gaps.items():
        for seed in range(n_seeds):
            weak = 0.6 + 0.01 * seed
            ceiling = weak + mean_gap + spread * (1 if seed % 2 else -1)
            if seed < undefined_seeds:
                ceiling = weak - 0.01
            for method in METHODS:
                for loss in ("xent", "logconf"):
                    rows.append({"pair": pair, "seed": seed, "method": method, "loss": loss, "selection": "fixed",
                                 "best_epoch": 100, "ensemble_size": 1, "weak_label_acc": 0.6,
                                 "weak_acc": weak - (0.01 if method != "single" else 0), "single_weak_acc": weak,
                                 "weak_auc": weak, "single_weak_auc": weak, "ceiling_acc": ceiling,
                                 "ceiling_auc": ceiling, "ceiling_best_epoch": 100,
                                 "student_acc": weak + 0.3 * (ceiling - weak) + rng.normal(0, 0.001),
                                 "student_auc": weak + 0.3 * (ceiling - weak), "student_agreement": 0.9,
                                 "weak_layer": 0.5, "strong_layer": 0.75})
    return pipeline.add_pgr(pd.DataFrame(rows))


def test_pgr_is_no_finding_where_the_gap_is_not_established():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", w2s.PGRUndefinedWarning)
        results = fake_results({"a -> b": (0.1, 0.01), "a -> c": (0.005, 0.05)})
    assert report.gap(results, "a -> b")["established"] and not report.gap(results, "a -> c")["established"]
    text = report.conclusion(results, pd.DataFrame())
    assert "**a -> b**" in text and "**a -> c**" in text  # every pair gets its lines
    block_c = text.split("**a -> c**")[1]
    assert "**not established**" in block_c and "**not established**" not in text.split("**a -> c**")[0]
    # the AUROC PGR follows its own gap (here the same numbers as accuracy's)
    assert "PGR on AUROC not reported" in block_c and "PGR on AUROC 0.3" in text.split("**a -> c**")[0]


def test_pgr_counts_the_seeds_with_a_defined_value():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", w2s.PGRUndefinedWarning)
        results = fake_results({"a -> b": (0.1, 0.01)}, undefined_seeds=2)
    stats = report.pgr_stats(results[(results.method == "single") & (results.loss == "xent")].pgr_acc)
    assert (stats["n_defined"], stats["n"]) == (3, 5)
    assert stats["median"] == pytest.approx(0.3, abs=0.02)
    assert "defined in 3/5 seeds" in report.format_pgr(stats)
    m = report.metrics(results, pd.DataFrame())
    assert m["pgr_xent_n_defined"] == 3 and m["pgr_xent_median"] == pytest.approx(0.3, abs=0.02)


def test_ensemble_pgr_also_against_the_single_teacher():
    results = fake_results({"a -> b": (0.1, 0.01)})
    bag = results[(results.method == "bagging") & (results.loss == "xent")]
    # bagging's own teacher is 0.01 below the single one: its own-teacher PGR is larger
    assert (bag.pgr_acc > bag.pgr_vs_single_acc).all()
    expected = (bag.student_acc - bag.single_weak_acc) / (bag.ceiling_acc - bag.single_weak_acc)
    np.testing.assert_allclose(bag.pgr_vs_single_acc, expected)
    m = report.metrics(results, pd.DataFrame())
    assert "bagging_pgr_vs_single_xent" in m and "bagging_pgr_auc_xent" in m and "pgr_auc_xent" in m


def test_every_pair_gets_metrics_table_rows_and_figure_panels():
    results = fake_results({"a -> b": (0.1, 0.01), "a -> c": (0.2, 0.01), "b -> c": (0.1, 0.01)})
    m = report.metrics(results, pd.DataFrame())
    for prefix in ("", "pair1_", "pair2_"):
        assert np.isfinite(m[f"{prefix}pgr_xent"]) and f"{prefix}gap_acc_lo" in m
    assert set(report.summary_table(results).pair) == {"a -> b", "a -> c", "b -> c"}
    fig = report.plot_pgr(results)
    assert len(fig.axes) == 9  # 3 pairs x (own teacher, single teacher, AUROC)
    fig = report.plot_capability(results)
    assert len(fig.axes[0].lines) >= 2  # one line per weak model (a, b) and the diagonal


def test_minimum_detectable_difference_shrinks_with_seeds():
    diffs = np.array([0.01, 0.03, 0.02, 0.04, 0.00])
    five, ten = report.detectable_difference_over_seeds(diffs), report.detectable_difference_over_seeds(diffs, 10)
    assert 0 < ten < five
    assert five == pytest.approx((2.776 + 0.941) * diffs.std(ddof=1) / np.sqrt(5), rel=1e-3)
