"""Study 03: queries, prompt-only filler, MeCoD's released gate, early stopping, candidate cap."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from alignlab.data import facts_triples, lama
from alignlab.models.load import load_tokenizer
from alignlab.run.params import read_parameters
from alignlab.studies.probing import facts, probes, prompts, queries

CAUSAL_MODELS = ("smollm2-135m", "gemma3-270m")


def subjects_of(relation: str, n: int = 4) -> list[dict]:
    return [r for r in facts_triples.rows()["test"] if r["relation"] == relation][:n]


@pytest.mark.parametrize("name", CAUSAL_MODELS)
def test_tuned_query_from_manual_words_equals_the_manual_query(name):
    """The slots of a tuned prompt, filled with the template's own words, give the manual query
    token for token (same ids, same positions of the subject and of the words around it)."""
    tok = load_tokenizer(name)
    for relation, template in facts_triples.TEMPLATES.items():
        before, after = queries.manual_slot_init(tok, template)
        builder = queries.QueryBuilder(tok, template, slots=(len(before), len(after)))
        for row in subjects_of(relation):
            tuned = builder.query(queries.subject_text(row))
            words = iter(before + after)
            filled = [next(words) if i == queries.SLOT else i for i in tuned]
            assert filled == queries.manual_query(tok, row, masked=False), (name, relation, row["subject"])
            assert queries.QueryBuilder(tok, template).query(queries.subject_text(row)) == filled


@pytest.mark.parametrize("name", CAUSAL_MODELS)
def test_prompt_only_query_uses_a_neutral_length_matched_filler(name):
    """Each subject token becomes one " something" token; no document separator, unk or pad token
    stands in for the subject, and the query keeps the subject's length."""
    tok = load_tokenizer(name)
    specials = {tok.unk_token_id, tok.eos_token_id, tok.pad_token_id, tok.bos_token_id} - {None}
    for relation in ("capital", "element_period"):
        template = facts_triples.TEMPLATES[relation]
        builder = queries.QueryBuilder(tok, template)
        for row in subjects_of(relation, 3):
            subject = builder.subject_ids(queries.subject_text(row))
            full, hidden = builder.query(queries.subject_text(row)), builder.prompt_only(len(subject))
            assert len(hidden) == len(full)
            fillers = [i for i in hidden if i not in full]
            assert len(fillers) == len(subject) and len(set(fillers)) == 1
            assert tok.decode(fillers[:1]).strip() == queries.FILLER_WORD
            head = len(builder.head)
            assert not set(hidden[head:]) & specials


# ---------------------------------------------------------------------------------------------
# MeCoD's released gate

def test_released_gate_is_a_hard_draw_among_the_top_prompt_only_objects():
    import torch

    torch.manual_seed(0)
    gate = prompts.ReleasedGate(dim=8, top_k=3)
    q = torch.log_softmax(torch.tensor([[0.1, 3.0, 2.0, -1.0, 1.5, 0.0]]), -1)
    embeddings = torch.randn(6, 8)
    masks = torch.cat([gate(q, embeddings) for _ in range(200)])
    assert set(masks.unique().tolist()) <= {0.0, 1.0}                     # hard selection
    assert masks[:, [0, 3, 5]].sum() == 0                                 # only the top-3 of q
    share = masks[:, [1, 2, 4]].mean(0)
    assert ((share > 0) & (share < 1)).all()                              # a Gumbel draw, not a fixed set


def test_released_losses_by_hand_and_no_gradient_to_the_gate():
    import torch

    torch.manual_seed(0)
    gate = prompts.ReleasedGate(dim=4)
    prompt_only = torch.tensor([[2.0, 1.0, 0.0, -1.0]], requires_grad=True)
    logprobs = torch.log_softmax(torch.tensor([[0.5, 1.0, -0.5, 0.0]], requires_grad=True), -1)
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    q = torch.softmax(prompt_only.detach(), -1)[0].numpy()
    want = q[0] * np.log(q[0]) + q[2] * np.log(q[2])                      # sum q log q, NOT renormalised
    assert prompts.oe_loss_released(prompt_only, mask).item() == pytest.approx(float(want), abs=1e-6)
    total, parts = prompts.mecod_losses(logprobs, torch.tensor([1]), prompt_only, gate, 0.2, 0.1,
                                        embeddings=torch.randn(4, 4))
    total.backward()
    assert gate.linear.weight.grad is None                                # as released: the gate gets no gradient
    assert prompt_only.grad.abs().sum() > 0                               # OE reaches the prompt
    assert 0 <= parts["gate_size"].item() <= 4


