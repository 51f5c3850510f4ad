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
- `consultancy`  one strong consultant argues for an assigned side (the correct side for half the
                 questions, the wrong side for the other half; which half is set by the seed);
- `debate`       two strong debaters assigned opposite sides argue for `rounds` rounds,
                 `simultaneous` (each round's arguments are written without seeing each other's)
                 or `sequential` (the second speaker sees the first's argument of the same round);
                 in every round after the first a debater sees the opponent's latest argument;
- `oracle`       the judge reads the support passage itself (an upper reference).

Consultants and debaters read the question's `support` passage and may quote it (see `quotes`);
the judge never sees the passage (except in `oracle`). The consultant's argument is exactly a
debater's opening argument (same prompt): the cache generates it once.

The judge's probability comes from the likelihood of its answer tokens
(`alignlab.lm.scoring.score_labels`: one forward pass per prompt), never from searching generated
text; prompts and scoring are `alignlab.lm.judge`, shared with study 00. Format `ab`: the two
options "Yes, it is correct." / "No, it is wrong." are listed as A and B and the judge scores " A"
vs " B"; `yesno`: " Yes" vs " No" after "(Yes or No)". Every protocol is judged with both option
orders, and debate also with both debater positions (who speaks, or is shown, first); the
probability is the mean over orders and positions, which removes position bias.

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

# ---------------------------------------------------------------------------------------------
# Transcripts


def run_debates(items: list[dict], config: Config, generate) -> dict:
    """Generate every transcript the protocols need, batched across items.

    `generate(prompts, desc) -> texts`. Returns {"background": [str], "consultant": {side: [str]},
    "debates": {first_side: [[turn, ...] per item]}} where a turn is {"round", "side", "text"}.
    Simultaneous debates are generated once (first_side "correct") and shown in both orders;
    sequential debates once per first speaker."""
    n = len(items)
    out = {"background": [""] * n, "consultant": {}, "debates": {}}
    if "interaction" in config.protocols:
        out["background"] = generate([background_prompt(it) for it in items], "background")
    need_debate = "debate" in config.protocols
    if "consultancy" in config.protocols or need_debate:
        opening = generate([argument_prompt(it, s) for s in SIDES for it in items], "openings")
        out["consultant"] = {s: opening[k * n:(k + 1) * n] for k, s in enumerate(SIDES)}
    if not need_debate:
        return out
    other = {"correct": "wrong", "wrong": "correct"}
    if config.debate_mode == "simultaneous":
        turns = [[{"round": 1, "side": s, "text": out["consultant"][s][i]} for s in SIDES] for i in range(n)]
        for r in range(2, config.rounds + 1):
            last = {s: [[t for t in turns[i] if t["side"] == s][-1]["text"] for i in range(n)] for s in SIDES}
            texts = generate([argument_prompt(it, s, last[other[s]][i]) for s in SIDES for i, it in enumerate(items)],
                             f"debate round {r}")
            for k, s in enumerate(SIDES):
                for i in range(n):
                    turns[i].append({"round": r, "side": s, "text": texts[k * n + i]})
        out["debates"] = {"correct": turns}
        return out
    for first in SIDES:
        second = other[first]
        turns = [[] for _ in range(n)]
        for r in range(1, config.rounds + 1):
            for speaker in (first, second):
                opponents = [next((t["text"] for t in reversed(turns[i]) if t["side"] != speaker), None)
                             for i in range(n)]
                if r == 1 and speaker == first:
                    texts = out["consultant"][speaker]  # the opening: same prompt as the consultant
                else:
                    texts = generate([argument_prompt(it, speaker, opponents[i]) for i, it in enumerate(items)],
                                     f"debate ({first} first) round {r}")
                for i in range(n):
                    turns[i].append({"round": r, "side": speaker, "text": texts[i]})
        out["debates"][first] = turns
    return out

# ---------------------------------------------------------------------------------------------
# The judge


def judge_requests(items: list[dict], generated: dict, config: Config) -> list[dict]:
    """Every (item, protocol, variant, order) the judge must score, with its prompt."""
    requests = []

    def add(i, protocol, variant, context, rounds=0, position=""):
        requests.extend(both_orders(i, items[i], context, config.judge_format, protocol=protocol, variant=variant,
                                    round=rounds, position=position))

    for i, it in enumerate(items):
        if "naive" in config.protocols:
            add(i, "naive", "", "")
        if "oracle" in config.protocols:
            add(i, "oracle", "", passage_context(it["support"]))
        if "interaction" in config.protocols:
            add(i, "interaction", "", f"Background: {generated['background'][i]}")
        if "consultancy" in config.protocols:
            for side in SIDES:
                context = consultant_context(generated["consultant"][side][i], side, it["support"])[0]
                add(i, "consultancy", side, context)
        if "debate" in config.protocols:
            for first, debates in generated["debates"].items():
                shown = {first: debates[i]}
                if config.debate_mode == "simultaneous":  # one debate, shown in both positions
                    shown = {"correct": debates[i], "wrong": swap_positions(debates[i])}
                for position, turns in shown.items():
                    for r in range(1, config.rounds + 1):
                        add(i, "debate", "", debate_context(turns, it["support"], r)[0], r, f"{position} first")
    return requests


def run_protocols(items: list[dict], config: Config, generate=None, score=None, progress: bool = False):
    """Transcripts and the judge's probabilities for every protocol of `config` on `items`.

    `generate(prompts, desc)` and `score(prompts, labels)` default to the models named by `config`
    (cached generation; judge scoring cached by its prompts); tests pass tiny models.
    Returns (generated, requests with their "p_correct", probabilities by (protocol, variant, round))."""
    if generate is None:
        def generate(prompts, desc):
            return generation.generate(config.debater_model, prompts, max_new_tokens=config.max_new_tokens,
                                       stop=["\n"], batch_size=config.batch_size, progress=progress, desc=desc)
    if score is None:
        score = label_scorer(config.judge_model, batch_size=config.batch_size, progress=progress)
    generated = run_debates(items, config, generate)
    if config.debater_model != config.judge_model:
        release(config.debater_model)
    requests = judge_requests(items, generated, config)
    p = score_requests(requests, score)
    release(config.judge_model)
    for r, prob in zip(requests, p):
        r["p_correct"] = float(prob)
    return generated, requests, judge_probabilities(items, requests, p)


def protocol_probs(probs: dict, config: Config, assignment: np.ndarray | None = None) -> dict:
    """{protocol: P(correct) per item}; consultancy takes the assigned side of each item (1 =
    the consultant argues "correct"), debate its last round."""
    out = {}
    for protocol in config.protocols:
        if protocol == "consultancy":
            a = np.asarray(assignment)
            out[protocol] = np.where(a == 1, probs[("consultancy", "correct", 0)], probs[("consultancy", "wrong", 0)])
        elif protocol == "debate":
            out[protocol] = probs[("debate", "", config.rounds)]
        else:
            out[protocol] = probs[(protocol, "", 0)]
    return out


def assignment_for(n: int, seed: int) -> np.ndarray:
    """The consultant's side per item: 1 (argue correct) for a random half, 0 for the rest."""
    a = np.zeros(n, dtype=int)
    a[np.random.default_rng([seed, 3]).permutation(n)[: n // 2]] = 1
    return a
