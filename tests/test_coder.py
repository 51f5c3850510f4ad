"""Study 06 (o1-style coding): pass@k, the searches with a scripted policy, folds, test parsing,
DPO pairs, the training data of the TCG and of the policy (fold A only), programs from replies,
hidden tests through the sandbox, the reports, and the MBPP loader."""

import ast
import dataclasses
import math
import random

import numpy as np
import pandas as pd
import pytest
import torch

from alignlab import paths
from alignlab.cache import Cache
from alignlab.run.params import read_parameters, resolve_notebook
from alignlab.studies.coder import evaluation, experiment, problems, report, search, tcg, training
from alignlab.studies.coder.config import Config
from alignlab.studies.coder.policy import step_request
from alignlab.study_config import ParameterError

REAL_MBPP = paths.project_root().parent / "shared" / "fixtures" / "real" / "mbpp"

TOY = problems.Problem(
    task_id="toy/0",
    prompt='def double(x):\n    """Return twice x.\n    >>> double(2)\n    4\n    """\n',
    entry_point="double",
    canonical_solution="    return 2 * x\n",
    test="def check(candidate):\n    assert candidate(5) == 10\n    assert candidate(-1) == -2\n",
)


# --------------------------------------------------------------------------------------------
# pass@k


@pytest.mark.parametrize("n", [1, 2, 5, 10, 50])
def test_pass_at_k_matches_its_closed_form(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            closed = 1.0 - math.comb(n - c, k) / math.comb(n, k)
            assert search.pass_at_k(n, c, k) == pytest.approx(closed, abs=1e-12)


def test_pass_at_k_edge_cases_and_monotonicity():
    assert search.pass_at_k(10, 0, 5) == 0.0
    assert search.pass_at_k(10, 10, 1) == 1.0
    assert search.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    values = [search.pass_at_k(20, 4, k) for k in range(1, 21)]
    assert values == sorted(values)
    with pytest.raises(ValueError):
        search.pass_at_k(5, 6, 1)
    with pytest.raises(ValueError):
        search.pass_at_k(5, 2, 6)


def test_pass_at_k_is_unbiased_by_simulation():
    rng = random.Random(0)
    n, c, k = 8, 3, 3
    pool = [True] * c + [False] * (n - c)
    hits = sum(any(rng.sample(pool, k)) for _ in range(20000)) / 20000
    assert search.pass_at_k(n, c, k) == pytest.approx(hits, abs=0.02)


# --------------------------------------------------------------------------------------------
# Selection by generated tests


def test_best_by_tests_and_codet_choose_differently_when_they_should():
    results = [
        [True, True, True, False],  # a lone program passing the most tests
        [True, True, False, True],  # three programs agreeing on three tests
        [True, True, False, True],
        [True, True, False, True],
        [False, False, False, False],
    ]
    assert search.best_by_tests(results) == 0
    assert search.codet_choice(results) == 1
    assert search.codet_choice([[False], [False]]) == 0
    assert search.best_by_tests([[False, True], [True, True], [True, True]]) == 1


# --------------------------------------------------------------------------------------------
# MCTS with a scripted policy on a toy problem


class ScriptedPolicy:
    """Structures alternate between a good and a bad plan (by seed and position); code follows
    the plan."""

    def __init__(self):
        self.calls = []

    def __call__(self, trace, action, n, seed):
        self.calls.append((trace, action, n, seed))
        if action == "structure":
            return ["plan: multiply by two" if (seed + i) % 2 == 0 else "plan: add one" for i in range(n)]
        if action == "pseudocode":
            return ["pseudo: return x * 2" if "multiply" in trace[0][1] else "pseudo: return x + 1"] * n
        good = any("multiply" in text for _, text in trace)
        return ["return x * 2" if good else "return x + 1"] * n


def toy_reward(program):
    namespace = {}
    exec(program, namespace)  # trusted toy code written by the scripted policy above
    f = namespace["double"]
    return sum(f(x) == 2 * x for x in (1, 2, 3)) / 3


def toy_program(body):
    return problems.program_from_reply(TOY, body)


def test_mcts_finds_the_good_plan_within_its_budget_and_keeps_to_it():
    policy = ScriptedPolicy()
    found = search.mcts(policy, toy_program, toy_reward, budget=6, samples=2, max_depth=3, c=1.0, seed=0)
    assert len(found.programs) == 6
    assert found.reward == 1.0 and "x * 2" in found.program
    # after the first expansion (one good, one bad plan, each rolled out), UCT expands the good plan
    expansions = [call for call in policy.calls if call[1] == "pseudocode"]
    assert expansions and "multiply" in expansions[0][0][0][1]
    assert all(r in (0.0, 1.0 / 3, 2.0 / 3, 1.0) for _, r, _ in found.programs)
    # every trace starts with the structure step and ends with code; depth is at most 3 steps
    for _, _, trace in found.programs:
        assert trace[0][0] == "structure" and trace[-1][0] == "code" and len(trace) <= 3
    # proposals are seeded distinctly and reproducibly
    seeds = [call[3] for call in policy.calls]
    assert len(set(seeds)) == len(seeds)
    again = search.mcts(ScriptedPolicy(), toy_program, toy_reward, budget=6, samples=2, max_depth=3, c=1.0, seed=0)
    assert [p for p, _, _ in again.programs] == [p for p, _, _ in found.programs]


def test_mcts_depth_one_is_direct_sampling_and_a_bad_policy_scores_zero():
    def bad(trace, action, n, seed):
        assert action == "code"
        return ["return x - 100"] * n

    found = search.mcts(bad, toy_program, toy_reward, budget=4, samples=2, max_depth=1)
    assert len(found.programs) == 4 and found.reward == 0.0
    assert all(len(trace) == 1 for _, _, trace in found.programs)


def test_uct_prefers_unvisited_then_value_plus_exploration():
    parent = search.Node(trace=(), visits=10)
    fresh = search.Node(trace=(("structure", "a"),), parent=parent)
    good = search.Node(trace=(("structure", "b"),), parent=parent, visits=5, value=4.0)
    bad = search.Node(trace=(("structure", "c"),), parent=parent, visits=5, value=1.0)
    assert search.uct(fresh, 10, 1.0) == math.inf
    assert search.uct(good, 10, 1.0) > search.uct(bad, 10, 1.0)
    assert search.uct(good, 10, 0.0) == pytest.approx(0.8)
    assert search.allowed_actions(0, 3) == ("structure",)
    assert search.allowed_actions(1, 3) == ("pseudocode", "code")
    assert search.allowed_actions(2, 3) == ("code",)


def test_mcts_with_the_sandbox_reward_from_generated_tests():
    cases = ["assert double(2) == 4", "assert double(0) == 0"]
    reward = experiment._reward(TOY, cases, "generated", timeout=3)
    found = search.mcts(ScriptedPolicy(), toy_program, reward, budget=3, samples=1, max_depth=2, seed=0)
    assert len(found.programs) == 3
    assert {r for _, r, _ in found.programs} <= {0.0, 0.5, 1.0}


# --------------------------------------------------------------------------------------------
# Folds and hidden tests


def test_folds_partition_the_problems_reproducibly():
    all_problems = problems.load_humaneval()
    assert len(all_problems) == 164
    folds = problems.split_folds(all_problems, seed=0)
    a, b = {p.task_id for p in folds["A"]}, {p.task_id for p in folds["B"]}
    assert not a & b and len(a | b) == 164 and len(a) == 82
    assert [p.task_id for p in problems.split_folds(list(reversed(all_problems)), seed=0)["B"]] == \
        [p.task_id for p in folds["B"]]
    assert {p.task_id for p in problems.split_folds(all_problems, seed=1)["B"]} != b


def test_hidden_tests_stay_out_of_prompts_and_of_the_search_reward(monkeypatch):
    problem = problems.load_humaneval()[2]
    for text in (tcg.tcg_prompt(problem, 5), step_request(problem, (("structure", "x"),), "code")):
        assert problem.test not in text and "check(" not in text and problem.canonical_solution not in text

    def forbidden(*args, **kwargs):
        raise AssertionError("hidden tests reached the search")

    monkeypatch.setattr(evaluation, "hidden_tests", forbidden)
    monkeypatch.setattr(evaluation, "score_hidden", forbidden)
    reward = experiment._reward(problem, ["assert truncate_number(2.5) == 0.5"], "generated", timeout=3)
    assert reward(problem.reference_program) == 1.0


def test_reference_solutions_pass_and_stubs_fail_their_hidden_tests():
    chosen = [problems.load_humaneval()[i] for i in (0, 32, 38)]  # 32 and 38 use helpers from the prompt
    for p in chosen:
        assert evaluation.score_hidden(p, [p.reference_program, p.prompt + "    return None\n"], 5.0) == [True, False]


# --------------------------------------------------------------------------------------------
# Generated tests and DPO pairs


def test_parse_tests_keeps_only_literal_asserts_on_the_entry_point():
    reply = """Here are tests:
```python
assert double(2) == 4
assert double(2) == 5
assert double(x) == 4
assert double(__import__('os').getpid()) == 1
assert other(3) == 6
assert double(-3) == -6
assert double(0) != 1
print(double(1))
assert double([1, 2]) == [1, 2, 1, 2]
```"""
    tests = tcg.parse_tests(reply, "double", limit=10)
    assert [t.source for t in tests] == ["assert double(2) == 4", "assert double(-3) == -6",
                                        "assert double([1, 2]) == [1, 2, 1, 2]"]
    assert len(tcg.parse_tests(reply, "double", limit=2)) == 2
    assert tcg.copied_share(TOY, tests) == pytest.approx(1 / 3)


def test_validity_and_discrimination():
    assert tcg.validity([True, False, True, True]) == 0.75
    valid = [True, True, False]
    wrong = [[True, True, False], [True, False, True], [False, False, False]]
    assert tcg.discrimination(valid, wrong) == pytest.approx(2 / 3)  # the first passes every valid test
    assert math.isnan(tcg.discrimination([False, False], wrong))
    assert math.isnan(tcg.discrimination(valid, []))


def test_dpo_pairs_keep_inputs_and_shuffle_outputs():
    tests = [tcg.TestCase("f", str(i), str(i * i)) for i in range(6)]
    valid = [True, True, True, True, False, True]
    pair = tcg.dpo_pairs(TOY, tests, valid, seed=0)
    kept = [t for t, ok in zip(tests, valid) if ok]
    chosen = [tcg.parse_test_line(line, "f") for line in pair["chosen"].splitlines()[1:-1]]
    rejected = [tcg.parse_test_line(line, "f") for line in pair["rejected"].splitlines()[1:-1]]
    assert chosen == kept
    assert [t.args for t in rejected] == [t.args for t in kept]
    assert sorted(t.expected for t in rejected) == sorted(t.expected for t in kept)
    assert sum(a.expected != b.expected for a, b in zip(rejected, kept)) >= 2
    assert pair["prompt"] == tcg.tcg_prompt(TOY, len(kept))
    assert tcg.dpo_pairs(TOY, tests, valid, seed=0) == pair  # reproducible
    # fewer than two valid tests, or one output for every input: no negative exists
    assert tcg.dpo_pairs(TOY, tests, [True] + [False] * 5, seed=0) is None
    same = [tcg.TestCase("f", str(i), "0") for i in range(4)]
    assert tcg.dpo_pairs(TOY, same, [True] * 4, seed=0) is None
    two = tcg.shuffled_outputs(tests[:2], random.Random(0))
    assert [t.expected for t in two] == [tests[1].expected, tests[0].expected]


def test_experiment_collects_wrong_programs_of_every_seed_and_the_possible_dpo_pairs():
    programs = {(0, "toy/0", "vanilla"): ["a", "b"], (1, "toy/0", "vanilla"): ["c"],
                (0, "toy/0", "pseudocode"): ["d"]}
    hidden = {(0, "toy/0", "vanilla"): [True, False], (1, "toy/0", "vanilla"): [False],
              (0, "toy/0", "pseudocode"): [False]}
    assert experiment.wrong_programs([TOY], programs, hidden, seeds=[0, 1]) == {"toy/0": ["b", "c"]}
    assert experiment.wrong_programs([TOY], programs, hidden, seeds=[0], style="pseudocode") == {"toy/0": ["d"]}
    tests = [tcg.TestCase("double", str(i), str(2 * i)) for i in range(3)]
    toy_b = dataclasses.replace(TOY, task_id="toy/1")
    pairs = experiment.possible_dpo_pairs([TOY, toy_b], {"toy/0": tests, "toy/1": tests},
                                 {"toy/0": [True, True, False], "toy/1": [True, False, False]}, seed=0)
    assert [p["task_id"] for p in pairs] == ["toy/0"]  # toy/1 has one valid test: no negative exists


# --------------------------------------------------------------------------------------------
# Training data: fold A only


class TextPolicy:
    """The two input builders of `LMPolicy` without a model."""

    def text(self, request, opening=""):
        return f"<user>{request}<assistant>{opening}"

    def code_text(self, problem, style):
        return self.text(problem.prompt, "```python\n" + problem.prompt)


TOY_B = dataclasses.replace(TOY, task_id="toy/1")


def test_reference_tests_are_the_literal_hidden_asserts():
    assert [t.source for t in training.reference_tests(TOY)] == ["assert double(5) == 10", "assert double(-1) == -2"]


def test_tcg_sft_data_comes_from_fold_a_only_and_passes_the_reference():
    fold_of = {"toy/0": "A", "toy/1": "B"}
    generated = {"toy/0": [tcg.TestCase("double", "3", "6"), tcg.TestCase("double", "4", "9"),
                           tcg.TestCase("double", "5", "10")]}
    reference = {"toy/0": [True, False, True]}
    sft = training.tcg_sft_tests([TOY], fold_of, generated, reference, n_tests=4, timeout=5.0)
    # own tests first, then the valid generated one not already there; the invalid one never
    assert [t.source for t in sft["toy/0"]] == ["assert double(5) == 10", "assert double(-1) == -2",
                                               "assert double(3) == 6"]
    with pytest.raises(ValueError, match="fold A only"):
        training.tcg_sft_tests([TOY, TOY_B], fold_of, generated, reference, n_tests=4, timeout=5.0)
    wrong_reference = dataclasses.replace(TOY, canonical_solution="    return 3 * x\n")
    assert training.tcg_sft_tests([wrong_reference], fold_of, generated, reference, 4, 5.0) == {}
    examples = training.tcg_examples(TextPolicy(), [TOY], sft, n_tests=4, seed=0)
    (prompt,), (target,) = examples["sft"]
    assert prompt.endswith("```python\n") and "double" in prompt and TOY.test not in prompt
    assert target.splitlines() == [t.source for t in sft["toy/0"]] + ["```"]
    (dpo_prompt,), (chosen,), (rejected,) = examples["dpo"]
    assert dpo_prompt == prompt and chosen == target
    shuffled = [tcg.parse_test_line(line, "double") for line in rejected.splitlines()[:-1]]
    assert [t.args for t in shuffled] == [t.args for t in sft["toy/0"]] and rejected != chosen


def test_policy_training_data_are_the_valid_fold_a_traces_only():
    fold_of = {"toy/0": "A", "toy/1": "B"}
    good, bad = TOY.prompt + "    return 2 * x\n", TOY.prompt + "    return x + 1\n"
    programs = {(0, "toy/0", "vanilla"): [good, bad, good], ("greedy", "toy/0", "vanilla"): [bad],
                (0, "toy/0", "pseudocode"): [TOY.prompt + "    return x * 2\n"],
                (0, "toy/1", "vanilla"): [good]}
    hidden = {(0, "toy/0", "vanilla"): [True, False, True], ("greedy", "toy/0", "vanilla"): [False],
              (0, "toy/0", "pseudocode"): [True], (0, "toy/1", "vanilla"): [True]}
    traces = training.valid_traces([TOY], fold_of, programs, hidden)
    assert traces == {"toy/0": [good]}  # passing, vanilla, deduplicated; fold B's pools never read
    with pytest.raises(ValueError, match="fold A only"):
        training.valid_traces([TOY, TOY_B], fold_of, programs, hidden)
    assert training.valid_traces([TOY], fold_of, {(0, "toy/0", "vanilla"): [bad]},
                                 {(0, "toy/0", "vanilla"): [False]}) == {}
    prompts, targets = training.policy_examples(TextPolicy(), [TOY], traces)
    assert prompts == [TextPolicy().code_text(TOY, "vanilla")] and targets == ["    return 2 * x\n```"]


def test_policy_table_pairs_over_problems_and_says_when_nothing_trained():
    before = pd.DataFrame({"seed": 0, "task_id": ["a", "b", "c"], "greedy_pass": [0.0, 1.0, 0.0],
                           "sample_pass": [0.0, 1 / 3, 1.0]})
    after = before.assign(greedy_pass=[1.0, 1.0, 0.0])
    table = report.policy_table(before, after, n_boot=200, seed=0).set_index("metric")
    assert table.loc["greedy pass@1", "difference_mean"] == pytest.approx(1 / 3)
    assert table.loc["sampled pass rate", "difference_mean"] == 0.0
    untrained = report.policy_table(before, None, n_boot=200, seed=0)
    assert untrained["after_mean"].isna().all() and (untrained["after"] == "not trained").all()
    improvement = {"traces": {}, "after": None, "fold_a_programs": 8}
    tcg_training = {"examples": {"SFT": 0, "DPO": 0}, "losses": {}, "tests": {}}
    tcg_rows = pd.DataFrame({"stage": "prompt-only", "task_id": ["x"], "fold": ["B"], "tests": [2],
                             "validity": [0.5], "discrimination": [np.nan], "wrong_programs": [0], "copied": [0.0]})
    text = report.training_conclusion(report.tcg_summary(tcg_rows, 200, 0), tcg_training, untrained, improvement)
    assert "0 of 8 programs" in text and "did not train" in text and "neither SFT nor DPO ran" in text
    metrics = report.training_metrics(untrained, tcg_training, improvement)
    assert metrics["policy_traces"] == 0 and math.isnan(metrics["policy_greedy_after"])


# --------------------------------------------------------------------------------------------
# Programs from replies


def test_programs_from_replies_restore_the_body_indentation():
    body = "return 2 * x"  # a reply comes back stripped
    program = problems.program_from_reply(TOY, body)
    assert program == TOY.prompt + "    return 2 * x\n"
    pseudo = "Pseudocode:\n1. double it\n\n```python\n" + TOY.prompt + "    return x * 2\n```\nDone."
    assert problems.program_from_reply(TOY, pseudo) == TOY.prompt + "    return x * 2\n"
    nested = "y = 2 * x\n    return y"
    assert problems.program_from_reply(TOY, nested) == TOY.prompt + "    y = 2 * x\n    return y\n"
    extra = ("return helper(x)\n\ndef helper(v):\n    return v + v\n\nprint(double(2))\n"
             "assert double(3) == 7\nif __name__ == '__main__':\n    double(1)\nimport math")
    assert problems.program_from_reply(TOY, extra) == (TOY.prompt + "    return helper(x)\n\ndef helper(v):\n"
                                                      "    return v + v\n\nimport math\n")


def test_extract_code_takes_the_longest_block():
    assert problems.extract_code("a\n```python\nx = 1\n```\n```\ny = 22\nz = 3\n```") == "y = 22\nz = 3"
    assert problems.extract_code("no block") == "no block"


# --------------------------------------------------------------------------------------------
# MBPP and the config


@pytest.mark.skipif(not REAL_MBPP.is_dir(), reason="real MBPP sample not present")
def test_mbpp_loader_on_the_real_sample():
    rows = problems.load_mbpp(REAL_MBPP)
    assert len(rows) == 100 and rows[0].task_id == "MBPP/1" and rows[0].entry_point == "min_cost"
    assert ">>> min_cost(" in rows[0].prompt
    chosen = [rows[0], rows[1]]
    for p in chosen:
        assert evaluation.score_hidden(p, [p.reference_program, "def nothing():\n    pass\n"], 5.0) == [True, False]


def test_mbpp_loader_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="mbpp.jsonl"):
        problems.load_mbpp(tmp_path / "missing.jsonl")


