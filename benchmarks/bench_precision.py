"""bf16 against fp32 on this CPU: support, matmul peak, scoring and feature speed, and how much the
numbers change.

    python benchmarks/bench_precision.py [--quick] [--threads N] [--clock wall|cpu] [--model smollm2-135m]

Support: the CPU flags that make bf16 fast (avx512_bf16, amx_bf16) and whether torch's oneDNN
backend is there; without them torch emulates bf16 and it can be many times slower than fp32.
Speed: the n x n matmul peak in each precision, `score_pairs` on world-facts questions x their
four candidates, and `FeatureExtractor.extract` at three depths, each in fp32 and in bf16.
Change: zero-shot accuracy on those questions (the candidate with the highest mean log-likelihood)
in each precision, the share of questions whose answer changes, and the largest change of a
summed log-likelihood. Prints `precision: <ratio>x vs fp32; MFU <fraction of the fp32 peak>`
for bf16 scoring. The choice of the CPU default is in alignlab.models.load.pick_dtype.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

import mfu
from alignlab import data
from alignlab.lm.prefix import TOKENS
from alignlab.lm.scoring import score_pairs
from alignlab.models.load import load_causal_lm, load_feature_extractor
from mfu import forward_flops, matmul_peak, summary


def cpu_flags() -> set:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    line = next((x for x in text.splitlines() if x.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--features-model", default="gemma3-270m")
    parser.add_argument("--questions", type=int, default=120)
    mfu.add_arguments(parser)
    args = parser.parse_args()
    mfu.setup(args)
    if args.quick:
        args.questions = 40

    flags = cpu_flags()
    print(f"CPU bf16 flags: {sorted(flags & {'avx512_bf16', 'amx_bf16', 'amx_tile', 'avx512f'}) or 'none'}; "
          f"oneDNN (mkldnn) available: {torch.backends.mkldnn.is_available()}; torch threads "
          f"{torch.get_num_threads()}, {args.clock} clock")
    peak = {name: matmul_peak(dtype) for name, dtype in [("float32", torch.float32), ("bfloat16", torch.bfloat16)]}
    print(f"  matmul peak: fp32 {peak['float32'] / 1e9:.0f} GFLOP/s, bf16 {peak['bfloat16'] / 1e9:.0f} GFLOP/s "
          f"({peak['bfloat16'] / peak['float32']:.2f}x)")

    test = data.load("world-facts", split="test").select(range(args.questions))
    pairs = [(f"Q: {row['question']} A:", f" {choice}")
             for row in test
             for choice in [row["correct_answer"], row["distractor1"], row["distractor2"], row["distractor3"]]]
    scores, seconds, counts = {}, {}, {}
    for dtype in ("float32", "bfloat16"):
        model, tokenizer = load_causal_lm(args.model, dtype=dtype)
        score_pairs(model, tokenizer, pairs[:8])  # warm-up
        TOKENS.reset()
        scores[dtype], seconds[dtype] = mfu.timed(lambda m=model, t=tokenizer: score_pairs(m, t, pairs), 2)
        counts[dtype] = TOKENS.snapshot()
    n_scored = int(scores["float32"].n_tokens.sum())
    flops = forward_flops(model, counts["float32"]["computed_tokens"] // 2, counts["float32"]["attended_pairs"] // 2,
                          n_scored)
    answers = {d: scores[d].mean.reshape(-1, 4).argmax(1) for d in scores}
    accuracy = {d: float(np.mean(answers[d] == 0)) for d in scores}
    changed = float(np.mean(answers["float32"] != answers["bfloat16"]))
    diff = float(np.max(np.abs(scores["float32"].sum - scores["bfloat16"].sum)))
    print(f"  scoring {len(pairs)} pairs: fp32 {seconds['float32']:.2f} s, bf16 {seconds['bfloat16']:.2f} s; "
          f"zero-shot accuracy fp32 {accuracy['float32']:.3f}, bf16 {accuracy['bfloat16']:.3f} "
          f"(answers changed on {changed:.1%} of {args.questions} questions); largest |change| of a summed "
          f"log-likelihood {diff:.3f} nats")

    texts = list(data.binary_view(data.load("world-facts", "train"))["text"][:64 if args.quick else 256])
    feats, feat_s = {}, {}
    for dtype in ("float32", "bfloat16"):
        extractor = load_feature_extractor(args.features_model, dtype=dtype)
        extractor.extract(texts[:8], [0.25, 0.5, 0.75])
        feats[dtype], feat_s[dtype] = mfu.timed(lambda e=extractor: e.extract(texts, [0.25, 0.5, 0.75]))
    rel = max(float(np.linalg.norm(feats["float32"][x] - feats["bfloat16"][x]) / np.linalg.norm(feats["float32"][x]))
              for x in feats["float32"])
    print(f"  features ({args.features_model}, {len(texts)} texts, 3 depths): fp32 {feat_s['float32']:.2f} s, "
          f"bf16 {feat_s['bfloat16']:.2f} s ({feat_s['float32'] / feat_s['bfloat16']:.2f}x); largest relative "
          f"change of a feature matrix {rel:.3%}")
    print(summary("precision (bf16 scoring)", seconds["float32"] / seconds["bfloat16"], "fp32 scoring",
                  flops / seconds["bfloat16"] / peak["float32"],
                  f"bf16 features {feat_s['float32'] / feat_s['bfloat16']:.2f}x; MFU of the fp32 peak"))


if __name__ == "__main__":
    main()
