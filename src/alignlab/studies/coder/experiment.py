"""The study's runs: test generation on both folds, the search methods and the two prompting styles
on fold B, all scored with fold B's hidden tests only after the choices are made.

Tidy outputs (pandas DataFrames):
- `tcg_rows`: one row per (TCG stage, problem): fold, tests kept, validity, discrimination, copied share;
- `search_rows`: one row per (seed, problem, method): the chosen program passes the hidden tests
  (0/1), programs generated, tokens generated;
- `pool_rows`: one row per (seed, problem, style): n samples, c passing, the greedy program's pass.
"""

from __future__ import annotations

import pandas as pd

from alignlab.studies.coder import evaluation, search, tcg
from alignlab.studies.coder.policy import LMPolicy
from alignlab.studies.coder.problems import Problem, program_from_reply

TESTS_OPENING = "```python\n"  # the reply opens the code block; the model writes the asserts
SAMPLE_BATCH = 16  # sampled sequences generated together (several problems' samples share a batch)


def generate_tests(policy: LMPolicy, problems: list[Problem], n_tests: int):
    """Prompt-only TCG: one greedy reply per problem, parsed into at most `n_tests` tests.
    Returns ({task_id: [TestCase]}, {task_id: tokens generated})."""
    texts = [policy.text(tcg.tcg_prompt(p, n_tests), TESTS_OPENING) for p in problems]
    replies = policy.greedy(texts, max_new_tokens=max(64, 40 * n_tests), stop=["```"], label="tcg")
    tests = {p.task_id: tcg.parse_tests(r, p.entry_point, n_tests) for p, r in zip(problems, replies)}
    return tests, {p.task_id: policy.n_tokens([r]) for p, r in zip(problems, replies)}


def wrong_programs(problems: list[Problem], programs: dict, hidden: dict, seeds, style: str = "vanilla") -> dict:
    """{task_id: [program]}: the sampled programs (every seed's pool of `style`) that fail the hidden
    tests; a TCG's discrimination is the share of them its tests reject."""
    return {p.task_id: [prog for seed in seeds
                        for prog, ok in zip(programs[(seed, p.task_id, style)], hidden[(seed, p.task_id, style)])
                        if not ok] for p in problems}


def possible_dpo_pairs(problems: list[Problem], tests: dict, reference: dict, seed: int) -> list[dict]:
    """O1-CODER's DPO pairs (`tcg.dpo_pairs`) that the given tests allow, one per problem that has
    two or more tests its reference passes (with outputs that differ)."""
    return [pair for p in problems if (pair := tcg.dpo_pairs(p, tests[p.task_id], reference[p.task_id], seed))]


def tcg_table(problems: list[Problem], folds: dict[str, str], tests: dict, wrong_programs: dict,
              timeout: float, stage: str = "prompt-only") -> tuple[pd.DataFrame, dict]:
    """Validity, discrimination and copied share per problem (of the TCG `stage`); and each
    problem's per-test reference results (for the DPO pairs). Validity runs the reference solution:
    a metric computed after the fact, never fed to a search."""
    rows, reference = [], {}
    for p in problems:
        cases = [t.source for t in tests[p.task_id]]
        ref = evaluation.run_generated_tests(p, [p.reference_program], cases, timeout)[0]
        reference[p.task_id] = ref
        wrong = wrong_programs.get(p.task_id, [])
        wrong_results = evaluation.run_generated_tests(p, wrong, cases, timeout) if wrong and cases else []
        rows.append({"stage": stage, "task_id": p.task_id, "fold": folds[p.task_id], "tests": len(cases),
                     "validity": tcg.validity(ref), "discrimination": tcg.discrimination(ref, wrong_results),
                     "wrong_programs": len(wrong), "copied": tcg.copied_share(p, tests[p.task_id])})
    return pd.DataFrame(rows), reference