def _params(**changes):
    params = dict(model="qwen2.5-coder-0.5b", dtype="fast", dataset="humaneval", mbpp_path=None, fold_seed=0,
                  n_problems_a=2, n_problems_b=2, budget=3, seeds=[0], temperature=0.8, max_new_tokens=160,
                  step_tokens=48, n_tests=4, styles=["vanilla", "pseudocode"], mcts_rewards=["generated"],
                  mcts_samples=1, mcts_depth=2, mcts_c=1.0, pass_ks=[1, 2], sandbox_timeout=5.0, lora_r=8,
                  train_epochs=1, train_lr=5e-4, dpo_beta=0.1, train_max_length=512, n_boot=1000, bootstrap_seed=0)
    params.update(changes)
    return params


def test_config_accepts_the_quick_values_and_names_bad_ones():
    Config.from_params(_params())
    for name, value in (("budget", 1), ("pass_ks", [4]), ("styles", ["pseudocode"]), ("mcts_rewards", ["hidden"]),
                        ("temperature", 0), ("dataset", "apps"), ("dtype", "half"), ("sandbox_timeout", 0.1),
                        ("lora_r", 0), ("train_epochs", 0), ("train_lr", 0), ("dpo_beta", -1), ("train_max_length", 8)):
        with pytest.raises(ParameterError, match=name):
            Config.from_params(_params(**{name: value}))