def test_default_gate_is_the_released_one():
    from alignlab.testing import tiny_causal_lm

    model, tok = tiny_causal_lm()
    embed = model.get_input_embeddings()
    released = prompts.make_prompt("mecod", embed, tok, "The capital of [X] is [Y].", "manual", 0)
    learned = prompts.make_prompt("mecod", embed, tok, "The capital of [X] is [Y].", "manual", 0, gate="learned")
    assert isinstance(released.gate, prompts.ReleasedGate) and isinstance(learned.gate, prompts.Gate)
    assert read_parameters("03_prompt_object_bias")["gate"].default == "released"


# ---------------------------------------------------------------------------------------------
# Training protocol: early stopping on validation, MeCoD warm-started from P-tuning

TEMPLATE = "The capital of [X] is [Y]."
CANDIDATES = ["Paris", "Lima", "Oxygen", "the capital of Peru"]


def capital_rows(pairs=(("France", "Paris"), ("Peru", "Lima"), ("Oxygen", "Oxygen"), ("Spain", "Paris"))):
    return [dict(subject=s, relation="capital", object=o, valid_objects=[o], template=TEMPLATE,
                 query=TEMPLATE.replace("[X]", s)) for s, o in pairs]


def quick_config(**overrides):
    from alignlab.studies.probing.config import Config

    defaults = {name: p.default for name, p in read_parameters("03_prompt_object_bias").items()}
    return Config.from_params({**defaults, **overrides})


@pytest.mark.parametrize("method", ["softprompt", "ptuning"])
def test_early_stopping_keeps_the_best_validation_step(method):
    """Validation is scored at step 0 and after every epoch; the prompt returned is the best one
    seen (P@1, then log-prob), its step is recorded, and the step budget is only a cap."""
    from alignlab.testing import tiny_causal_lm

    model, tok = tiny_causal_lm()
    config = quick_config(steps=8, batch_size=2, n_candidates=4, lr=0.05, ptuning_lr=0.05, patience=8,
                          prompt_init="random")
    validation = capital_rows((("Chile", "Lima"), ("Italy", "Paris"), ("Neon", "Oxygen")))
    module, history = probes.train_probe(model, tok, method, "capital", TEMPLATE, CANDIDATES, capital_rows(),
                                         config, validation_rows=validation)
    assert history["val_step"][0] == 0 and list(history["val_step"][1:]) == [2, 4, 6, 8]  # every epoch (2 steps)
    seen = list(zip(history["val_p_at_1"], history["val_logprob"]))
    best = max(range(len(seen)), key=lambda i: (seen[i], -i))
    assert history["chosen_step"] == history["val_step"][best] and history["steps_run"] <= config.steps
    builder = queries.QueryBuilder(tok, TEMPLATE, slots=module.slots)
    again = probes.validation_score(queries.Scorer(model, tok, CANDIDATES), builder, module, validation)
    assert again == pytest.approx(seen[best], abs=1e-6)


def test_mecod_starts_from_the_trained_ptuning_prompt(tmp_path, monkeypatch):
    """run_relation trains ptuning first (cached) and mecod's step 0 is that trained prompt."""
    import pandas as pd

    from alignlab.testing import tiny_causal_lm

    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path))
    model, tok = tiny_causal_lm()
    config = quick_config(steps=4, batch_size=2, n_candidates=4, ptuning_lr=0.05, mecod_lr=0.05, patience=4,
                          prompt_init="random")
    validation = capital_rows((("Chile", "Lima"), ("Italy", "Paris")))
    splits = {"train": pd.DataFrame(capital_rows()), "validation": pd.DataFrame(validation),
              "test": pd.DataFrame(capital_rows((("Chile", "Lima"),)))}
    info = {"capital": {"template": TEMPLATE, "candidates": CANDIDATES, "objects": CANDIDATES}}
    ptuning = probes.run_relation(config, "ptuning", 0, "capital", info, splits, model, tok)
    mecod = probes.run_relation(config, "mecod", 0, "capital", info, splits, model, tok)
    h, start = ptuning["history"], mecod["history"]
    chosen = list(h["val_step"]).index(h["chosen_step"])
    assert start["val_p_at_1"][0] == h["val_p_at_1"][chosen]
    assert start["val_logprob"][0] == pytest.approx(h["val_logprob"][chosen], abs=1e-5)
    for name in ("task", "oe", "boo", "gate_size"):  # per-loss histories are kept
        assert len(start[name]) == start["steps_run"] and np.isfinite(start[name]).all()


