"""Study 04 (cultural dimensions): the item bank, the CDEval loader, order swap, aggregation and
CIs, consistency, the report, parameter checks, and a notebook smoke test."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alignlab import paths
from alignlab.data import cultural, list_datasets, load
from alignlab.studies.culture import aggregation, prompts, report, scoring
from alignlab.studies.culture.config import METHODS, TEMPLATES, Config
from alignlab.study_config import ParameterError

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
# Prompts and the order swap

def items_df():
    rows = [{"id": f"t{i}", **r} for i, r in enumerate(SCHEMA_ITEMS)]
    return pd.DataFrame(rows)


def test_order_swap_flips_labels_and_probability():
    table = prompts.build_prompts(items_df(), "choice", ["letters"])
    original = table[table["order"] == "original"].iloc[0]
    swapped = table[table["order"] == "swapped"].iloc[0]
    opt1, opt2 = SCHEMA_ITEMS[0]["Option 1"], SCHEMA_ITEMS[0]["Option 2"]
    assert f"A. {opt1}\nB. {opt2}" in original["context"]
    assert f"A. {opt2}\nB. {opt1}" in swapped["context"]
    # the model prefers label A (first listed) with p = 0.8 in both orders: pure position bias
    logp_a, logp_b = np.log([0.8, 0.8]), np.log([0.2, 0.2])
    pair = table[table["id"] == "t0"]
    scored = scoring.orientation(pair, logp_a, logp_b)
    assert np.allclose(scored["p_first"], 0.8)
    assert np.allclose(scored["p_high"], [0.8, 0.2])  # original: A is Option 1; swapped: A is Option 2
    assert scored["chose_first"].all() and scored["chose_high"].tolist() == [True, False]
    assert np.isclose(scored["p_high"].mean(), 0.5)  # averaging the orders removes the bias


def test_prompts_use_chat_template_only_when_present():
    from alignlab.testing import tiny_causal_lm

    _, base_tok = tiny_causal_lm("gpt2")
    assert not prompts.has_chat_template(base_tok)
    base = prompts.build_prompts(items_df(), "choice", ["numbered"], base_tok)
    assert base["context"].iloc[0].endswith("Answer with 1 or 2.\nAnswer: Option ")
    base_tok.chat_template = "{% for m in messages %}<u>{{ m['content'] }}</u>{% endfor %}<a>"
    chat = prompts.build_prompts(items_df(), "loglik", [], base_tok)
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
    for method, templates, n in (("loglik", [], 3), ("choice", list(TEMPLATES), 18)):
        table = prompts.build_prompts(items_df(), method, templates, tok)
        scored = scoring.orientation(table, *scoring.score_prompts(model, tok, table, method))
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
                for order in prompts.ORDERS:
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
    table = aggregation.aggregate(hand_table(), n_boot=500, seed=0).set_index("model")
    assert np.isclose(table.loc["a", "mean"], 0.7) and np.isclose(table.loc["b", "mean"], 0.5)
    assert table.loc["a", "lo"] < 0.7 < table.loc["a", "hi"] and table.loc["a", "lo"] >= 0.1
    assert np.isclose(table.loc["b", "lo"], 0.5) and np.isclose(table.loc["b", "hi"], 0.5)  # no spread
    assert table.loc["a", "n_items"] == 4 and table.loc["a", "n_templates"] == 2
    domains = aggregation.aggregate(hand_table(), by=("model", "method", "Dimension", "Domain"), n_boot=200)
    a = domains[domains["model"] == "a"].set_index("Domain")
    assert np.isclose(a.loc["Work", "mean"], 0.9) and np.isclose(a.loc["Arts", "mean"], 0.5)
    assert list(domains["Domain"][:2]) == ["Work", "Arts"]  # DOMAINS order


def test_two_way_bootstrap_reduces_to_item_bootstrap():
    matrix = np.array([[0.0], [1.0], [1.0], [0.0]])
    mean, lo, hi = aggregation.two_way_bootstrap(matrix, n_boot=2000, seed=0)
    assert mean == 0.5 and 0.0 <= lo < 0.5 < hi <= 1.0
    again = aggregation.two_way_bootstrap(matrix, n_boot=500, seed=3)
    assert aggregation.two_way_bootstrap(matrix, n_boot=500, seed=3) == again
    with pytest.raises(ValueError):
        aggregation.two_way_bootstrap(np.zeros((0, 2)))


def test_consistency_and_position_bias():
    scores = hand_table()
    consist = aggregation.consistency(scores, n_boot=200).set_index("model")
    assert consist.loc["a", "consistency"] == 1.0 and consist.loc["b", "consistency"] == 0.0
    per_template = aggregation.consistency(scores, by=("model", "template"), n_boot=200)
    assert len(per_template) == 4
    bias = aggregation.position_bias(scores, n_boot=200).set_index("model")
    assert bias.loc["a", "first_share"] == 0.5 and bias.loc["b", "first_share"] == 1.0


def test_compare_with_paper_and_conclusion():
    scores = hand_table()
    dims = aggregation.aggregate(scores, n_boot=300)
    compared = report.compare_with_paper(dims).set_index("model")
    assert report.classify(0.55, 0.8) == "high" and report.classify(0.2, 0.45) == "low"
    assert report.classify(0.4, 0.6) == "middle"
    assert compared.loc["b", "observed"] == "middle" and compared.loc["a", "paper"] == "low"
    assert not compared.loc["b", "match"]  # the paper expects low PDI
    text = report.conclusion(dims, aggregation.consistency(scores, n_boot=200),
                             aggregation.position_bias(scores, n_boot=200),
                             aggregation.stability(scores, dims, n_boot=200))
    assert "`b` picks the first-listed option in 1.00" in text and "no stable orientation" in text
    m = report.metrics(dims, aggregation.consistency(scores, n_boot=200))
    assert m["orientation_a_PDI"] == pytest.approx(0.7) and m["consistency_b"] == 0.0


def test_loglik_only_has_no_forced_choice_tables():
    scores = hand_table().assign(method="loglik", template="loglik")
    scores = scores[scores["order"] == "original"]
    assert aggregation.consistency(scores).empty and aggregation.position_bias(scores).empty
    dims = aggregation.aggregate(scores, n_boot=200)
    consist, bias = aggregation.consistency(scores), aggregation.position_bias(scores)
    m = report.metrics(dims, consist, bias)
    assert pd.Series(m).equals(pd.Series(report.metrics(dims, consist, None)))  # NaN == NaN here
    assert np.isnan(m["consistency_a"]) and "position_bias_a" not in m
    assert m["orientation_a_PDI"] == m["orientation_loglik_a_PDI"]
    text = report.conclusion(dims, consist, bias, aggregation.stability(scores, dims, n_boot=200))
    assert "Position bias" not in text


def test_report_tables_and_figures():
    import matplotlib.pyplot as plt

    scores = hand_table()
    dims = aggregation.aggregate(scores, n_boot=200)
    both = pd.concat([dims, dims.assign(method="loglik")], ignore_index=True)
    figs = report.heatmaps(both, ["loglik", "choice"])
    assert list(figs) == ["heatmap-loglik", "heatmap"]
    assert list(report.heatmaps(both, ["loglik"])) == ["heatmap"]
    domains = aggregation.aggregate(scores, by=("model", "method", "Dimension", "Domain"), n_boot=200)
    figs["domains"] = report.plot_domains(domains, "choice")
    figs["items"] = report.plot_item_orientations(scores, "choice")
    legend = figs["items"].axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b"]
    for fig in figs.values():
        plt.close(fig)
    summary = report.score_summary(scores)
    assert summary.index.names == ["model", "method", "template", "order"]
    counts = report.item_counts(items_df())
    assert list(counts.index) == list(cultural.DIMENSIONS) and counts.loc["UAI"].sum() == 2


def test_load_items_accepts_an_absolute_path(schema_file):
    items = prompts.load_items("cdeval", n_per_cell=5, seed=0, path=str(schema_file.resolve()))
    assert len(items) == 3 and set(items["Dimension"]) == {"UAI", "PDI"}
    assert "PDI" in prompts.bank_summary()


def test_score_models_caches_per_model_and_method(tmp_path, monkeypatch):
    from alignlab.testing import tiny_causal_lm

    model, tokenizer = tiny_causal_lm("llama")
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    name = str(tmp_path / "tiny")
    scores = scoring.score_models(items_df(), [name], ["loglik", "choice"], ["letters"], batch_size=4)
    assert len(scores) == 3 + 3 * 2 and set(scores["method"]) == {"loglik", "choice"}
    again = scoring.score_models(items_df(), [name], ["loglik", "choice"], ["letters"], batch_size=2)
    pd.testing.assert_frame_equal(scores, again)
    entries = list((tmp_path / "cache" / "artifacts" / "culture_scores").glob("*/*.parquet"))
    assert len(entries) == 2


# ---------------------------------------------------------------------------------------------
# Parameters

GOOD = dict(models=["smollm2-135m"], dataset="cultural-items", cdeval_path=None, n_per_cell=5, sample_seed=0,
            methods=["loglik", "choice"], templates=list(TEMPLATES), n_boot=1000, bootstrap_seed=0, batch_size=16)


@pytest.mark.parametrize("name, value, words", [
    ("models", [], "non-empty list without repeats"),
    ("models", ["smollm2-135m", "smollm2-135m"], "without repeats"),
    ("dataset", "sciq", "one of: cultural-items, cdeval"),
    ("cdeval_path", 3, "CDEval.json"),
    ("n_per_cell", 0, "int >= 1"),
    ("sample_seed", 0.5, "must be an int"),
    ("methods", ["vote"], "distinct values from: loglik, choice"),
    ("methods", [], "non-empty list"),
    ("methods", ["loglik", "loglik"], "distinct"),
    ("templates", ["numbered", "numbered"], "distinct values"),
    ("templates", ["fancy"], "numbered, letters, preference"),
    ("templates", [], "non-empty list"),
    ("n_boot", 10, "int >= 100"),
    ("bootstrap_seed", "0", "must be an int"),
    ("batch_size", 0, "int >= 1"),
])
def test_each_check_names_the_parameter(name, value, words):
    Config.from_params(GOOD)
    with pytest.raises(ParameterError, match=words) as error:
        Config.from_params({**GOOD, name: value})
    assert f"parameter {name!r} of 04_cultural_dimensions" in str(error.value)
    assert repr(value) in str(error.value)


def test_config_fields_are_the_notebook_parameters():
    from alignlab.run.params import read_parameters

    assert [f.name for f in dataclasses.fields(Config)] == list(read_parameters("04_cultural_dimensions"))
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(Config))


def test_templates_are_only_checked_for_forced_choice():
    config = Config.from_params({**GOOD, "methods": ["loglik"], "templates": []})
    assert config.main_method == "loglik"
    assert Config.from_params(GOOD).main_method == "choice"
    assert set(METHODS) == {"loglik", "choice"}
    with pytest.raises(ValueError, match="method must be"):
        prompts.build_prompts(items_df(), "vote")


def test_notebook_rejects_bad_parameter_before_running():
    from alignlab.run.params import check_value, load_profile, read_parameters, resolve_params

    with pytest.raises(ParameterError, match="dataset"):
        resolve_params("04_cultural_dimensions", "quick", {"dataset": "nope"})
    with pytest.raises(ParameterError, match="n_boot"):
        resolve_params("04_cultural_dimensions", "quick", {"n_boot": 50})  # Config.check, in the runner
    paper = load_profile("paper")["04_cultural_dimensions"]
    assert paper["dataset"] == "cdeval" and all("Instruct" in m for m in paper["models"])
    parameters = read_parameters("04_cultural_dimensions")
    for name, value in paper.items():  # model names need the hub, which tests cannot reach
        if name != "models":
            check_value("04_cultural_dimensions", parameters[name], value)


# ---------------------------------------------------------------------------------------------
# The notebook, end to end (smallest settings)

@pytest.mark.slow
def test_notebook_smoke(tmp_path, monkeypatch):
    from alignlab.run import cli, registry

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
