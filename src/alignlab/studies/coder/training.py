"""Training on fold A only: the test-case generator (TCG) by SFT then DPO, and one round of policy
improvement (SFT on fold A's valid search traces). Fold B is only generated for and scored.

TCG SFT data. The targets are tests the reference solution passes on fold-A problems: first the
problem's own (hidden) tests that are literal `assert entry(<literals>) == <literal>` lines, then
the prompt-only TCG's valid tests, up to `n_tests`, every one re-checked with the reference
solution in the sandbox. O1-CODER fine-tunes its TCG on the dataset's reference tests; fold A's
hidden tests are training data (only fold B's are held out), and they are the cleanest
input/output pairs there are. The prompt's `>>>` examples are not used as targets: training on
them would teach the generator to copy the prompt, which the copied-share metric counts as a
weakness, and they add nothing the prompt does not already show.

TCG DPO pairs: O1-CODER's (`tcg.dpo_pairs`): chosen = the SFT targets of a fold-A problem (all
pass the reference), rejected = the same inputs with the outputs shuffled. The reference model
of DPO is the SFT model (its log-probabilities before the first DPO step, see
`alignlab.training.dpo`).

Policy improvement: the traces are the programs the sampling search (greedy and `budget` samples
per seed, vanilla prompting) found on fold A that pass fold A's hidden tests, deduplicated; the
policy is fine-tuned (LoRA) to write their bodies after the same prompt. Every trained model is a
private copy of the zoo model; trained weights are cached by their data and settings.
"""

from __future__ import annotations

import copy
from dataclasses import asdict

import pandas as pd

from alignlab.cache import Cache
from alignlab.lm.generation import generate_with
from alignlab.models.load import load_causal_lm
from alignlab.studies.coder import evaluation, experiment, tcg
from alignlab.studies.coder.policy import CODE_STOPS, FENCE, LMPolicy
from alignlab.studies.coder.problems import Problem, program_from_reply
from alignlab.training.causal import (
    CausalFitConfig,
    adapter_weights,
    finetune_causal_lm,
    load_adapter_weights,
    merged,
)
from alignlab.training.dpo import DPOFitConfig, finetune_dpo

ADAPTER_VERSION = "1"
REPLIES_VERSION = "1"
OPENING = "```python\n"  # the TCG's reply opens the code block (as in the prompt-only TCG)


def _only_fold_a(problems: list[Problem], fold_of: dict) -> None:
    outside = [p.task_id for p in problems if fold_of.get(p.task_id) != "A"]
    if outside:
        raise ValueError(f"training data must come from fold A only; got {outside[:3]} (fold B is held out)")


def reference_tests(problem: Problem) -> list[tcg.TestCase]:
    """The problem's own tests that are one-line literal asserts on the entry point (HumanEval's
    `candidate` renamed to the entry point)."""
    entry = problem.entry_point
    out, seen = [], set()
    for line in problem.test.splitlines():
        test = tcg.parse_test_line(line.strip().replace("candidate(", f"{entry}("), entry)
        if test is not None and test.call_key not in seen:
            seen.add(test.call_key)
            out.append(test)
    return out


def tcg_sft_tests(problems: list[Problem], fold_of: dict, generated: dict, reference: dict, n_tests: int,
                  timeout: float) -> dict:
    """{task_id: [TestCase]}: per fold-A problem, at most `n_tests` tests the reference passes
    (its own literal tests first, then the prompt-only TCG's valid ones); problems with none are
    left out. Raises for a problem outside fold A."""
    _only_fold_a(problems, fold_of)
    out = {}
    for p in problems:
        valid = [t for t, ok in zip(generated.get(p.task_id, []), reference.get(p.task_id, [])) if ok]
        candidates, seen = [], set()
        for t in reference_tests(p) + valid:
            if t.call_key not in seen:
                seen.add(t.call_key)
                candidates.append(t)
        candidates = candidates[:n_tests]
        if not candidates:
            continue
        passed = evaluation.run_generated_tests(p, [p.reference_program], [t.source for t in candidates], timeout)[0]
        kept = [t for t, ok in zip(candidates, passed) if ok]
        if kept:
            out[p.task_id] = kept
    return out


def tcg_input(policy: LMPolicy, problem: Problem, n_tests: int) -> str:
    """The TCG's raw model input (the same for the prompt-only, SFT and DPO stages)."""
    return policy.text(tcg.tcg_prompt(problem, n_tests), OPENING)


def _tests_text(tests: list[tcg.TestCase]) -> str:
    """A TCG reply after the opening: the asserts, then the closing fence (so the model learns to stop)."""
    return "\n".join(t.source for t in tests) + "\n" + FENCE


