"""Study 04 (cultural dimensions): the item bank, the CDEval loader, pole mapping, order swap,
aggregation and CIs, consistency, parameter checks, and a notebook smoke test."""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alignlab import paths
from alignlab.studies.culture import orientation as culture
from alignlab.data import cultural, list_datasets, load

REAL_CDEVAL = paths.project_root().parent / "shared" / "fixtures" / "real" / "cdeval"
REPO = Path(__file__).resolve().parents[1]

# Three items written for this test, in CDEval's exact schema (key order, CRLF, JSON array).
SCHEMA_ITEMS = [
    {"Dimension": "UAI", "Domain": "Work", "Question": "How should a new office be set up?",
     "Option 1": "Follow the written floor plan exactly.", "Option 2": "Arrange it as the team goes along."},
    {"Dimension": "PDI", "Domain": "Family", "Question": "Who picks the holiday destination?",
     "Option 1": "The parents decide for everyone.", "Option 2": "The whole family votes on it."},
    {"Dimension": "UAI", "Domain": "Arts", "Question": "How do you watch a play?",
     "Option 1": "After reading a summary of it.", "Option 2": "Without knowing anything beforehand."},
]


@pytest.fixture
def schema_file(tmp_path):
    path = tmp_path / "CDEval.json"
    path.write_bytes(json.dumps(SCHEMA_ITEMS, indent=4).replace("\n", "\r\n").encode())
    return path


# ---------------------------------------------------------------------------------------------
# The authored bank

def test_bank_validates():
    report = cultural.validate_items(cultural.read_items(cultural.bank_path()))
    assert report["ok"], cultural.validation_summary(report)
    assert report["n_items"] >= 210 and report["n_cells"] == 42 and report["min_per_cell"] >= 5
    assert (report["length"]["mean_log_ratio"].abs() <= 0.1).all()


def test_bank_file_has_cdeval_keys_in_order():
    data = json.loads(cultural.bank_path().read_text(encoding="utf-8"))
    assert all(list(row) == list(cultural.FIELDS) for row in data)


def test_validation_catches_problems():
    rows = [dict(r) for r in SCHEMA_ITEMS] + [dict(SCHEMA_ITEMS[0])]
    rows[1]["Option 1"] = "The parents decide for everyone, after a very long and tiring discussion."
    report = cultural.validate_items(rows)
    assert not report["ok"]
    text = " | ".join(report["problems"])
    assert "below 5 items" in text and "duplicated question" in text and "length" in text


def test_registry_and_load():
    ds = load("cultural-items", split="test")
    assert ds.column_names == list(cultural.COLUMNS) and ds.num_rows >= 210
    assert len(set(ds["id"])) == ds.num_rows
    table = list_datasets().set_index("name")
    assert table.loc["cultural-items", "test"] == ds.num_rows
    assert "cdeval" in table.index  # NA unless cached; never the network
    with pytest.raises(ValueError, match="one split"):
        load("cultural-items", split="train")


# ---------------------------------------------------------------------------------------------
# The CDEval loader

def test_cdeval_loader_on_schema_file(schema_file):
    ds = load("cdeval", split="test", path=schema_file)
    assert ds.column_names == list(cultural.COLUMNS) and ds.num_rows == 3
    assert ds["id"] == ["cdeval-0", "cdeval-1", "cdeval-2"]
    # selected by the Dimension field, not by position: ids keep the source rows
    uai = cultural.load_cdeval(split="test", path=schema_file.parent, dimensions=["UAI"])
    assert uai["id"] == ["cdeval-0", "cdeval-2"] and set(uai["Dimension"]) == {"UAI"}


def test_cdeval_loader_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{**SCHEMA_ITEMS[0], "Dimension": "XYZ"}]))
    with pytest.raises(ValueError, match="Dimension 'XYZ'"):
        cultural.load_cdeval(path=bad)
    bad.write_text(json.dumps([{"Question": "q"}]))
    with pytest.raises(ValueError, match="lacks the key"):
        cultural.load_cdeval(path=bad)
    with pytest.raises(FileNotFoundError):
        cultural.load_cdeval(path=tmp_path / "missing.json")
    with pytest.raises(ValueError, match="dimensions"):
        cultural.load_cdeval(path=tmp_path / "missing.json", dimensions=["HOF"])


