"""Capability ladder: zero-shot predictions on hand-made scores, probes (layer chosen on validation,
cached heads), the tables and figures, the parameter checks, and the notebook's smoke run."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from alignlab import data
from alignlab.studies.overview import context, probes, report, zeroshot
from alignlab.studies.overview.config import Config
from alignlab.study_config import ParameterError


def tiny_questions():
    import datasets

    return datasets.Dataset.from_dict({
        "question": ["q0", "q1", "q2", "q3"],
        "correct_answer": ["a", "b", "c", "d"],
        "distractor1": ["x", "x", "x", "x"], "distractor2": ["y", "y", "y", "y"], "distractor3": ["z", "z", "z", "z"],
        "support": [""] * 4, "kind": ["k1", "k1", "k2", "k2"]})


def test_binary_predictions_on_known_scores():
    # questions 0 and 1: the correct answer (column 0) ranks first; 2 and 3: distractor1 does.
    scores = np.array([[-1.0, -2, -3, -4], [-1.0, -2, -3, -4], [-2.0, -1, -3, -4], [-2.0, -1, -3, -4]])
    view = data.binary_view(tiny_questions(), seed=0)
    out = zeroshot.binary_predictions(scores, view)
    expected_pred = [int(scores[i].argmax() == shown) for i, shown in zip(out["id"], out["shown"])]
    assert out["pred"].tolist() == expected_pred
    assert out["correct"].tolist() == [int(p == y) for p, y in zip(out["pred"], out["label"])]
    by_hand = [np.exp(scores[i, s]) / np.exp(scores[i]).sum() for i, s in zip(out["id"], out["shown"])]
    assert np.allclose(out["prob"], by_hand)
    for row in out.itertuples():  # shown is the index of the answer among the choices
        assert view[int(row.Index)]["choices"][row.shown] == view[int(row.Index)]["answer"]


def test_perfect_ranker_is_always_right_and_random_ranker_is_chance():
    questions = data.load("world-facts", split="test")
    n = len(questions)
    perfect = np.tile([0.0, -1, -2, -3], (n, 1))
    out = zeroshot.binary_predictions(perfect, data.binary_view(questions, seed=1))
    assert out["correct"].mean() == 1.0
    rng = np.random.default_rng(0)
    accs = [zeroshot.binary_predictions(rng.normal(size=(n, 4)), data.binary_view(questions, seed=s))["correct"].mean()
            for s in range(20)]
    assert abs(np.mean(accs) - 0.5) < 0.03


def test_accuracy_table_and_ladder_comparison():
    rows = []
    for model, p_right in (("weak", 0.6), ("strong", 0.9)):
        rng = np.random.default_rng(0)
        for seed in range(3):
            correct = (rng.random(400) < p_right).astype(int)
            label = rng.integers(0, 2, 400)
            rows.append(pd.DataFrame({"model": model, "seed": seed, "id": np.arange(400), "label": label,
                                      "prob": np.where(correct == 1, label, 1 - label) * 0.8 + 0.1,
                                      "correct": correct}))
    predictions = pd.concat(rows, ignore_index=True)
    table = report.accuracy_table(predictions)
    assert table["accuracy"].tolist() == pytest.approx([0.6, 0.9], abs=0.04)
    assert (table["lo"] < table["accuracy"]).all() and (table["accuracy"] < table["hi"]).all()
    comparison = report.ladder_comparisons(predictions, ["weak", "strong"]).iloc[0]
    assert comparison["holds"] and comparison["lo"] > 0.2
    reversed_ = report.ladder_comparisons(predictions, ["strong", "weak"]).iloc[0]
    assert not reversed_["holds"] and reversed_["hi"] < 0
    text = report.conclusion(table, report.ladder_comparisons(predictions, ["strong", "weak"]))
    assert "is reversed" in text and "does **not** hold" in text


def test_candidate_scores_with_a_tiny_local_model(tmp_path, monkeypatch):
    from alignlab.cache import Cache
    from alignlab.testing import tiny_causal_lm

    model, tokenizer = tiny_causal_lm("llama")
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    cache = Cache(tmp_path / "cache")
    scores = zeroshot.candidate_scores(str(tmp_path / "tiny"), tiny_questions(), cache=cache)
    assert scores.shape == (4, 4) and np.all(scores < 0)
    again = zeroshot.candidate_scores(str(tmp_path / "tiny"), tiny_questions(), cache=cache)
    np.testing.assert_array_equal(scores, again)
    assert cache.info()["entries"].sum() == 1


def test_cosine_scores_use_a_sharper_softmax():
    scores = np.array([[0.9, 0.1, 0.0, -0.2], [0.2, 0.8, 0.1, 0.0]])
    out = zeroshot.binary_predictions(scores, data.binary_view(tiny_questions().select([0, 1]), seed=0))
    expected = softmax(scores / zeroshot.COSINE_TEMPERATURE, axis=1)[out["id"], out["shown"]]
    assert np.allclose(out["prob"], expected)


def predictions_with_kinds():
    rows = []
    for model, right in (("weak", [1, 0, 1, 0]), ("strong", [1, 1, 1, 1])):
        for seed in (0, 1):
            rows.append(pd.DataFrame({"model": model, "seed": seed, "id": range(4), "kind": ["k1", "k1", "k2", "k2"],
                                      "label": [1, 0, 1, 0], "prob": [0.9, 0.2, 0.8, 0.1], "correct": right}))
    return pd.concat(rows, ignore_index=True)


def test_accuracy_by_kind_and_its_figure():
    import matplotlib.pyplot as plt

    predictions = predictions_with_kinds()
    table = report.accuracy_table(predictions, n_boot=200)
    by_kind = report.accuracy_by_kind(predictions, table)
    grid = report.kind_grid(by_kind)
    assert list(grid.columns) == ["weak", "strong"] and list(grid.index) == ["k1", "k2"]
    assert grid.loc["k1", "weak"] == 0.5 and grid.loc["k2", "strong"] == 1.0
    without = report.accuracy_by_kind(predictions.drop(columns="kind"), table)
    assert without["kind"].tolist() == ["all", "all"]
    for fig in (report.plot_by_kind(by_kind), report.plot_accuracy(table)):
        plt.close(fig)


def test_chance_legend_sits_above_the_bars():
    import matplotlib.pyplot as plt

    table = pd.DataFrame({"model": ["a", "b"], "accuracy": [0.9, 0.95], "lo": [0.85, 0.9], "hi": [0.95, 0.99]})
    fig = report.plot_accuracy(table)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert legend.y0 >= ax.get_window_extent().y1 - 1  # outside the axes, over no bar
    plt.close(fig)


def test_binary_view_preview_and_first_questions():
    questions = zeroshot.first_questions(tiny_questions(), 3)
    assert len(questions) == 3 and len(zeroshot.first_questions(tiny_questions(), 100)) == 4
    preview = report.binary_view_preview(questions, seed=0)
    assert list(preview.columns) == ["text", "label", "kind"] and len(preview) == 3


def test_metrics_keys():
    predictions = predictions_with_kinds()
    table = report.accuracy_table(predictions, n_boot=200)
    mc = pd.DataFrame({"model": ["weak", "strong"], "mc_accuracy": [0.5, 1.0]})
    m = report.metrics(table, mc, report.ladder_comparisons(predictions, ["weak", "strong"], n_boot=200))
    assert m["zeroshot_acc_weak"] == 0.5 and m["mc_acc_strong"] == 1.0 and "ladder_holds" in m
    assert report.metric_key("Qwen/Qwen2.5-7B") == "Qwen_Qwen2.5-7B"


# ---------------------------------------------------------------------------------------------
# Probes

def synthetic_splits(n=200, seed=0):
    """Labels per split, and features per (split, layer): layer 0.25 carries the label on train and
    validation only, layer 0.75 on test only; elsewhere the features are noise."""
    rng = np.random.default_rng(seed)
    labels = {split: rng.integers(0, 2, n) for split in probes.SPLITS}
    texts = {split: [f"{split} {i}" for i in range(n)] for split in probes.SPLITS}
    features = {}
    for split, y in labels.items():
        for layer in (0.25, 0.75):
            informative = (layer == 0.25) != (split == "test")
            signal = (2 * y - 1)[:, None] * (1.5 if informative else 0.0)
            features[split, layer] = (rng.normal(size=(n, 4)) + signal).astype(np.float32)
    return texts, labels, features


def fake_features(features, texts, calls):
    def cached(model_name, split_texts, progress=False, layer=1.0):
        split = split_texts[0].split()[0]
        assert split_texts == texts[split]
        calls.append((split, layer))
        return features[split, layer]

    def cached_at(model_name, split_texts, layers, progress=False):
        return {float(layer): cached(model_name, split_texts, progress, layer) for layer in layers}
    return cached, cached_at


def test_probe_layer_is_chosen_on_validation_and_test_is_read_once(tmp_path, monkeypatch):
    from alignlab.cache import Cache

    texts, labels, features = synthetic_splits()
    calls = []
    cached, cached_at = fake_features(features, texts, calls)
    monkeypatch.setattr(probes, "cached_features", cached)
    monkeypatch.setattr(probes, "cached_features_at", cached_at)
    result = probes.evaluate_probes_on(["m"], texts, labels, [0.75, 0.25], [0, 1], epochs=20,
                                       cache=Cache(tmp_path))
    assert result.chosen == {"m": 0.25}  # best on validation, although 0.75 would win on test
    val = result.validation.groupby("layer")["val_accuracy"].mean()
    assert val[0.25] > 0.8 and val[0.75] < 0.65
    assert abs(result.predictions["correct"].mean() - 0.5) < 0.1  # test at 0.25 is noise
    assert [c for c in calls if c[0] == "test"] == [("test", 0.25)] * 2  # once per seed, chosen layer only
    assert set(result.predictions.columns) >= {"model", "seed", "id", "label", "prob", "correct"}
    assert len(result.predictions) == 2 * len(labels["test"])


def test_probe_layer_ties_go_to_the_first_listed():
    validation = pd.DataFrame({"layer": [0.5, 0.5, 1.0, 1.0], "seed": [0, 1, 0, 1], "val_accuracy": [0.8, 0.7] * 2})
    assert probes.choose_layer(validation, [1.0, 0.5]) == 1.0
    assert probes.choose_layer(validation, [0.5, 1.0]) == 0.5


def test_probes_on_a_tiny_model_are_cached(tmp_path, monkeypatch):
    from alignlab.cache import Cache
    from alignlab.testing import tiny_causal_lm

    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    model, tokenizer = tiny_causal_lm("llama")
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    view = data.binary_view(tiny_questions(), seed=0)
    texts = {split: list(view["text"]) for split in probes.SPLITS}
    labels = {split: np.asarray(view["label"]) for split in probes.SPLITS}
    name = str(tmp_path / "tiny")
    first = probes.evaluate_probes_on([name], texts, labels, [0.5, 1.0], [0, 1], epochs=5)
    assert set(first.validation["layer"]) == {0.5, 1.0} and first.chosen[name] in (0.5, 1.0)
    assert (Cache().info().set_index("kind")["entries"]["overview-probe"]) == 4  # model x layer x seed

    def fail(*args, **kwargs):
        raise AssertionError("recomputed on a warm call")

    monkeypatch.setattr(probes, "train_head", fail)
    monkeypatch.setattr("alignlab.training.w2s.load_feature_extractor", fail)
    again = probes.evaluate_probes_on([name], texts, labels, [0.5, 1.0], [0, 1], epochs=5)
    pd.testing.assert_frame_equal(first.predictions, again.predictions)
    pd.testing.assert_frame_equal(first.validation, again.validation)


def probe_results_for(models=("weak", "strong")):
    texts, labels, features = synthetic_splits(n=120)
    rows, frames = [], []
    for m, p_right in zip(models, (0.6, 0.9)):
        rng = np.random.default_rng(1)
        for seed in (0, 1):
            rows += [{"model": m, "layer": layer, "seed": seed, "val_accuracy": acc}
                     for layer, acc in ((0.5, p_right), (1.0, p_right - 0.1))]
            correct = (rng.random(300) < p_right).astype(int)
            label = rng.integers(0, 2, 300)
            frames.append(pd.DataFrame({"model": m, "seed": seed, "id": np.arange(300), "label": label,
                                        "prob": np.where(correct == 1, label, 1 - label) * 0.8 + 0.1,
                                        "correct": correct}))
    return probes.ProbeResults(pd.DataFrame(rows), {m: 0.5 for m in models}, pd.concat(frames, ignore_index=True))


def test_probe_table_metrics_conclusion_and_figure():
    import matplotlib.pyplot as plt

    results = probe_results_for()
    probe = report.probe_table(results, n_boot=200)
    assert probe["layer"].tolist() == [0.5, 0.5] and probe["val_accuracy"].tolist() == pytest.approx([0.6, 0.9])
    assert probe["accuracy"].tolist() == pytest.approx([0.6, 0.9], abs=0.06)
    grid = report.validation_grid(results)
    assert list(grid.index) == ["weak", "strong"] and list(grid.columns) == [0.5, 1.0]
    predictions = predictions_with_kinds()
    table = report.accuracy_table(predictions, n_boot=200)
    comparisons = report.ladder_comparisons(predictions, ["weak", "strong"], n_boot=200)
    probe_comparisons = report.ladder_comparisons(results.predictions, ["strong", "weak"], n_boot=200)
    m = report.metrics(table, pd.DataFrame({"model": ["weak"], "mc_accuracy": [0.5]}), comparisons, probe,
                       probe_comparisons)
    assert m["probe_layer_strong"] == 0.5 and m["probe_acc_lo_weak"] < m["probe_acc_weak"] < m["probe_acc_hi_weak"]
    assert m["probe_ladder_holds"] is False and m["zeroshot_acc_weak"] == 0.5
    old = report.metrics(table, pd.DataFrame({"model": ["weak"], "mc_accuracy": [0.5]}), comparisons)
    assert {k: v for k, v in m.items() if k in old} == old  # the zero-shot keys are unchanged
    text = report.conclusion(table, comparisons, report.probe_table(results, n_boot=200).iloc[::-1],
                             probe_comparisons)
    assert "Measured order (lowest first): `weak` < `strong`" in text
    assert "goes **down**" in text and "On probe accuracy the ladder weak < strong does **not** hold" in text
    fig = report.plot_probe_accuracy(table, probe, results)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Does each model read its context?

def support_questions():
    return tiny_questions().map(lambda row, i: {"support": f"Passage {i}: the answer to q{i} is {'abcd'[i]}."},
                                with_indices=True)


def test_naive_and_oracle_prompts_differ_only_by_the_passage_and_both_orders_are_built():
    items = context.context_items(support_questions(), seeds=[0, 1])
    assert len(items) == 8 and {it["seed"] for it in items} == {0, 1}
    requests = context.context_requests(items)
    assert len(requests) == 8 * 2 * 2
    for k, item in enumerate(items):
        mine = {(r["protocol"], r["order"]): r for r in requests if r["item"] == k}
        assert set(mine) == {(c, o) for c in ("naive", "oracle") for o in (0, 1)}
        for order in (0, 1):
            naive, oracle = mine["naive", order]["prompt"], mine["oracle", order]["prompt"]
            assert item["support"] not in naive
            assert oracle == f"Passage: {item['support']}\n\n" + naive
        assert mine["naive", 0]["prompt"] != mine["naive", 1]["prompt"]
        assert (mine["naive", 0]["correct_index"], mine["naive", 1]["correct_index"]) == (0, 1)


def test_both_orders_are_scored_and_their_mean_cancels_a_letter_bias():
    items = context.context_items(support_questions(), seeds=[0])
    seen = []

    def biased(prompts, labels):  # always 80% " A", whatever the prompt
        seen.extend(prompts)
        return np.log(np.tile([0.8, 0.2], (len(prompts), 1)))

    out = context.judge_items(items, biased)
    assert len(seen) == 4 * 2 * 2 and len(set(seen)) == len(seen)
    assert np.allclose(out["p_correct"], 0.5) and (out["pred"] == 0).all()
    assert out["correct"].tolist() == [int(y == 0) for y in out["label"]]


def test_context_check_uses_the_chat_template_only_where_the_model_has_one(monkeypatch):
    from types import SimpleNamespace
    asked = {}

    def fake_scorer(name, batch_size=32, progress=False, chat=False):
        asked[name] = chat
        return lambda prompts, labels: np.log(np.full((len(prompts), len(labels)), 1.0 / len(labels)))

    templates = {"instruct": "{{ messages }}", "base": None}
    monkeypatch.setattr(context, "label_scorer", fake_scorer)
    monkeypatch.setattr(context, "load_tokenizer", lambda name: SimpleNamespace(chat_template=templates[name]))
    monkeypatch.setattr(context, "model_kind", lambda name: "decoder")
    monkeypatch.setattr(context, "release", lambda name: None)
    results = context.evaluate_context(["instruct", "base"], support_questions(), [0], chat=True)
    assert asked == {"instruct": True, "base": False}
    assert results.predictions.groupby("model")["chat"].first().to_dict() == {"instruct": True, "base": False}
    table = report.context_table(results, n_boot=50)
    assert table.set_index("model")["chat"].to_dict() == {"instruct": True, "base": False}
    # uniform log-probs: P(correct) = 0.5 everywhere, the verdict never changes
    assert table["constant"].all()
    assert "the same verdict to every item" in report.context_conclusion(table)
    results = context.evaluate_context(["instruct"], support_questions(), [0], chat=False)
    assert asked["instruct"] is False


def test_evaluate_context_on_a_tiny_model_skips_the_encoder():
    from alignlab.lm.scoring import score_labels
    from alignlab.testing import tiny_causal_lm

    model, tok = tiny_causal_lm("llama", seed=4)

    def score(prompts, labels):
        return score_labels(model, tok, prompts, labels)

    results = context.evaluate_context(["minilm-l6", "tiny"], support_questions(), [0, 1], scorers={"tiny": score})
    assert results.skipped == {"minilm-l6": context.ENCODER_REASON}
    out = results.predictions
    assert set(out["model"]) == {"tiny"} and len(out) == 2 * 2 * 4
    assert out["p_correct"].between(0, 1).all() and (out["pred"] == (out["p_correct"] > 0.5)).all()
    table = report.context_table(results, n_boot=200)
    assert table["model"].tolist() == ["tiny"] and table["questions"].tolist() == [4]
    text = report.context_conclusion(table, results.skipped)
    assert "`minilm-l6`: skipped (an encoder" in text


def test_context_gain_is_the_paired_difference_with_its_bootstrap_ci():
    from alignlab.stats import paired_bootstrap_ci

    rng = np.random.default_rng(0)
    n = 40
    naive = rng.integers(0, 2, size=(2, n))  # per seed and question
    oracle = np.maximum(naive, rng.random((2, n)) < 0.7).astype(int)
    rows = [{"model": "m/x", "seed": s, "id": i, "condition": c, "correct": int(v[s, i])}
            for c, v in (("naive", naive), ("oracle", oracle)) for s in (0, 1) for i in range(n)]
    results = context.ContextResults(pd.DataFrame(rows))
    table = report.context_table(results, n_boot=500)
    row = table.iloc[0]
    a, b = oracle.mean(0), naive.mean(0)
    assert np.isclose(row["naive_acc"], b.mean()) and np.isclose(row["oracle_acc"], a.mean())
    assert np.isclose(row["gain"], a.mean() - b.mean())
    assert (row["lo"], row["hi"]) == paired_bootstrap_ci(a, b, n_boot=500)
    assert row["lo"] > 0 and row["reads_context"]
    assert "`m/x` **reads its context**" in report.context_conclusion(table)
    flat = report.context_table(context.ContextResults(pd.DataFrame(
        [{**r, "correct": int(naive[r["seed"], r["id"]])} for r in rows])), n_boot=200)
    assert flat["gain"].iloc[0] == 0 and not flat["reads_context"].iloc[0]
    assert "**not shown** to read its context" in report.context_conclusion(flat)
    keys = {k for k in report.metrics(pd.DataFrame(columns=["model"]), pd.DataFrame(columns=["model"]),
                                      pd.DataFrame(), context=table)}
    assert keys == {f"context_{k}_m_x" for k in ("naive_acc", "oracle_acc", "gain", "gain_lo", "gain_hi")}
    import matplotlib.pyplot as plt
    plt.close(report.plot_context(table))


def test_context_questions_need_a_support_passage():
    config = Config.from_params({**GOOD, "context_questions": 3})
    picked = context.select_questions(support_questions(), config)
    assert picked["question"] == ["q0", "q1", "q2"]
    with pytest.raises(ParameterError, match="context_questions.*with a support passage"):
        context.select_questions(tiny_questions(), config)  # no passages at all


# ---------------------------------------------------------------------------------------------
# Parameters

GOOD = dict(models=["minilm-l6", "smollm2-135m"], dataset="world-facts", split="test", n_questions=100,
            seeds=[0, 1], length_normalize=True, batch_size=32, probe_layers=[0.5, 1.0], probe_epochs=100,
            probe_limit=0, context_questions=24, context_chat=False)


@pytest.mark.parametrize("name, value, words", [
    ("models", [], "non-empty list without repeats"),
    ("models", ["gpt2", "gpt2"], "without repeats"),
    ("n_questions", 0, "int >= 1"),
    ("seeds", [], "non-empty list of distinct ints"),
    ("seeds", [0, 0], "distinct"),
    ("seeds", [0.5], "ints"),
    ("length_normalize", 1, "True or False"),
    ("batch_size", 0, "int >= 1"),
    ("probe_layers", [], "non-empty list of distinct fractions"),
    ("probe_layers", [0.5, 0.5], "distinct"),
    ("probe_layers", [1.5], r"in \[0, 1\]"),
    ("probe_layers", [-0.25], r"in \[0, 1\]"),
    ("probe_layers", ["mid"], "fractions of depth"),
    ("probe_layers", 0.5, "list"),
    ("probe_epochs", 0, "int >= 1"),
    ("probe_limit", -1, "int >= 0"),
    ("context_chat", "yes", "True or False"),
    ("context_questions", 1, "int >= 2"),
    ("context_questions", 2.5, "int >= 2"),
])
def test_each_check_names_the_parameter(name, value, words):
    Config.from_params(GOOD)
    with pytest.raises(ParameterError, match=words) as error:
        Config.from_params({**GOOD, name: value})
    assert f"parameter {name!r} of 00_overview" in str(error.value) and repr(value) in str(error.value)


def test_config_fields_are_the_notebook_parameters():
    from alignlab.run.params import read_parameters, resolve_params

    assert [f.name for f in dataclasses.fields(Config)] == list(read_parameters("00_overview"))
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(Config))
    with pytest.raises(ParameterError, match="seeds"):
        resolve_params("00_overview", "quick", {"seeds": [1, 1]})  # Config.check, in the runner


@pytest.mark.slow
def test_overview_notebook_smoke(run_study):
    result, metrics = run_study("00_overview", models=["smollm2-135m"], n_questions=16, seeds=[0, 1],
                                 probe_limit=64, context_questions=8)
    assert 0.0 <= metrics["zeroshot_acc_smollm2-135m"] <= 1.0
    assert metrics["zeroshot_acc_lo_smollm2-135m"] <= metrics["zeroshot_acc_smollm2-135m"]
    assert 0.0 <= metrics["mc_acc_smollm2-135m"] <= 1.0
    assert metrics["probe_acc_lo_smollm2-135m"] <= metrics["probe_acc_smollm2-135m"] <= 1.0
    assert metrics["probe_layer_smollm2-135m"] == 0.5
    assert (result.run_dir / "figures" / "zeroshot-accuracy.pdf").is_file()
    assert (result.run_dir / "figures" / "probe-accuracy.pdf").is_file()
    assert (metrics["context_gain_lo_smollm2-135m"] <= metrics["context_gain_smollm2-135m"]
            <= metrics["context_gain_hi_smollm2-135m"])
    assert np.isclose(metrics["context_gain_smollm2-135m"],
                      metrics["context_oracle_acc_smollm2-135m"] - metrics["context_naive_acc_smollm2-135m"])
    assert (result.run_dir / "figures" / "reads-context.pdf").is_file()
