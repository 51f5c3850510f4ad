"""Scalable oversight protocols: a weak judge helped by a stronger model (interaction), or
refereeing a consultant or two debaters. Each protocol gives, per question, the judge's
probability that the proposed answer is correct.

The binary question of every protocol is the binary view of a SciQ-shaped dataset: "Question: q,
proposed answer: a. Is the proposed answer correct?" (label 1 when a is the correct answer). The
two SIDES of consultancy and debate are the two answers to that question: "the proposed answer is
correct" and "the proposed answer is wrong".

- `naive`        the weak judge answers alone;
- `interaction`  a helper (the strong model) writes one sentence of background knowledge for the
                 question (few-shot prompted, bounded tokens); the judge answers with it in context;
- `consultancy`  one strong consultant argues for an assigned side: the correct side for half the
                 questions of each gold label, the wrong side for the other half (stratified, so
                 the consultant's side says nothing about the label; set by `data_seed`);
- `debate`       two strong debaters assigned opposite sides argue for `rounds` rounds,
                 `simultaneous` (each round's arguments are written without seeing each other's)
                 or `sequential` (the second speaker sees the first's argument of the same round);
                 every debater reads the whole debate so far, as in ucl-dark/llm_debate;
- `oracle`       the judge reads the support passage itself (an upper reference);
- `expert`       the debater model answers alone, as a judge, with what the debaters read (the
                 passage in the `passage` setting, nothing in `closed-book`): the top of the
                 table, naive judge < protocols < expert.

Information settings (`config.info`, see `prompts`): in `passage` the helper, the consultant and
the debaters read the support passage and may quote it (`quotes`); in `closed-book` nobody does.
The judge never sees the passage except in `oracle`. `naive` and `oracle` do not depend on the
setting; they are scored once and reported under both. The consultant's argument is exactly a
debater's opening argument (same prompt): generated once.

The judge's probability comes from the likelihood of its answer tokens
(`alignlab.lm.scoring.score_labels`: one forward pass per prompt), never from searching generated
text; prompts and scoring are `alignlab.lm.judge`, shared with study 00. Every protocol is judged
with both option orders, and debate also with both debater positions (who speaks, or is shown,
first); the probability is the mean over orders and positions, which removes position bias.

Generation: `alignlab.lm.generation` (batched, left-padded, greedy, each prompt cached).
"""

from __future__ import annotations

import numpy as np

from alignlab.lm import generation
from alignlab.lm.judge import both_orders, judge_probabilities, label_scorer, passage_context, score_requests
from alignlab.models.load import release
from alignlab.studies.oversight.config import Config
from alignlab.studies.oversight.prompts import (
    SIDES,
    argument_prompt,
    background_prompt,
    consultant_context,
    debate_context,
    swap_positions,
)

SHARED = ("naive", "oracle")  # protocols that do not depend on the information setting
KEY_FIELDS = ("info", "protocol", "variant", "round")

# ---------------------------------------------------------------------------------------------
# Transcripts


def run_debates(items: list[dict], config: Config, generate, info: str) -> dict:
    """Generate every transcript the protocols need in information setting `info`, batched
    across items.

    `generate(prompts, desc) -> texts`. Returns {"background": [str], "consultant": {side: [str]},
    "debates": {first_side: [[turn, ...] per item]}} where a turn is {"round", "side", "text"}.
    Simultaneous debates are generated once (first_side "correct") and shown in both orders;
    sequential debates once per first speaker. Every debater reads all earlier turns."""
    n = len(items)
    out = {"background": [""] * n, "consultant": {}, "debates": {}}
    if "interaction" in config.protocols:
        out["background"] = generate([background_prompt(it, info) for it in items], f"background ({info})")
    need_debate = "debate" in config.protocols
    if "consultancy" in config.protocols or need_debate:
        opening = generate([argument_prompt(it, s, info) for s in SIDES for it in items], f"openings ({info})")
        out["consultant"] = {s: opening[k * n:(k + 1) * n] for k, s in enumerate(SIDES)}
    if not need_debate:
        return out
    other = {"correct": "wrong", "wrong": "correct"}
    if config.debate_mode == "simultaneous":
        turns = [[{"round": 1, "side": s, "text": out["consultant"][s][i]} for s in SIDES] for i in range(n)]
        for r in range(2, config.rounds + 1):
            texts = generate([argument_prompt(it, s, info, turns[i]) for s in SIDES for i, it in enumerate(items)],
                             f"debate round {r} ({info})")
            for k, s in enumerate(SIDES):
                for i in range(n):
                    turns[i].append({"round": r, "side": s, "text": texts[k * n + i]})
        out["debates"] = {"correct": turns}
        return out
    for first in SIDES:
        turns = [[] for _ in range(n)]
        for r in range(1, config.rounds + 1):
            for speaker in (first, other[first]):
                if r == 1 and speaker == first:
                    texts = out["consultant"][speaker]  # the opening: same prompt as the consultant
                else:
                    texts = generate([argument_prompt(it, speaker, info, turns[i]) for i, it in enumerate(items)],
                                     f"debate ({first} first) round {r} ({info})")
                for i in range(n):
                    turns[i].append({"round": r, "side": speaker, "text": texts[i]})
        out["debates"][first] = turns
    return out

