"""The sweep report (alignlab.sweep_report, notebooks/90_sweep_report): a collected sweep's metric
against the strong model's capability.

The unit tests build a collected table by hand (no kernel, no model). The tests marked slow run
real sweeps of the runner's tiny test notebook (tests/notebooks/90_ok, seconds per run): through
`collected_sweep` twice (the second finds the runs done), and through the report notebook itself
under `alignlab run`, running the demo sweep and then reporting it by its id.
"""

import json
import math
import shutil
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alignlab import ladder, sweep_report
from alignlab.run import execute, registry
from alignlab.run import sweep as sweeps
from alignlab.run.params import read_parameters
from alignlab.stats import bootstrap_ci, t_ci
from alignlab.study_config import ParameterError

REPO = Path(__file__).resolve().parent.parent
WEAK = "minilm-l6"
VALUES = {  # strong model -> the metric of seeds 0, 1, 2
    "smollm2-135m": [0.10, 0.30, 0.20],
    "gemma3-270m": [0.50, 0.40, 0.90],
}


def config(**overrides) -> sweep_report.Config:
    """The notebook's defaults (its parameters cell), with overrides, checked."""
    params = {name: p.default for name, p in read_parameters("90_sweep_report").items()}
    params.update(overrides)
    return sweep_report.Config.from_params(params)


