"""Zero-shot ladder: predictions on hand-made scores, the tables, and the notebook's smoke run."""

import numpy as np
import pandas as pd
import pytest

from alignlab import data
from alignlab.studies.overview import zeroshot


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
    assert np.allclose(out["prob"], [zeroshot.softmax(scores[[i]])[0, s] for i, s in zip(out["id"], out["shown"])])
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
    table = zeroshot.accuracy_table(predictions)
    assert table["accuracy"].tolist() == pytest.approx([0.6, 0.9], abs=0.04)
    assert (table["lo"] < table["accuracy"]).all() and (table["accuracy"] < table["hi"]).all()
    comparison = zeroshot.ladder_comparisons(predictions, ["weak", "strong"]).iloc[0]
    assert comparison["holds"] and comparison["lo"] > 0.2
    reversed_ = zeroshot.ladder_comparisons(predictions, ["strong", "weak"]).iloc[0]
    assert not reversed_["holds"] and reversed_["hi"] < 0
    text = zeroshot.conclusion(table, zeroshot.ladder_comparisons(predictions, ["strong", "weak"]))
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


@pytest.mark.slow
def test_overview_notebook_smoke(run_study):
    result, metrics = run_study("00_overview", models=["smollm2-135m"], n_questions=16, seeds=[0, 1])
    assert 0.0 <= metrics["zeroshot_acc_smollm2-135m"] <= 1.0
    assert metrics["zeroshot_acc_lo_smollm2-135m"] <= metrics["zeroshot_acc_smollm2-135m"]
    assert 0.0 <= metrics["mc_acc_smollm2-135m"] <= 1.0
    assert (result.run_dir / "figures" / "zeroshot-accuracy.pdf").is_file()
