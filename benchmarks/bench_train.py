"""Training-loop speed: the fine-tuning loop of alignlab.training.learners vs a naive loop, same model and
data, one run.

    .venv/bin/python benchmarks/bench_train.py [--quick] [--threads N] [--clock wall|cpu] [--model smollm2-135m]

The naive loop is openai's (weak-to-strong's train_simple): every batch tokenized again, in data
order, and padded to that batch's longest sequence. alignlab's loop tokenizes once, batches
examples of similar length and pads each batch to its own longest sequence (fp32 too: the
speed-up is not bought with precision). Both start from the same weights and see the same
examples. Prints examples/s of each and `training: <ratio>x vs naive loop; MFU <fraction>`, where
MFU counts 3 x the forward FLOPs of the real (unpadded) tokens (benchmarks/mfu.py).
Probe mode, for reference: a linear head on cached features (feature extraction is paid once
per model and dataset and then comes from the cache).
"""

import argparse

import numpy as np
import torch

import mfu
from mfu import forward_flops, matmul_peak, summary


def naive_epoch(classifier, tokenizer, texts, labels, batch_size, lr):
    optimizer = torch.optim.AdamW([p for p in classifier.parameters() if p.requires_grad], lr=lr)
    classifier.train()
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=512,
                        return_tensors="pt")
        logits = classifier(enc["input_ids"], enc["attention_mask"])
        loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels[start:start + batch_size]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    mfu.add_arguments(parser)
    args = parser.parse_args()
    mfu.setup(args)
    if args.quick:
        args.n = 48

    from alignlab import data
    from alignlab.models.load import load_classifier
    from alignlab.training.learners import FitConfig, finetune_classifier, train_head
    from alignlab.training.w2s import cached_features

    ds = data.binary_view(data.load("world-facts", "train"))
    texts, labels = list(ds["text"][:args.n]), np.asarray(ds["label"][:args.n])
    classifier, tokenizer = load_classifier(args.model)
    initial = {k: v.clone() for k, v in classifier.state_dict().items()}
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=512)["input_ids"]]
    causal = classifier.pooling == "last"  # decoders pool the last token; encoders attend both ways
    attended = sum(n * (n + 1) // 2 if causal else n * n for n in lengths)
    peak = matmul_peak()
    print(f"model {args.model}, {args.n} examples ({sum(lengths)} tokens), batch {args.batch_size}, "
          f"{args.epochs} epoch(s), torch threads {torch.get_num_threads()}, {args.clock} clock, "
          f"fp32 matmul peak {peak / 1e9:.0f} GFLOP/s")

    def naive():
        for _ in range(args.epochs):
            naive_epoch(classifier, tokenizer, texts, labels, args.batch_size, 5e-5)

    naive_epoch(classifier, tokenizer, texts[:args.batch_size], labels[:args.batch_size], args.batch_size, 5e-5)
    classifier.load_state_dict(initial)  # that was a warm-up (allocator, backward kernels) for both loops
    _, naive_s = mfu.timed(naive)

    classifier.load_state_dict(initial)
    config = FitConfig(loss="xent", epochs=args.epochs, lr=5e-5, batch_size=args.batch_size, weight_decay=0.0,
                       alpha_max=0.75, warmup_frac=0.2, seed=0)
    _, ours_s = mfu.timed(lambda: finetune_classifier((classifier, tokenizer), texts, labels, config))

    n = args.n * args.epochs
    flops = 3 * forward_flops(classifier.backbone, sum(lengths), attended) * args.epochs
    print(f"  naive loop:    {naive_s:8.2f} s  {n / naive_s:8.1f} ex/s  MFU {flops / naive_s / peak:.3f}")
    print(f"  alignlab loop: {ours_s:8.2f} s  {n / ours_s:8.1f} ex/s")
    print(summary("training", naive_s / ours_s, "naive loop (pads to the batch's longest)",
                  flops / ours_s / peak))

    X = cached_features(args.model, texts)  # cached after the first run
    _, head_s = mfu.timed(lambda: train_head(X, labels, FitConfig(
        loss="xent", epochs=100, lr=1e-2, batch_size=4096, weight_decay=1e-3, alpha_max=0.75, warmup_frac=0.2,
        seed=0)))
    print(f"  probe mode (cached features, 100 full-batch steps): {head_s:.2f} s for {args.n} examples x 100 epochs")


if __name__ == "__main__":
    main()
