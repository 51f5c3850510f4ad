"""Candidate scoring: batched vs a naive loop, and shared prefixes vs batched without sharing.

    python benchmarks/bench_scoring.py [--quick] [--threads N] [--clock wall|cpu] [--model smollm2-135m]

Three measurements in one run, same model, each checked for equal scores before it is timed:
1. `scoring`: `score_pairs` with sharing off (length-sorted padded batches, logits only where
   scored) against the textbook loop `score_pairs_naive` (one unpadded pass per pair, logits
   everywhere), on world-facts test questions x their four candidates.
2. `scoring (shared prefix, candidates)`: the same pairs with sharing on (each question runs once
   for its four candidates) against sharing off.
3. `scoring (shared prefix, 8-shot)`: `score_labels` on 8-shot prompts (study 01's format: one fixed
   set of demonstrations before every test question) with sharing on against sharing off.
Each prints `<benchmark>: <ratio>x vs <baseline>; MFU <fraction>`, MFU measured against this run's
fp32 matmul peak (benchmarks/mfu.py), and the tokens run before and after sharing.
"""

import argparse

import numpy as np
import torch

import mfu
from alignlab import data
from alignlab.lm.prefix import TOKENS
from alignlab.lm.scoring import score_labels, score_pairs, score_pairs_naive
from alignlab.models.load import load_causal_lm
from alignlab.studies.w2sg.icl import LABEL_WORDS, build_prompt, format_demo
from mfu import forward_flops, matmul_peak, summary


def timed(fn, repeats=1):
    """(result, best seconds over `repeats`, token counts of one call)."""
    def counted():
        TOKENS.reset()
        return fn()
    out, seconds = mfu.timed(counted, repeats)
    return out, seconds, TOKENS.snapshot()


def mfu_of(model, counts, logits, seconds, peak):
    return forward_flops(model, counts["computed_tokens"], counts["attended_pairs"], logits) / seconds / peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many timings per measurement")
    parser.add_argument("--dtype", default=None, help="float32 (default on CPU) or bfloat16")
    mfu.add_arguments(parser)
    args = parser.parse_args()
    mfu.setup(args)
    if args.quick:
        args.questions, args.repeats = 20, 1

    test = data.load("world-facts", split="test").select(range(args.questions))
    pairs = [(f"Q: {row['question']} A:", f" {choice}")
             for row in test
             for choice in [row["correct_answer"], row["distractor1"], row["distractor2"], row["distractor3"]]]
    pool = data.binary_view(data.load("world-facts", "train")).select(range(8))
    demos = [format_demo(row["text"], row["label"]) for row in pool]
    prompts = [build_prompt(f"Q: {row['question']} A: {row['correct_answer']}", demos) for row in test]

    model, tokenizer = load_causal_lm(args.model, dtype=args.dtype)
    n_scored = int(sum(len(tokenizer(c, add_special_tokens=False)["input_ids"]) for _, c in pairs))
    score_pairs(model, tokenizer, pairs[:8], batch_size=8)  # warm-up: allocator, kernels
    peak = matmul_peak()
    print(f"model {args.model} ({next(model.parameters()).dtype}), {len(pairs)} (question, candidate) pairs, "
          f"{len(prompts)} 8-shot prompts, torch threads {torch.get_num_threads()}, "
          f"{args.clock} clock, fp32 matmul peak {peak / 1e9:.0f} GFLOP/s")

    naive, naive_s, _ = timed(lambda: score_pairs_naive(model, tokenizer, pairs))
    plain, plain_s, plain_n = timed(lambda: score_pairs(model, tokenizer, pairs, args.batch_size,
                                                        share_prefix=False), args.repeats)
    shared, shared_s, shared_n = timed(lambda: score_pairs(model, tokenizer, pairs, args.batch_size), args.repeats)
    for name, scores in [("batched", plain), ("shared", shared)]:
        diff = float(np.max(np.abs(naive.sum - scores.sum)))
        assert diff < 1e-3, f"{name} and naive scores disagree by {diff}"
    print(f"  naive {naive_s:.2f} s, batched {plain_s:.2f} s, shared {shared_s:.2f} s; tokens run "
          f"{plain_n['computed_tokens']} -> {shared_n['computed_tokens']} with sharing")
    print(summary("scoring", naive_s / plain_s, "naive per-pair loop",
                  mfu_of(model, plain_n, n_scored, plain_s, peak)))
    print(summary("scoring (shared prefix, candidates)", plain_s / shared_s, "batched without sharing",
                  mfu_of(model, shared_n, n_scored, shared_s, peak),
                  f"tokens {plain_n['computed_tokens']} -> {shared_n['computed_tokens']}"))

    labels = list(LABEL_WORDS)
    icl_plain, icl_plain_s, icl_plain_n = timed(lambda: score_labels(model, tokenizer, prompts, labels,
                                                                     args.batch_size, share_prefix=False),
                                                args.repeats)
    icl_shared, icl_shared_s, icl_shared_n = timed(lambda: score_labels(model, tokenizer, prompts, labels,
                                                                        args.batch_size), args.repeats)
    diff = float(np.max(np.abs(icl_plain - icl_shared)))
    assert diff < 1e-3, f"8-shot scores with and without sharing disagree by {diff}"
    print(f"  8-shot: without sharing {icl_plain_s:.2f} s (MFU "
          f"{mfu_of(model, icl_plain_n, len(prompts), icl_plain_s, peak):.3f}), with {icl_shared_s:.2f} s; "
          f"max |difference| {diff:.1e}")
    print(summary("scoring (shared prefix, 8-shot)", icl_plain_s / icl_shared_s, "batched without sharing",
                  mfu_of(model, icl_shared_n, len(prompts), icl_shared_s, peak),
                  f"tokens {icl_plain_n['computed_tokens']} -> {icl_shared_n['computed_tokens']}"))


if __name__ == "__main__":
    main()