def test_config_fields_are_the_notebooks_parameters():
    assert [f.name for f in dataclasses.fields(Config)] == list(read_parameters(resolve_notebook("06_o1_coder")))


@pytest.mark.slow
def test_o1_coder_notebook_smoke(run_study):
    """End to end through the runner with the smallest embedded chat model and tiny budgets."""
    result, metrics = run_study("06_o1_coder", model="smollm2-135m", n_problems_a=1, n_problems_b=1, budget=2,
                                max_new_tokens=32, step_tokens=16, n_tests=2, pass_ks=[1], n_boot=100)
    for name in ("pass1_greedy", "pass1_sample_best", "pass1_codet", "pass1_mcts", "aspr_vanilla",
                 "aspr_pseudocode"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert metrics["problems_scored"] == 1
    assert metrics["tcg_sft_examples"] >= 0 and metrics["policy_traces"] >= 0  # the training steps ran or said why
    assert (result.run_dir / "figures" / "search-pass1.pdf").is_file()


def test_every_stripped_reference_body_rebuilds_the_reference_program():
    for p in problems.load_humaneval():
        rebuilt = problems.program_from_reply(p, p.canonical_solution.strip())
        assert ast.dump(ast.parse(rebuilt)) == ast.dump(ast.parse(p.reference_program)), p.task_id


def test_trained_replies_are_cached_by_what_trained_the_model(monkeypatch, tmp_path):
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path))
    calls = []
    model_a, model_b = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)

    def fake_generate(model, tokenizer, texts, **settings):
        calls.append(list(texts))
        return [f"{'a' if model is model_a else 'b'}:{t}" for t in texts]

    monkeypatch.setattr(training, "generate_with", fake_generate)
    trained_a = training.TrainedCopy("m", {}, 0, {"kind": "coder-tcg-sft", "key": "a"}, model=model_a)
    trained_b = training.TrainedCopy("m", {}, 0, {"kind": "coder-tcg-sft", "key": "b"}, model=model_b)
    assert training.trained_replies(trained_a, None, ["x"], max_new_tokens=8) == ["a:x"]
    assert training.trained_replies(trained_a, None, ["x"], max_new_tokens=8) == ["a:x"]  # warm: cached
    assert len(calls) == 1
    assert training.trained_replies(trained_b, None, ["x"], max_new_tokens=8) == ["b:x"]  # another adapter
    assert training.trained_replies(trained_a, None, ["x"], max_new_tokens=16) == ["a:x"]  # other settings
    assert len(calls) == 3
    with pytest.raises(TypeError, match="TrainedCopy"):
        training.trained_replies(model_a, None, ["x"], max_new_tokens=8)


