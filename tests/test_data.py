"""Tests for the dataset registry and builders (alignlab.data). Fast: no network, no models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from alignlab import paths
from alignlab.data import DATASETS, binary_view, facts_triples, list_datasets, load, sciq, world_facts

FIXTURES = Path(__file__).parent / "fixtures"
REAL_SCIQ = paths.project_root().parent / "shared" / "fixtures" / "real" / "sciq"
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def wf():
    return load("world-facts")


@pytest.fixture(scope="module")
def ft():
    return load("facts-triples")


def all_rows(dd):
    return [row for split in dd.values() for row in split]


# -----------------------------------------------------------------------------
# registry


def test_registry_names_and_specs():
    assert list(DATASETS) == ["world-facts", "facts-triples", "sciq", "cultural-items", "cdeval", "lama-trex"]
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.schema and spec.source and spec.license


def test_unknown_dataset_error_lists_known_names():
    with pytest.raises(ValueError) as err:
        load("world-fact")
    message = str(err.value)
    assert "world-fact" in message
    for name in DATASETS:
        assert name in message


def test_unknown_split_error():
    with pytest.raises(ValueError, match="validation"):
        load("world-facts", split="dev")


def test_single_split_is_a_dataset(wf):
    test = load("world-facts", split="test")
    assert test.num_rows == wf["test"].num_rows
    assert test["question"] == wf["test"]["question"]


def test_list_datasets_columns_and_counts(monkeypatch, tmp_path, wf):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))  # an empty hub cache
    table = list_datasets()
    assert list(table.columns) == ["name", "train", "validation", "test", "schema", "source", "license"]
    assert list(table["name"]) == list(DATASETS)
    row = table.set_index("name").loc["world-facts"]
    assert [row[s] for s in ("train", "validation", "test")] == [wf[s].num_rows for s in wf]
    assert table.set_index("name").loc["sciq"][["train", "validation", "test"]].isna().all()


def test_list_datasets_reads_sciq_sizes_from_the_hub_cache(monkeypatch, tmp_path):
    folder = tmp_path / "allenai___sciq" / "default" / "0.0.0" / "abc123"
    folder.mkdir(parents=True)
    splits = {"train": {"num_examples": 11679}, "validation": {"num_examples": 1000},
              "test": {"num_examples": 1000}}
    (folder / "dataset_info.json").write_text(json.dumps({"splits": splits}))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))
    row = list_datasets().set_index("name").loc["sciq"]
    assert (row["train"], row["validation"], row["test"]) == (11679, 1000, 1000)


def test_import_loads_no_model_library():
    """The dataset registry (and `alignlab data`) never needs torch, transformers or scikit-learn."""
    code = ("import sys, alignlab.data; "
            "print(sorted(m for m in ('torch', 'transformers', 'sklearn', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    assert out.stdout.strip() == "[]"


# -----------------------------------------------------------------------------
# world-facts


def test_world_facts_size_and_schema(wf):
    assert list(wf) == ["train", "validation", "test"]
    assert sum(s.num_rows for s in wf.values()) >= 1500
    for split in wf.values():
        assert split.column_names == list(world_facts.COLUMNS)
    assert wf["train"].info.version and world_facts.GENERATOR_VERSION in wf["train"].info.description


def test_world_facts_splits_disjoint_and_complete(wf):
    questions = {s: set(wf[s]["question"]) for s in wf}
    assert not questions["train"] & questions["validation"]
    assert not questions["train"] & questions["test"]
    assert not questions["validation"] & questions["test"]
    for s in wf:
        assert set(wf[s]["kind"]) == set(world_facts.KINDS), s
    sizes = {s: wf[s].num_rows for s in wf}
    assert sizes["train"] > 3 * sizes["validation"] and sizes["train"] > 3 * sizes["test"]


def test_world_facts_split_by_subject(wf):
    """A country or an element belongs to one split: a fact asked two ways (capital <-> capital of,
    symbol <-> element) cannot put its reverse question in train and itself in test."""
    subjects = {s: set(wf[s]["subject"]) for s in wf}
    assert not subjects["train"] & subjects["validation"]
    assert not subjects["train"] & subjects["test"]
    assert not subjects["validation"] & subjects["test"]
    assert world_facts.GENERATOR_VERSION != "world-facts/1.0"  # the splits changed: a new version
    # the same subject lands in the same split in facts-triples
    for row in wf["test"]:
        assert world_facts.split_of(row["subject"]) == "test"


def test_world_facts_rows_are_clean(wf):
    rows = all_rows(wf)
    questions = [r["question"] for r in rows]
    assert len(questions) == len(set(questions))
    for r in rows:
        for value in r.values():
            assert value and value == value.strip() and "  " not in value, r
            assert "None" not in value and "[" not in value and ".." not in value, r
        assert r["generator"] == world_facts.GENERATOR_VERSION
        # the support passage states the answer
        assert r["correct_answer"].casefold() in r["support"].casefold(), r
        sentences = r["support"].replace("St. ", "St ").replace("D.C. ", "DC ").count(". ") + 1
        assert 2 <= sentences <= 3, r


def test_world_facts_distractors_same_type_and_wrong(wf):
    countries = world_facts.countries()
    elements = world_facts.elements()
    by_name = {c["name"]: c for c in countries}
    names = {c["name"] for c in countries}
    same_type = {
        "capital": {c["capital"] for c in countries if c["capital"]},
        "capital_of": names,
        "region": {c["region"] for c in countries if c["region"]},
        "subregion": {c["subregion"] for c in countries if c["subregion"]},
        "currency": {x for c in countries for x in c["currencies"]},
        "language": {x for c in countries for x in c["languages"]},
        "border": names,
        "element_symbol": {e["symbol"] for e in elements},
        "element_name": {e["name"] for e in elements},
        "element_number": {str(n) for n in range(1, 119)},
        "element_period": {str(n) for n in range(1, 8)},
        "element_group": {str(n) for n in range(1, 19)},
    }
    by_iso = {c["iso3"]: c["name"] for c in countries}
    for r in all_rows(wf):
        distractors = [r["distractor1"], r["distractor2"], r["distractor3"]]
        folded = [d.casefold() for d in distractors]
        assert len(set(folded)) == 3, r
        assert r["correct_answer"].casefold() not in folded, r
        assert r["correct_answer"] in same_type[r["kind"]], r
        assert set(distractors) <= same_type[r["kind"]], r
        # never another right answer
        c = by_name.get(r["subject"])
        if r["kind"] == "currency":
            assert not set(distractors) & set(c["currencies"]), r
        if r["kind"] == "language":
            assert not set(distractors) & set(c["languages"]), r
        if r["kind"] == "border":
            neighbours = {by_iso[b] for b in c["borders"] + c["unclear_borders"]}
            assert r["correct_answer"] in neighbours, r
            assert not set(distractors) & neighbours, r
        if r["kind"] == "capital_of":
            assert all(by_name[d]["capital"] != by_name[r["correct_answer"]]["capital"] for d in distractors)


def test_world_facts_known_facts(wf):
    answers = {r["question"]: r["correct_answer"] for r in all_rows(wf)}
    assert answers["What is the capital of France?"] == "Paris"
    assert answers["What is the capital of Kazakhstan?"] == "Astana"
    assert answers["Canberra is the capital of which country or territory?"] == "Australia"
    assert answers["What is the official currency of Japan?"] == "Yen"
    assert answers["What is the official currency of Croatia?"] == "Euro"
    assert answers["Which of these is an official language of Brazil?"] == "Portuguese"
    assert answers["In the United Nations geoscheme, what is the world region of Canada?"] == "the Americas"
    assert answers["In the United Nations geoscheme, what is the subregion of the Netherlands?"] == "Western Europe"
    assert answers["What is the chemical symbol for iron?"] == "Fe"
    assert answers["Which chemical element has the symbol Au?"] == "gold"
    assert answers["What is the atomic number of gold?"] == "79"
    assert answers["In which period of the periodic table is chlorine?"] == "3"
    assert answers["In which group of the periodic table is chlorine?"] == "17"
    assert "What is the capital of Israel?" not in answers  # contested: left out on purpose


@pytest.mark.parametrize("number, expected", [
    (1, (1, 1)), (2, (1, 18)), (3, (2, 1)), (5, (2, 13)), (11, (3, 1)), (18, (3, 18)),
    (26, (4, 8)), (47, (5, 11)), (56, (6, 2)), (57, (6, None)), (71, (6, None)), (72, (6, 4)),
    (86, (6, 18)), (103, (7, None)), (104, (7, 4)), (118, (7, 18)),
])
def test_period_and_group(number, expected):
    assert world_facts.period_and_group(number) == expected


def test_world_facts_deterministic_across_processes():
    """Same rows in two fresh interpreters with different hash seeds (set order differs)."""
    code = ("import hashlib, json; from alignlab.data import world_facts, facts_triples; "
            "print(hashlib.sha256(json.dumps([world_facts.rows(), facts_triples.rows()]).encode()).hexdigest())")
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_world_facts_rebuild_identical(wf):
    world_facts.rows.cache_clear()
    world_facts.countries.cache_clear()
    again = world_facts.build()
    for s in wf:
        assert again[s].to_dict() == wf[s].to_dict()


def test_split_of_is_a_stable_hash():
    assert [world_facts.split_of(q) for q in ("a", "b", "c")] == [world_facts.split_of(q) for q in ("a", "b", "c")]
    counts = defaultdict(int)
    for i in range(3000):
        counts[world_facts.split_of(f"question {i}")] += 1
    assert 0.65 < counts["train"] / 3000 < 0.75
    assert 0.12 < counts["validation"] / 3000 < 0.18


def test_in_sentence_articles():
    assert world_facts.in_sentence("Netherlands") == "the Netherlands"
    assert world_facts.in_sentence("The Gambia") == "the Gambia"
    assert world_facts.in_sentence("Cook Islands") == "the Cook Islands"
    assert world_facts.in_sentence("France") == "France"


# -----------------------------------------------------------------------------
# binary view


def test_binary_view_balanced_and_consistent(wf):
    view = binary_view(wf["train"], seed=0)
    n = wf["train"].num_rows
    assert view.column_names == ["text", "label", "question", "answer", "choices", "kind", "subject", "id"]
    assert view.num_rows == n
    assert sum(view["label"]) == n // 2
    for row, source in zip(view, wf["train"]):
        assert row["choices"][0] == source["correct_answer"]
        assert row["choices"][1:] == [source["distractor1"], source["distractor2"], source["distractor3"]]
        assert (row["label"] == 1) == (row["answer"] == source["correct_answer"])
        assert row["answer"] in row["choices"]
        assert row["text"] == f"Q: {source['question']} A: {row['answer']}"
        assert (row["kind"], row["subject"]) == (source["kind"], source["subject"])
    assert view["id"] == list(range(n))


def test_binary_view_deterministic_and_seeded(wf):
    a = binary_view(wf["validation"], seed=0)
    b = binary_view(wf["validation"], seed=0)
    c = binary_view(wf["validation"], seed=1)
    assert a.to_dict() == b.to_dict()
    assert a["label"] != c["label"]


def test_binary_view_odd_size_and_dict(wf):
    odd = wf["test"].select(range(7))
    assert sum(binary_view(odd)["label"]) == 3
    views = binary_view(wf)
    assert list(views) == list(wf)


def test_binary_view_on_sciq_schema():
    view = binary_view(sciq.load_sciq_files(FIXTURES / "sciq", split="train"), seed=3)
    assert view.column_names == ["text", "label", "question", "answer", "choices", "id"]
    assert sum(view["label"]) == view.num_rows // 2


# -----------------------------------------------------------------------------
# facts-triples


def test_facts_triples_schema_and_relations(ft):
    for split in ft.values():
        assert split.column_names == list(facts_triples.COLUMNS)
    relations = set(ft["train"]["relation"])
    for needed in ("capital", "region", "subregion", "currency", "language", "element_symbol", "element_period"):
        assert needed in relations
    assert sum(s.num_rows for s in ft.values()) > 1000


def test_facts_triples_subject_disjoint_splits(ft):
    subjects = {s: set(ft[s]["subject"]) for s in ft}
    assert not subjects["train"] & subjects["validation"]
    assert not subjects["train"] & subjects["test"]
    assert not subjects["validation"] & subjects["test"]


def test_facts_triples_objects_are_candidates(ft):
    info = facts_triples.relation_info()
    assert set(info) == set(facts_triples.RELATIONS)
    for entry in info.values():
        assert "[X]" in entry["template"] and "[Y]" in entry["template"]
        assert len(entry["candidates"]) == len(set(entry["candidates"])) >= 5
    for row in all_rows(ft):
        candidates = info[row["relation"]]["candidates"]
        assert row["object"] in candidates and row["object"] in row["valid_objects"]
        assert set(row["valid_objects"]) <= set(candidates)
        assert row["template"] == info[row["relation"]]["template"]
        assert "[X]" not in row["query"] and "[Y]" in row["query"]
    # one fact per (subject, relation)
    keys = [(r["subject"], r["relation"]) for r in all_rows(ft)]
    assert len(keys) == len(set(keys))


def test_facts_triples_agree_with_world_facts(ft, wf):
    triples = {(r["subject"], r["relation"]): r["object"] for r in all_rows(ft)}
    for r in all_rows(wf):
        if r["kind"] in ("capital", "region", "subregion", "currency", "language", "element_symbol"):
            assert triples[(r["subject"], r["kind"])] == r["correct_answer"], r


def test_fill_templates():
    assert facts_triples.fill("The capital of [X] is [Y].", "Netherlands", "Amsterdam") == \
        "The capital of the Netherlands is Amsterdam."
    assert facts_triples.fill("[X] is located in [Y].", "Cook Islands", "Oceania") == \
        "The Cook Islands are located in Oceania."
    assert facts_triples.fill("[X] is in period [Y] of the periodic table.", "iron") == \
        "Iron is in period [Y] of the periodic table."
    assert facts_triples.fill("The capital of [X] is [Y].", "United States", "Washington, D.C.") == \
        "The capital of the United States is Washington, D.C."


# -----------------------------------------------------------------------------
# sciq


def raw_json(folder, name):
    with open(folder / name, encoding="utf-8") as f:
        return json.load(f)


def check_sciq_folder(folder: Path):
    dd = sciq.load_sciq_files(folder)
    assert list(dd) == ["train", "validation", "test"]
    for split, file in sciq.FILES.items():
        raw = raw_json(folder, file)
        assert dd[split].column_names == list(sciq.COLUMNS)
        assert dd[split].num_rows == len(raw)
        assert dd[split]["question"] == [r["question"] for r in raw]
        assert dd[split]["correct_answer"] == [r["correct_answer"] for r in raw]
        assert dd[split]["support"] == [r["support"] for r in raw]
    return dd


def test_sciq_handwritten_fixture():
    dd = check_sciq_folder(FIXTURES / "sciq")
    assert [dd[s].num_rows for s in dd] == [4, 3, 3]
    via_registry = load("sciq", split="validation", folder=FIXTURES / "sciq")
    assert via_registry["question"] == dd["validation"]["question"]
    assert "" in dd["validation"]["support"]  # empty support survives, as in the real files


def test_sciq_real_fixture():
    if not REAL_SCIQ.is_dir():
        pytest.skip(f"no real SciQ sample at {REAL_SCIQ}")
    dd = check_sciq_folder(REAL_SCIQ)
    assert all(dd[s].num_rows > 0 for s in dd)
    view = binary_view(dd["test"])
    assert sum(view["label"]) == dd["test"].num_rows // 2


def test_sciq_missing_file_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="valid.json"):
        sciq.load_sciq_files(tmp_path, split="validation")


def test_sciq_bad_file_is_clear(tmp_path):
    (tmp_path / "test.json").write_text(json.dumps([{"question": "q?", "correct_answer": "a"}]))
    with pytest.raises(ValueError, match="distractor"):
        sciq.load_sciq_files(tmp_path, split="test")


def test_sciq_hub_offline_error(monkeypatch):
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'allenai/sciq' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(RuntimeError, match="load_sciq_files") as err:
        load("sciq")
    assert "unreachable" in str(err.value)
    assert isinstance(err.value.__cause__, ConnectionError)


# -----------------------------------------------------------------------------
# a local SciQ folder as a `dataset` value


def test_load_accepts_a_sciq_folder_by_path():
    dd = load(str(FIXTURES / "sciq"))
    assert [dd[s].num_rows for s in dd] == [4, 3, 3]
    assert load(str(FIXTURES / "sciq"), split="test")["question"] == dd["test"]["question"]


@pytest.mark.parametrize("config_module", ["overview", "oversight", "w2sg"])
def test_every_sciq_shaped_study_accepts_a_sciq_folder(config_module, tmp_path):
    """00, 01 and 02 check `dataset` through the one validator of alignlab.data.names."""
    import importlib

    from alignlab.run.params import read_parameters
    from alignlab.study_config import ParameterError

    config = importlib.import_module(f"alignlab.studies.{config_module}.config").Config
    defaults = {name: p.default for name, p in read_parameters(config.notebook).items()}
    config.from_params({**defaults, "dataset": str(FIXTURES / "sciq")})
    (tmp_path / "train.json").write_text("[]")
    with pytest.raises(ParameterError, match="valid.json, test.json") as error:
        config.from_params({**defaults, "dataset": str(tmp_path)})
    assert "'dataset'" in str(error.value)


def test_dataset_names_module_is_cheap():
    code = ("import sys, alignlab.data.names; "
            "assert not [m for m in ('pandas', 'datasets', 'numpy') if m in sys.modules]")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(SRC)})