def collected(values=VALUES, metric="direct_xent_pgr", dataset="world-facts") -> sweep_report.CollectedSweep:
    """A table as `alignlab sweep collect` writes it for a sweep over `models` x `seeds` (lists as JSON
    text), with a second metric that must be ignored."""
    rows = []
    for strong, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            run_id = f"run-{strong}-{seed}"
            common = {"sweep_id": "07_recursive_w2sg-abc", "run_id": run_id,
                      "models": json.dumps([WEAK, strong]), "seeds": json.dumps([seed])}
            rows.append({**common, "metric": metric, "value": value})
            rows.append({**common, "metric": "direct_xent_final_acc", "value": 0.6})
    table = pd.DataFrame(rows, columns=["sweep_id", "run_id", "models", "seeds", "metric", "value"])
    return sweep_report.CollectedSweep("07_recursive_w2sg-abc", "07_recursive_w2sg", ["models", "seeds"], table,
                                       dataset, {"ok": len(table) // 2})


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project (its own results/, no capability card) with the repository's notebooks."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'tmp'\n")
    shutil.copytree(REPO / "notebooks", tmp_path / "notebooks")
    monkeypatch.setenv("ALIGNLAB_ROOT", str(tmp_path))
    monkeypatch.delenv("ALIGNLAB_RUN_DIR", raising=False)
    return tmp_path


def test_config_fields_are_the_parameters_cell():
    import dataclasses

    assert [f.name for f in dataclasses.fields(sweep_report.Config)] == list(read_parameters("90_sweep_report"))


# ---------------------------------------------------------------------------------------------
# Aggregation, on a synthetic collected table

def test_fallback_to_parameter_count_without_a_card(project):
    c = config(ci="t")
    points, axis = sweep_report.metric_points(collected(), c)
    assert len(points) == 6 and set(points.x_label) == set(VALUES)
    assert axis.kind == "parameters" and axis.log
    assert "fallback" in axis.label and "not on the quick profile's capability card" in axis.note
    assert dict(zip(points.x_label, points.x)) == {"smollm2-135m": 135e6, "gemma3-270m": 268e6}
    assert points.replicate.tolist()[:3] == ["seeds=[0]", "seeds=[1]", "seeds=[2]"]

    summary = sweep_report.summarize_by_x(points, c)
    assert summary.x_label.tolist() == ["smollm2-135m", "gemma3-270m"]  # least capable first
    assert summary["mean"].tolist() == pytest.approx([0.2, 0.6])
    for row, values in zip(summary.itertuples(), (VALUES["smollm2-135m"], VALUES["gemma3-270m"])):
        assert (row.lo, row.hi) == pytest.approx(t_ci(values)) and row.n == 3

    d = sweep_report.difference(points, summary, c)  # paired by seed: 0.4, 0.1, 0.7
    assert d["paired"] and d["mean"] == pytest.approx(0.4)
    assert (d["lo"], d["hi"]) == pytest.approx(t_ci([0.4, 0.1, 0.7]))

    metrics = sweep_report.sweep_metrics(summary, axis, points, c)
    assert metrics["mean/gemma3-270m"] == pytest.approx(0.6) and metrics["runs/smollm2-135m"] == 3
    assert metrics["x/gemma3-270m"] == 268e6 and metrics["axis_is_capability"] == 0.0
    assert metrics["difference"] == pytest.approx(0.4) and metrics["n_runs"] == 6
    text = sweep_report.conclusion(collected(), points, summary, axis, c)
    assert "parameter count, not measured capability" in text and "0.600 [" in text
    assert "not shown" in text  # the paired CI with 3 seeds includes 0
    sweep_report.plot_metric(points, summary, axis, c.metric, c.ci)


def test_capability_card_places_the_strong_models(project):
    ladder.write_card("world-facts", {"smollm2-135m": {"probe_acc": 0.71}, "gemma3-270m": {"probe_acc": 0.66},
                                      WEAK: {"probe_acc": 0.60}})
    c = config(ci="bootstrap")
    points, axis = sweep_report.metric_points(collected(), c)
    assert axis.kind == "capability" and not axis.note and "world-facts" in axis.label
    summary = sweep_report.summarize_by_x(points, c)
    # the card orders gemma3-270m below smollm2-135m: the axis follows the card, not the size
    assert summary.x_label.tolist() == ["gemma3-270m", "smollm2-135m"]
    assert summary.x.tolist() == [0.66, 0.71]
    expected = bootstrap_ci(VALUES["gemma3-270m"], n_boot=c.n_boot, seed=c.bootstrap_seed)
    assert (summary.lo[0], summary.hi[0]) == pytest.approx(expected)
    assert summary.lo[0] >= 0.4 and summary.hi[0] <= 0.9
    metrics = sweep_report.sweep_metrics(summary, axis, points, c)
    assert metrics["axis_is_capability"] == 1.0 and metrics["x/smollm2-135m"] == 0.71
    assert metrics["difference"] == pytest.approx(-0.4)  # smollm2 minus gemma3
    assert "Student-t" in sweep_report.conclusion(collected(), points, summary, axis, c)


def test_a_model_missing_from_the_card_moves_every_model_to_parameter_count(project):
    ladder.write_card("world-facts", {"smollm2-135m": {"probe_acc": 0.71}})
    _, axis = sweep_report.metric_points(collected(), config())
    assert axis.kind == "parameters" and "gemma3-270m not on the quick profile's capability card" in axis.note


def test_models_without_a_parameter_count_fall_back_to_grid_order(project):
    values = {"org/hub-model-b": [0.1, 0.2], "org/hub-model-a": [0.3, 0.5]}
    points, axis = sweep_report.metric_points(collected(values), config())
    assert axis.kind == "rank" and "grid's order" in axis.note
    assert dict(zip(points.x_label, points.x)) == {"org/hub-model-b": 0.0, "org/hub-model-a": 1.0}


def test_numeric_x_and_unpaired_replicates():
    table = pd.DataFrame({"sweep_id": "s", "run_id": ["a", "b", "c"], "n_gold": [40, 40, 80],
                          "seeds": ["[0]", "[1]", "[5]"], "metric": "m", "value": [1.0, 3.0, 4.0]})
    c = config(x="n_gold", metric="m", demo_grid={"n_gold": [40, 80], "seeds": [[0], [1]]})
    sweep = sweep_report.CollectedSweep("s", "07_recursive_w2sg", ["n_gold", "seeds"], table, "world-facts")
    points, axis = sweep_report.metric_points(sweep, c)
    assert axis.kind == "value" and points.x.tolist() == [40.0, 40.0, 80.0]
    summary = sweep_report.summarize_by_x(points, c)
    assert summary["mean"].tolist() == [2.0, 4.0] and math.isnan(summary.lo[1])  # one run: no interval
    d = sweep_report.difference(points, summary, c)
    assert not d["paired"] and d["mean"] == 2.0 and math.isnan(d["lo"])
    assert "no interval" in sweep_report.conclusion(sweep, points, summary, axis, c)


def test_strong_model_of_and_parameter_count():
    assert sweep_report.strong_model_of('["minilm-l6", "gemma3-270m"]') == "gemma3-270m"
    assert sweep_report.strong_model_of(["a", "b"]) == "b" and sweep_report.strong_model_of("gpt2") == "gpt2"
    assert sweep_report.strong_model_of("0.5") is None and sweep_report.strong_model_of(3) is None
    assert sweep_report.parameter_count("minilm-l6") == pytest.approx(22.7e6)
    assert sweep_report.parameter_count("gpt2") is None


# ---------------------------------------------------------------------------------------------
# Bad input fails clearly

def test_unknown_metric_or_x_names_what_the_sweep_has(project):
    with pytest.raises(ParameterError, match=r"has a metric 'direct_xent_pgrr'.*Closest: direct_xent_pgr"):
        sweep_report.metric_points(collected(), config(metric="direct_xent_pgrr"))
    with pytest.raises(ParameterError, match="varies models, seeds, not 'n_gold'"):
        sweep_report.metric_points(collected(), config(x="n_gold", demo_grid={"n_gold": [1]}))
    empty = collected()
    empty.table = empty.table.iloc[0:0]
    with pytest.raises(ParameterError, match="no run that finished ok"):
        sweep_report.metric_points(empty, config())
    table = collected().table
    table["models"] = np.where(table.run_id.str.contains("gemma"), "1.5", "not a model list")
    odd = sweep_report.CollectedSweep("s", "n", ["models", "seeds"], table, "world-facts")
    with pytest.raises(ParameterError, match="neither model names nor numbers"):
        sweep_report.metric_points(odd, config())
    table["models"] = np.where(table.run_id.str.contains("gemma"), "[1, 2]", "[3, 4]")
    with pytest.raises(ParameterError, match="neither model names nor numbers"):
        sweep_report.metric_points(odd, config())


def test_config_rejects_bad_values_before_any_work(project):
    with pytest.raises(ParameterError, match="no sweep 'nope'.*Sweeps here: \\(none\\)"):
        config(sweep_id="nope")
    with pytest.raises(ParameterError, match="'x'.*demo_grid"):
        config(x="n_gold")
    with pytest.raises(ParameterError, match="demo_notebook"):
        config(demo_notebook="90_sweep_report")
    with pytest.raises(ParameterError, match="demo_notebook"):
        config(demo_notebook="99_missing")
    with pytest.raises(ParameterError, match="demo_grid"):
        config(demo_grid={"models": []})
    with pytest.raises(ParameterError, match="capability"):
        config(capability="size")
    with pytest.raises(ParameterError, match="metric"):
        config(metric="")


def test_config_checks_an_existing_sweep_from_its_files(project):
    folder = project / "results" / "sweeps" / "07_recursive_w2sg-1234abcd"
    runs = []
    for i, status in enumerate(("ok", "failed")):
        run_dir = project / "results" / "07_recursive_w2sg" / f"r{i}"
        run_dir.mkdir(parents=True)
        (run_dir / "run.json").write_text(json.dumps({"status": status, "metrics": {f"m{i}": 1.0}}))
        runs.append({"key": str(i), "varying": {"seeds": [i]}, "params": {},
                     "attempts": [{"run_dir": f"results/07_recursive_w2sg/r{i}"}]})
    folder.mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({"grid": {"seeds": [[0], [1]]}, "runs": runs}))
    ok = config(sweep_id=folder.name, metric="m0", x="seeds")
    assert ok.sweep_id == folder.name
    with pytest.raises(ParameterError, match="has a metric 'm1'"):  # only in a failed run
        config(sweep_id=folder.name, metric="m1", x="seeds")
    with pytest.raises(ParameterError, match="grid parameters \\(seeds\\)"):
        config(sweep_id=folder.name, metric="m0", x="models")
    with pytest.raises(ParameterError, match="no sweep 'other'.*07_recursive_w2sg-1234abcd"):
        config(sweep_id="other")


def test_collected_sweep_plans_before_it_launches(project):
    calls = []
    fake = types.SimpleNamespace(
        plan_sweep=lambda *a: calls.append("plan") or (_ for _ in ()).throw(ParameterError("bad combination")),
        launch=lambda *a, **k: calls.append("launch"))
    with pytest.raises(ParameterError, match="bad combination"):
        sweep_report.collected_sweep(config(), fake)
    assert calls == ["plan"]


# ---------------------------------------------------------------------------------------------
# Real sweeps of the runner's tiny test notebook (kernels: seconds each)

@pytest.fixture
def tiny_project(runner_project, monkeypatch):
    """The runner's project (tests/notebooks/90_ok) plus this notebook; a fixed code version."""
    shutil.copy(REPO / "notebooks" / "90_sweep_report.ipynb", runner_project / "notebooks")
    monkeypatch.setattr(execute, "code_version", lambda: "test-version")
    return runner_project


TINY = {"demo_notebook": "90_ok", "demo_grid": {"scale": [0.5, 2.0], "n_items": [1, 3]}, "demo_params": {},
        "metric": "total", "x": "scale", "ci": "t"}


@pytest.mark.slow
def test_demo_sweep_runs_once_then_only_collects(tiny_project):
    c = config(**TINY)
    first = sweep_report.collected_sweep(c, sweeps)
    assert first.states == {"ok": 4} and first.ran_demo and first.notebook == "90_ok"
    points, axis = sweep_report.metric_points(first, c)
    summary = sweep_report.summarize_by_x(points, c)
    assert axis.kind == "value" and summary["mean"].tolist() == pytest.approx([1.0, 4.0])  # scale * mean(1, 3)
    runs = sorted((tiny_project / "results" / "90_ok").iterdir())
    again = sweep_report.collected_sweep(c, sweeps)
    assert sorted((tiny_project / "results" / "90_ok").iterdir()) == runs  # nothing ran again
    assert again.id == first.id and len(again.table) == len(first.table)
    assert {r["id"] for r in registry.read_runs("90_ok")} == {p.name for p in runs}  # the driver ingested


@pytest.mark.slow
def test_notebook_reports_a_sweep_it_runs_itself(tiny_project):
    from alignlab.run.execute import run_notebook

    overrides = dict(TINY)
    result = run_notebook("90_sweep_report", "quick", overrides, progress_bar=False)
    assert result.status == "ok", f"failed in cell {result.failed_cell}: {result.error}"
    metrics = json.loads((tiny_project / result.run_dir / "metrics.json").read_text())
    assert metrics["mean/0.5"] == pytest.approx(1.0) and metrics["mean/2.0"] == pytest.approx(4.0)
    assert metrics["difference"] == pytest.approx(3.0) and metrics["n_runs"] == 4
    assert (tiny_project / result.run_dir / "figures" / "metric-vs-capability.png").is_file()
    rows = {r["id"]: r for r in registry.read_runs()}
    assert rows[result.id]["status"] == "ok" and sum(r["notebook"] == "90_ok" for r in rows.values()) == 4
    # an existing sweep is reported by its id (that the demo resumes is tested above: the kernel
    # computes its own code version, which an edit elsewhere in the checkout changes mid-test)
    (sweep_json,) = (tiny_project / "results" / "sweeps").glob("*/sweep.json")
    sweep_id = json.loads(sweep_json.read_text())["id"]
    by_id = run_notebook("90_sweep_report", "quick", {**overrides, "sweep_id": sweep_id}, progress_bar=False)
    assert by_id.status == "ok"