@pytest.mark.skipif(not REAL_CDEVAL.is_dir(), reason="real CDEval sample not present")
def test_cdeval_loader_on_real_sample():
    ds = load("cdeval", split="test", path=REAL_CDEVAL)
    raw = json.loads((REAL_CDEVAL / "CDEval.json").read_text(encoding="utf-8"))
    assert ds.num_rows == len(raw)
    assert set(ds["Dimension"]) == set(cultural.DIMENSIONS) and set(ds["Domain"]) <= set(cultural.DOMAINS)
    mas = cultural.load_cdeval(split="test", path=REAL_CDEVAL, dimensions="MAS")
    assert mas.num_rows == sum(r["Dimension"] == "MAS" for r in raw)
    for row in mas:
        assert raw[int(row["id"].split("-")[1])]["Question"] == row["Question"]
    report = cultural.validate_items(ds, min_per_cell=1)
    assert report["n_items"] == len(raw)


def test_sample_per_cell_is_random_and_capped():
    ds = load("cultural-items", split="test")
    a = cultural.sample_per_cell(ds, 2, seed=0)
    b = cultural.sample_per_cell(ds, 2, seed=1)
    assert a.num_rows == 84 and b.num_rows == 84 and a["id"] != b["id"]
    with pytest.raises(ValueError, match="n_per_cell"):
        cultural.sample_per_cell(ds, 0)


# ---------------------------------------------------------------------------------------------
# Poles, prompts and the order swap

def test_pole_mapping():
    expected = {"PDI": "high power distance", "IDV": "individualism", "UAI": "high uncertainty avoidance",
                "MAS": "masculinity", "LTO": "long-term orientation", "IVR": "indulgence"}
    for dim, high in expected.items():
        assert culture.pole(dim, 1) == high
        assert culture.pole(dim, 2) == cultural.POLES[dim][1] != high
    assert culture.pole("IDV", 2) == "collectivism" and culture.pole("MAS", 2) == "femininity"
    assert culture.pole("IVR", 2) == "restraint" and culture.pole("LTO", 2) == "short-term orientation"
    with pytest.raises(ValueError, match="dimension"):
        culture.pole("HOF", 1)
    with pytest.raises(ValueError, match="1 or 2"):
        culture.pole("PDI", 3)


def items_df():
    rows = [{"id": f"t{i}", **r} for i, r in enumerate(SCHEMA_ITEMS)]
    return pd.DataFrame(rows)


def test_order_swap_flips_labels_and_probability():
    prompts = culture.build_prompts(items_df(), "choice", ["letters"])
    original = prompts[prompts["order"] == "original"].iloc[0]
    swapped = prompts[prompts["order"] == "swapped"].iloc[0]
    opt1, opt2 = SCHEMA_ITEMS[0]["Option 1"], SCHEMA_ITEMS[0]["Option 2"]
    assert f"A. {opt1}\nB. {opt2}" in original["context"]
    assert f"A. {opt2}\nB. {opt1}" in swapped["context"]
    # the model prefers label A (first listed) with p = 0.8 in both orders: pure position bias
    logp_a, logp_b = np.log([0.8, 0.8]), np.log([0.2, 0.2])
    pair = prompts[prompts["id"] == "t0"]
    scored = culture.orientation(pair, logp_a, logp_b)
    assert np.allclose(scored["p_first"], 0.8)
    assert np.allclose(scored["p_high"], [0.8, 0.2])  # original: A is Option 1; swapped: A is Option 2
    assert scored["chose_first"].all() and scored["chose_high"].tolist() == [True, False]
    assert np.isclose(scored["p_high"].mean(), 0.5)  # averaging the orders removes the bias


def test_prompts_use_chat_template_only_when_present():
    from alignlab.testing import tiny_causal_lm

    _, base_tok = tiny_causal_lm("gpt2")
    assert not culture.has_chat_template(base_tok)
    base = culture.build_prompts(items_df(), "choice", ["numbered"], base_tok)
    assert base["context"].iloc[0].endswith("Answer with 1 or 2.\nAnswer: Option ")
    base_tok.chat_template = "{% for m in messages %}<u>{{ m['content'] }}</u>{% endfor %}<a>"
    chat = culture.build_prompts(items_df(), "loglik", [], base_tok)
    assert chat["context"].iloc[0] == "<u>" + SCHEMA_ITEMS[0]["Question"] + "</u><a>"
    assert chat["first"].iloc[0] == SCHEMA_ITEMS[0]["Option 1"]