def tcg_examples(policy: LMPolicy, problems: list[Problem], sft_tests: dict, n_tests: int, seed: int) -> dict:
    """The TCG's training data: {"sft": (prompts, targets), "dpo": (prompts, chosen, rejected)}."""
    sft_p, sft_t, dpo_p, dpo_c, dpo_r = [], [], [], [], []
    for p in problems:
        if p.task_id not in sft_tests:
            continue
        tests = sft_tests[p.task_id]
        sft_p.append(tcg_input(policy, p, n_tests))
        sft_t.append(_tests_text(tests))
        pair = tcg.dpo_pairs(p, tests, [True] * len(tests), seed)
        if pair is not None:  # its texts are fenced blocks: keep what follows the opening
            dpo_p.append(sft_p[-1])
            dpo_c.append(pair["chosen"][len(OPENING):])
            dpo_r.append(pair["rejected"][len(OPENING):])
    return {"sft": (sft_p, sft_t), "dpo": (dpo_p, dpo_c, dpo_r)}


def _private_copy(name: str):
    shared, tokenizer = load_causal_lm(name)
    return copy.deepcopy(shared), tokenizer  # the shared model is never changed


class TrainedCopy:
    """A private copy of zoo model `name` carrying trained adapter `weights` (LoRA rank `lora_r`,
    merged into the weights when `merge`), with `trained_on`, the adapter's cache kind and key.
    The copy is made only when something runs it (`model()`): a warm run, whose adapters and
    replies are all cached, copies no weights. The run that trained the weights passes its copy
    as `model=`, so it is not copied again."""

    def __init__(self, name: str, weights: dict, lora_r: int, trained_on: dict, merge: bool = False, model=None):
        self.name, self.weights, self.lora_r, self.merge = name, weights, lora_r, merge
        self.trained_on = trained_on
        self._model = model

    def model(self):
        if self._model is None:
            model, _ = _private_copy(self.name)
            model = load_adapter_weights(model, self.weights, self.lora_r)
            self._model = merged(model) if self.merge else model
        return self._model

    def hand_over(self):
        """The copy, for training further in place: this object forgets it (a later `model()`
        rebuilds it from this object's own weights)."""
        model, self._model = self.model(), None
        return model


def trained_replies(trained: TrainedCopy, tokenizer, texts: list[str], **settings) -> list[str]:
    """`generate_with(trained.model(), tokenizer, texts, **settings)`, cached by what trained the
    model, the texts and the settings: a warm run generates nothing and copies no weights."""
    if not isinstance(trained, TrainedCopy):
        raise TypeError(f"trained_replies needs a TrainedCopy (it caches replies by what trained the model), "
                        f"got {type(trained).__name__}")
    return Cache().memo("coder-trained-replies", REPLIES_VERSION,
                        lambda: generate_with(trained.model(), tokenizer, texts, **settings),
                        trained_on=trained.trained_on, texts=list(texts), settings=settings)


def _trained(cache: Cache, kind: str, key: dict, lora_r: int, train, merge: bool = False) -> tuple[TrainedCopy, list]:
    """(TrainedCopy, losses) of the adapter cached under (`kind`, `key`); on a miss `train()` returns
    (model, history) and the adapter is stored."""
    trained_on = {"kind": kind, **key}
    found, value = cache.lookup(kind, ADAPTER_VERSION, **key)
    if found:
        return TrainedCopy(key["model"], value["weights"], lora_r, trained_on, merge), list(value["losses"])
    model, history = train()
    value = cache.memo(kind, ADAPTER_VERSION,
                       lambda: {"weights": adapter_weights(model), "losses": [float(x) for x in history]}, **key)
    model = merged(model) if merge else model
    return TrainedCopy(key["model"], value["weights"], lora_r, trained_on, merge, model), list(value["losses"])


def train_tcg(name: str, examples: dict, sft: CausalFitConfig, dpo: DPOFitConfig, after_sft=None):
    """{"sft": result of `after_sft(TrainedCopy)`, "dpo": the DPO TrainedCopy or None, "losses": {...}}:
    LoRA SFT on the SFT examples, then DPO from the SFT adapter (None when there is no DPO pair).
    DPO trains the SFT copy in place (one copy of the weights, not two). Both adapters are cached."""
    prompts, targets = examples["sft"]
    pairs = examples["dpo"]
    cache = Cache()
    key = dict(model=name, prompts=prompts, targets=targets, settings=asdict(sft))

    def train_sft():
        model, tokenizer = _private_copy(name)
        return finetune_causal_lm(model, tokenizer, prompts, targets, sft)

    sft_model, sft_losses = _trained(cache, "coder-tcg-sft", key, sft.lora_r, train_sft)
    out = {"sft": after_sft(sft_model) if after_sft else None, "dpo": None, "losses": {"sft": sft_losses, "dpo": []}}
    if not pairs[0]:
        return out
    dpo_key = dict(key, pairs=[list(x) for x in pairs], dpo=asdict(dpo))

    def train_dpo():
        _, tokenizer = load_causal_lm(name)
        return finetune_dpo(sft_model.hand_over(), tokenizer, *pairs, dpo)

    out["dpo"], out["losses"]["dpo"] = _trained(cache, "coder-tcg-dpo", dpo_key, sft.lora_r, train_dpo)
    return out


