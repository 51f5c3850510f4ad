"""Study 04 (cultural dimensions): the item bank, the CDEval loader, order swap, aggregation and
CIs, consistency, the report, parameter checks, and a notebook smoke test."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alignlab import paths, stats
from alignlab.data import cultural, list_datasets, load
from alignlab.studies.culture import aggregation, generated, prompts, report, scoring, verdicts
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
# Votes, the majority per question, orientation

def vote_rows(model, method, item, dim, votes, order="none"):
    return [{"model": model, "method": method, "id": item, "Dimension": dim, "Domain": "Work", "template": f"t{k}",
             "order": order, "sample": 0, "vote_high": v} for k, v in enumerate(votes)]


def test_majority_vote_on_hand_made_answers():
    rows = (vote_rows("m", "generate", "i0", "PDI", [1, 1, 0])          # 2 of 3 high -> high
            + vote_rows("m", "generate", "i1", "PDI", [0, 0, 1, 1])     # tie -> 0.5
            + vote_rows("m", "generate", "i2", "PDI", [np.nan, 0])      # unparseable casts no vote -> low
            + vote_rows("m", "generate", "i3", "PDI", [np.nan, np.nan])  # no vote -> unanswered
            + vote_rows("m", "generate", "i4", "PDI", [1, 0, 0, 0, 1]))  # 2 of 5 -> low
    answers = aggregation.question_answers(pd.DataFrame(rows)).set_index("id")
    assert answers["answer"].tolist()[:3] == [1.0, 0.5, 0.0] and np.isnan(answers.loc["i3", "answer"])
    assert answers.loc["i4", "answer"] == 0.0 and answers["n_votes"].tolist() == [3, 4, 1, 0, 5]
    assert answers.loc["i0", "agreement"] == pytest.approx(1 / 3) and answers.loc["i1", "agreement"] == 0
    dims = aggregation.orientation_shares(answers.reset_index(), n_boot=200).iloc[0]
    assert dims["orientation"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)  # a hard vote, not the mean vote share
    assert dims["n_items"] == 4 and dims["n_ties"] == 1 and dims["n_unanswered"] == 1
    assert dims["lo"] <= dims["orientation"] <= dims["hi"]


def test_no_interval_from_fewer_than_three_questions():
    rows = vote_rows("m", "loglik", "i0", "PDI", [1]) + vote_rows("m", "loglik", "i1", "PDI", [0])
    dims = aggregation.orientation_shares(aggregation.question_answers(pd.DataFrame(rows)), n_boot=200).iloc[0]
    assert dims["orientation"] == 0.5 and np.isnan(dims["lo"]) and np.isnan(dims["hi"])


def choice_scores(model, content, position, n_items=4, dim="PDI"):
    """Forced-choice log-probabilities: the first-listed label gets `position` extra log-odds,
    the high-pole option `content[i]` extra log-odds on item i."""
    rows = []
    for i in range(n_items):
        for template in ("t1", "t2", "t3"):
            for order in prompts.ORDERS:
                high_first = order == "original"
                first = position + (content[i] if high_first else -content[i])
                rows.append({"model": model, "method": "choice", "id": f"{dim}{i}", "Dimension": dim,
                             "Domain": "Work", "template": template, "order": order, "logp_first": first / 2,
                             "logp_second": -first / 2, "chose_first": first > 0,
                             "chose_high": (first > 0) == high_first})
    return pd.DataFrame(rows)


def test_choice_votes_remove_position_bias_in_log_odds():
    # content prefers the high pole by 0.5 log-odds on every item, the first label is favoured by
    # 3: the raw choice is always the first label, the debiased vote always the high pole
    scores = choice_scores("m", [0.5, 0.5, 0.5, -0.5], position=3.0)
    assert scores["chose_first"].all()
    table = aggregation.votes(scores)
    assert len(table) == 4 * 3 and set(table["order"]) == {"both"}
    assert table.groupby("id")["vote_high"].mean().tolist() == [1, 1, 1, 0]
    bias = aggregation.position_bias(scores, n_boot=200).iloc[0]
    assert bias["first_share"] == 1.0 and bias["first_logodds"] == pytest.approx(3.0)
    assert bias["position_driven"] == 1.0 and bias["dominated"]
    fair = aggregation.position_bias(choice_scores("m", [2, 2, -2, 2], position=0.5), n_boot=200).iloc[0]
    assert fair["position_driven"] == 0.0 and not fair["dominated"] and fair["first_share"] == 0.5


def test_first_share_lies_inside_its_interval_when_items_have_unequal_answers():
    """Generate leaves some answers unread: an item with 6 read answers and items with 1 must not
    weigh 6:1 in the estimate while the bootstrap resamples items (the CI once missed its estimate:
    0.77 [0.79, 0.86])."""
    scores = choice_scores("m", [2, 2, 2, 2, 2, 2], position=0.0, n_items=6)
    scores["chose_first"] = scores["chose_first"].astype(object)
    scores.loc[scores["id"] == "PDI0", "chose_first"] = True  # 6 of 6 first
    for i in range(1, 6):  # one read answer each, not first
        rows = scores.index[scores["id"] == f"PDI{i}"]
        scores.loc[rows[0], "chose_first"] = False
        scores.loc[rows[1:], "chose_first"] = None
    bias = aggregation.position_bias(scores, n_boot=500).iloc[0]
    assert bias["first_share"] == pytest.approx(1 / 6)  # item-weighted; answer-weighted would be 6 / 11
    assert bias["lo"] <= bias["first_share"] <= bias["hi"]


def test_loglik_and_generate_votes():
    loglik = pd.DataFrame({"model": "m", "method": "loglik", "id": ["a", "b"], "Dimension": "IDV", "Domain": "Arts",
                           "template": "loglik", "order": "original", "logp_first": [-1.0, -3.0],
                           "logp_second": [-2.0, -2.5]})
    generate = pd.DataFrame({"model": "m", "method": "generate", "id": "a", "Dimension": "IDV", "Domain": "Arts",
                             "template": "t1", "order": ["original", "swapped", "swapped"], "sample": 0,
                             "chose_first": [1.0, 1.0, np.nan], "chose_high": [1.0, 0.0, np.nan]})
    table = aggregation.votes(pd.concat([loglik, generate], ignore_index=True))
    assert table[table["method"] == "loglik"]["vote_high"].tolist() == [1.0, 0.0]
    assert table[table["method"] == "generate"]["vote_high"].tolist()[:2] == [1.0, 0.0]


# ---------------------------------------------------------------------------------------------
# TOST, the null model, verdicts

@pytest.mark.parametrize("center, equivalent", [(0.5, True), (0.58, True), (0.72, False), (0.35, False)])
def test_tost_on_each_side_of_the_margin(center, equivalent):
    rng = np.random.default_rng(0)
    values = np.clip(center + rng.normal(0, 0.1, 400), 0, 1)
    p = verdicts.tost_middle(values, margin=0.15)
    assert (p < 0.05) == equivalent, p


def test_tost_needs_items_and_handles_no_spread():
    assert np.isnan(verdicts.tost_middle([0.5, 0.5], 0.15))
    assert verdicts.tost_middle([0.5] * 10, 0.15) == 0.0 and verdicts.tost_middle([1.0] * 10, 0.15) == 1.0


def answer_structure(n_items=60, dims=("PDI", "IDV"), templates=("t1", "t2", "t3")):
    """A generate-method vote table skeleton: items x templates x both orders (votes filled later)."""
    rows = []
    for dim in dims:
        for i in range(n_items):
            for template in templates:
                for order in prompts.ORDERS:
                    rows.append({"model": "m", "method": "generate", "id": f"{dim}{i}", "Dimension": dim,
                                 "Domain": "Work", "template": template, "order": order, "sample": 0,
                                 "vote_high": 1.0})
    return pd.DataFrame(rows)


def run_verdicts(table, first_share=0.5, margin=0.15):
    """The study's pipeline from a vote table: orientation, a position-bias table computed from the
    votes (first-listed = high in the original order), verdicts."""
    first = np.where(table["order"] == "original", table["vote_high"], 1 - table["vote_high"])
    pairs = table.assign(first=first).pivot_table(index=["id", "template"], columns="order", values="first")
    driven = float((pairs["original"] == pairs["swapped"]).mean())
    bias = pd.DataFrame([{"model": "m", "method": "generate", "first_share": float(np.nanmean(first)),
                          "position_driven": driven, "dominated": driven > 0.5}])
    dims = aggregation.orientation_shares(aggregation.question_answers(table), n_boot=300)
    return verdicts.verdicts(table, dims, bias, margin=margin, n_sim=400, seed=1).set_index("Dimension")


def test_null_model_verdict_is_not_determined():
    structure = answer_structure()
    for first_share in (0.5, 0.79):  # no position bias, and the 79% first-pick of a position-biased model
        bias = pd.DataFrame([{"model": "m", "method": "generate", "first_share": first_share}])
        null = verdicts.null_model_answers(structure, bias, seed=3)
        table = run_verdicts(null)
        assert (table["verdict"] == "not determined").all(), table[["orientation", "verdict", "reason"]]
    assert table["position_dominated"].all()  # at 79% the position decides most pairs


def test_verdicts_for_deliberate_answers():
    table = answer_structure()
    # PDI: every question answered high under every template and order -> oriented high.
    # IDV: half the questions high, half low, each consistently -> a deliberate middle
    low = table["Dimension"].eq("IDV") & table["id"].str[3:].astype(int).mod(2).eq(1)
    table.loc[low, "vote_high"] = 0.0
    result = run_verdicts(table)
    assert result.loc["PDI", "verdict"] == "oriented high"
    assert result.loc["IDV", "verdict"] == "equivalent to the middle"
    assert result.loc["IDV", "p_tost"] < 0.05 and result.loc["IDV", "p_agreement"] < 0.05
    # a margin too narrow for 60 questions: the same answers are no longer equivalent
    assert run_verdicts(table, margin=0.01).loc["IDV", "verdict"] == "not determined"


def test_decide_orders_the_rules():
    assert verdicts.decide(0.9, 0.8, 1.0, 30, 1.0, 0.0, 0.0, dominated=True, position_driven=0.9)[0] == "not determined"
    assert verdicts.decide(0.9, 0.8, 1.0, 2, 1.0, 0.0, 0.0, dominated=False)[0] == "not determined"
    assert verdicts.decide(0.2, 0.1, 0.3, 30, 1.0, 0.0, 0.0, dominated=False)[0] == "oriented low"
    assert verdicts.decide(0.7, 0.6, 0.8, 30, 1.0, 0.2, 0.0, dominated=False)[0] == "not determined"  # null too
    verdict, reason = verdicts.decide(0.5, 0.45, 0.55, 30, 0.01, 1.0, 1.0, dominated=False, method="loglik")
    assert verdict == "not determined" and "one vote per question" in reason
    assert set(verdicts.VERDICTS) == {"oriented high", "oriented low", "equivalent to the middle", "not determined"}


def test_paired_differences_and_detectable_difference():
    rows = []
    for model, high in (("a", 1.0), ("b", 0.0)):
        for i in range(8):
            rows += vote_rows(model, "loglik", f"i{i}", "LTO", [high if i < 6 else 1 - high])
    answers = aggregation.question_answers(pd.DataFrame(rows))
    diff = aggregation.paired_differences(answers, n_boot=300).iloc[0]
    assert (diff["model_a"], diff["model_b"], diff["n_items"]) == ("a", "b", 8)
    assert diff["difference"] == pytest.approx((6 - 2) / 8) and diff["lo"] > -1 and diff["hi"] <= 1
    assert report.detectable_difference(0.5, 35) == pytest.approx(2.8016 * 0.5 / np.sqrt(35), rel=1e-3)
    assert np.isnan(report.detectable_difference(0.5, 1))
    # 6 differences of +1 and 2 of -1: the signed-rank test does not reject; Holm over one row is p
    assert 0.05 < diff["p"] < 0.5 and diff["p_holm"] == pytest.approx(diff["p"])
    assert aggregation.signed_rank_p([0.0] * 5) == 1.0 and np.isnan(aggregation.signed_rank_p([1.0, 1.0]))
    assert aggregation.signed_rank_p([1.0] * 12) < 0.01


def test_the_conclusion_counts_differences_against_chance_and_holm():
    differences = pd.DataFrame({"method": "loglik", "Dimension": ["PDI", "IDV", "UAI", "MAS"],
                                "model_a": "a", "model_b": "b", "difference": [0.3, 0.2, 0.0, -0.1],
                                "lo": [0.1, 0.01, -0.2, -0.3], "hi": [0.5, 0.4, 0.2, 0.1], "sd": 0.5,
                                "n_items": 28, "p": [0.001, 0.04, 1.0, 0.5]})
    differences["p_holm"] = stats.holm(differences["p"])
    empty = pd.DataFrame(columns=["model", "method", "Dimension", "verdict", "orientation", "lo", "hi"])
    text = report.conclusion(empty, pd.DataFrame(), differences, margin=0.15)
    assert "2 of 4 model-pair x method x dimension differences exclude 0" in text
    assert "1 survive Holm's correction for the 4 comparisons" in text
    assert text.count("(**survives**)") == 1


# ---------------------------------------------------------------------------------------------
# Generated answers

@pytest.mark.parametrize("text, labels, position", [
    ("2", ("1", "2"), 1), ("Option 1: follow the plan", ("1", "2"), 0), ("The answer is 1.", ("1", "2"), 0),
    ("12 people", ("1", "2"), None), ("B", ("A", "B"), 1), ("A. The first", ("A", "B"), 0),
    ("Answer: B", ("A", "B"), 1), ("a good idea", ("a", "b"), None), ("(b) yes", ("a", "b"), 1),
    ("I would suggest option (b) as", ("a", "b"), 1), ("Arrange it as the team goes along.", ("1", "2"), 1),
    ("Both are fine", ("1", "2"), None),
])
def test_parse_answer(text, labels, position):
    options = ("Follow the written floor plan exactly.", "Arrange it as the team goes along.")
    parsed = generated.parse_answer(text, labels, options)
    assert (np.isnan(parsed) if position is None else parsed == position), parsed


def test_generated_answers_map_positions_to_poles():
    table = prompts.build_prompts(items_df(), "generate", ["numbered"])
    assert len(table) == 6 and "Answer with 1 or 2." in table["context"].iloc[0]
    assert generated.generation_texts(table, chat=False)[0].endswith("Answer with 1 or 2.\nAnswer:")
    texts = ["1", "1", "2", "Option 1", "no idea", "no idea"]  # item t0 both orders "1": position, not content
    out = generated.answers_from_texts(table, texts, items_df())
    assert out["chose_first"].tolist()[:4] == [1.0, 1.0, 0.0, 1.0] and out["parsed"].tolist()[4:] == [False, False]
    assert out["chose_high"].tolist()[:4] == [1.0, 0.0, 0.0, 0.0]

def test_load_items_accepts_an_absolute_path(schema_file):
    items = prompts.load_items("cdeval", n_per_cell=5, seed=0, path=str(schema_file.resolve()))
    assert len(items) == 3 and set(items["Dimension"]) == {"UAI", "PDI"}


def test_the_loaded_cdeval_file_is_validated_not_the_bank(schema_file):
    items = prompts.load_items("cdeval", n_per_cell=5, seed=0, path=schema_file)
    summary = prompts.items_summary(items)
    assert summary.startswith("3 items in 3/42 Dimension x Domain cells; fewest per cell: 0")
    assert "below 3 items" in summary  # a thin cell is reported: it gets no interval
    bank = prompts.items_summary(prompts.load_items("cultural-items", n_per_cell=3, seed=0))
    assert bank.startswith("126 items in 42/42") and bank.endswith("OK")


def test_cdeval_path_is_only_read_for_cdeval(schema_file):
    with pytest.raises(ValueError, match="only with dataset 'cdeval'"):
        prompts.load_items("cultural-items", n_per_cell=3, seed=0, path=schema_file)
    with pytest.raises(ParameterError, match="read only with dataset = cdeval"):
        Config.from_params({**GOOD, "cdeval_path": str(schema_file)})
    assert Config.from_params({**GOOD, "dataset": "cdeval", "cdeval_path": str(schema_file)}).dataset == "cdeval"


def save_tiny_model(tmp_path):
    from alignlab.testing import tiny_causal_lm

    model, tokenizer = tiny_causal_lm("llama")
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    return str(tmp_path / "tiny")


def test_score_models_caches_per_model_and_method(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    name = save_tiny_model(tmp_path)
    scores, timings = scoring.score_models(items_df(), [name], ["loglik", "choice"], ["letters"], batch_size=4)
    assert len(scores) == 3 + 3 * 2 and set(scores["method"]) == {"loglik", "choice"}
    assert timings["method"].tolist() == ["loglik", "choice"] and (timings["seconds"] > 0).all()
    again, _ = scoring.score_models(items_df(), [name], ["loglik", "choice"], ["letters"], batch_size=2)
    pd.testing.assert_frame_equal(scores, again)
    entries = list((tmp_path / "cache" / "artifacts" / "culture_scores").glob("*/*.parquet"))
    assert len(entries) == 2


@pytest.mark.skipif(not REAL_CDEVAL.is_dir(), reason="real CDEval sample not present")
def test_pipeline_on_real_cdeval_sample_with_a_tiny_model(tmp_path, monkeypatch):
    """All three methods on a few real CDEval items through to verdicts (the tiny model is random,
    so only the shapes and the bookkeeping are checked)."""
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    name = save_tiny_model(tmp_path)
    items = prompts.load_items("cdeval", n_per_cell=1, seed=0, path=REAL_CDEVAL).head(6)
    scores, _ = scoring.score_models(items, [name], ["loglik", "choice", "generate"], ["numbered", "letters"],
                                     batch_size=4, generate_samples=2, generate_temperature=1.0, max_new_tokens=3)
    assert scores.groupby("method").size().to_dict() == {"loglik": 6, "choice": 6 * 4, "generate": 6 * 4 * 2}
    table = aggregation.votes(scores)
    answers = aggregation.question_answers(table)
    assert set(answers["answer"].dropna()) <= {0.0, 0.5, 1.0}
    dims = aggregation.orientation_shares(answers, n_boot=200)
    bias = aggregation.position_bias(scores, n_boot=200)
    assert set(bias["method"]) == {"choice", "generate"} and bias["unparseable"].between(0, 1).all()
    result = verdicts.verdicts(table, dims, bias, margin=0.15, n_sim=200)
    assert set(result["verdict"]) <= set(verdicts.VERDICTS)
    assert (result["verdict"] == "not determined").all()  # at most 2 questions per dimension
    metrics = report.metrics(result, bias)
    assert f"unparseable_{name}" in metrics


def test_report_tables_figures_and_conclusion():
    import matplotlib.pyplot as plt

    table = answer_structure(n_items=12)
    result = run_verdicts(table)
    result = pd.concat([result.reset_index(), result.reset_index().assign(model="n")], ignore_index=True)
    dims_table = report.dimension_table(result)
    assert list(dims_table.columns) == ["generate"] and dims_table.loc[("m", "PDI"), "generate"].endswith("high")
    compared = report.compare_with_paper(result).set_index(["model", "Dimension"])
    assert compared.loc[("m", "PDI"), "agrees"] == False  # noqa: E712 (the paper expects low PDI)
    bias = pd.DataFrame([{"model": "m", "method": "generate", "first_share": 0.5, "lo": 0.4, "hi": 0.6,
                          "first_logodds": np.nan, "position_driven": 0.0, "n_pairs": 72, "dominated": False,
                          "unparseable": 0.25}])
    answers = aggregation.question_answers(pd.concat([table, table.assign(model="n")], ignore_index=True))
    differences = aggregation.paired_differences(answers, n_boot=200)
    text = report.conclusion(result, bias, differences, margin=0.15)
    assert "`m`, generate: PDI 1.00" in text and "25% of its answers unparseable" in text
    assert "0 of 2 model-pair" in text
    metrics = report.metrics(result, bias)
    assert metrics["verdict_generate_m_PDI"] == 1.0 and metrics["unparseable_m"] == 0.25
    domains = aggregation.orientation_shares(answers, by=("model", "method", "Dimension", "Domain"), n_boot=200)
    figs = [report.plot_domain_heatmaps(domains, "generate"), report.plot_dimensions(result, 0.15)]
    assert len(figs[0].axes) >= 2 and len(figs[1].axes) == 1
    for fig in figs:
        plt.close(fig)
    counts = report.item_counts(items_df())
    assert list(counts.index) == list(cultural.DIMENSIONS) and counts.loc["UAI"].sum() == 2


# ---------------------------------------------------------------------------------------------
# Parameters

GOOD = dict(models=["smollm2-135m"], dataset="cultural-items", cdeval_path=None, n_per_cell=3, sample_seed=0,
            methods=["loglik", "choice", "generate"], templates=list(TEMPLATES), generate_samples=1,
            generate_temperature=0.0, max_new_tokens=8, middle_margin=0.15, position_dominance=0.5,
            null_simulations=1000, n_boot=1000, bootstrap_seed=0, batch_size=16)


@pytest.mark.parametrize("name, value, words", [
    ("models", [], "non-empty list without repeats"),
    ("models", ["smollm2-135m", "smollm2-135m"], "without repeats"),
    ("dataset", "sciq", "one of: cultural-items, cdeval"),
    ("cdeval_path", 3, "CDEval.json"),
    ("n_per_cell", 0, "int >= 1"),
    ("sample_seed", 0.5, "must be an int"),
    ("methods", ["vote"], "distinct values from: loglik, choice, generate"),
    ("methods", [], "non-empty list"),
    ("methods", ["loglik", "loglik"], "distinct"),
    ("templates", ["numbered", "numbered"], "distinct values"),
    ("templates", ["fancy"], "numbered, letters, preference"),
    ("templates", [], "non-empty list"),
    ("generate_samples", 0, "int >= 1"),
    ("generate_samples", 3, "must be 1 with generate_temperature 0"),
    ("generate_temperature", -1, "number >= 0"),
    ("max_new_tokens", 0, r"int in \[1, 256\]"),
    ("middle_margin", 0.5, r"in \(0, 0.5\)"),
    ("position_dominance", 1.0, r"in \(0, 1\)"),
    ("null_simulations", 10, "int >= 200"),
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


def test_templates_are_only_checked_for_ordered_methods():
    config = Config.from_params({**GOOD, "methods": ["loglik"], "templates": []})
    assert config.main_method == "loglik"
    assert Config.from_params(GOOD).main_method == "choice"
    assert Config.from_params({**GOOD, "methods": ["generate", "loglik"]}).main_method == "generate"
    assert set(METHODS) == {"loglik", "choice", "generate"}
    with pytest.raises(ValueError, match="method must be"):
        prompts.build_prompts(items_df(), "vote")


def test_notebook_rejects_bad_parameter_before_running():
    from alignlab.run.params import check_value, load_profile, read_parameters, resolve_params

    with pytest.raises(ParameterError, match="dataset"):
        resolve_params("04_cultural_dimensions", "quick", {"dataset": "nope"})
    with pytest.raises(ParameterError, match="n_boot"):
        resolve_params("04_cultural_dimensions", "quick", {"n_boot": 50})  # Config.check, in the runner
    parameters = read_parameters("04_cultural_dimensions")
    assert parameters["n_per_cell"].default >= 3  # the quick profile: at least 3 items per cell
    paper = load_profile("paper")["04_cultural_dimensions"]
    assert paper["dataset"] == "cdeval" and all("Instruct" in m for m in paper["models"])
    standard = load_profile("standard")["04_cultural_dimensions"]
    assert len(standard["models"]) >= 4 and standard["n_per_cell"] >= 4  # the ladder, 168 of the bank's 210
    for profile in (paper, standard):
        for name, value in profile.items():  # model names need the hub, which tests cannot reach
            if name != "models":
                check_value("04_cultural_dimensions", parameters[name], value)
        Config.from_params({**{n: p.default for n, p in parameters.items()}, **profile})


# ---------------------------------------------------------------------------------------------
# The notebook, end to end (smallest settings, on the real CDEval sample)

@pytest.mark.slow
@pytest.mark.skipif(not REAL_CDEVAL.is_dir(), reason="real CDEval sample not present")
def test_notebook_smoke_on_real_cdeval(tmp_path, monkeypatch):
    from alignlab.run import cli, registry

    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'tmp'\n")
    for folder in ("notebooks", "profiles", "data"):
        (tmp_path / folder).mkdir()
    shutil.copy(REPO / "notebooks" / "04_cultural_dimensions.ipynb", tmp_path / "notebooks")
    shutil.copy(REPO / "data" / "cultural_items.json", tmp_path / "data")  # the bank: the MDD of the whole bank
    for profile in ("quick.yaml", "paper.yaml"):
        shutil.copy(REPO / "profiles" / profile, tmp_path / "profiles")
    monkeypatch.setenv("ALIGNLAB_ROOT", str(tmp_path))
    monkeypatch.delenv("ALIGNLAB_RUN_DIR", raising=False)
    code = cli.main(["run", "04_cultural_dimensions", "--no-progress", "-p", "models", "[smollm2-135m]",
                     "-p", "dataset", "cdeval", "-p", "cdeval_path", str(REAL_CDEVAL), "-p", "n_per_cell", "1",
                     "-p", "methods", "[loglik, choice, generate]", "-p", "templates", "[letters]",
                     "-p", "max_new_tokens", "4", "-p", "n_boot", "200", "-p", "null_simulations", "200"])
    (run,) = registry.read_runs()
    assert code == 0, run["error"]
    metrics = json.loads((tmp_path / run["run_dir"] / "metrics.json").read_text())
    for dim in cultural.DIMENSIONS:
        assert 0 <= metrics[f"orientation_choice_smollm2-135m_{dim}"] <= 1
    assert 0 <= metrics["unparseable_smollm2-135m"] <= 1
    figures = {p.name for p in (tmp_path / run["run_dir"]).glob("**/*.png")}
    assert {"dimensions.png", "domain-heatmap-choice.png"} <= figures
