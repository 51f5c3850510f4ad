"""Training-loop speed: the fine-tuning loop of alignlab.training.learners vs a naive loop, same model and
data, one run.

    .venv/bin/python benchmarks/bench_train.py [--model minilm-l6] [--n 64] [--batch-size 16] [--epochs 1]

The naive loop is the textbook one: fp32, every batch tokenized again and padded to the model's
maximum length (`tokenizer.model_max_length`, capped at 512), no caching. alignlab's loop
tokenizes once, batches examples of similar length and pads each batch to its own longest
sequence (fp32 too: the speed-up is not bought with precision). Both start from the same
weights and see the same examples. Prints examples/s of each and the ratio (target >= 2x).
Probe mode, for reference: a linear head on cached features (feature extraction is paid once
per model and dataset and then comes from the cache).
"""

import argparse
import time

import numpy as np
import torch


def naive_epoch(classifier, tokenizer, texts, labels, batch_size, lr, max_length):
    optimizer = torch.optim.AdamW([p for p in classifier.parameters() if p.requires_grad], lr=lr)
    classifier.train()
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start:start + batch_size], padding="max_length", truncation=True,
                        max_length=max_length, return_tensors="pt")
        logits = classifier(enc["input_ids"], enc["attention_mask"])
        loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels[start:start + batch_size]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    from alignlab import data
    from alignlab.models.load import load_classifier
    from alignlab.training.learners import FitConfig, finetune_classifier, train_head
    from alignlab.training.w2s import cached_features

    ds = data.binary_view(data.load("world-facts", "train"))
    texts, labels = list(ds["text"][:args.n]), np.asarray(ds["label"][:args.n])
    classifier, tokenizer = load_classifier(args.model)
    initial = {k: v.clone() for k, v in classifier.state_dict().items()}
    max_length = min(int(tokenizer.model_max_length), 512)
    print(f"model {args.model}, {args.n} examples, batch {args.batch_size}, {args.epochs} epoch(s), "
          f"torch threads {torch.get_num_threads()}; naive pads to {max_length} tokens")

    start = time.perf_counter()
    for _ in range(args.epochs):
        naive_epoch(classifier, tokenizer, texts, labels, args.batch_size, 5e-5, max_length)
    naive_s = time.perf_counter() - start

    classifier.load_state_dict(initial)
    config = FitConfig(loss="xent", epochs=args.epochs, lr=5e-5, batch_size=args.batch_size, weight_decay=0.0,
                       alpha_max=0.75, warmup_frac=0.2, seed=0)
    start = time.perf_counter()
    finetune_classifier((classifier, tokenizer), texts, labels, config)
    ours_s = time.perf_counter() - start

    n = args.n * args.epochs
    print(f"naive loop:    {naive_s:8.2f} s  {n / naive_s:8.1f} ex/s")
    print(f"alignlab loop: {ours_s:8.2f} s  {n / ours_s:8.1f} ex/s")
    print(f"speed-up: {naive_s / ours_s:.1f}x (target >= 2x)")

    X = cached_features(args.model, texts)  # cached after the first run
    start = time.perf_counter()
    train_head(X, labels, FitConfig(loss="xent", epochs=100, lr=1e-2, batch_size=4096, weight_decay=1e-3,
                                    alpha_max=0.75, warmup_frac=0.2, seed=0))
    print(f"probe mode (cached features, 100 full-batch steps): {time.perf_counter() - start:.2f} s "
          f"for {args.n} examples x 100 epochs")


if __name__ == "__main__":
    main()
