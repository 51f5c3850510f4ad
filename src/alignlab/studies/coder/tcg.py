"""The test-case generator (TCG): prompting for input/output tests, parsing them, its metrics, and
O1-CODER's DPO pairs.

A generated test is kept only in one shape, `assert ENTRY(<literal args>) == <literal>`, checked
with `ast` (every argument and the expected value must be a Python literal): that is what lets
the DPO negatives swap outputs between inputs, and keeps model-written code out of the tests'
structure (the tests still run only in the sandbox).

Metrics of a problem's generated tests (O1-CODER reports the first):
- validity: share of the tests that the reference solution passes;
- discrimination: share of the wrong sampled programs (failing the hidden tests) that fail at
  least one valid generated test;
- copied: share of the tests whose call is one of the prompt's `>>>` examples.
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass

from alignlab.studies.coder.problems import Problem, doctest_examples, extract_code

TCG_PROMPT = ("Here is a Python function signature with its docstring:\n\n```python\n{prompt}```\n\n"
              "Write {n} test cases for `{entry}` as Python assert statements, one per line, each of the form\n"
              "assert {entry}(<arguments>) == <expected result>\n"
              "Reply with the asserts only, in one ```python code block.")


@dataclass(frozen=True)
class TestCase:
    """`assert {entry}({args}) == {expected}`, both parts Python literals (source text)."""

    __test__ = False  # not a pytest class

    entry: str
    args: str
    expected: str

    @property
    def source(self) -> str:
        return f"assert {self.entry}({self.args}) == {self.expected}"

    @property
    def call_key(self) -> str:
        """The call, normalized (`ast.dump`), to compare with the prompt's examples."""
        return ast.dump(ast.parse(f"{self.entry}({self.args})", mode="eval").body)


def tcg_prompt(problem: Problem, n: int) -> str:
    return TCG_PROMPT.format(prompt=problem.prompt, n=n, entry=problem.entry_point)


def _is_literal(node) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def parse_test_line(line: str, entry: str) -> TestCase | None:
    """A TestCase from one generated line, or None when it is not `assert entry(literals) == literal`."""
    line = line.strip()
    if not line.startswith("assert"):
        return None
    try:
        node = ast.parse(line).body[0]
    except (SyntaxError, ValueError, IndexError):
        return None
    test = getattr(node, "test", None)
    if not (isinstance(node, ast.Assert) and isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq) and isinstance(test.left, ast.Call)
            and isinstance(test.left.func, ast.Name) and test.left.func.id == entry and not test.left.keywords):
        return None
    call, expected = test.left, test.comparators[0]
    if not all(_is_literal(a) for a in call.args) or not _is_literal(expected):
        return None
    args = ", ".join(ast.unparse(a) for a in call.args)
    return TestCase(entry, args, ast.unparse(expected))


def parse_tests(text: str, entry: str, limit: int) -> list[TestCase]:
    """Up to `limit` well-formed tests from a reply, in order, without repeated calls."""
    out, seen = [], set()
    for line in extract_code(text).splitlines():
        test = parse_test_line(line, entry)
        if test is not None and test.call_key not in seen:
            seen.add(test.call_key)
            out.append(test)
        if len(out) == limit:
            break
    return out


def copied_share(problem: Problem, tests: list[TestCase]) -> float:
    """Share of `tests` whose call is one of the prompt's `>>>` examples (NaN for no tests)."""
    if not tests:
        return float("nan")
    examples = set(doctest_examples(problem.prompt))
    return sum(t.call_key in examples for t in tests) / len(tests)


def validity(reference_results: list[bool]) -> float:
    """Share of generated tests the reference solution passes (NaN for no tests)."""
    return sum(reference_results) / len(reference_results) if reference_results else float("nan")


def discrimination(valid: list[bool], wrong_program_results: list[list[bool]]) -> float:
    """Share of wrong programs that fail at least one VALID generated test (NaN when there are no
    wrong programs or no valid tests). `valid[j]`: the reference passes test j;
    `wrong_program_results[i][j]`: wrong program i passes test j."""
    if not wrong_program_results or not any(valid):
        return float("nan")
    rejected = [any(v and not r for v, r in zip(valid, row)) for row in wrong_program_results]
    return sum(rejected) / len(rejected)


# --------------------------------------------------------------------------------------------
# DPO pairs (O1-CODER: the rejected answer keeps the inputs and shuffles the outputs)


def format_tests(tests: list[TestCase]) -> str:
    return "```python\n" + "\n".join(t.source for t in tests) + "\n```"


def shuffled_outputs(tests: list[TestCase], rng: random.Random) -> list[TestCase] | None:
    """The same inputs with the expected outputs permuted so that at least one test now expects
    another value; None when every test expects the same value (no negative can be built)."""
    outputs = [t.expected for t in tests]
    if len(set(outputs)) < 2:
        return None
    for _ in range(100):
        order = list(range(len(tests)))
        rng.shuffle(order)
        moved = [outputs[i] for i in order]
        if sum(a != b for a, b in zip(moved, outputs)) >= max(2, len(tests) // 2) or \
                (len(tests) == 2 and moved != outputs):
            return [TestCase(t.entry, t.args, m) for t, m in zip(tests, moved)]
    moved = outputs[1:] + outputs[:1]  # a rotation: moves every value unless all are equal
    return [TestCase(t.entry, t.args, m) for t, m in zip(tests, moved)]


def dpo_pairs(problem: Problem, tests: list[TestCase], reference_results: list[bool], seed: int) -> dict | None:
    """One DPO example: prompt = the TCG prompt, chosen = the tests the reference passes, rejected
    = the same inputs with shuffled outputs. None when fewer than two tests are valid or all valid
    tests expect the same output."""
    valid = [t for t, ok in zip(tests, reference_results) if ok]
    if len(valid) < 2:
        return None
    rejected = shuffled_outputs(valid, random.Random(f"{seed}:{problem.task_id}"))
    if rejected is None:
        return None
    return {"task_id": problem.task_id, "prompt": tcg_prompt(problem, len(valid)), "chosen": format_tests(valid),
            "rejected": format_tests(rejected)}