# ---------------------------------------------------------------------------------------------
# The candidate cap reads train + validation only; test golds outside it are misses

def test_candidate_cap_ignores_the_test_set_and_reports_coverage():
    import pandas as pd

    config = quick_config(relations=["currency", "region"], n_train=30, n_validation=10, n_test=8, max_candidates=12)
    splits, info = facts.load_facts(config)
    assert len(info["currency"]["candidates"]) == 12 and len(info["currency"]["objects"]) > 100
    seen = set(splits["train"]["object"]) | set(splits["validation"]["object"])
    assert set(info["currency"]["candidates"]) <= set(info["currency"]["objects"])
    assert "Euro" in info["currency"]["candidates"] and "Euro" in seen
    # the cap does not move when the test golds change
    shuffled = {**splits, "test": splits["test"].assign(object="Zimbabwe dollar")}

    from alignlab.data import facts_triples as ft
    full = {s: pd.DataFrame(list(ft.rows()[s])) for s in ("train", "validation", "test")}
    full_info = {r: {**ft.relation_info()[r], "objects": []} for r in ("currency", "region")}
    assert facts.cap_candidates(full_info, shuffled, full, 12) == facts.cap_candidates(full_info, splits, full, 12)
    coverage = facts.candidate_coverage(info, splits["test"])
    test = splits["test"]
    covered = test[test.relation == "currency"]["object"].isin(info["currency"]["candidates"]).sum()
    assert coverage.loc["currency", "covered"] == covered < coverage.loc["currency", "test_rows"] == 8
    assert coverage.loc["region", "coverage"] == 1.0
    assert (splits["train"].groupby("relation").size() == 30).all()  # training rows are all kept


def test_uncovered_test_rows_are_misses():
    import pandas as pd

    from alignlab.studies.probing import report

    test = pd.DataFrame(capital_rows()[:3] + capital_rows((("Chad", "N'Djamena"),)))
    results = {("manual", 0, "capital"): {"scores": np.tile(np.array([3.0, 2.0, 1.0, 0.0]), (4, 1)),
                                          "prompt_only_by_length": np.zeros((1, 4))}}
    table = report.per_relation(results, {"capital": {"candidates": CANDIDATES}}, test)
    assert table.loc[0, "n"] == 4 and table.loc[0, "p_at_1"] == pytest.approx(1 / 4)  # France right, Chad missed


# ---------------------------------------------------------------------------------------------
# The paper path: LAMA's files and masked LMs

REAL_LAMA = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "real" / "lama_trex"


@pytest.mark.skipif(not REAL_LAMA.exists(), reason="real LAMA samples not present")
def test_lama_optiprompt_layout_and_common_vocabulary(tmp_path):
    """OptiPrompt's folder layout reads like LAMA's, and its common vocabulary filters every split."""
    root = tmp_path / "OptiPrompt"
    (root / "relation_metainfo").mkdir(parents=True)
    shutil.copy(REAL_LAMA / "relations.jsonl", root / "relation_metainfo" / "LAMA_relations.jsonl")
    (root / "data" / "LAMA-TREx").mkdir(parents=True)
    shutil.copy(REAL_LAMA / "TREx" / "P19.jsonl", root / "data" / "LAMA-TREx" / "P19.jsonl")
    shutil.copytree(REAL_LAMA / "autoprompt_TREx_all" / "P19", root / "data" / "autoprompt_data" / "P19")
    rows = lama.read_rows(root)
    assert [len(rows[s]) for s in ("train", "validation", "test")] == [50, 50, 50]
    keep = sorted({r["object"] for r in rows["test"]})[:5]
    (root / "common_vocab_cased.txt").write_text("\n".join(keep) + "\n")
    filtered = lama.read_rows(root)
    assert filtered["test"] and all(r["object"] in keep for s in filtered.values() for r in s)
    assert len(filtered["test"]) < 50