def test_score_labels_matches_score_pairs():
    from alignlab.lm.scoring import score_labels, score_pairs
    from alignlab.testing import tiny_causal_lm

    model, tok = tiny_causal_lm("llama")
    contexts = ["Question: a or b? Answer:", "Which one do you like most, A or B? Answer:"]
    fast = score_labels(model, tok, contexts, [" A", " B"], batch_size=2)
    slow = score_pairs(model, tok, [(c, x) for c in contexts for x in (" A", " B")]).sum.reshape(2, 2)
    assert np.allclose(fast, slow, atol=1e-4)


def test_scoring_end_to_end_on_tiny_model():
    from alignlab.testing import tiny_causal_lm

    model, tok = tiny_causal_lm("llama")
    for method, templates, n in (("loglik", [], 3), ("choice", list(culture.TEMPLATES), 18)):
        prompts = culture.build_prompts(items_df(), method, templates, tok)
        scored = culture.orientation(prompts, *culture.score_prompts(model, tok, prompts, method))
        assert len(scored) == n and scored["p_high"].between(0, 1).all()
        swapped = scored["order"] == "swapped"
        assert np.allclose(scored.loc[swapped, "p_high"], 1 - scored.loc[swapped, "p_first"])


# ---------------------------------------------------------------------------------------------
# Aggregation, CIs, consistency on a hand-built table

def hand_table():
    """Two models, one dimension (PDI), 4 items, 2 templates, both orders.
    model `a`: prefers the high pole in both orders (p_high 0.9) on items 0-2, low on item 3;
    model `b`: always picks the first-listed option (p_first 0.9): pure position bias."""
    rows = []
    for model in ("a", "b"):
        for i in range(4):
            for template in ("t1", "t2"):
                for order in culture.ORDERS:
                    if model == "a":
                        p_high = 0.9 if i < 3 else 0.1
                        p_first = p_high if order == "original" else 1 - p_high
                    else:
                        p_first = 0.9
                        p_high = p_first if order == "original" else 1 - p_first
                    rows.append({"model": model, "method": "choice", "id": f"i{i}", "Dimension": "PDI",
                                 "Domain": "Work" if i < 2 else "Arts", "template": template, "order": order,
                                 "p_first": p_first, "p_high": p_high, "chose_first": p_first > 0.5,
                                 "chose_high": p_high > 0.5})
    return pd.DataFrame(rows)


def test_aggregate_means_and_cis():
    table = culture.aggregate(hand_table(), n_boot=500, seed=0).set_index("model")
    assert np.isclose(table.loc["a", "mean"], 0.7) and np.isclose(table.loc["b", "mean"], 0.5)
    assert table.loc["a", "lo"] < 0.7 < table.loc["a", "hi"] and table.loc["a", "lo"] >= 0.1
    assert np.isclose(table.loc["b", "lo"], 0.5) and np.isclose(table.loc["b", "hi"], 0.5)  # no spread
    assert table.loc["a", "n_items"] == 4 and table.loc["a", "n_templates"] == 2
    domains = culture.aggregate(hand_table(), by=("model", "method", "Dimension", "Domain"), n_boot=200)
    a = domains[domains["model"] == "a"].set_index("Domain")
    assert np.isclose(a.loc["Work", "mean"], 0.9) and np.isclose(a.loc["Arts", "mean"], 0.5)
    assert list(domains["Domain"][:2]) == ["Work", "Arts"]  # DOMAINS order


def test_two_way_bootstrap_reduces_to_item_bootstrap():
    matrix = np.array([[0.0], [1.0], [1.0], [0.0]])
    mean, lo, hi = culture.two_way_bootstrap(matrix, n_boot=2000, seed=0)
    assert mean == 0.5 and 0.0 <= lo < 0.5 < hi <= 1.0
    assert culture.two_way_bootstrap(matrix, n_boot=500, seed=3) == culture.two_way_bootstrap(matrix, n_boot=500, seed=3)
    with pytest.raises(ValueError):
        culture.two_way_bootstrap(np.zeros((0, 2)))


def test_consistency_and_position_bias():
    scores = hand_table()
    consist = culture.consistency(scores, n_boot=200).set_index("model")
    assert consist.loc["a", "consistency"] == 1.0 and consist.loc["b", "consistency"] == 0.0
    per_template = culture.consistency(scores, by=("model", "template"), n_boot=200)
    assert len(per_template) == 4
    bias = culture.position_bias(scores, n_boot=200).set_index("model")
    assert bias.loc["a", "first_share"] == 0.5 and bias.loc["b", "first_share"] == 1.0