def test_a_cached_adapter_copies_no_weights_until_something_runs_it(monkeypatch, tmp_path):
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path))
    copies = []

    def fake_copy(name):
        copies.append(name)
        return torch.nn.Linear(2, 1), None

    def train():
        model, _ = training._private_copy("m")
        with torch.no_grad():
            model.weight.fill_(3.0)
        return model, [1.0, 0.5]

    monkeypatch.setattr(training, "_private_copy", fake_copy)
    key = {"model": "m", "data": [1]}
    cold, losses = training._trained(Cache(), "coder-tcg-sft", key, 0, train)
    assert losses == [1.0, 0.5] and cold.model().weight.eq(3.0).all()
    assert len(copies) == 1  # the copy that trained is handed over, not copied again
    warm, warm_losses = training._trained(Cache(), "coder-tcg-sft", key, 0, lambda: pytest.fail("trained again"))
    assert warm_losses == [1.0, 0.5] and warm.trained_on == cold.trained_on == {"kind": "coder-tcg-sft", **key}
    assert len(copies) == 1  # a warm lookup copies nothing
    assert warm.model().weight.eq(3.0).all() and len(copies) == 2  # running it makes the copy, once
    assert warm.model() is warm.model() and len(copies) == 2
    handed = warm.hand_over()
    with torch.no_grad():
        handed.weight.fill_(0.0)  # trained further in place by its new owner
    assert warm.model().weight.eq(3.0).all() and len(copies) == 3  # rebuilt from its own weights