@pytest.mark.skipif(not REAL_LAMA.exists(), reason="real LAMA samples not present")
def test_missing_lama_train_folder_is_a_clear_error(tmp_path):
    (tmp_path / "TREx").mkdir()
    shutil.copy(REAL_LAMA / "relations.jsonl", tmp_path / "relations.jsonl")
    shutil.copy(REAL_LAMA / "TREx" / "P19.jsonl", tmp_path / "TREx" / "P19.jsonl")
    config = quick_config(dataset="lama-trex", lama_folder=str(tmp_path), relations=["P19"])
    with pytest.raises(ValueError, match="no training facts for LAMA relation.*P19.*train.jsonl"):
        facts.load_facts(config)
    splits, _ = facts.load_facts(quick_config(dataset="lama-trex", lama_folder=str(tmp_path), relations=["P19"],
                                              methods=["manual"]))
    assert len(splits["test"]) == 16 and len(splits["train"]) == 0


def test_masked_queries_keep_lamas_trailing_full_stop():
    from alignlab.testing import tiny_encoder

    tok = tiny_encoder()[1]
    row = {"template": "[X] was born in [Y] .", "query": "Dante was born in [Y] ."}
    ids = queries.manual_query(tok, row, masked=True)
    at = ids.index(tok.mask_token_id)
    closing = tok("", add_special_tokens=True)["input_ids"][1:]  # [SEP] where the tokenizer has one
    assert ids[at + 1:] == tok(".", add_special_tokens=False)["input_ids"] + closing
    built = queries.QueryBuilder(tok, row["template"], masked=True).query("Dante")
    assert built == ids


def test_vocabulary_objects_map_to_ids_without_collisions():
    """GPT-2-style BPE has both "ĠParis" and "Paris": decoded and stripped they collide; by id they
    do not, and the object inside a sentence is the spaced form."""
    tok = load_tokenizer("smollm2-135m")
    spaced, bare = (tok(text, add_special_tokens=False)["input_ids"] for text in (" Paris", "Paris"))
    assert len(spaced) == len(bare) == 1 and spaced != bare
    assert tok.decode(spaced).strip() == tok.decode(bare).strip()      # what a decoded-string index confuses
    assert queries.object_token_id(tok, "Paris") == spaced[0]
    assert queries.object_token_id(tok, "Zyxwvutsr Qponm") == -1


def test_masked_lm_results_are_lean(tmp_path, monkeypatch):
    """A masked LM over its vocabulary stores ranks, argmaxes and a few top ids per test row, not
    (n_test, V) floats; the report reads them."""
    import pandas as pd

    from alignlab.studies.probing import report
    from alignlab.testing import tiny_encoder

    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path))
    model, tok = tiny_encoder()
    template = "[X] was born in [Y] ."
    rows = [dict(subject=s, relation="P19", object=o, valid_objects=[o], template=template,
                 query=template.replace("[X]", s)) for s, o in (("Dante", "a"), ("Verdi", "b"), ("Bach", "zz q"))]
    splits = {"train": pd.DataFrame(rows), "validation": pd.DataFrame(rows[:1]), "test": pd.DataFrame(rows)}
    info = {"P19": {"template": template, "candidates": ["a", "b", "zz q"]}}
    config = quick_config(dataset="lama-trex", relations=["P19"], model="smollm2-135m")
    out = probes.run_relation(config, "manual", 0, "P19", info, splits, model, tok)
    assert "scores" not in out and out["top_ids"].shape == (3, probes.LEAN_TOP)
    assert out["gold_index"][2] == -1 and np.isinf(out["rank_sum"][2])        # not one token: a miss
    table = report.per_relation({("manual", 0, "P19"): out}, info, splits["test"])
    assert table.loc[0, "n"] == 3 and table.loc[0, "p_at_1"] <= 2 / 3


def test_model_kind_comes_from_the_config_not_the_name(tmp_path):
    """A masked LM saved under a name without "bert" in it still loads as a masked LM."""
    from alignlab.testing import tiny_encoder

    model, tok = tiny_encoder()
    model.save_pretrained(tmp_path / "my-encoder")
    tok.save_pretrained(tmp_path / "my-encoder")
    assert probes.is_masked_config(str(tmp_path / "my-encoder"))
    assert not probes.is_masked_config("smollm2-135m")
