"""Study 07 (recursive W2SG): disjoint pools, no gold label reaching a student except through G,
the ensemble aligner's weighting, the ladder's order, the report, parameter checks, and a
notebook smoke run.

Most tests run the real pipeline on synthetic features (a `ProbeLearner` per fake model, each
seeing the label through its own amount of noise), so they take seconds and load no model."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from alignlab.studies.recursive import aligners, chain, evaluate, plan, report
from alignlab.studies.recursive.config import CONDITIONS, Config
from alignlab.study_config import ParameterError
from alignlab.training.learners import ProbeLearner

GOOD = dict(dataset="world-facts", models=["weak", "mid", "strong"], order="measured", mode="probe",
            feature_layer=0.5, seeds=[0, 1], losses=["xent", "logconf"], n_gold=60, gold_check_frac=0.25,
            pool_size=0, selection="weak-val", epochs=15, lr=0.05, alpha_max=0.75, warmup_frac=0.2, split_limit=0,
            finetune_epochs=2, finetune_lr=5e-5, lora_r=0)
NOISE = {"weak": 2.5, "mid": 1.2, "strong": 0.6}  # less noise: a more capable fake model
SIZES = {"train": 300, "validation": 80, "test": 120}


def synthetic_labels(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {split: rng.integers(0, 2, n) for split, n in SIZES.items()}


def synthetic_learner(model: str, labels: dict, dim: int = 8) -> ProbeLearner:
    """Features that carry the label through `NOISE[model]`; fixed once, like cached features."""
    rng = np.random.default_rng(sum(map(ord, model)))
    features = {}
    for split, y in labels.items():
        X = rng.normal(0, NOISE[model], (len(y), dim))
        X[:, 0] += 2 * y - 1
        features[split] = X
    return ProbeLearner(features)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """(run, truth, clean): run(labels=None, **params) -> StudyRun on synthetic learners whose features
    carry `truth`; `clean` is run() once (two seeds, both losses), shared by the tests below."""
    truth = synthetic_labels()
    texts = {split: [f"{split} {i}" for i in range(n)] for split, n in SIZES.items()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALIGNLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("ALIGNLAB_NO_CACHE", "1")
        mp.setattr(chain, "make_learner", lambda model, texts, settings: synthetic_learner(model, truth))

        def run(labels=None, **params):
            config = Config.from_params({**GOOD, **params})
            return chain.run_study(config, texts, truth if labels is None else labels)

        yield run, truth, run()


# ---------------------------------------------------------------------------------------------
# pools


@pytest.mark.parametrize("n_pools", [1, 2, 4])
def test_pools_are_disjoint_equal_and_apart_from_gold(n_pools):
    for seed in range(5):
        p = plan.draw_plan(1000, 100, 0.25, n_pools, 0, seed)
        parts = [p.gold_fit, p.gold_check, *p.pools]
        everything = np.concatenate(parts)
        assert len(everything) == len(set(everything.tolist()))  # pairwise disjoint
        assert everything.min() >= 0 and everything.max() < 1000
        assert len({len(pool) for pool in p.pools}) == 1 and len(p.pools) == n_pools
        assert len(p.pools[0]) == 900 // n_pools
        assert (len(p.gold_fit), len(p.gold_check)) == (75, 25)
        # G does not depend on K, so the ladder can be measured before K is known
        q = plan.draw_plan(1000, 100, 0.25, 1, 0, seed)
        assert np.array_equal(p.gold_fit, q.gold_fit) and np.array_equal(p.gold_check, q.gold_check)
    assert not np.array_equal(plan.draw_plan(1000, 100, 0.25, 2, 0, 0).pools[0],
                              plan.draw_plan(1000, 100, 0.25, 2, 0, 1).pools[0])


def test_plan_rejects_sizes_that_do_not_fit():
    with pytest.raises(ValueError, match="lower pool_size or n_gold"):
        plan.draw_plan(100, 20, 0.25, 3, 40, 0)
    with pytest.raises(ValueError, match="change n_gold or gold_check_frac"):
        plan.draw_plan(100, 4, 0.25, 1, 0, 0)
    assert len(plan.draw_plan(100, 20, 0.25, 2, 30, 0).pools[1]) == 30


def test_every_condition_reads_the_same_pools(synthetic):
    run = synthetic[2]
    for seed, arrays in run.arrays.items():
        p = run.plans[seed]
        for loss in run.losses:
            direct = arrays[f"{loss}/direct/{len(p.pools)}/labels"]
            assert len(direct) == len(p.unlabelled)
            for condition in CONDITIONS[1:]:
                total = sum(len(arrays[f"{loss}/{condition}/{k}/labels"]) for k in range(1, len(p.pools) + 1))
                assert total == len(direct)


# ---------------------------------------------------------------------------------------------
# no gold label reaches a student except through G


def test_gold_labels_outside_G_never_reach_a_student(synthetic):
    run_fn, truth, clean = synthetic
    rng = np.random.default_rng(99)
    poisoned = {split: rng.integers(0, 2, len(y)) for split, y in truth.items()}  # test and validation: random
    # keep G's labels for every seed's G, poison everything else in train
    gold_rows = np.unique(np.concatenate([p.gold for p in clean.plans.values()]))
    poisoned["train"][gold_rows] = truth["train"][gold_rows]
    assert (poisoned["train"] != truth["train"]).sum() > 50
    dirty = run_fn(labels=poisoned)
    compared = 0
    for seed in clean.arrays:
        for name, value in clean.arrays[seed].items():
            if name.startswith("ceiling/"):
                continue
            assert np.array_equal(value, dirty.arrays[seed][name]), name
            compared += 1
    assert compared > 40
    # the poison did reach what may read gold labels: the ceilings
    assert any(not np.array_equal(v, dirty.arrays[s][k]) for s in clean.arrays
               for k, v in clean.arrays[s].items() if k.startswith("ceiling/"))


def test_the_structural_test_can_fail_poisoning_G_changes_the_students(synthetic):
    run_fn, truth, clean = synthetic
    poisoned = {k: v.copy() for k, v in truth.items()}
    g = clean.plans[0].gold_fit
    poisoned["train"][g] = 1 - poisoned["train"][g]
    dirty = run_fn(labels=poisoned, seeds=[0], losses=["xent"])
    name = "xent/recursive/2/student_test"
    assert not np.array_equal(clean.arrays[0][name], dirty.arrays[0][name])


# ---------------------------------------------------------------------------------------------
# the ensemble aligner


def test_member_weights_are_normalised_log_odds():
    w = aligners.member_weights([0.5, 0.75, 0.9])
    expected = np.array([0.0, math.log(3), math.log(9)])
    assert np.allclose(w, expected / expected.sum())
    assert np.isclose(w.sum(), 1.0)
    assert aligners.member_weights([0.4, 0.8])[0] == 0.0  # below chance: no weight
    assert np.allclose(aligners.member_weights([0.5, 0.3]), [0.5, 0.5])  # nobody above chance: uniform
    w = aligners.member_weights([1.0, 0.999])
    assert np.all(np.isfinite(w)) and np.isclose(w[0], w[1])  # clipped, finite


def test_ensemble_aligner_predicts_the_weighted_mean():
    class Fixed:
        def predict(self, model, split, idx=None):
            return model

    a = np.array([[0.9, 0.1], [0.2, 0.8]])
    b = np.array([[0.3, 0.7], [0.4, 0.6]])
    ensemble = aligners.Aligner([(Fixed(), a), (Fixed(), b)], np.array([0.25, 0.75]))
    assert np.allclose(ensemble.predict("test"), 0.25 * a + 0.75 * b)
    assert np.array_equal(aligners.Aligner.single(Fixed(), a).predict("test"), a)


def test_pipeline_weights_follow_members_G_check_accuracy(synthetic):
    _, truth, run = synthetic
    arrays, p = run.arrays[0], run.plans[0]
    assert list(arrays["xent/recursive-ensemble/1/weights"]) == [1.0]
    weights = arrays["xent/recursive-ensemble/2/weights"]
    assert len(weights) == 2 and np.isclose(weights.sum(), 1.0)
    # the second member is step 1's student; recompute both accuracies on G_check
    learners = {m: synthetic_learner(m, truth) for m in run.ladder}
    settings = chain.training_settings(Config.from_params(GOOD))
    first = chain.first_aligner(learners, run.ladder[0], p, truth["train"][p.gold_fit], settings, 0)
    y_check = truth["train"][p.gold_check]
    acc_first = np.mean(first.predict("train", p.gold_check).argmax(1) == y_check)
    student_labels = arrays["xent/recursive-ensemble/1/labels"]
    model = learners[run.ladder[1]].fit("train", p.pools[0], student_labels, settings.fit_config("xent", 0),
                                        val_labels=first.predict("validation").argmax(1))
    acc_student = np.mean(learners[run.ladder[1]].predict(model, "train", p.gold_check).argmax(1) == y_check)
    assert np.allclose(weights, aligners.member_weights([acc_first, acc_student]))


# ---------------------------------------------------------------------------------------------
# the ladder


def test_order_ladder_sorts_flags_and_skips():
    # per seed: c is clearly below b; d dips below b by noise only; e ties a
    values = {"a": [0.60, 0.62, 0.61], "b": [0.80, 0.81, 0.79], "c": [0.70, 0.71, 0.70],
              "d": [0.78, 0.83, 0.77], "e": [0.60, 0.62, 0.61]}
    cap = pd.DataFrame([{"seed": s, "model": m, "capability": v[s]} for m, v in values.items() for s in range(3)])
    ladder, table = plan.order_ladder(["a", "e", "b", "c", "d"], cap, "measured")
    assert ladder == ["a", "e", "c", "d", "b"]
    assert table.set_index("model").loc["e", "status"].startswith("kept, flagged: ties")
    ladder, table = plan.order_ladder(["a", "b", "c", "d"], cap, "given")
    assert ladder == ["a", "b", "d"]
    status = table.set_index("model")["status"]
    assert status["c"] == "skipped: goes down from b"
    assert status["d"].startswith("kept, flagged: below b on G, not significantly")


def test_study_orders_the_ladder_by_measured_capability(synthetic):
    run_fn = synthetic[0]
    run = run_fn(models=["strong", "weak", "mid"], seeds=[0], losses=["xent"])
    assert run.ladder == ["weak", "mid", "strong"]
    assert run.ladder_table["status"].eq("kept").all()
    with pytest.raises(ValueError, match="fewer than two models"):  # the only step goes down
        run_fn(models=["strong", "weak"], seeds=[0, 1, 2, 3], losses=["xent"], order="given", n_gold=200)
    given = run_fn(models=["weak", "strong", "mid"], seeds=[0, 1, 2, 3], losses=["xent"], order="given", n_gold=200)
    # mid dips below strong on G, but not significantly with 4 seeds of 50 G_check examples: kept, flagged
    assert given.ladder == ["weak", "strong", "mid"]
    assert given.ladder_table.set_index("model").loc["mid", "status"].startswith("kept, flagged: below strong")


def test_study_orders_the_ladder_by_the_overview_card(synthetic, tmp_path, monkeypatch):
    from alignlab import ladder
    monkeypatch.setenv("ALIGNLAB_ROOT", str(tmp_path))  # a project of its own: its card starts empty
    monkeypatch.delenv("ALIGNLAB_RUN_DIR", raising=False)
    (tmp_path / "pyproject.toml").write_text("")
    run_fn = synthetic[0]
    with pytest.raises(ladder.NotOnCard, match="alignlab run 00_overview"):  # no card yet: fails before any model
        run_fn(models=["strong", "weak", "mid"], seeds=[0], losses=["xent"], order="card")
    ladder.write_card("world-facts", {"weak": {"probe_acc": 0.6}, "mid": {"probe_acc": 0.7},
                                      "strong": {"probe_acc": 0.8}})
    run = run_fn(models=["strong", "weak", "mid"], seeds=[0], losses=["xent"], order="card")
    assert run.ladder == ["weak", "mid", "strong"]
    assert run.ladder_table["model"].tolist() == ["weak", "mid", "strong"]


# ---------------------------------------------------------------------------------------------
# metrics and report


def test_error_inheritance_against_chance():
    rng = np.random.default_rng(0)
    first = rng.random(20000) < 0.3
    assert abs(evaluate.error_inheritance(first, rng.random(20000) < 0.2)) < 0.02  # independent: ~0
    assert evaluate.error_inheritance(first, first) == 1.0
    assert evaluate.error_inheritance(first, ~first) == -1.0
    assert math.isnan(evaluate.error_inheritance(np.ones(5, bool), np.zeros(5, bool)))


def test_minimum_detectable_difference():
    # (t_.975,4 + t_.8,4) / sqrt(5) = (2.776 + 0.941) / 2.236
    assert np.isclose(report.minimum_detectable_difference(1.0, 5), (2.7764 + 0.9410) / math.sqrt(5), atol=1e-3)


def test_report_tables_figure_and_conclusion(synthetic):
    run = synthetic[2]
    steps, finals = evaluate.step_table(run), evaluate.final_table(run)
    assert set(finals["condition"]) == set(CONDITIONS) and len(finals) == 2 * 2 * 4
    assert finals["final_acc"].between(0, 1).all() and steps["label_error"].dropna().between(0, 1).all()
    # direct and recursive step 1 share the first aligner's labels on pool 1
    one = steps[(steps["step"] == 1) & (steps["condition"] == "recursive")]
    assert np.allclose(one["label_error"].to_numpy(),
                       steps[(steps["step"] == 1) & (steps["condition"] == "self-relabel")]["label_error"].to_numpy())
    table = report.condition_table(finals, steps)
    assert list(table.columns[:5]) == ["loss", "condition", "final acc", "final AUROC", "PGR"]
    assert "PGR step 2" in table.columns and "excess inheritance" in table.columns
    diffs = report.condition_differences(finals)
    assert len(diffs) == 2 * len(report.COMPARISONS) and (diffs["mdd"] > 0).all()
    text = report.conclusion(finals, steps, run.ladder)
    assert "recursive vs direct" in text and "excess inheritance" in text
    fig = report.plot_chain(steps, evaluate.ceiling_table(run), run.ladder)
    assert len(fig.axes) == 2
    m = report.metrics(finals, steps, run)
    assert 0 <= m["recursive_xent_final_acc"] <= 1 and "diff_recursive_vs_direct_logconf_lo" in m
    assert isinstance(report.ladder_summary(run), pd.DataFrame)
    assert report.plan_table(run)["examples"].tolist() == [45, 15, 120, 120, 80, 120]


# ---------------------------------------------------------------------------------------------
# parameters


@pytest.mark.parametrize("name, value, words", [
    ("models", ["a"], "at least two distinct"),
    ("models", ["a", "a"], "at least two distinct"),
    ("order", "size", "given, card, measured"),
    ("losses", ["mse"], "xent"),
    ("n_gold", 3, ">= 8"),
    ("gold_check_frac", 1.0, "in \\(0, 1\\)"),
    ("pool_size", -1, ">= 0"),
    ("selection", "gold-val", "weak-val, fixed"),
    ("seeds", [0, 0], "distinct"),
])
def test_each_check_names_the_parameter(name, value, words):
    with pytest.raises(ParameterError, match=words) as error:
        Config.from_params({**GOOD, name: value})
    assert f"parameter {name!r} of 07_recursive_w2sg" in str(error.value)


def test_config_fields_are_the_notebook_parameters():
    from alignlab.run.params import read_parameters

    assert [f.name for f in dataclasses.fields(Config)] == list(read_parameters("07_recursive_w2sg"))


# ---------------------------------------------------------------------------------------------
# the notebook, end to end (smallest settings)


@pytest.mark.slow
def test_notebook_smoke_run(run_study):
    result, metrics = run_study("07_recursive_w2sg", models=["minilm-l6", "smollm2-135m"], seeds=[0, 1],
                                split_limit=120, n_gold=40, epochs=20)
    assert result.status == "ok"
    assert metrics["n_seeds"] == 2 and metrics["ladder_size"] == 2
    for condition in ("direct", "recursive", "recursive_ensemble", "self_relabel"):
        assert 0.0 <= metrics[f"{condition}_xent_final_acc"] <= 1.0
