"""Study 03: parameters, probes, MeCoD losses, bias metrics, the LAMA loader (tiny random models, no files)."""

import dataclasses
import json
import math

import numpy as np
import pytest

from alignlab.data import facts_triples, lama
from alignlab.paths import project_root
from alignlab.run.params import list_profiles, load_profile, read_parameters, resolve_params
from alignlab.studies.probing import config as settings
from alignlab.studies.probing import facts, probes, prompts, queries
from alignlab.studies.probing import report as pm
from alignlab.studies.probing.config import Config
from alignlab.study_config import ParameterError

REAL_LAMA = project_root().parent / "shared" / "fixtures" / "real" / "lama_trex"
TEMPLATE = "The capital of [X] is [Y]."
CANDIDATES = ["Paris", "Lima", "Oxygen", "the capital of Peru"]


def notebook_defaults() -> dict:
    """The notebook's parameters cell: the single source of the study's defaults."""
    return {name: p.default for name, p in read_parameters("03_prompt_object_bias").items()}


def make_config(**overrides) -> Config:
    """The quick configuration (the notebook's defaults) with `overrides`, checked."""
    return Config.from_params({**notebook_defaults(), **overrides})


def rows():
    return [dict(subject=s, relation="capital", object=o, valid_objects=[o], template=TEMPLATE,
                 query=TEMPLATE.replace("[X]", s)) for s, o in
            [("France", "Paris"), ("Peru", "Lima"), ("Oxygen", "Oxygen"), ("Spain", "Paris")]]


# ---------------------------------------------------------------------------------------------
# Bias and accuracy metrics on hand-computed distributions

def test_top1_share_and_entropy():
    assert pm.top1_share([0, 0, 0, 1]) == 0.75
    assert pm.normalized_entropy([0.5, 0.5, 0, 0]) == pytest.approx(0.5)  # log 2 / log 4
    assert pm.normalized_entropy([2, 2, 2]) == pytest.approx(1.0)  # normalized to sum 1 first
    assert pm.normalized_entropy([1, 0, 0]) == 0.0
    assert pm.normalized_entropy([1.0]) == 0.0


def arrays(gold, rank, pred, n, po_pred=None):
    """row_arrays-like input of relation_metrics, with a flat prompt-only distribution."""
    k = len(gold)
    return {"gold": np.asarray(gold), "rank": np.asarray(rank, dtype=float), "pred": np.asarray(pred),
            "po_pred": np.zeros(k, dtype=int) if po_pred is None else np.asarray(po_pred),
            "po_entropy": np.ones(k), "mecod_entropy": np.full(k, math.log(min(n, 10))), "n_candidates": n}


def test_kl_and_smoothed_gold():
    gold = pm.smoothed_gold([0, 0, 1, 1], 4, eps=0.2)
    assert np.allclose(gold, [0.45, 0.45, 0.05, 0.05])
    assert np.allclose(pm.distribution([0, 0, 0, 0], 4), [1, 0, 0, 0])
    # every prediction on object 0: KL(predicted || smoothed gold over 4 candidates + the outside bin)
    m = pm.relation_metrics(arrays([0, 0, 1, 1], np.ones(4), np.zeros(4, dtype=int), 4))
    smoothed = (1 - pm.GOLD_SMOOTHING) * 0.5 + pm.GOLD_SMOOTHING / 5
    assert m["kl"] == pytest.approx(math.log(1 / smoothed))


def test_ranks_filter_other_valid_objects():
    scores = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    assert list(pm.gold_ranks(scores, np.array([1, 0]))) == [2, 3]
    assert list(pm.gold_ranks(scores, np.array([1, 0]), [[0, 1], [0]])) == [1, 3]  # object 0 also true for row 0
    assert list(pm.gold_ranks(scores, np.array([-1, 0]))) == [np.inf, 3]  # gold not a candidate: a miss
    assert list(pm.gold_ranks(np.zeros((1, 5)), np.array([2]))) == [3.0]  # all tied: mid-rank, not first


