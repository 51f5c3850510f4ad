"""In-context W2SG: prompts, label flips, the three retrievers, and runs on a tiny model."""

import numpy as np
import pandas as pd
import pytest

from alignlab.run.params import read_parameters
from alignlab.studies.w2sg import icl, report
from alignlab.studies.w2sg.config import Config


def test_prompt_format():
    demo = icl.format_demo("Q: Capital of France? A: Paris", 1)
    assert demo == "Q: Capital of France? A: Paris\nCorrect: Yes"
    assert "Teacher confidence: 87%" in icl.format_demo("Q: x A: y", 0, confidence=0.87)
    prompt = icl.build_prompt("Q: Capital of Peru? A: Lima", [demo])
    assert prompt.startswith(icl.INSTRUCTION) and prompt.endswith("Q: Capital of Peru? A: Lima\nCorrect:")


def test_flip_labels_flips_the_exact_fraction():
    labels = np.array([0, 1] * 50)
    flipped = icl.flip_labels(labels, 0.3, np.random.default_rng(0))
    assert (flipped != labels).sum() == 30
    assert (icl.flip_labels(labels, 0.0, np.random.default_rng(0)) == labels).all()


def test_random_retriever_is_class_balanced():
    shown = np.array([1] * 30 + [0] * 70)
    picks = icl.retrieve_random(shown, 10, 4, np.random.default_rng(0))
    assert picks.shape == (10, 4)
    assert all(shown[row].sum() == 2 for row in picks)
    assert all(len(set(row)) == 4 for row in picks)
    odd = icl.retrieve_random(shown, 10, 3, np.random.default_rng(0))
    assert sorted({int(shown[row].sum()) for row in odd}) == [1, 2]  # the odd one alternates


def test_knn_and_bm25_find_the_nearest():
    pool = ["Q: What is the capital of France? A: Paris", "Q: What is the symbol of oxygen? A: O",
            "Q: Which currency does Japan use? A: yen", "Q: What is the capital of Peru? A: Lima"]
    queries = ["Q: Which currency is used in Japan? A: dollar", "Q: Symbol of oxygen? A: Ox"]
    bm = icl.retrieve_bm25(pool, queries, 2)
    assert bm.shape == (2, 2) and bm[0, -1] == 2 and bm[1, -1] == 1  # best match last
    emb = np.eye(4)
    q = np.array([[0.1, 0.0, 1.0, 0.2], [0.0, 1.0, 0.0, 0.5]])
    knn = icl.retrieve_knn(emb, q, 2)
    np.testing.assert_array_equal(knn, [[3, 2], [3, 1]])


def test_grid():
    assert icl.grid(["random", "knn", "bm25"], ["weak", "gold", "flipped"]) == [
        ("random", "weak"), ("random", "gold"), ("random", "flipped"), ("knn", "weak"), ("bm25", "weak")]


def test_grid_with_the_random_label_control():
    assert ("random", "random") in icl.grid(["random", "bm25"], ["weak", "gold", "random"])


def tiny_icl(monkeypatch, tmp_path):
    from alignlab.testing import tiny_causal_lm

    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path))
    tiny = tiny_causal_lm("llama")
    monkeypatch.setattr("alignlab.lm.incontext.load_causal_lm", lambda name: tiny)


def test_run_icl_seed_on_a_tiny_model(monkeypatch, tmp_path):
    tiny_icl(monkeypatch, tmp_path)
    rng = np.random.default_rng(0)
    pool = [f"Q: item {i}? A: answer {i % 7}" for i in range(40)]
    gold = np.array([i % 2 for i in range(40)])
    weak_probs = np.stack([1 - (gold * 0.7 + 0.15), gold * 0.7 + 0.15], 1)
    weak_probs[:8] = weak_probs[:8, ::-1]  # 8 of 40 weak labels wrong
    queries = {"test": ([f"Q: query {i}? A: answer {i % 5}" for i in range(6)], np.array([0, 1] * 3),
                        rng.normal(size=(6, 8))),
               "validation": ([f"Q: check {i}? A: answer {i % 3}" for i in range(4)], np.array([0, 1] * 2),
                              rng.normal(size=(4, 8)))}
    teacher = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6], [0.9, 0.1], [0.1, 0.9]])  # 5 of 6 right
    rows = icl.run_icl_seed("tiny", pool, gold, weak_probs, rng.normal(size=(40, 8)), queries, ks=[0, 2],
                            retrievers=["random", "knn", "bm25"], sources=["weak", "gold", "flipped", "random"],
                            seed=0, teacher_query_probs=teacher)
    assert len(rows) == 12  # 6 combinations x 2 values of k
    flipped = [r for r in rows if r["source"] == "flipped" and r["k"] == 2][0]
    assert flipped["flip_fraction"] == pytest.approx(0.2)  # the weak labels' error rate
    random_labels = [r for r in rows if r["source"] == "random" and r["k"] == 2][0]
    assert random_labels["flip_fraction"] == 0.5
    assert all(0 <= r["acc"] <= 1 and 0 <= r["cal_acc"] <= 1 for r in rows)
    assert all(r["teacher_acc"] == pytest.approx(5 / 6) for r in rows)
    assert all(len(r["correct"]) == 6 and np.mean(r["correct"]) == pytest.approx(r["acc"]) for r in rows)
    zero = [r for r in rows if r["k"] == 0]
    assert len({r["acc"] for r in zero}) == 1  # the zero-shot prompt is shared