def run_pools(policy: LMPolicy, problems: list[Problem], styles, budget: int, seeds, timeout: float):
    """Greedy and `budget` sampled programs per problem, style and seed, scored on hidden tests.
    Samples of several problems share one generation batch (at most `SAMPLE_BATCH` sequences):
    decoding, not the sandbox, is what a pool costs on a CPU.
    Returns (pool_rows DataFrame, programs {(seed, task_id, style): [program, ...]},
    hidden {(seed, task_id, style): [passed, ...]}; seed "greedy": the greedy program)."""
    rows, programs, hidden = [], {}, {}
    group = max(1, SAMPLE_BATCH // budget)
    for style in styles:
        greedy = policy.code_greedy(problems, style)
        greedy_programs = [program_from_reply(p, text) for p, text in zip(problems, greedy)]
        greedy_passes = evaluation.score_many([(p, [g]) for p, g in zip(problems, greedy_programs)], timeout)
        for p, g, ok in zip(problems, greedy_programs, greedy_passes):
            programs[("greedy", p.task_id, style)], hidden[("greedy", p.task_id, style)] = [g], ok
        for seed in seeds:
            texts = [t for start in range(0, len(problems), group)
                     for t in policy.code_samples(problems[start:start + group], style, budget, seed)]
            progs = [[program_from_reply(p, t) for t in ts] for p, ts in zip(problems, texts)]
            passes = evaluation.score_many(list(zip(problems, progs)), timeout)
            for p, text, ts, ps, passed, (greedy_pass,) in zip(problems, greedy, texts, progs, passes, greedy_passes):
                programs[(seed, p.task_id, style)], hidden[(seed, p.task_id, style)] = ps, passed
                rows.append({"seed": seed, "task_id": p.task_id, "style": style, "n": len(ps),
                             "c": int(sum(passed)), "greedy_pass": float(greedy_pass),
                             "greedy_tokens": policy.n_tokens([text]), "sample_tokens": policy.n_tokens(ts)})
    return pd.DataFrame(rows), programs, hidden


def run_search(policy: LMPolicy, problems: list[Problem], tests: dict, test_tokens: dict, pools: pd.DataFrame,
               programs: dict, hidden: dict, config):
    """Every method at the same budget of programs per problem (greedy: one), scored on hidden
    tests. Tokens count everything a method generated for the problem, the generated tests included."""
    rows = []
    timeout, budget = config.sandbox_timeout, config.budget
    pool_info = pools[pools["style"] == "vanilla"].set_index(["seed", "task_id"])
    for p in problems:
        cases = [t.source for t in tests[p.task_id]]
        greedy_program = programs[("greedy", p.task_id, "vanilla")][0]
        greedy_pass = evaluation.score_hidden(p, [greedy_program], timeout)[0]
        for seed in config.seeds:
            info = pool_info.loc[(seed, p.task_id)]
            with_tests = int(info["sample_tokens"]) + test_tokens[p.task_id]
            rows.append(_row(seed, p, "greedy", greedy_pass, 1, int(info["greedy_tokens"])))
            pool, passed = programs[(seed, p.task_id, "vanilla")], hidden[(seed, p.task_id, "vanilla")]
            results = evaluation.run_generated_tests(p, pool, cases, timeout)
            rows.append(_row(seed, p, "random-sample", sum(passed) / len(passed), 1,
                             int(info["sample_tokens"]) / len(pool)))
            rows.append(_row(seed, p, "sample-best", passed[search.best_by_tests(results)], budget, with_tests))
            rows.append(_row(seed, p, "codet", passed[search.codet_choice(results)], budget, with_tests))
            for reward_name in config.mcts_rewards:
                before = policy.tokens["mcts"]
                found = search.mcts(
                    propose=lambda trace, action, n, s, p=p: policy.step(p, trace, action, n, s),
                    to_program=lambda text, p=p: program_from_reply(p, text),
                    reward=_reward(p, cases, reward_name, timeout),
                    budget=budget, samples=config.mcts_samples, max_depth=config.mcts_depth, c=config.mcts_c,
                    seed=seed)
                ok = evaluation.score_hidden(p, [found.program], timeout)[0] if found.program else False
                method = "mcts" if reward_name == "generated" else "mcts-oracle (upper bound)"
                spent = policy.tokens["mcts"] - before + (test_tokens[p.task_id] if reward_name == "generated" else 0)
                rows.append(_row(seed, p, method, ok, len(found.programs), spent))
    return pd.DataFrame(rows)


def _row(seed, problem, method, passed, n_programs, tokens):
    return {"seed": seed, "task_id": problem.task_id, "method": method, "passed": float(passed),
            "programs": n_programs, "tokens": tokens}


def _reward(problem: Problem, cases: list[str], name: str, timeout: float):
    """The search reward: the share of generated tests passed, or (`oracle`, an upper bound only)
    whether the hidden tests pass."""
    if name == "oracle":
        return lambda program: float(evaluation.score_hidden(problem, [program], timeout)[0])
    if not cases:
        return lambda program: 0.0
    return lambda program: sum(evaluation.run_generated_tests(problem, [program], cases, timeout)[0]) / len(cases)