def test_relation_metrics_by_hand():
    m = pm.relation_metrics(arrays([0, 1, 2, 0], [1, 2, 6, 1], [0, 0, 0, 1], 4, po_pred=[0, 0, 1, 1]))
    assert m["p_at_1"] == 0.5 and m["p_at_5"] == 0.75
    assert m["mrr"] == pytest.approx((1 + 0.5 + 1 / 6 + 1) / 4)
    assert m["top1_share"] == 0.75
    assert m["excess_top1"] == pytest.approx(0.75 - 0.5)  # the gold's own top-1 share is 0.5
    assert m["po_agreement"] == 0.75  # rows 0, 1 and 3
    assert m["prompt_only_entropy"] == pytest.approx(1.0)
    gold = (1 - pm.GOLD_SMOOTHING) * np.array([0.5, 0.25, 0.25, 0, 0]) + pm.GOLD_SMOOTHING / 5
    assert m["kl"] == pytest.approx(0.75 * math.log(0.75 / gold[0]) + 0.25 * math.log(0.25 / gold[1]))


# ---------------------------------------------------------------------------------------------
# Queries and scoring

def test_summary_intervals_contain_the_estimate_for_distribution_statistics():
    """Top-1 share, entropy and KL of the predicted-object distribution shift under resampling
    (duplicates concentrate it); their basic-bootstrap interval still contains the estimate."""
    import pandas as pd

    rng = np.random.default_rng(0)
    candidates = [f"o{i}" for i in range(12)]
    test = pd.DataFrame({"relation": "r", "object": [candidates[i] for i in rng.integers(0, 12, 16)]})
    results = {("tuned", s, "r"): {"scores": rng.normal(size=(16, 12)),
                                   "prompt_only_by_length": rng.normal(size=(1, 12))} for s in (0, 1, 2)}
    summary = pm.summarize_methods(pm.bootstrap(results, {"r": {"candidates": candidates}}, test, n_boot=300))
    for row in summary.itertuples():
        assert row.lo <= row.mean <= row.hi, row


def test_paired_comparison_of_methods():
    """A method against itself differs by exactly 0; against a method that always predicts one
    object, its top-1 share is lower with a CI below 0, and the conclusion says so."""
    import pandas as pd

    rng = np.random.default_rng(1)
    candidates = [f"o{i}" for i in range(6)]
    gold = rng.integers(0, 6, 30)
    test = pd.DataFrame({"relation": "r", "object": [candidates[i] for i in gold]})
    spread = np.eye(6)[gold] * 5 + rng.normal(size=(30, 6))  # mostly right, spread over objects
    stuck = np.tile(np.arange(6.0)[::-1], (30, 1))            # always o0
    results = {}
    for s in (0, 1, 2):
        results[("manual", s, "r")] = {"scores": spread, "prompt_only_by_length": np.zeros((1, 6))}
        results[("ptuning", s, "r")] = {"scores": stuck, "prompt_only_by_length": (np.arange(6.0) + s)[None]}
        results[("mecod", s, "r")] = {"scores": spread, "prompt_only_by_length": np.zeros((1, 6))}
    boot = pm.bootstrap(results, {"r": {"candidates": candidates}}, test, n_boot=200)
    comparisons = pm.compare(boot)
    same = comparisons[(comparisons.a == "mecod") & (comparisons.b == "manual")]
    assert np.allclose(same[["diff", "lo", "hi"]].to_numpy(), 0)
    top1 = comparisons.set_index(["a", "b", "metric"]).loc[("mecod", "ptuning", "excess_top1")]
    assert top1["diff"] < 0 and top1["hi"] < 0 and top1["p_holm"] < 0.05
    summary = pm.summarize_methods(boot)
    text = pm.conclusion(summary, comparisons)
    assert "**yes: less concentrated**" in text and "ptuning vs manual" in text and "Holm" in text


