"""Batched candidate scoring vs naive per-candidate forward passes, same model and data, one run.

    python benchmarks/bench_scoring.py [--model smollm2-135m] [--questions 60] [--batch-size 32]

The baseline is the textbook loop (`score_pairs_naive`): one unpadded forward pass per
(question, candidate) pair with logits over the whole sequence. The measured path is
`score_pairs`: length-sorted, left-padded batches computing logits only where they are needed.
Both score the same pairs (world-facts test questions x their four candidates); the script checks
that they agree, then prints examples per second for each and the ratio. Target: >= 4x on 2 cores.
"""

import argparse
import time

import numpy as np
import torch

from alignlab import data
from alignlab.lm.scoring import score_pairs, score_pairs_naive
from alignlab.models.load import load_causal_lm


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    test = data.load("world-facts", split="test").select(range(args.questions))
    pairs = [(f"Q: {row['question']} A:", f" {choice}")
             for row in test
             for choice in [row["correct_answer"], row["distractor1"], row["distractor2"], row["distractor3"]]]
    model, tokenizer = load_causal_lm(args.model)
    score_pairs(model, tokenizer, pairs[:8], batch_size=8)  # warm-up: allocator, kernels

    naive, naive_s = timed(lambda: score_pairs_naive(model, tokenizer, pairs))
    batched, batched_s = timed(lambda: score_pairs(model, tokenizer, pairs, batch_size=args.batch_size))
    max_diff = float(np.max(np.abs(naive.sum - batched.sum)))
    assert max_diff < 1e-3, f"batched and naive scores disagree by {max_diff}"

    print(f"model {args.model}, {len(pairs)} (question, candidate) pairs, torch threads: "
          f"{torch.get_num_threads()}")
    print(f"naive   : {naive_s:7.2f} s  {len(pairs) / naive_s:7.1f} pairs/s")
    print(f"batched : {batched_s:7.2f} s  {len(pairs) / batched_s:7.1f} pairs/s  (batch {args.batch_size})")
    print(f"max |difference| of summed log-likelihoods: {max_diff:.2e}")
    print(f"speed-up: {naive_s / batched_s:.2f}x (target >= 4x)")


if __name__ == "__main__":
    main()