def generate_tests_with(model: TrainedCopy, policy: LMPolicy, problems: list[Problem], n_tests: int) -> dict:
    """{task_id: [TestCase]}: one greedy reply per problem from a trained TCG, parsed as in the
    prompt-only stage."""
    texts = [tcg_input(policy, p, n_tests) for p in problems]
    replies = trained_replies(model, policy.tokenizer, texts, max_new_tokens=max(64, 40 * n_tests), stop=[FENCE],
                              chat=False, batch_size=4, share_prefix=False)
    return {p.task_id: tcg.parse_tests(r, p.entry_point, n_tests) for p, r in zip(problems, replies)}


# --------------------------------------------------------------------------------------------
# policy improvement


def valid_traces(problems: list[Problem], fold_of: dict, programs: dict, hidden: dict) -> dict:
    """{task_id: [program]}: the distinct fold-A programs of the search pools (`run_pools`, vanilla:
    greedy and samples) that pass their problem's hidden tests. Raises for a problem outside fold A."""
    _only_fold_a(problems, fold_of)
    out = {}
    for p in problems:
        found = [prog for (seed, task_id, style), progs in programs.items()
                 if task_id == p.task_id and style == "vanilla"
                 for prog, ok in zip(progs, hidden[(seed, task_id, style)]) if ok]
        found = list(dict.fromkeys(found))
        if found:
            out[p.task_id] = found
    return out


def policy_examples(policy: LMPolicy, problems: list[Problem], traces: dict) -> tuple[list, list]:
    """(prompts, targets): the vanilla code request of the problem, and the trace's body
    (after the prompt) closed by the fence."""
    prompts, targets = [], []
    for p in problems:
        for program in traces.get(p.task_id, []):
            body = program[len(p.prompt):] if program.startswith(p.prompt) else program
            if body.strip():
                prompts.append(policy.code_text(p, "vanilla"))
                targets.append(body.rstrip() + "\n" + FENCE)
    return prompts, targets


def train_policy(name: str, prompts: list, targets: list, sft: CausalFitConfig):
    """(TrainedCopy, losses): the policy fine-tuned (LoRA, merged) on the traces; the adapter is cached."""
    key = dict(model=name, prompts=prompts, targets=targets, settings=asdict(sft))

    def train():
        model, tokenizer = _private_copy(name)
        return finetune_causal_lm(model, tokenizer, prompts, targets, sft)

    return _trained(Cache(), "coder-policy-sft", key, sft.lora_r, train, merge=True)


def pass_rows(model: TrainedCopy, policy: LMPolicy, problems: list[Problem], budget: int, seeds, temperature: float,
              timeout: float) -> pd.DataFrame:
    """Per (seed, problem): the greedy program's pass and the share of `budget` samples passing,
    for a trained policy, vanilla prompting, scored on hidden tests."""
    texts = [policy.code_text(p, "vanilla") for p in problems]
    greedy = trained_replies(model, policy.tokenizer, texts, max_new_tokens=policy.max_new_tokens, stop=CODE_STOPS,
                             chat=False, batch_size=4, share_prefix=False)
    greedy_ok = evaluation.score_many([(p, [program_from_reply(p, g)]) for p, g in zip(problems, greedy)], timeout)
    rows = []
    for seed in seeds:
        flat = trained_replies(model, policy.tokenizer, [t for t in texts for _ in range(budget)],
                               max_new_tokens=policy.max_new_tokens, temperature=temperature, seed=seed,
                               stop=CODE_STOPS, chat=False, batch_size=16, share_prefix=False)
        progs = [[program_from_reply(p, t) for t in flat[i * budget:(i + 1) * budget]] for i, p in enumerate(problems)]
        passes = evaluation.score_many(list(zip(problems, progs)), timeout)
        for p, (g,), passed in zip(problems, greedy_ok, passes):
            rows.append({"seed": seed, "task_id": p.task_id, "greedy_pass": float(g),
                         "sample_pass": sum(passed) / len(passed)})
    return pd.DataFrame(rows)


