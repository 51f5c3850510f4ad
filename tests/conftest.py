"""Shared fixtures: a temporary project holding the runner's test notebooks, and a study notebook run
through the real runner in a temporary project."""

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_study(tmp_path, monkeypatch):
    """run_study("00_overview", param=value, ...) -> (RunResult, metrics dict).

    The notebook is copied into a temporary project (its own results/, figures/ and registry), so a
    test run never touches the checkout's results. The user cache of converted models is shared;
    artifact reads are disabled (ALIGNLAB_NO_CACHE=1) so the smoke run really computes."""
    from alignlab.run.execute import run_notebook

    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'smoke'\n")
    (tmp_path / "notebooks").mkdir()
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    monkeypatch.setenv("ALIGNLAB_ROOT", str(tmp_path))
    monkeypatch.setenv("ALIGNLAB_NO_CACHE", "1")
    monkeypatch.delenv("ALIGNLAB_RUN_DIR", raising=False)

    def run(notebook: str, **overrides):
        shutil.copy(REPO / "notebooks" / f"{notebook}.ipynb", tmp_path / "notebooks")
        result = run_notebook(notebook, "quick", overrides, progress_bar=False)
        assert result.status == "ok", f"{notebook} failed in cell {result.failed_cell}: {result.error}"
        metrics = json.loads((tmp_path / result.run_dir / "metrics.json").read_text())
        return result, metrics

    return run


@pytest.fixture
def runner_project(tmp_path, monkeypatch):
    """A tiny project for the runner's own tests: the notebooks of tests/notebooks (90_ok, 91_fails)
    and the quick and paper profiles, with ALIGNLAB_ROOT pointing at it."""
    from alignlab import nb

    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'tmp'\n")
    shutil.copytree(REPO / "tests" / "notebooks", tmp_path / "notebooks")
    (tmp_path / "profiles").mkdir()
    for profile in ("quick", "paper"):
        shutil.copy(REPO / "profiles" / f"{profile}.yaml", tmp_path / "profiles")
    monkeypatch.setenv("ALIGNLAB_ROOT", str(tmp_path))
    monkeypatch.delenv("ALIGNLAB_RUN_DIR", raising=False)
    monkeypatch.setattr(nb, "_current_notebook", None)
    return tmp_path