def test_prompt_only_query_hides_every_subject_token():
    """Length-matched: one filler per subject token, the rest of the query untouched."""
    from alignlab.testing import tiny_causal_lm, tiny_encoder

    for tok, masked in ((tiny_causal_lm()[1], False), (tiny_encoder()[1], True)):
        for slots in (None, (2, 2)):
            builder = queries.QueryBuilder(tok, TEMPLATE, masked, slots)
            for subject in ("France", "Zyxwvu Qrstland"):
                subject_ids = builder.subject_ids(subject)
                full, hidden = builder.query(subject), builder.prompt_only(len(subject_ids))
                assert len(full) == len(hidden)
                start = next(i for i in range(len(full)) if full[i:i + len(subject_ids)] == subject_ids)
                filler = queries.filler_id(tok, masked)
                assert hidden[start:start + len(subject_ids)] == [filler] * len(subject_ids)
                end = start + len(subject_ids)
                assert hidden[:start] == full[:start] and hidden[end:] == full[end:]


def test_scorer_matches_alignlab_scoring():
    from alignlab.lm.scoring import score_pairs
    from alignlab.testing import tiny_causal_lm

    for arch in ("llama", "gemma3", "gpt2"):
        model, tok = tiny_causal_lm(arch)
        scorer = queries.Scorer(model, tok, CANDIDATES)
        contexts = ["The capital of France is", "Q: What is the capital"]
        got = scorer.score_all([tok(c)["input_ids"] for c in contexts], batch_size=2, max_positions=16)
        want = score_pairs(model, tok, [(c, " " + x) for c in contexts for x in CANDIDATES]).sum.reshape(2, 4)
        assert np.allclose(got, want, atol=1e-4)


def test_soft_prompt_with_template_init_equals_manual_query():
    import torch

    from alignlab.testing import tiny_causal_lm

    model, tok = tiny_causal_lm()
    module = prompts.make_prompt("softprompt", model.get_input_embeddings(), tok, TEMPLATE, "manual", 0)
    builder = queries.QueryBuilder(tok, TEMPLATE, slots=module.slots)
    scorer = queries.Scorer(model, tok, CANDIDATES)
    with torch.no_grad():
        soft = scorer.score_all([builder.query("France")], module())
    manual = scorer.score_all([queries.QueryBuilder(tok, TEMPLATE).query("France")])
    assert np.allclose(soft, manual, atol=1e-5)