def pool_pass_rows(pools: pd.DataFrame) -> pd.DataFrame:
    """`pass_rows` of the untrained policy, read from the vanilla pools of `run_pools`."""
    part = pools[pools["style"] == "vanilla"]
    return pd.DataFrame({"seed": part["seed"], "task_id": part["task_id"], "greedy_pass": part["greedy_pass"],
                         "sample_pass": part["c"] / part["n"]}).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# the notebook's two training steps


def coder_fit_settings(config) -> tuple[CausalFitConfig, DPOFitConfig]:
    """The SFT and DPO settings of the study's parameters. Targets are code and test lines, kept as
    given (`strip=False`): a function body's indentation is part of what the model must write."""
    sft = CausalFitConfig(epochs=config.train_epochs, lr=config.train_lr, batch_size=1, lora_r=config.lora_r,
                          seed=config.fold_seed, max_length=config.train_max_length, strip=False)
    dpo = DPOFitConfig(epochs=config.train_epochs, lr=config.train_lr, beta=config.dpo_beta, batch_size=1,
                       seed=config.fold_seed, max_length=config.train_max_length, strip=False)
    return sft, dpo


def run_tcg_training(policy: LMPolicy, fold_a: list[Problem], fold_b: list[Problem], fold_of: dict, tests: dict,
                     reference: dict, config) -> dict:
    """SFT then DPO of the TCG on fold A, each stage's tests generated for fold B.
    Returns {"sft_tests": {task_id: [TestCase]} (fold A), "examples": counts, "losses": per stage,
    "tests": {"SFT": {task_id: [TestCase]}, "DPO": ...} (fold B; a stage that could not train is absent)}."""
    sft_tests = tcg_sft_tests(fold_a, fold_of, tests, reference, config.n_tests, config.sandbox_timeout)
    examples = tcg_examples(policy, fold_a, sft_tests, config.n_tests, config.fold_seed)
    out = {"sft_tests": sft_tests, "examples": {"SFT": len(examples["sft"][0]), "DPO": len(examples["dpo"][0])},
           "losses": {}, "tests": {}}
    if not examples["sft"][0]:
        return out
    sft, dpo = coder_fit_settings(config)
    models = train_tcg(policy.model, examples, sft, dpo,
                       after_sft=lambda model: generate_tests_with(model, policy, fold_b, config.n_tests))
    out["losses"] = {"SFT": models["losses"]["sft"], "DPO": models["losses"]["dpo"]}
    out["tests"]["SFT"] = models["sft"]
    if models["dpo"] is not None:
        out["tests"]["DPO"] = generate_tests_with(models["dpo"], policy, fold_b, config.n_tests)
    return out


def run_policy_improvement(policy: LMPolicy, fold_a: list[Problem], fold_b: list[Problem], fold_of: dict,
                           pools_b: pd.DataFrame, config) -> dict:
    """One round: the sampling search on fold A (scored with fold A's hidden tests), LoRA SFT of
    the policy on the valid traces, fold B's greedy and sampled pass rates after.
    Returns {"traces": {task_id: [program]}, "examples": n, "losses": [...], "before": rows,
    "after": rows (None when fold A gave no valid trace: nothing to train on)}."""
    _, programs, hidden = experiment.run_pools(policy, fold_a, ["vanilla"], config.budget, config.seeds,
                                               config.sandbox_timeout)
    traces = valid_traces(fold_a, fold_of, programs, hidden)
    prompts, targets = policy_examples(policy, fold_a, traces)
    out = {"traces": traces, "examples": len(prompts), "losses": [], "before": pool_pass_rows(pools_b),
           "after": None, "fold_a_programs": sum(len(v) for k, v in programs.items())}
    if not prompts:
        return out
    model, out["losses"] = train_policy(policy.model, prompts, targets, coder_fit_settings(config)[0])
    out["after"] = pass_rows(model, policy, fold_b, config.budget, config.seeds, config.temperature,
                             config.sandbox_timeout)
    return out


def with_trained_stages(tcg_rows: pd.DataFrame, fold_b: list[Problem], fold_of: dict, tcg_training: dict,
                        wrong_programs: dict, timeout: float) -> pd.DataFrame:
    """`tcg_rows` (the prompt-only stage) followed by the `experiment.tcg_table` rows of each
    trained TCG stage on fold B."""
    tables = [experiment.tcg_table(fold_b, fold_of, tests, wrong_programs, timeout, stage)[0]
              for stage, tests in tcg_training["tests"].items()]
    return pd.concat([tcg_rows, *tables], ignore_index=True)
