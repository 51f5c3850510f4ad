"""The capability card: 00_overview writes what it measured, the studies read roles from it."""

import json

import pandas as pd
import pytest

from alignlab import ladder
from alignlab.studies.overview import report


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNLAB_ROOT", str(tmp_path))
    monkeypatch.delenv("ALIGNLAB_RUN_DIR", raising=False)
    monkeypatch.delenv("ALIGNLAB_PROFILE", raising=False)
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def card_tables():
    table = pd.DataFrame({"model": ["a", "b", "c"], "accuracy": [0.7, 0.6, 0.8], "auroc": [0.75, 0.65, 0.85]})
    probe = pd.DataFrame({"model": ["a", "b", "c"], "accuracy": [0.62, 0.74, 0.71], "lo": [0.6, 0.7, 0.68],
                          "hi": [0.65, 0.78, 0.74], "auroc": [0.7, 0.8, 0.77], "layer": [0.5, 0.5, 0.75]})
    context = pd.DataFrame({"model": ["b", "c"], "naive_acc": [0.55, 0.67], "oracle_acc": [0.56, 1.0],
                            "gain": [0.01, 0.33], "lo": [-0.05, 0.21], "hi": [0.07, 0.48],
                            "reads_context": [False, True]})
    return table, probe, context


def test_card_orders_models_by_measurement_and_flags_steps_that_go_down(project):
    path = ladder.write_card("world-facts", report.card_entries(*card_tables()))
    assert (path.parent.parent.name, path.parent.name) == ("ladder-cards", "quick")  # outside the runner: quick
    assert ladder.order(["c", "b", "a"], "world-facts") == ["a", "c", "b"]  # by probe accuracy
    assert ladder.order(["c", "b", "a"], "world-facts", metric="zeroshot_acc") == ["b", "a", "c"]
    steps = ladder.steps(["a", "b", "c"], "world-facts")
    assert [s["goes_down"] for s in steps] == [False, True]
    assert ladder.weakest_reader(["a", "b", "c"], "world-facts") == "c"
    assert ladder.weakest_reader(["a", "b"], "world-facts") is None
    entry = json.loads(path.read_text())["models"]["a"]
    assert entry["run"] == "interactive" and "reads_context" not in entry  # a was not in the context check
    assert "context_chat" not in entry
    table, probe, context = card_tables()
    chat_card = report.card_entries(table, probe, context.assign(chat=[False, True]))
    assert chat_card["c"]["context_chat"] is True and chat_card["b"]["context_chat"] is False
    assert "context_chat" not in chat_card["a"]


def test_a_later_run_adds_and_replaces_entries(project, monkeypatch):
    ladder.write_card("world-facts", report.card_entries(*card_tables()))
    monkeypatch.setenv("ALIGNLAB_RUN_DIR", str(project / "results" / "00_overview" / "20261202-run2"))
    ladder.write_card("world-facts", {"a": {"probe_acc": 0.9}, "d": {"probe_acc": 0.5}})
    card = ladder.read_card("world-facts")
    assert set(card) == {"a", "b", "c", "d"}
    assert card["a"] == {"probe_acc": 0.9, "run": "20261202-run2"}
    assert ladder.order(["a", "b", "d"], "world-facts") == ["d", "b", "a"]


def test_a_model_off_the_card_is_a_clear_error(project):
    with pytest.raises(ladder.NotOnCard, match="alignlab run 00_overview"):
        ladder.order(["a"], "sciq")
    ladder.write_card("world-facts", {"a": {"zeroshot_acc": 0.5}})
    with pytest.raises(ladder.NotOnCard, match="no 'probe_acc'"):
        ladder.capability("a", "world-facts")
    with pytest.raises(ValueError, match="unknown capability metric"):
        ladder.capability("a", "world-facts", metric="size")
    assert ladder.card_path("/data/my sciq/").name.startswith("path-")


def test_each_profile_has_its_own_card(project, monkeypatch):
    """A quick run does not overwrite what the standard run measured, and a study reads the card of
    the profile it runs in (the runner's $ALIGNLAB_PROFILE)."""
    ladder.write_card("world-facts", {"a": {"probe_acc": 0.6}, "b": {"probe_acc": 0.7}}, profile="standard")
    ladder.write_card("world-facts", {"a": {"probe_acc": 0.8}, "b": {"probe_acc": 0.5}})  # quick
    assert ladder.order(["a", "b"], "world-facts") == ["b", "a"]
    assert ladder.order(["a", "b"], "world-facts", profile="standard") == ["a", "b"]
    monkeypatch.setenv("ALIGNLAB_PROFILE", "standard")
    assert ladder.order(["a", "b"], "world-facts") == ["a", "b"]
    assert ladder.read_card("world-facts", "quick")["a"]["probe_acc"] == 0.8
    with pytest.raises(ladder.NotOnCard, match="--profile standard"):
        ladder.capability("c", "world-facts")