def test_calibrated_accuracy_uses_the_validation_median_threshold(monkeypatch):
    """Scores all positive (a model biased to Yes): accuracy at 0 is the positive rate, the
    threshold at the validation median recovers the ranking."""
    def fake_scores(model, prompts, batch_size=16):
        return np.array([5.0 + (1.0 if "pos" in p.rsplit("\n\n", 1)[-1] else 0.0) for p in prompts])

    monkeypatch.setattr(icl, "label_scores", fake_scores)
    queries = {"test": (["Q: pos a", "Q: neg b", "Q: pos c", "Q: neg d"], np.array([1, 0, 1, 0]), np.eye(4)),
               "validation": (["Q: pos e", "Q: neg f"], np.array([1, 0]), np.eye(4)[:2])}
    rows = icl.run_icl_seed("m", ["Q: pos x", "Q: neg y"], np.array([1, 0]), np.array([[0.2, 0.8], [0.7, 0.3]]),
                            np.eye(4)[:2], queries, ks=[0], retrievers=["random"], sources=["weak"], seed=0)
    assert rows[0]["acc"] == 0.5 and rows[0]["cal_acc"] == 1.0 and rows[0]["auc"] == 1.0


def icl_frame(teacher=0.6, weak=0.7, gold=0.8, n_seeds=3, n_questions=20):
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(n_seeds):
        for source, acc in (("weak", weak), ("gold", gold), ("random", 0.5)):
            for k in (0, 4):
                a = 0.55 if k == 0 else acc + 0.01 * seed
                correct = (rng.random(n_questions) < a).astype(int).tolist()
                rows.append({"seed": seed, "retriever": "random", "source": source, "k": k, "acc": a,
                             "cal_acc": a, "auc": a, "n": n_questions, "correct": correct, "cal_correct": correct,
                             "teacher_acc": teacher, "flip_fraction": 0.0, "threshold": 0.0})
    return pd.DataFrame(rows)


def test_icl_pgr_against_the_teacher_on_the_same_questions():
    table = report.icl_pgr(icl_frame(teacher=0.6, weak=0.7, gold=0.8))
    assert len(table) == 3
    np.testing.assert_allclose(table.icl_pgr, [(0.7 + d - 0.6) / (0.8 + d - 0.6) for d in (0, 0.01, 0.02)])
    headline = report.icl_headline(icl_frame())
    assert headline["icl_teacher_acc"] == pytest.approx(0.6) and "icl_pgr" in headline
    assert "icl_cal_acc_weak_labels" in headline and "icl_auc_random_labels" in headline
    text = report.icl_conclusion(icl_frame())
    assert "beats its supervisor" in text and "ICL-PGR" in text and "[questions]" in text
    assert "gold - random labels" in text


def test_question_bootstrap_resamples_questions():
    mean, lo, hi = report.question_bootstrap([[1, 0, 1, 1], [1, 0, 0, 1]])
    assert mean == pytest.approx(0.625) and 0 <= lo < mean < hi <= 1
    assert report.question_bootstrap([[1] * 10, [1] * 10])[1:] == (1.0, 1.0)


def test_notebook_says_the_demonstrations_come_from_the_students_half():
    import json

    from alignlab.paths import project_root

    cells = json.loads((project_root() / "notebooks" / "01_w2sg_ensembles.ipynb").read_text())["cells"]
    text = " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "teacher's half" not in text and "student's half" in text


def test_run_icl_study_uses_the_first_pair_and_the_first_seeds(monkeypatch, tmp_path):
    tiny_icl(monkeypatch, tmp_path)
    rng = np.random.default_rng(0)
    monkeypatch.setattr("alignlab.studies.w2sg.icl.cached_features",
                        lambda name, texts: rng.normal(size=(len(texts), 8)))
    defaults = {name: p.default for name, p in read_parameters("01_w2sg_ensembles").items()}
    config = Config.from_params({**defaults, "weak_models": ["w", "w2"], "strong_models": ["s", "s2"],
                                 "seeds": [3, 4, 5], "icl_n_seeds": 2, "icl_k": [0, 2],
                                 "icl_retrievers": ["random", "bm25"], "icl_sources": ["weak", "gold"],
                                 "n_icl_questions": 4})
    texts = {"train": [f"Q: item {i}? A: answer {i % 7}" for i in range(40)],
             "validation": [f"Q: check {i}? A: answer {i % 3}" for i in range(10)],
             "test": [f"Q: query {i}? A: answer {i % 5}" for i in range(10)]}
    labels = {"train": np.array([i % 2 for i in range(40)]), "validation": np.array([i % 2 for i in range(10)]),
              "test": np.array([i % 2 for i in range(10)])}
    half2 = np.arange(20, 40)
    soft = np.stack([1 - labels["train"][half2] * 0.8 - 0.1, labels["train"][half2] * 0.8 + 0.1], 1)
    test_probs = np.tile([[0.3, 0.7]], (10, 1))
    teacher_labels = {("w -> s", seed): (half2, soft, test_probs) for seed in (3, 4, 5)}  # pair 2 is not used
    out = icl.run_icl_study(config, texts, labels, teacher_labels)
    assert sorted(set(out.seed)) == [3, 4] and set(out.n) == {4}
    assert len(out) == 2 * 3 * 2  # seeds x (retriever, source) combinations x k
    headline = report.icl_headline(out)
    assert headline["icl_k_max"] == 2
    assert {"icl_acc_weak_labels", "icl_acc_gold_labels", "icl_acc_bm25", "icl_teacher_acc"} <= set(headline)
    assert report.icl_conclusion(out).startswith("**In-context W2SG**")
    assert len(report.icl_summary_table(out)) == 6
