"""Committed notebooks carry no outputs: strip them to the form JupyterLab saves, and check them.

    python -m alignlab.run.notebooks strip notebooks/*.ipynb     # what `make strip` runs
    python -m alignlab.run.notebooks check notebooks/*.ipynb     # exit 1 on any problem

The stripped form is byte for byte what JupyterLab writes when it saves the notebook with this
project's kernel: nbformat 4.5 with cell ids, serialised by `nbformat.writes` (sorted keys, indent
1, sources as lists of lines, a final newline), the ipykernel kernelspec and the `language_info`
the kernel reports, and no outputs, execution counts or execution metadata. Conventions checked
besides: the first code cell is tagged `parameters` and the second calls `check_params`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import re
import sys
from pathlib import Path

import nbformat

# What JupyterLab writes for a notebook on the ipykernel kernel `python3`.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# ipykernel's `language_info` (`IPythonKernel.language_info`, sent in every kernel_info reply),
# which JupyterLab copies into the notebook on save. Its `version` is the kernel's full Python
# version: strip writes the version of the Python it runs on, which is the project's kernel
# (`make strip` runs .venv/bin/python), so saving in JupyterLab and stripping agree on the machine
# that commits; `problems` accepts any X.Y.Z there, so another Python does not fail the tests.
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
# Cell metadata that belongs to a run or to how outputs were shown, not to the notebook.
RUN_METADATA = ("execution", "papermill", "collapsed", "scrolled")
# Notebook metadata of the same kind (nbclient's widget state, papermill's run record).
RUN_NOTEBOOK_METADATA = ("papermill", "widgets")
CELL_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")
PYTHON_VERSION = re.compile(r"^\d+\.\d+\.\d+\S*$")


def language_info(python_version: str | None = None) -> dict:
    """`language_info` as the kernel reports it, for `python_version` (default: this Python)."""
    return {**LANGUAGE_INFO, "version": python_version or platform.python_version()}


def _new_cell_id(index: int, cell: dict, taken: set[str]) -> str:
    """A stable id for a cell that has none: from its position and source."""
    source = cell.get("source", "")
    seed = f"{index}\n{source if isinstance(source, str) else ''.join(source)}"
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()
    for start in range(0, len(digest) - 8):
        candidate = digest[start:start + 8]
        if candidate not in taken:
            return candidate
    raise RuntimeError("no free cell id")  # unreachable in practice


def normalise(nb: dict, python_version: str | None = None) -> dict:
    """A copy of `nb` (a notebook as plain JSON) in the committed form; see the module docstring."""
    nb = copy.deepcopy(nb)
    nb["nbformat"], nb["nbformat_minor"] = 4, max(5, int(nb.get("nbformat_minor", 5)))
    taken: set[str] = set()
    for index, cell in enumerate(nb.get("cells", [])):
        cell_id = cell.get("id")
        if not isinstance(cell_id, str) or not CELL_ID.match(cell_id) or cell_id in taken:
            cell_id = cell["id"] = _new_cell_id(index, cell, taken)
        taken.add(cell_id)
        metadata = cell.setdefault("metadata", {})
        for key in RUN_METADATA:
            metadata.pop(key, None)
        jupyter = metadata.get("jupyter")
        if isinstance(jupyter, dict):
            jupyter.pop("outputs_hidden", None)
            if not jupyter:
                del metadata["jupyter"]
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    metadata = nb.setdefault("metadata", {})
    for key in RUN_NOTEBOOK_METADATA:
        metadata.pop(key, None)
    metadata["kernelspec"] = dict(KERNELSPEC)
    metadata["language_info"] = language_info(python_version)
    return nb


def normalised_text(text: str, python_version: str | None = None) -> str:
    """The committed form of a notebook file's text."""
    nb = nbformat.from_dict(normalise(json.loads(text), python_version))
    return nbformat.writes(nb) + "\n"


def strip_outputs(path: Path) -> bool:
    """Rewrite a notebook in place in the committed form; True when the file changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new = normalised_text(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False


def problems(path: Path) -> list[str]:
    """What in a notebook breaks the conventions (empty when none)."""
    text = Path(path).read_text(encoding="utf-8")
    nb = json.loads(text)
    found = []
    version = nb.get("metadata", {}).get("language_info", {}).get("version", "")
    if not isinstance(version, str) or not PYTHON_VERSION.match(version):
        version = None
    if normalised_text(text, version) != text:
        found.append("not in the committed form: outputs, execution counts, metadata or layout "
                     "differ (run `make strip`)")
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if not code or "parameters" not in code[0].get("metadata", {}).get("tags", []):
        found.append("first code cell is not tagged 'parameters'")
    if len(code) < 2 or "check_params(" not in "".join(code[1].get("source", "")):
        found.append("second code cell does not call check_params")
    return found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("strip", "check"):
        print(__doc__)
        return 2
    command, paths = argv[0], [Path(p) for p in argv[1:]]
    status = 0
    for path in paths:
        if command == "strip":
            if strip_outputs(path):
                print(f"stripped {path}")
        else:
            for problem in problems(path):
                print(f"{path}: {problem}")
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
