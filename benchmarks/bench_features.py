"""Feature extraction for a layer sweep: one pass that stops at the deepest layer read, against one
full-depth pass per layer.

    python benchmarks/bench_features.py [--quick] [--threads N] [--clock wall|cpu] [--model gemma3-270m]

The measured path is `FeatureExtractor.extract(texts, layers)` (alignlab.models.load): every
requested depth from one forward pass that stops at the deepest of them. The baseline is what a
layer sweep did before: for each layer, a full forward pass with `output_hidden_states=True`,
pooled at that layer. Both use the same tokenization, batches and pooling; the script checks that
the features agree, then prints `features: <ratio>x vs one full pass per layer; MFU <fraction>`.
MFU counts the blocks each path needs (the measured path runs only up to the deepest layer).
"""

import argparse

import numpy as np
import torch

import mfu
from alignlab import data
from alignlab.models.load import load_feature_extractor, pool_hidden
from mfu import forward_flops, matmul_peak, summary


def one_pass_per_layer(extractor, texts, layers, batch_size):
    """The baseline: a full forward pass per layer, reading hidden_states at that layer."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = {layer: np.zeros((len(texts), extractor.dim), dtype=np.float32) for layer in layers}
    for layer in layers:
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            enc = extractor.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                      max_length=extractor.max_length, return_tensors="pt")
            with torch.inference_mode():
                hidden = extractor.model(**enc, output_hidden_states=True).hidden_states[extractor.index_of(layer)]
                out[layer][idx] = pool_hidden(hidden, enc["attention_mask"], extractor.pooling).float().numpy()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--n", type=int, default=256, help="texts")
    parser.add_argument("--layers", default="0.25,0.5,0.75", help="depths of the sweep (fractions)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dtype", default=None, help="float32 (default on CPU) or bfloat16")
    mfu.add_arguments(parser)
    args = parser.parse_args()
    mfu.setup(args)
    if args.quick:
        args.n, args.repeats = 64, 1
    layers = [float(x) for x in args.layers.split(",")]

    texts = list(data.binary_view(data.load("world-facts", "train"))["text"][:args.n])
    extractor = load_feature_extractor(args.model, dtype=args.dtype)
    model = extractor.model
    lengths = [len(ids) for ids in extractor.tokenizer(texts, truncation=True, max_length=extractor.max_length)
               ["input_ids"]]
    tokens = sum(lengths)
    causal = extractor.pooling == "last"
    attended = sum(n * (n + 1) // 2 if causal else n * n for n in lengths)
    extractor.extract(texts[:8], layers)  # warm-up
    peak = matmul_peak()

    ours, ours_s = mfu.timed(lambda: extractor.extract(texts, layers, batch_size=args.batch_size), args.repeats)
    base, base_s = mfu.timed(lambda: one_pass_per_layer(extractor, texts, layers, args.batch_size), args.repeats)
    diff = max(float(np.max(np.abs(ours[x] - base[x]))) for x in layers)
    scale = max(float(np.max(np.abs(base[x]))) for x in layers)
    assert diff <= 1e-4 * scale + 1e-4, f"features disagree by {diff} (scale {scale})"

    n_blocks = model.config.num_hidden_layers
    depth = max(extractor.index_of(x) for x in layers) / n_blocks
    ours_flops = forward_flops(model, tokens, attended, depth=depth)
    base_flops = forward_flops(model, tokens, attended) * len(layers)
    print(f"model {args.model} ({next(model.parameters()).dtype}), {len(texts)} texts ({tokens} tokens), layers "
          f"{layers} (deepest block {round(depth * n_blocks)} of {n_blocks}), torch threads "
          f"{torch.get_num_threads()}, {args.clock} clock, fp32 matmul peak {peak / 1e9:.0f} GFLOP/s")
    print(f"  one pass per layer {base_s:.2f} s (MFU {base_flops / base_s / peak:.3f}), one truncated pass "
          f"{ours_s:.2f} s; max |difference| {diff:.1e}")
    print(summary("features", base_s / ours_s, "one full pass per layer", ours_flops / ours_s / peak))


if __name__ == "__main__":
    main()
