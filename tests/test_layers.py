"""The package's shape: imports go downward only, no study imports another, no cycles.

The import graph is read from the source with `ast` (every `import` statement, at any depth), so
this also runs as a command: `python tests/test_layers.py` prints the layers and any violation.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from alignlab.studies import NOTEBOOKS

SRC = Path(__file__).resolve().parent.parent / "src"

# Higher layers may import lower ones, never the reverse. Modules not named here are the library.
TOP = ("alignlab.run", "alignlab.nb")
STUDIES = "alignlab.studies"
SHARED_STUDY_MODULES = ("alignlab.studies",)  # the notebook -> subpackage table


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / "alignlab").rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The alignlab modules `name` imports (a `from package import module` counts as the module)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def study_of(module: str) -> str | None:
    if module.startswith(STUDIES + ".") and module not in SHARED_STUDY_MODULES:
        return module.split(".")[2]
    return None


def is_top(module: str) -> bool:
    return any(module == t or module.startswith(t + ".") for t in TOP)


def violations(g: dict[str, set[str]]) -> list[str]:
    out = []
    for module, targets in g.items():
        for target in sorted(targets):
            mine, theirs = study_of(module), study_of(target)
            if theirs and mine and theirs != mine:
                out.append(f"{module} imports another study's module {target}")
            if not is_top(module) and is_top(target):
                out.append(f"{module} imports the host/kernel layer {target}")
            if not mine and not is_top(module) and theirs and module != STUDIES:
                out.append(f"library module {module} imports study module {target}")
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def test_imports_go_downward_and_no_study_imports_another():
    assert violations(graph()) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_every_study_notebook_has_a_subpackage_with_config_and_report():
    root = Path(__file__).resolve().parent.parent
    for stem, package in NOTEBOOKS.items():
        assert (root / "notebooks" / f"{stem}.ipynb").is_file(), stem
        folder = SRC / "alignlab" / "studies" / package
        assert (folder / "config.py").is_file() and (folder / "report.py").is_file(), package


# Names that are an interface every module of a kind provides: each study's `Config`, `metrics()`,
# `conclusion()` and `run_study()`; each data family's builder protocol; each command's `main`.
INTERFACE = {"Config", "metrics", "conclusion", "run_study", "main", "build", "rows", "split_sizes",
             "relation_info", "fill"}


@pytest.mark.parametrize("package", sorted(set(NOTEBOOKS.values())))
def test_study_config_imports_no_heavy_library(package):
    """The runner validates parameters with each study's config before any kernel starts: importing
    it must load none of the heavy libraries (checked in a fresh interpreter)."""
    code = (f"import sys, alignlab.studies.{package}.config; "
            "heavy = [m for m in ('torch', 'numpy', 'pandas', 'sklearn', 'transformers') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names_are_unique_across_the_package():
    """No two modules define a public top-level function or class of the same name (apart from
    the interface names above), so a name found in a notebook or a traceback says where it lives."""
    seen: dict[str, str] = {}
    clashes = []
    for name, path in modules().items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                if node.name in seen and node.name not in INTERFACE:
                    clashes.append(f"{node.name}: {seen[node.name]} and {name}")
                seen.setdefault(node.name, name)
    assert clashes == []


if __name__ == "__main__":
    g = graph()
    problems = violations(g) + [" -> ".join(c) for c in cycles(g)]
    for module in sorted(g):
        print(f"{module:45s} <- imports {', '.join(sorted(t.removeprefix('alignlab.') for t in g[module])) or '-'}")
    print("\n".join(problems) or "ok: imports go downward, no study imports another, no cycles")
    sys.exit(1 if problems else 0)