# ---------------------------------------------------------------------------------------------
# The judge


def judge_requests(items: list[dict], generated: dict, config: Config) -> list[dict]:
    """Every (item, setting, protocol, variant, order) the judge must score, with its prompt.
    `generated`: {info: run_debates(...)}. Shared protocols (naive, oracle) have info ""."""
    requests = []

    def add(i, info, protocol, variant, context, rounds=0, position=""):
        requests.extend(both_orders(i, items[i], context, config.judge_format, info=info, protocol=protocol,
                                    variant=variant, round=rounds, position=position))

    for i, it in enumerate(items):
        if "naive" in config.protocols:
            add(i, "", "naive", "", "")
        if "oracle" in config.protocols:
            add(i, "", "oracle", "", passage_context(it["support"]))
        for info, gen in generated.items():
            passage = it["support"] if info == "passage" else None
            if "interaction" in config.protocols:
                add(i, info, "interaction", "", f"Background: {gen['background'][i]}")
            if "consultancy" in config.protocols:
                for side in SIDES:
                    context = consultant_context(gen["consultant"][side][i], side, passage, config.min_quote_words)[0]
                    add(i, info, "consultancy", side, context)
            if "debate" in config.protocols:
                for first, debates in gen["debates"].items():
                    shown = {first: debates[i]}
                    if config.debate_mode == "simultaneous":  # one debate, shown in both positions
                        shown = {"correct": debates[i], "wrong": swap_positions(debates[i])}
                    for position, turns in shown.items():
                        for r in range(1, config.rounds + 1):
                            context = debate_context(turns, passage, r, config.min_quote_words)[0]
                            add(i, info, "debate", "", context, r, f"{position} first")
    return requests


def expert_requests(items: list[dict], config: Config) -> list[dict]:
    """The expert's requests: the debater model judging alone with what the debaters read in each
    setting (the passage in `passage`, nothing in `closed-book`), the judge's prompt format."""
    requests = []
    for i, it in enumerate(items):
        for info in config.info:
            context = passage_context(it["support"]) if info == "passage" else ""
            requests += both_orders(i, it, context, config.judge_format, info=info, protocol="expert", variant="",
                                    round=0, position="")
    return requests


def run_protocols(items: list[dict], config: Config, generate=None, score=None, expert_score=None,
                  progress: bool = False):
    """Transcripts and the judge's probabilities for every protocol and information setting of
    `config` on `items`.

    `generate(prompts, desc)`, `score(prompts, labels)` (the judge) and `expert_score` (the debater
    model as a judge) default to the models named by `config` (generation and scores cached by
    their prompts); tests pass tiny models. Returns (generated {info: ...}, requests with their
    "p_correct", probabilities {(info, protocol, variant, round): per item}); shared protocols
    appear under every setting."""
    if generate is None:
        def generate(prompts, desc):
            return generation.generate(config.debater_model, prompts, max_new_tokens=config.max_new_tokens,
                                       stop=["\n"], batch_size=config.batch_size, progress=progress, desc=desc)
    if score is None:
        score = label_scorer(config.judge_model, batch_size=config.batch_size, progress=progress,
                             chat=config.judge_chat)
    if expert_score is None:
        expert_score = label_scorer(config.debater_model, batch_size=config.batch_size, progress=progress,
                                    chat=config.judge_chat)
    generated = {info: run_debates(items, config, generate, info) for info in config.info}
    expert = expert_requests(items, config) if "expert" in config.protocols else []
    p_expert = score_requests(expert, expert_score) if expert else np.zeros(0)
    if config.debater_model != config.judge_model:
        release(config.debater_model)
    requests = judge_requests(items, generated, config)
    p = score_requests(requests, score)
    release(config.judge_model)
    requests += expert
    p = np.concatenate([p, p_expert])
    for r, prob in zip(requests, p):
        r["p_correct"] = float(prob)
    probs = judge_probabilities(items, requests, p, key_fields=KEY_FIELDS)
    for key in [k for k in probs if k[0] == ""]:
        shared = probs.pop(key)
        for info in config.info:
            probs[(info, *key[1:])] = shared
    return generated, requests, probs


def consultant_sides(labels, seed: int) -> np.ndarray:
    """The consultant's side per item, stratified by gold label: within each label, a random half
    (rounded down; set by `seed`) argue "correct" (1), the rest "wrong" (0)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 3])
    a = np.zeros(len(labels), dtype=int)
    for value in np.unique(labels):
        idx = np.flatnonzero(labels == value)
        a[rng.permutation(idx)[: len(idx) // 2]] = 1
    return a


def protocol_probs(probs: dict, config: Config, info: str, sides: np.ndarray | None = None) -> dict:
    """{protocol: P(correct) per item} in setting `info`; consultancy takes the assigned side of
    each item (`sides`, 1 = the consultant argues "correct"), debate its last round."""
    out = {}
    for protocol in config.protocols:
        if protocol == "consultancy":
            a = np.asarray(sides)
            out[protocol] = np.where(a == 1, probs[(info, "consultancy", "correct", 0)],
                                     probs[(info, "consultancy", "wrong", 0)])
        elif protocol == "debate":
            out[protocol] = probs[(info, "debate", "", config.rounds)]
        else:
            out[protocol] = probs[(info, protocol, "", 0)]
    return out