def test_compare_with_paper_and_conclusion():
    scores = hand_table()
    dims = culture.aggregate(scores, n_boot=300)
    compared = culture.compare_with_paper(dims).set_index("model")
    assert culture.classify(0.55, 0.8) == "high" and culture.classify(0.2, 0.45) == "low"
    assert culture.classify(0.4, 0.6) == "middle"
    assert compared.loc["b", "observed"] == "middle" and compared.loc["a", "paper"] == "low"
    assert not compared.loc["b", "match"]  # the paper expects low PDI
    text = culture.conclusion(dims, culture.consistency(scores, n_boot=200), culture.position_bias(scores, n_boot=200),
                              culture.stability(scores, dims, n_boot=200))
    assert "`b` picks the first-listed option in 1.00" in text and "no stable orientation" in text
    m = culture.metrics(dims, culture.consistency(scores, n_boot=200))
    assert m["orientation_a_PDI"] == pytest.approx(0.7) and m["consistency_b"] == 0.0


# ---------------------------------------------------------------------------------------------
# Parameters

@pytest.mark.parametrize("kwargs, words", [
    ({"models": []}, "models"),
    ({"dataset": "sciq"}, "dataset must be one of"),
    ({"methods": ["vote"]}, "methods must be"),
    ({"templates": ["numbered", "numbered"]}, "templates must be"),
    ({"templates": ["fancy"]}, "numbered, letters, preference"),
    ({"n_per_cell": 0}, "n_per_cell"),
    ({"n_boot": 10}, "n_boot must be an int >= 100"),
])
def test_bad_parameters_fail_fast(kwargs, words):
    good = dict(models=["smollm2-135m"], dataset="cultural-items", methods=["loglik", "choice"],
                templates=list(culture.TEMPLATES), n_per_cell=5, n_boot=1000)
    culture.check_settings(**good)
    with pytest.raises(ValueError, match=words):
        culture.check_settings(**{**good, **kwargs})
    with pytest.raises(ValueError, match="method must be"):
        culture.build_prompts(items_df(), "vote")


def test_notebook_rejects_bad_parameter_before_running(tmp_path, monkeypatch):
    from alignlab.run import runner

    with pytest.raises(runner.ParameterError, match="dataset"):
        runner.resolve_params("04_cultural_dimensions", "quick", {"dataset": "nope"})
    paper = runner.load_profile("paper")["04_cultural_dimensions"]
    assert paper["dataset"] == "cdeval" and all("Instruct" in m for m in paper["models"])
    parameters = runner.read_parameters("04_cultural_dimensions")
    for name, value in paper.items():  # model names need the hub, which tests cannot reach
        if name != "models":
            runner.check_value("04_cultural_dimensions", parameters[name], value)


# ---------------------------------------------------------------------------------------------
# The notebook, end to end (smallest settings)

@pytest.mark.slow
def test_notebook_smoke(tmp_path, monkeypatch):
    from alignlab.run import cli
    from alignlab.run import registry
    from alignlab.run import runner

    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'tmp'\n")
    for folder in ("notebooks", "profiles", "data"):
        (tmp_path / folder).mkdir()
    shutil.copy(REPO / "notebooks" / "04_cultural_dimensions.ipynb", tmp_path / "notebooks")
    for profile in ("quick.yaml", "paper.yaml"):
        shutil.copy(REPO / "profiles" / profile, tmp_path / "profiles")
    shutil.copy(REPO / "data" / "cultural_items.json", tmp_path / "data")
    monkeypatch.setenv("ALIGNLAB_ROOT", str(tmp_path))
    monkeypatch.delenv("ALIGNLAB_RUN_DIR", raising=False)
    code = cli.main(["run", "04_cultural_dimensions", "--no-progress", "-p", "models", "[smollm2-135m]",
                     "-p", "n_per_cell", "1", "-p", "templates", "[letters]", "-p", "n_boot", "200"])
    (run,) = registry.read_runs()
    assert code == 0, run["error"]
    metrics = json.loads((tmp_path / run["run_dir"] / "metrics.json").read_text())
    for dim in cultural.DIMENSIONS:
        assert 0 <= metrics[f"orientation_smollm2-135m_{dim}"] <= 1
    assert 0 <= metrics["consistency_smollm2-135m"] <= 1
    figures = {p.name for p in (tmp_path / run["run_dir"]).glob("**/*.png")}
    assert {"heatmap.png", "domains.png", "distributions.png"} <= figures
