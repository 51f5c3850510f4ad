"""Committed notebooks: the form JupyterLab saves (stripped), the conventions, papermill's view.

`make strip` (alignlab.run.notebooks) rewrites a notebook into the committed form; these tests
check that every committed notebook is already in it and that papermill, which injects the
parameters of a headless run, reads every parameter the runner reads.
"""

import ast
import copy
import json
import logging
from pathlib import Path

import pytest

from alignlab.run import notebooks
from alignlab.run.params import parameters_cell, parse_parameters

REPO = Path(__file__).resolve().parent.parent
STUDY_NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
TEST_NOTEBOOKS = sorted((REPO / "tests" / "notebooks").glob("*.ipynb"))


def _id(path: Path) -> str:
    return path.stem


@pytest.mark.parametrize("path", STUDY_NOTEBOOKS + TEST_NOTEBOOKS, ids=_id)
def test_committed_notebooks_are_stripped_and_follow_the_conventions(path):
    assert notebooks.problems(path) == []
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert (nb["nbformat"], nb["nbformat_minor"]) == (4, 5)
    assert nb["metadata"]["kernelspec"] == {
        "display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    info = nb["metadata"]["language_info"]
    assert {k: v for k, v in info.items() if k != "version"} == notebooks.LANGUAGE_INFO
    assert all(cell.get("id") for cell in nb["cells"])


def _messy_notebook() -> dict:
    """A notebook as papermill leaves it, in nbformat 4.4 (no cell ids)."""
    return {
        "nbformat": 4, "nbformat_minor": 4,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}, "papermill": {"duration": 1.0},
                     "widgets": {"application/vnd.jupyter.widget-state+json": {}}},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# Title\n\nText é"},
            {"cell_type": "code", "execution_count": 3, "metadata": {"tags": ["parameters"], "papermill": {},
                                                                    "execution": {"iopub.status.busy": "x"}},
             "outputs": [{"output_type": "stream", "name": "stderr", "text": "bar\r"}], "source": "n = 1\n"},
            {"cell_type": "code", "execution_count": 4, "metadata": {"scrolled": True, "trusted": True},
             "outputs": [{"output_type": "execute_result", "execution_count": 4, "metadata": {},
                          "data": {"text/plain": "1"}}],
             "source": ["from alignlab.nb import check_params\n", "params = check_params('x', globals())"]},
        ],
    }


def test_strip_writes_the_committed_form(tmp_path):
    path = tmp_path / "95_messy.ipynb"
    path.write_text(json.dumps(_messy_notebook()))
    assert notebooks.problems(path)[0].startswith("not in the committed form")
    assert notebooks.strip_outputs(path) is True
    assert notebooks.problems(path) == []
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    assert text.endswith("}\n") and "Text é" in text  # UTF-8, not \u escapes
    assert (nb["nbformat"], nb["nbformat_minor"]) == (4, 5)
    assert list(nb["metadata"]) == ["kernelspec", "language_info"]
    assert nb["metadata"]["language_info"] == notebooks.language_info()
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert code[0]["metadata"] == {"tags": ["parameters"]} and code[1]["metadata"] == {}
    assert code[1]["source"] == ["from alignlab.nb import check_params\n", "params = check_params('x', globals())"]
    ids = [c["id"] for c in nb["cells"]]
    assert len(set(ids)) == 3
    # stable: stripping again, or stripping the messy notebook again, gives the same bytes
    assert notebooks.strip_outputs(path) is False
    again = tmp_path / "again.ipynb"
    again.write_text(json.dumps(_messy_notebook()))
    notebooks.strip_outputs(again)
    assert again.read_text(encoding="utf-8") == text


def test_strip_keeps_cell_ids_sources_and_tags(tmp_path):
    nb = _messy_notebook()
    nb["nbformat_minor"] = 5
    for index, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{index}"
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    notebooks.strip_outputs(path)
    stripped = json.loads(path.read_text())
    assert [c["id"] for c in stripped["cells"]] == ["cell-0", "cell-1", "cell-2"]
    assert ["".join(c["source"]) for c in stripped["cells"]] == [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in nb["cells"]]


def test_check_reports_conventions(tmp_path, capsys):
    nb = copy.deepcopy(_messy_notebook())
    nb["cells"][1]["metadata"]["tags"] = []
    path = tmp_path / "y.ipynb"
    path.write_text(json.dumps(nb))
    notebooks.strip_outputs(path)
    assert notebooks.main(["check", str(path)]) == 1
    assert "not tagged 'parameters'" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Papermill's own view of the parameters cell

@pytest.mark.parametrize("path", STUDY_NOTEBOOKS + TEST_NOTEBOOKS, ids=_id)
def test_papermill_sees_every_parameter_the_runner_sees(path, caplog):
    import papermill

    caplog.set_level(logging.WARNING, logger="papermill")
    seen = papermill.inspect_notebook(str(path))
    warnings = [r.getMessage() for r in caplog.records if "Unable to parse" in r.getMessage()]
    assert warnings == []
    ours = parse_parameters(parameters_cell(json.loads(path.read_text(encoding="utf-8")))[1])
    assert list(seen) == list(ours)
    for name, p in ours.items():
        if p.literal:  # papermill keeps the default's source text: it must be the same literal
            assert ast.literal_eval(seen[name]["default"]) == p.default, name
