"""Running programs through the sandbox, cached: against hidden tests (scoring only) and against
generated tests (search rewards, test-case-generator metrics).

Every run goes through `alignlab.sandbox.run_program` (a separate, isolated process); results are
cached by program, tests and limits (`alignlab.cache`, kind "sandbox-run"), so a warm re-run
executes nothing (timeouts and sandbox failures are not cached: they may come from the machine's
load rather than the program). Runs are spread over two threads: each waits on its own sandbox process.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from alignlab.cache import Cache
from alignlab.sandbox import run_program
from alignlab.studies.coder.problems import Problem, hidden_tests

RUN_VERSION = "1"
WORKERS = 2


def sandbox_runs(jobs: list[dict], timeout: float) -> list[dict]:
    """`{"status", "cases"}` for each job (`program`, `cases`, `setup`, `expose`), cached."""
    cache = Cache()

    def one(job):
        key = dict(program=job["program"], cases=job["cases"], setup=job["setup"], expose=job["expose"],
                   timeout=float(timeout))
        hit, value = cache.lookup("sandbox-run", RUN_VERSION, **key)
        if hit:
            return value
        result = run_program(job["program"], job["cases"], setup=job["setup"], expose=job["expose"],
                             timeout=timeout, case_timeout=min(timeout, 2.0))
        value = {"status": result.status, "cases": result.cases, "detail": result.detail[:500]}
        if result.status == "timeout" or result.detail.startswith(("sandbox failure", "the sandbox")):
            return value  # may be the machine's load or a broken sandbox, not the program: not cached
        return cache.memo("sandbox-run", RUN_VERSION, lambda: value, **key)

    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(one, jobs))


def score_hidden(problem: Problem, programs: list[str], timeout: float) -> list[bool]:
    """Whether each program passes the problem's hidden tests. Called only to score results,
    never inside a search or a reward."""
    setup, cases, expose = hidden_tests(problem)
    jobs = [dict(program=p, cases=cases, setup=setup, expose=expose) for p in programs]
    return [r["status"] == "passed" for r in sandbox_runs(jobs, timeout)]


def score_many(items: list[tuple[Problem, list[str]]], timeout: float) -> list[list[bool]]:
    """`score_hidden` for several (problem, programs) at once: every run shares the two workers."""
    jobs, owners = [], []
    for i, (problem, programs) in enumerate(items):
        setup, cases, expose = hidden_tests(problem)
        jobs += [dict(program=p, cases=cases, setup=setup, expose=expose) for p in programs]
        owners += [i] * len(programs)
    passed = [r["status"] == "passed" for r in sandbox_runs(jobs, timeout)]
    return [[ok for ok, o in zip(passed, owners) if o == i] for i in range(len(items))]


def run_generated_tests(problem: Problem, programs: list[str], cases: list[str], timeout: float) -> list[list[bool]]:
    """Per program, whether it passes each generated test case (all False when it does not load).
    The setup is the prompt: the part of the problem every model sees."""
    if not cases:
        return [[] for _ in programs]
    setup = problem.prompt if problem.kind == "humaneval" else problem.setup
    jobs = [dict(program=p, cases=list(cases), setup=setup, expose=[problem.entry_point]) for p in programs]
    return [r["cases"] or [False] * len(cases) for r in sandbox_runs(jobs, timeout)]
