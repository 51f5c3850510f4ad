"""Committed notebooks carry no outputs: strip them, and check the conventions.

    python -m alignlab.run.notebooks strip notebooks/*.ipynb     # what `make strip` runs
    python -m alignlab.run.notebooks check notebooks/*.ipynb     # exit 1 on any problem

Conventions (DESIGN.md): no outputs or execution counts, the first code cell tagged
`parameters`, the second calling `check_params`, a python3 kernelspec.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def strip_outputs(path: Path) -> bool:
    """Remove outputs and execution counts in place; True when the file changed."""
    text = Path(path).read_text()
    nb = json.loads(text)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
        cell.get("metadata", {}).pop("papermill", None)
    nb.get("metadata", {}).pop("papermill", None)
    new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if new != text:
        Path(path).write_text(new)
        return True
    return False


def problems(path: Path) -> list[str]:
    """What in a notebook breaks the conventions (empty when none)."""
    nb = json.loads(Path(path).read_text())
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    found = []
    if any(c.get("outputs") or c.get("execution_count") is not None for c in code):
        found.append("has outputs or execution counts (run `make strip`)")
    if not code or "parameters" not in code[0].get("metadata", {}).get("tags", []):
        found.append("first code cell is not tagged 'parameters'")
    if len(code) < 2 or "check_params(" not in "".join(code[1].get("source", "")):
        found.append("second code cell does not call check_params")
    if nb.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        found.append("kernelspec is not python3")
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