def test_masked_lm_scores_the_vocabulary():
    from alignlab.testing import tiny_encoder

    model, tok = tiny_encoder()
    scorer = queries.Scorer(model, tok, None)
    assert len(scorer.candidates) == len(tok)
    out = scorer.score_all([queries.manual_query(tok, rows()[0], masked=True)])
    assert out.shape == (1, len(tok)) and np.isclose(np.exp(out).sum(), 1, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# MeCoD losses on hand-computed logits, and their gradients

def test_oe_loss_by_hand_and_gate_gradient():
    import torch

    scores = torch.log(torch.tensor([0.5, 0.3, 0.2]))
    gate = torch.tensor([1.0, 1.0, 0.0])
    q = np.array([0.5, 0.3]) / 0.8
    assert prompts.oe_loss(scores, gate).item() == pytest.approx(float((q * np.log(q)).sum()), abs=1e-6)
    flat = torch.zeros(3)
    assert prompts.oe_loss(flat, torch.ones(3)).item() == pytest.approx(-math.log(3), abs=1e-6)


def test_boo_loss_by_hand():
    import torch

    logprobs = torch.log(torch.tensor([[0.2, 0.5, 0.3]]))
    gate = torch.tensor([1.0, 1.0, 0.5])
    want = -math.log(0.2 / (0.2 + 0.5 + 0.5 * 0.3))
    assert prompts.boo_loss(logprobs, torch.tensor([0]), gate).item() == pytest.approx(want, abs=1e-6)
    valid = torch.tensor([[False, True, False]])  # object 1 is also true: not an obstacle
    want = -math.log(0.2 / (0.2 + 0.5 * 0.3))
    assert prompts.boo_loss(logprobs, torch.tensor([0]), gate, valid).item() == pytest.approx(want, abs=1e-6)


def test_mecod_gradients_reach_the_gate():
    import torch

    gate = prompts.Gate()
    logprobs = torch.log_softmax(torch.tensor([[0.1, 2.0, 0.5, -1.0]]), -1)
    prompt_only = torch.tensor([0.3, 2.5, 1.0, -2.0], requires_grad=True)
    total, parts = prompts.mecod_losses(logprobs, torch.tensor([0]), prompt_only, gate, 0.2, 0.1)
    total.backward()
    assert gate.scale.grad is not None and gate.threshold.grad is not None
    assert gate.scale.grad.abs() > 0 and gate.threshold.grad.abs() > 0
    assert prompt_only.grad.abs().sum() > 0  # OE reaches the prompt through q
    for name in ("oe", "boo"):  # each loss alone reaches the gate
        g = prompts.Gate()
        loss = prompts.mecod_losses(logprobs, torch.tensor([0]), prompt_only.detach(), g,
                                    0.2 if name == "oe" else 0.0, 0.1 if name == "boo" else 0.0)[0]
        loss.backward()
        assert g.threshold.grad.abs() > 0, name


# ---------------------------------------------------------------------------------------------
# One training step lowers the loss, for every probe

@pytest.mark.parametrize("method", settings.TUNED)
def test_training_lowers_the_loss(method):
    import torch

    from alignlab.testing import tiny_causal_lm

    model, tok = tiny_causal_lm()
    config = make_config(steps=1, batch_size=4, n_candidates=4, lr=0.05, prompt_init="random")
    module, history = probes.train_probe(model, tok, method, "capital", TEMPLATE, CANDIDATES, rows(), config, seed=0)
    assert module.slots == (prompts.RANDOM_SLOTS, prompts.RANDOM_SLOTS)
    scorer = queries.Scorer(model, tok, CANDIDATES)
    builder = queries.QueryBuilder(tok, TEMPLATE, slots=module.slots)
    gold = torch.tensor([CANDIDATES.index(r["object"]) for r in rows()])
    with torch.no_grad():
        after = prompts.task_loss(scorer([builder.query(r["subject"]) for r in rows()], module()), gold).item()
    before = history["task"][0]
    assert after < before
    assert all(p.requires_grad for p in model.parameters())  # the model's flags were restored


def test_masked_lm_probe_trains():
    from alignlab.testing import tiny_encoder

    model, tok = tiny_encoder()
    config = make_config(steps=3, batch_size=4, lr=0.05, prompt_init="random")
    r = [dict(x, object="Peru", valid_objects=["Peru"]) for x in rows()]  # " Peru" is one token
    _, history = probes.train_probe(model, tok, "mecod", "capital", TEMPLATE, None, r, config, seed=0)
    assert history["task"][-1] < history["task"][0]


# ---------------------------------------------------------------------------------------------
# Parameters: the notebook's parameters cell gives the defaults, Config.check validates

def test_config_takes_the_notebook_defaults():
    config = make_config()
    assert dataclasses.asdict(config) == notebook_defaults()
    assert (config.gate, config.scoring) == ("released", "sum")


def test_allowed_values_match_the_notebook_and_the_data():
    parameters = read_parameters("03_prompt_object_bias")
    assert tuple(parameters["dataset"].choices) == settings.DATASETS
    assert tuple(parameters["methods"].choices) == settings.METHODS
    assert tuple(parameters["prompt_init"].choices) == settings.PROMPT_INITS
    assert settings.FACTS_TRIPLES_RELATIONS == facts_triples.RELATIONS


@pytest.mark.parametrize("name, value, message", [
    ("dataset", "trex", "one of: facts-triples, lama-trex"),
    ("lama_folder", 3, "None or the path"),
    ("relations", [], "non-empty list without repeats"),
    ("relations", ["region", "region"], "non-empty list without repeats"),
    ("relations", ["region", "capitol"], r"unknown relation.*capitol.*known relations: capital"),
    ("methods", [], "distinct values from"),
    ("methods", ["manual", "optiprompt"], "distinct values from: manual, softprompt, ptuning, mecod"),
    ("methods", ["manual", "manual"], "distinct values from"),
    ("max_candidates", -1, r"int >= 0 \(0: every object"),
    ("steps", 0, "int >= 1"),
    ("steps", 2.5, "int >= 1"),
    ("patience", 0, "int >= 1"),
    ("n_validation", 0, "int >= 1"),
    ("mecod_lr", 0, "number > 0"),
    ("weight_decay", -1e-3, r"number >= 0 \(released 0.0005\)"),
    ("lr_decay", 1.5, r"number in \(0, 1\]"),
    ("gate", "soft", "one of: released, learned"),
    ("scoring", "max", "one of: sum, mean, pmi"),
    ("batch_size", 0, "int >= 1"),
    ("n_candidates", 1, "int >= 2"),
    ("lr", 0.0, "number > 0"),
    ("lr", float("inf"), "number > 0"),
    ("a1", -0.1, r"number >= 0 \(paper default 0.2\)"),
    ("a2", -1, r"number >= 0 \(paper default 0.1\)"),
    ("a2", float("nan"), "number >= 0"),
    ("prompt_init", "zeros", "one of: manual, random"),
])
def test_config_rejects_a_bad_value_naming_the_parameter(name, value, message):
    with pytest.raises(ParameterError, match=f"parameter '{name}' of 03_prompt_object_bias: .*{message}"):
        make_config(**{name: value})


def test_config_accepts_lama_relations_it_cannot_know():
    config = make_config(dataset="lama-trex", relations=["P36", "P19"], lama_folder="/data/lama")
    assert config.relations == ["P36", "P19"]


def test_every_profile_passes_the_checks():
    for name in list_profiles():
        make_config(**load_profile(name).get("03_prompt_object_bias", {}))


def test_runner_rejects_bad_choice_fast():
    with pytest.raises(ParameterError, match="prompt_init"):
        resolve_params("03_prompt_object_bias", "quick", {"prompt_init": "zeros"})
    with pytest.raises(ParameterError, match="a1"):
        resolve_params("03_prompt_object_bias", "quick", {"a1": -0.5})


def test_training_key_separates_the_methods():
    """A probe's cache key holds the settings that shape it: mecod's holds its warm start's."""
    config = make_config()
    soft, ptuning, mecod = (probes.training_key(config, m) for m in settings.TUNED)
    assert soft["lr"] == config.lr and ptuning["lr"] == config.ptuning_lr and mecod["lr"] == config.mecod_lr
    assert "gate" not in ptuning and mecod["gate"] == "released" and mecod["warm_start"] == ptuning
    assert probes.training_key(make_config(gate="learned"), "ptuning") == ptuning


def test_plotted_relations():
    assert pm.plotted_relations(make_config()) == ["region", "element_period"]
    assert pm.plotted_relations(make_config(relations=["currency", "region"])) == ["region"]
    assert pm.plotted_relations(make_config(relations=["currency", "subregion", "capital"])) == ["currency",
                                                                                                 "subregion"]


# ---------------------------------------------------------------------------------------------
# Data

def test_quick_data_is_skewed():
    config = make_config(relations=["region", "currency", "element_group"], n_train=10, n_test=5)
    splits, info = facts.load_facts(config)
    assert set(splits["train"]["relation"]) == set(config.relations) == set(info)
    assert splits["train"].groupby("relation").size().max() <= 10
    assert splits["test"].groupby("relation").size().max() <= 5
    assert not set(splits["train"]["subject"]) & set(splits["test"]["subject"])
    summary = pm.data_summary(splits, info)
    assert list(summary.columns) == ["subjects", "most_common_object", "its_share", "candidates", "golds_covered"]
    assert summary["subjects"].max() <= 5 and (summary["its_share"] > 0).all()
    assert summary.loc["currency", "candidates"] == len(info["currency"]["candidates"])


# ---------------------------------------------------------------------------------------------
# LAMA T-REx loader

def write_lama(folder):
    (folder / "TREx").mkdir(parents=True)
    (folder / "relations.jsonl").write_text(
        json.dumps({"relation": "P36", "template": "The capital of [X] is [Y] .", "label": "capital", "type": "1-1"})
        + "\n" + json.dumps({"relation": "P19", "template": "[X] was born in [Y] .", "label": "x", "type": "N-1"})
        + "\n")
    records = [{"uuid": "u1", "sub_label": "France", "obj_label": "Paris", "sub_uri": "Q142", "obj_uri": "Q90",
              "predicate_id": "P36", "evidences": [{"sub_surface": "France", "obj_surface": "Paris",
                                                    "masked_sentence": "The capital of France is [MASK] ."}]},
             {"uuid": "u2", "sub_label": "Peru", "obj_label": "Lima"}]
    (folder / "TREx" / "P36.jsonl").write_text("".join(json.dumps(f) + "\n" for f in records))
    train = folder / "autoprompt_TREx_all" / "P36"
    train.mkdir(parents=True)
    (train / "train.jsonl").write_text(json.dumps({"sub_label": "Spain", "obj_label": "Madrid"}) + "\n")
    (train / "dev.jsonl").write_text(json.dumps({"sub_label": "Italy", "obj_label": "Rome"}) + "\n")


def test_lama_loader_on_a_small_file(tmp_path):
    write_lama(tmp_path)
    rows = lama.read_rows(tmp_path)
    assert [len(rows[s]) for s in ("train", "validation", "test")] == [1, 1, 2]
    row = rows["test"][0]
    assert row["subject"] == "France" and row["object"] == "Paris" and row["relation"] == "P36"
    assert row["query"] == "The capital of France is [Y] ."
    info = lama.relation_info(rows)
    assert info["P36"]["candidates"] == ["Lima", "Madrid", "Paris", "Rome"]
    ds = lama.load_lama_trex("test", folder=tmp_path)
    assert ds.num_rows == 2 and ds[1]["valid_objects"] == ["Lima"]
    splits, info = facts.load_facts(make_config(dataset="lama-trex", relations=["P36"], lama_folder=str(tmp_path)))
    assert len(splits["test"]) == 2
    with pytest.raises(ValueError, match="unknown relation.*P999.*known relations: P36"):
        facts.load_facts(make_config(dataset="lama-trex", relations=["P999"], lama_folder=str(tmp_path)))
    with pytest.raises(ValueError, match="unknown LAMA relation"):
        lama.read_rows(tmp_path, ["P999"])


def test_lama_loader_needs_a_folder(monkeypatch):
    monkeypatch.delenv("ALIGNLAB_LAMA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="data.zip"):
        lama.read_rows()
    assert lama.cached_sizes() is None


@pytest.mark.skipif(not REAL_LAMA.exists(), reason="real LAMA samples not present")
def test_lama_loader_on_real_samples():
    rows = lama.read_rows(REAL_LAMA)  # TREx/P19 (LAMA's layout) and pararel_trex_lms_vocab/P17 (ParaRel's)
    tests = {r: [x for x in rows["test"] if x["relation"] == r] for r in ("P19", "P17")}
    assert len(tests["P19"]) == 50 and len(tests["P17"]) == 100 and len(rows["test"]) == 150
    assert len(rows["train"]) == 50 and len(rows["validation"]) == 50
    assert all(r["query"].endswith("[Y] .") for r in rows["test"])
    templates = lama.read_relations(REAL_LAMA)
    assert len(templates) == 46 and templates["P19"]["template"] == "[X] was born in [Y] ."
    pararel = lama.to_rows(lama.read_jsonl(REAL_LAMA / "pararel_trex_lms_vocab" / "P17.jsonl"), "P17",
                           "[X] is located in [Y] .")
    assert len(pararel) == 100 and pararel[0]["object"] == "Germany"


# ---------------------------------------------------------------------------------------------
# The notebook, end to end

@pytest.mark.slow
def test_notebook_smoke(run_study):
    _, metrics = run_study("03_prompt_object_bias", relations=["region", "element_period"], seeds=[0, 1, 2],
                           n_train=8, n_validation=4, n_test=4, steps=2, batch_size=4, n_candidates=6, n_boot=100,
                           figure_relations=["region"])
    for method in (*settings.METHODS, "prior"):
        for key in ("p_at_1", "mrr", "top1_share", "po_agreement", "prompt_only_entropy"):
            assert 0 <= metrics[f"{key}_{method}"] <= 1, key
        assert metrics[f"kl_{method}"] >= 0 and -1 <= metrics[f"excess_top1_{method}"] <= 1
        assert 0 <= metrics[f"mecod_entropy_{method}"] <= math.log(10) + 1e-9
    assert 0 <= metrics["p_holm_mecod_vs_ptuning_excess_top1"] <= 1
