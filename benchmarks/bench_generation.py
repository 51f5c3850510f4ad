"""Generation: batched with the KV cache and a shared few-shot header, against one prompt at a time.

    python benchmarks/bench_generation.py [--quick] [--threads N] [--clock wall|cpu] [--model smollm2-135m]

Workload: 8-shot question answering (world-facts), every prompt the same 8 demonstrations and
its own question, greedy, at most `--max-new-tokens`, stopping at a newline. The baseline is the
naive loop: `generate_with` one prompt at a time (batch 1, no sharing; it still uses the KV cache,
as `model.generate` always does). The measured path is `generate_with` in length-sorted batches
of 16 with the shared header run once per batch; a middle line gives batching without sharing.
The texts must be equal. Tokens/s counts the generated tokens that are kept (up to the stop
string); MFU counts the prompt tokens run (after sharing) and the generated tokens, each with its
attention over the context (benchmarks/mfu.py).
"""

import argparse

import torch

import mfu
from alignlab import data
from alignlab.lm.generation import generate_with
from alignlab.lm.prefix import TOKENS, causal_pairs
from alignlab.models.load import load_causal_lm
from mfu import forward_flops, matmul_peak, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype", default=None, help="float32 (default on CPU) or bfloat16")
    mfu.add_arguments(parser)
    args = parser.parse_args()
    mfu.setup(args)
    if args.quick:
        args.prompts = 16

    demos = data.load("world-facts", split="train").select(range(8))
    header = "".join(f"Q: {row['question']}\nA: {row['correct_answer']}\n\n" for row in demos)
    test = data.load("world-facts", split="test").select(range(args.prompts))
    prompts = [f"{header}Q: {row['question']}\nA:" for row in test]
    model, tokenizer = load_causal_lm(args.model, dtype=args.dtype)
    settings = dict(max_new_tokens=args.max_new_tokens, stop=["\n"], chat=False)
    generate_with(model, tokenizer, prompts[:2], **settings)  # warm-up
    peak = matmul_peak()

    def run(batch_size, share):
        def call():
            TOKENS.reset()
            if batch_size == 1:
                return [generate_with(model, tokenizer, [p], batch_size=1, share_prefix=False, **settings)[0]
                        for p in prompts]
            return generate_with(model, tokenizer, prompts, batch_size=batch_size, share_prefix=share, **settings)
        texts, seconds = mfu.timed(call)
        return texts, seconds, TOKENS.snapshot()

    naive, naive_s, _ = run(1, False)
    plain, plain_s, plain_n = run(args.batch_size, False)
    shared, shared_s, shared_n = run(args.batch_size, True)
    assert plain == naive and shared == naive, "batched generation differs from one prompt at a time"

    prompt_len = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    new = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) + 1 for t in shared]  # + the stop token
    generated = sum(new)
    decode_pairs = sum(causal_pairs(p + n, p) for p, n in zip(prompt_len, new))

    def mfu_of(counts, seconds):
        flops = (forward_flops(model, counts["computed_tokens"], counts["attended_pairs"], logits=len(prompts))
                 + forward_flops(model, generated, decode_pairs, logits=generated))
        return flops / seconds / peak

    print(f"model {args.model} ({next(model.parameters()).dtype}), {len(prompts)} 8-shot prompts "
          f"(~{sum(prompt_len) // len(prompts)} tokens), {generated} tokens kept, torch threads "
          f"{torch.get_num_threads()}, {args.clock} clock, fp32 matmul peak {peak / 1e9:.0f} GFLOP/s")
    print(f"  one at a time {naive_s:.2f} s ({generated / naive_s:.1f} tokens/s), batched {plain_s:.2f} s "
          f"(MFU {mfu_of(plain_n, plain_s):.3f}), batched + shared header {shared_s:.2f} s "
          f"({generated / shared_s:.1f} tokens/s); prompt tokens run {plain_n['computed_tokens']} -> "
          f"{shared_n['computed_tokens']}")
    print(summary("generation", naive_s / shared_s, "one prompt at a time", mfu_of(shared_n, shared_s),
                  f"{generated / shared_s:.1f} tokens/s; {plain_s / shared_s:.2f}x from the shared header"))


if __name__ == "__main__":
    main()
