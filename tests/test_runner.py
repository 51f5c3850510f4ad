"""The runner: parameter validation, paths, profiles, run folders, the registry, save_metrics, the CLI.

Everything runs in a temporary project (`$ALIGNLAB_ROOT`) holding the two test notebooks of
tests/notebooks/. Validation tests replace papermill.execute_notebook by a function that
fails the test if called: a bad name or value must be caught before any kernel starts.
Only `test_real_runs` starts kernels (marked slow, a few seconds).
"""

import json
import math
import re
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from alignlab import nb
from alignlab.run import cli, execute, registry
from alignlab.run.params import (
    Parameter,
    check_value,
    list_notebooks,
    parse_parameters,
    parse_value,
    plan_runs,
    read_parameters,
    resolve_notebook,
    resolve_params,
)
from alignlab.study_config import ParameterError

HERE = Path(__file__).parent
REPO = HERE.parent


@pytest.fixture
def project(runner_project):
    """The runner's tiny project (conftest) plus a `test` profile."""
    (runner_project / "profiles" / "test.yaml").write_text(
        "all:\n  n_items: 9\n  scale: 2.0\n  not_a_parameter_anywhere: 1\n"
        "90_ok:\n  n_items: 5\n  label: b\n")
    return runner_project


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if anything tries to execute a notebook."""
    import papermill

    def execute_notebook(*args, **kwargs):
        raise AssertionError("papermill.execute_notebook called: validation came too late")

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)


# ---------------------------------------------------------------------------------------------
# The parameters cell

def test_parse_parameters_reads_defaults_choices_and_comments():
    source = (
        'n_questions = 200  # questions per seed\n'
        'dataset = "facts"  # one of: facts, sciq\n'
        'layers = [1, 2]  # one of: 1, 2, 3\n'
        'lr: float = 1e-3\n'
        'device = "cuda" if False else "cpu"\n'
        'import math\n'
        '%matplotlib inline\n'
        'models = [\n    "minilm-l6",  # one of: minilm-l6, gpt2\n]\n'
    )
    ps = parse_parameters(source)
    assert list(ps) == ["n_questions", "dataset", "layers", "lr", "device", "models"]
    assert ps["n_questions"].default == 200 and ps["n_questions"].comment == "questions per seed"
    assert ps["dataset"].choices == ["facts", "sciq"]
    assert ps["layers"].choices == [1, 2, 3]
    assert ps["lr"].default == 1e-3
    assert ps["device"].literal is False  # an expression: any value is accepted
    assert ps["models"].default == ["minilm-l6"] and ps["models"].choices == ["minilm-l6", "gpt2"]


def test_read_parameters_of_a_notebook(project):
    ps = read_parameters("90_ok")
    assert {name: p.default for name, p in ps.items()} == {
        "n_items": 3, "scale": 1.5, "label": "a", "seeds": [0, 1], "note": None, "sleep_s": 0.0}
    assert ps["label"].choices == ["a", "b"]


def test_resolve_notebook_by_stem_filename_path_and_prefix(project):
    expected = project / "notebooks" / "90_ok.ipynb"
    for name in ("90_ok", "90_ok.ipynb", "notebooks/90_ok.ipynb", str(expected), "90"):
        assert resolve_notebook(name) == expected
    assert list_notebooks() == ["90_ok", "91_fails"]


# ---------------------------------------------------------------------------------------------
# Validation rules

def p(name, default, choices=None):
    return Parameter(name, default, True, choices)


@pytest.mark.parametrize("param, value", [
    (p("scale", 1.5), 2),                      # int where float expected
    (p("note", None), [1, "x"]),               # None accepts anything
    (p("flag", True), False),
    (p("names", []), [1, "x"]),                # empty default list: any elements
    (p("labels", ["a"]), ["b", "c"]),
    (p("dataset", "facts", ["facts", "sciq"]), "sciq"),
    (p("layers", [1], [1, 2, 3]), [3, 1]),
    (p("n_items", 3), 1),
    (p("seeds", [0]), [5, 6, 7]),
])
def test_check_value_accepts(param, value):
    assert check_value("nb", param, value) == value


@pytest.mark.parametrize("param, value, words", [
    (p("n_items", 3), "abc", ["'n_items'", "an int", "'abc'"]),
    (p("n_items", 3), 2.5, ["'n_items'", "an int", "2.5"]),
    (p("n_items", 3), True, ["'n_items'", "an int"]),      # a bool is not an int here
    (p("scale", 1.5), "x", ["'scale'", "a float"]),
    (p("flag", True), 1, ["'flag'", "a bool"]),
    (p("labels", ["a"]), "a", ["'labels'", "a list"]),
    (p("labels", ["a"]), ["b", 3], ["'labels'", "element 3", "an int"]),
    (p("dataset", "facts", ["facts", "sciq"]), "trivia", ["'dataset'", "one of: facts, sciq", "'trivia'"]),
    (p("layers", [1], [1, 2, 3]), [1, 4], ["'layers'", "one of (each element): 1, 2, 3", "4"]),
    (p("n_items", 3), 0, ["'n_items'", ">= 1", "0"]),
    (p("seeds", [0]), [], ["'seeds'", "non-empty list of ints"]),
])
def test_check_value_rejects_with_a_message_naming_what_is_allowed(param, value, words):
    with pytest.raises(ParameterError) as error:
        check_value("nb", param, value)
    for word in words:
        assert word in str(error.value)


def test_model_parameters_use_check_model_name(monkeypatch):
    from alignlab.models import zoo

    def check_model_name(name):
        if name != "minilm-l6":
            raise ValueError(f"unknown model {name!r}; embedded models: minilm-l6")

    monkeypatch.setattr(zoo, "check_model_name", check_model_name)
    for name, default in (("model", "minilm-l6"), ("models", ["minilm-l6"]),
                          ("teacher_model", "minilm-l6"), ("judge_models", ["minilm-l6"])):
        value = ["minilm-l6"] if isinstance(default, list) else "minilm-l6"
        assert check_value("nb", p(name, default), value) == value
        bad = ["minilm-l6", "gpt-7"] if isinstance(default, list) else "gpt-7"
        with pytest.raises(ParameterError, match=f"'{name}'.*unknown model 'gpt-7'.*minilm-l6"):
            check_value("nb", p(name, default), bad)


def test_the_real_model_check_names_the_embedded_models():
    with pytest.raises(ParameterError, match="'model'.*not a model!.*minilm-l6"):
        check_value("nb", p("model", "minilm-l6"), "not a model!")


# ---------------------------------------------------------------------------------------------
# Validation through the runner and the CLI: fails before any kernel starts

@pytest.mark.parametrize("argv, words", [
    (["run", "nope"], ["unknown notebook 'nope'", "90_ok, 91_fails"]),
    (["run", "90_ok", "--profile", "fast"], ["unknown profile 'fast'", "paper, quick, test"]),
    (["run", "90_ok", "-p", "n_item", "4"],
     ["no parameter 'n_item'", "Did you mean 'n_items'", "n_items=3", "scale=1.5", "label='a'"]),
    (["run", "90_ok", "-p", "n_items", "abc"], ["'n_items'", "an int", "'abc'"]),
    (["run", "90_ok", "-p", "label", "c"], ["'label'", "one of: a, b", "'c'"]),
    (["run", "90_ok", "-p", "seeds", "[0, x]"], ["'seeds'", "element 'x'"]),
    (["run", "90_ok", "-p", "n_items", "0"], ["'n_items'", ">= 1"]),
    (["run", "--all", "-p", "nonsense", "1"], ["none of 90_ok, 91_fails", "'nonsense'"]),
    (["run", "90_ok", "91_fails", "-p", "label", "c"], ["'label'", "one of: a, b"]),  # fails before 90_ok runs
    (["run"], ["which notebook", "90_ok, 91_fails"]),
])
def test_cli_validation_errors_exit_2_before_any_kernel(project, no_kernel, capsys, argv, words):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    for word in words:
        assert word in err
    assert not (project / "results").exists()  # no run folder, no registry row


def test_profile_errors_name_the_profile(project, no_kernel):
    (project / "profiles" / "bad.yaml").write_text("90_ok:\n  n_itemz: 3\n")
    with pytest.raises(ParameterError, match="no parameter 'n_itemz' \\(profile 'bad'\\)"):
        plan_runs(["90_ok"], "bad")


def test_dry_run_validates_and_prints_without_running(project, no_kernel, capsys):
    assert cli.main(["run", "--all", "--dry-run", "-p", "n_items", "7"]) == 0
    out = capsys.readouterr().out
    assert "[1/2] 90_ok (quick) would run with:" in out and "n_items = 7   # changed" in out
    assert "[2/2] 91_fails" in out
    assert not (project / "results").exists()


# ---------------------------------------------------------------------------------------------
# -p values and profiles

@pytest.mark.parametrize("text, value", [
    ("5", 5), ("0.1", 0.1), ("1e-3", 1e-3), ("[0,1]", [0, 1]), ("[0, 1, 2]", [0, 1, 2]),
    ("gpt2", "gpt2"), ("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B"), ("true", True),
    ("null", None), ("[gpt2, gpt2-medium]", ["gpt2", "gpt2-medium"]), ("'5'", "5"),
    ("-2E5", -2e5), ("[1e-3, 2]", [1e-3, 2]), ("2025-01-01", "2025-01-01"),
])
def test_parse_value_is_yaml(text, value):
    assert parse_value(text) == value


def test_merge_order_defaults_profile_all_profile_notebook_then_p(project):
    # 90_ok: defaults n_items=3 scale=1.5 label=a; test.yaml all: n_items=9 scale=2.0;
    # test.yaml 90_ok: n_items=5 label=b
    assert resolve_params("90_ok", "quick") == {
        "n_items": 3, "scale": 1.5, "label": "a", "seeds": [0, 1], "note": None, "sleep_s": 0.0}
    params = resolve_params("90_ok", "test")
    assert (params["n_items"], params["scale"], params["label"]) == (5, 2.0, "b")
    params = resolve_params("90_ok", "test", {"scale": 4, "label": "a"})
    assert (params["n_items"], params["scale"], params["label"]) == (5, 4, "a")
    # 91_fails has no section in test.yaml: `all` applies to the parameters it has
    assert resolve_params("91_fails", "test") == {"n_items": 9}


def test_p_overrides_go_to_the_notebooks_that_have_them(project):
    plans = dict(plan_runs(["90_ok", "91_fails"], "quick", {"scale": 3.0, "n_items": 2}))
    assert plans["90_ok"]["scale"] == 3.0 and plans["90_ok"]["n_items"] == 2
    assert plans["91_fails"] == {"n_items": 2}


def test_repository_profiles_are_well_formed():
    for name in ("quick", "paper"):
        import yaml
        profile = yaml.safe_load((REPO / "profiles" / f"{name}.yaml").read_text())
        assert isinstance(profile, dict)
        assert all(isinstance(v, dict) for v in profile.values())
    paper = yaml.safe_load((REPO / "profiles" / "paper.yaml").read_text())
    assert paper["00_overview"]["models"][0] == "gpt2" and paper["00_overview"]["n_questions"] == 1000


# ---------------------------------------------------------------------------------------------
# check_params, the notebooks' second cell

def test_check_params_validates_a_namespace_like_the_runner(project):
    namespace = {"n_items": 3, "scale": 2, "label": "b", "seeds": [1], "note": "x", "sleep_s": 0, "other": 1}
    assert nb.check_params("90_ok", namespace) == {
        "n_items": 3, "scale": 2, "label": "b", "seeds": [1], "note": "x", "sleep_s": 0}
    with pytest.raises(ParameterError, match="'label' of 90_ok must be one of: a, b; got 'c'"):
        nb.check_params("90_ok", {**namespace, "label": "c"})
    with pytest.raises(ParameterError, match="seeds"):
        nb.check_params("90_ok", {k: v for k, v in namespace.items() if k != "seeds"})
    assert issubclass(ParameterError, ValueError)


# ---------------------------------------------------------------------------------------------
# save_metrics

def test_save_metrics_writes_flat_numbers_and_maps_nan_to_null(project, monkeypatch, capsys):
    monkeypatch.setenv("ALIGNLAB_RUN_DIR", str(project / "run"))
    monkeypatch.setenv("ALIGNLAB_NOTEBOOK", "90_ok")
    nb.save_metrics({"acc": np.float32(0.5), "n": 3, "ok": True, "bad": float("nan"),
                                "inf": math.inf, "np_int": np.int64(7), "np_bool": np.bool_(False)})
    path = project / "run" / "metrics.json"
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"acc": 0.5, "n": 3.0, "ok": 1.0, "bad": None, "inf": None,
                                "np_int": 7.0, "np_bool": 0.0}
    assert "bad" in capsys.readouterr().out


def test_save_metrics_records_the_tokens_the_kernel_ran(project, monkeypatch):
    from alignlab.lm.prefix import TOKENS
    monkeypatch.setenv("ALIGNLAB_RUN_DIR", str(project / "run"))
    monkeypatch.setenv("ALIGNLAB_NOTEBOOK", "90_ok")
    saved = TOKENS.snapshot()
    try:
        TOKENS.reset()
        nb.save_metrics({"x": 1})  # no tokens run: no tokens.json
        assert not (project / "run" / "tokens.json").exists()
        TOKENS.add(sequence_tokens=300, computed_tokens=100, padded_tokens=120)
        nb.save_metrics({"x": 1})
        counts = json.loads((project / "run" / "tokens.json").read_text())
    finally:
        TOKENS.reset()
        TOKENS.add(**saved)
    assert counts["sequence_tokens"] == 300 and counts["computed_tokens"] == 100
    assert counts["sharing_ratio"] == 3.0


@pytest.mark.parametrize("metrics, word", [
    ({"accs": [0.1, 0.2]}, "'accs'"),
    ({"nested": {"a": 1}}, "'nested'"),
    ({"name": "gpt2"}, "'name'"),
    ({"vector": np.array([1.0, 2.0])}, "'vector'"),
    ({3: 1.0}, "strings"),
])
def test_save_metrics_rejects_nested_values(project, monkeypatch, metrics, word):
    monkeypatch.setenv("ALIGNLAB_RUN_DIR", str(project / "run"))
    monkeypatch.setenv("ALIGNLAB_NOTEBOOK", "90_ok")
    with pytest.raises(ValueError, match=word):
        nb.save_metrics(metrics)
    assert not (project / "run" / "metrics.json").exists()


def test_save_metrics_interactively_goes_to_the_notebooks_folder(project, capsys):
    nb.check_params("91_fails", {"n_items": 2})
    nb.save_metrics({"x": 1})
    path = project / "results" / "91_fails" / "interactive" / "metrics.json"
    assert path.is_file() and path == project / "results" / "91_fails" / "interactive" / "metrics.json"


# ---------------------------------------------------------------------------------------------
# Run ids, failures without a kernel, the registry

def test_run_id_is_time_and_parameter_hash():
    import datetime
    when = datetime.datetime(2025, 1, 2, 3, 4, 5)
    a = execute.make_run_id({"b": 1, "a": [1, 2]}, when)
    assert re.fullmatch(r"20250102-030405-[0-9a-f]{8}", a)
    assert a == execute.make_run_id({"a": [1, 2], "b": 1}, when)  # canonical: key order ignored
    assert a != execute.make_run_id({"a": [1, 2], "b": 2}, when)


def test_interrupt_marks_the_run_failed_and_reraises(project, monkeypatch):
    import papermill

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute.run_notebook("90_ok", progress_bar=False)
    [run] = registry.read_runs()
    assert (run["status"], run["error"], run["failed_cell"]) == ("failed", "interrupted (SIGINT)", None)
    assert cli.main(["run", "90_ok", "--no-progress"]) == 130


def test_a_kernel_that_cannot_start_is_a_failed_run(project, monkeypatch, capsys):
    import papermill

    def no_such_kernel(*args, **kwargs):
        raise RuntimeError("No such kernel named python3")

    monkeypatch.setattr(papermill, "execute_notebook", no_such_kernel)
    assert cli.main(["run", "90_ok", "--no-progress"]) == 1
    [run] = registry.read_runs()
    assert run["status"] == "failed" and run["error"] == "RuntimeError: No such kernel named python3"
    assert json.loads((project / run["run_dir"] / "params.json").read_text())["n_items"] == 3


def test_runs_with_an_empty_registry(project, capsys):
    assert cli.main(["runs"]) == 0
    assert "no runs yet" in capsys.readouterr().out
    assert registry.read_runs() == []


# ---------------------------------------------------------------------------------------------
# Real runs through papermill (two kernels, a few seconds)

@pytest.mark.slow
def test_real_runs(project, capsys):
    assert cli.main(["run", "--all", "-p", "n_items", "4", "--no-progress"]) == 1  # 91_fails fails
    out = capsys.readouterr().out
    assert re.search(r"\[1/2\] 90_ok \(quick\) -> results/90_ok/\d{8}-\d{6}-[0-9a-f]{8}/", out)
    assert "[2/2] 91_fails (quick)" in out

    ok, failed = sorted(registry.read_runs(), key=lambda run: run["notebook"])

    # 90_ok: executed notebook, params.json, metrics.json in its run folder; registry row ok
    folder = project / ok["run_dir"]
    assert folder.parent == project / "results" / "90_ok" and folder.name == ok["id"]
    assert (folder / "90_ok.ipynb").is_file()
    params = json.loads((folder / "params.json").read_text())
    assert params == {"n_items": 4, "scale": 1.5, "label": "a", "seeds": [0, 1], "note": None, "sleep_s": 0.0}
    assert json.loads(ok["params_json"]) == params
    assert json.loads((folder / "metrics.json").read_text()) == {
        "total": 6.0, "n_seeds": 2.0, "is_a": 1.0, "undefined": None}
    assert ok["status"] == "ok" and ok["duration_s"] > 0 and ok["finished_at"]
    assert ok["metrics"] == {"total": 6.0, "n_seeds": 2.0, "is_a": 1.0, "undefined": None}
    assert ok["failed_cell"] is None and ok["error"] is None
    # the kernel's peak memory (a Python kernel with numpy and tqdm: tens of MB at least), and
    # the run's own record of itself, the same as its registry row
    assert 20 < ok["peak_rss_mb"] < 4096
    record = json.loads((folder / "run.json").read_text())
    assert {k: record[k] for k in ("id", "status", "peak_rss_mb", "run_key", "host", "pid")} == {
        k: ok[k] for k in ("id", "status", "peak_rss_mb", "run_key", "host", "pid")}
    assert record["params"] == params and record["metrics"] == ok["metrics"]
    assert (folder / "kernel.txt").read_text() == sys.executable  # the kernel ran this python
    # a headless run keeps progress bars out of the executed notebook: no stderr, no widgets
    executed = json.loads((folder / "90_ok.ipynb").read_text())
    outputs = [o for cell in executed["cells"] for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("name") == "stderr"]
    assert "progress-bar" not in json.dumps(outputs) and "widgets" not in executed["metadata"]

    # 91_fails: failed in cell 4 of the source notebook; the executed notebook shows the error
    assert failed["status"] == "failed"
    assert failed["failed_cell"] == 4
    assert failed["error"] == "RuntimeError: boom with n_items=4"
    executed = json.loads((project / failed["run_dir"] / "91_fails.ipynb").read_text())
    outputs = [o for cell in executed["cells"] for o in cell.get("outputs", [])]
    assert any(o.get("ename") == "RuntimeError" for o in outputs)
    assert not any("never reached" in str(o) for o in outputs)

    # the same in SQL, and in `alignlab runs`
    with sqlite3.connect(project / "results" / "registry.sqlite") as con:
        assert con.execute("SELECT count(*) FROM metrics WHERE run_id = ?", (ok["id"],)).fetchone() == (4,)
    assert cli.main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert "total=6 n_seeds=2 is_a=1 undefined=null" in listing
    assert "peak mem" in listing and re.search(r"\d+ MB", listing)
    assert "cell 4: RuntimeError: boom with n_items=4" in listing


# ---------------------------------------------------------------------------------------------
# Paths: resolved against the caller's directory, checked before any kernel starts

PATHS_CELL = 'data_path = None\nlama_folder = None\nmodel = "minilm-l6"\ndataset = "world-facts"\n'


@pytest.fixture
def paths_notebook(project):
    """92_paths: a notebook with path, model and dataset parameters."""
    cells = [{"cell_type": "code", "id": "params", "metadata": {"tags": ["parameters"]},
              "execution_count": None, "outputs": [], "source": PATHS_CELL}]
    nb_json = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (project / "notebooks" / "92_paths.ipynb").write_text(json.dumps(nb_json))
    elsewhere = project / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    (elsewhere / "data" / "items.json").write_text("[]")
    (elsewhere / "my-model").mkdir()
    (elsewhere / "my-model" / "config.json").write_text("{}")
    return elsewhere


def test_path_parameters_are_made_absolute_against_the_callers_directory(paths_notebook, monkeypatch):
    monkeypatch.chdir(paths_notebook)
    params = resolve_params("92_paths", "quick", {"data_path": "data/items.json", "lama_folder": "./data",
                                                  "model": "./my-model"})
    assert params["data_path"] == str(paths_notebook / "data" / "items.json")
    assert params["lama_folder"] == str(paths_notebook / "data")
    assert params["model"] == str(paths_notebook / "my-model")  # the model check accepts the folder
    assert params["dataset"] == "world-facts"  # not a path: unchanged
    # the kernel (in notebooks/) gets absolute paths, and its own check agrees
    monkeypatch.chdir(paths_notebook.parent / "notebooks")
    assert nb.check_params("92_paths", params) == params


@pytest.mark.parametrize("name, value", [
    ("data_path", "data/nope.json"), ("lama_folder", "no-such-folder"), ("model", "./no-model"),
    ("dataset", "../nowhere/data"),
])
def test_a_missing_path_fails_before_any_kernel_naming_the_parameter(paths_notebook, monkeypatch, no_kernel,
                                                                    capsys, name, value):
    import os
    monkeypatch.chdir(paths_notebook)
    assert cli.main(["run", "92_paths", "-p", name, value]) == 2
    err = capsys.readouterr().err
    assert f"'{name}'" in err and os.path.abspath(paths_notebook / value) in err
    assert not (paths_notebook.parent / "results").exists()


def test_hub_ids_and_names_are_not_paths(tmp_path):
    from alignlab.run.params import resolve_paths
    for name, value in (("model", "gpt2"), ("models", ["allenai/sciq", "minilm-l6"]),
                        ("dataset", "allenai/sciq"), ("data_path", None), ("n_items", 3)):
        assert resolve_paths("nb", name, value, tmp_path) == value
    (tmp_path / "gpt2").mkdir()  # an existing local folder is a path, even without ./
    assert resolve_paths("nb", "models", ["gpt2", "minilm-l6"], tmp_path) == [str(tmp_path / "gpt2"), "minilm-l6"]
    assert resolve_paths("nb", "data_path", "~", tmp_path) == str(Path.home())


def test_profile_paths_are_relative_to_the_project_root(paths_notebook, project, monkeypatch):
    (project / "profiles" / "local.yaml").write_text("92_paths:\n  data_path: elsewhere/data/items.json\n")
    monkeypatch.chdir(paths_notebook / "data")
    params = resolve_params("92_paths", "local")
    assert params["data_path"] == str(paths_notebook / "data" / "items.json")


FIXTURE = REPO.parent / "shared" / "fixtures" / "real" / "cdeval" / "CDEval.json"


@pytest.mark.skipif(not FIXTURE.is_file(), reason="needs ../shared/fixtures/real/cdeval")
def test_cdeval_path_from_the_project_root(monkeypatch, no_kernel, capsys):
    monkeypatch.delenv("ALIGNLAB_ROOT", raising=False)
    monkeypatch.chdir(REPO)
    argv = ["run", "04_cultural_dimensions", "-p", "dataset", "cdeval", "-p", "cdeval_path"]
    assert cli.main([*argv, "../shared/fixtures/real/cdeval/CDEval.json", "--dry-run"]) == 0
    # made absolute, not resolved: a ../shared that is a symbolic link stays as the user named it
    assert f"cdeval_path = {str(FIXTURE)!r}   # changed" in capsys.readouterr().out
    assert cli.main([*argv, "../shared/fixtures/real/cdeval/Nope.json", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "'cdeval_path'" in err and str(FIXTURE.parent / "Nope.json") in err


# ---------------------------------------------------------------------------------------------
# Headless kernels are quiet; validation is fast and imports nothing heavy

def test_headless_kernels_get_quiet_progress_bars(monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # the caller's own setting wins
    env = execute.kernel_environment("90_ok", tmp_path)
    assert env["TQDM_DISABLE"] == "1" and env["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert env["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "1" and "TRANSFORMERS_VERBOSITY" not in env
    assert env["ALIGNLAB_RUN_DIR"] == str(tmp_path) and env["ALIGNLAB_NOTEBOOK"] == "90_ok"
    assert env["ALIGNLAB_PROFILE"] == "quick"  # the capability card a kernel reads and writes
    assert execute.kernel_environment("90_ok", tmp_path, "standard")["ALIGNLAB_PROFILE"] == "standard"
    import tqdm
    assert tuple(int(x) for x in tqdm.__version__.split(".")[:2]) >= (4, 66)  # reads TQDM_* defaults


def test_bad_input_fails_in_under_two_seconds_without_heavy_imports(project):
    import subprocess
    code = ("import sys, time; t = time.monotonic(); from alignlab.run import cli\n"
            "status = cli.main(['run', '90_ok', '-p', 'n_items', 'abc'])\n"
            "heavy = [m for m in ('torch', 'papermill', 'transformers', 'pandas') if m in sys.modules]\n"
            "print(status, round(time.monotonic() - t, 2), heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    status, seconds, heavy = out.stdout.split(maxsplit=2)
    assert status == "2" and "'n_items'" in out.stderr
    assert float(seconds) < 2.0 and heavy.strip() == "[]"


@pytest.mark.parametrize("command, words", [(["models"], ["minilm-l6", "gemma3-270m"]),
                                            (["data"], ["world-facts", "facts-triples"])])
def test_cli_listing_commands(capsys, command, words):
    assert cli.main(command) == 0
    out = capsys.readouterr().out
    assert all(word in out for word in words)


def test_save_figure_of_nothing_saves_nothing(project, monkeypatch):
    monkeypatch.setenv("ALIGNLAB_NOTEBOOK", "90_ok")
    assert nb.save_figure(None, "empty") is None
    assert not (project / "figures").exists()


def test_a_choice_or_embedded_name_is_not_taken_for_a_local_folder(tmp_path, monkeypatch):
    """`-p dataset cdeval` from a folder that happens to hold `cdeval/` still means the dataset."""
    from alignlab.run.params import resolve_params

    (tmp_path / "cultural-items").mkdir()
    (tmp_path / "smollm2-135m").mkdir()
    monkeypatch.chdir(tmp_path)
    params = resolve_params("04_cultural_dimensions", "quick",
                            {"dataset": "cultural-items", "models": ["smollm2-135m"]})
    assert params["dataset"] == "cultural-items" and params["models"] == ["smollm2-135m"]
