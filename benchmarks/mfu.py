"""Model FLOPs utilisation (MFU) for the benchmarks: achieved model FLOP/s over the machine's
matmul peak, both measured in the same run.

    peak = matmul_peak()                                   # FLOP/s of a large fp32 torch.mm, this run
    flops = forward_flops(model, tokens=..., attended=..., logits=...)
    print(summary("scoring", ratio, "naive loop", flops / seconds / peak))

Model FLOPs count what the model needs, not what the kernels do: 2 x non-embedding parameters
per token run (a multiply and an add per weight), 2 x hidden x vocabulary per position whose
logits are computed, and 4 x layers x heads x head_dim per attended (query, key) pair (QK^T and
the weighted sum of V). Padding is not counted, so wasted work lowers MFU as it should. Training
counts three times the forward (forward, and a backward twice its cost). Sliding-window layers
are counted as full attention (exact for sequences within the window: every benchmark here).
The peak is measured, not read from a data sheet: on a shared machine both drift together, so
the fraction is steadier than either number.

Clocks. `--clock wall` (the default) times with the wall clock. On a machine shared with other
busy processes the wall clock measures the others too, and 2 OpenMP threads that wait for each
other at every barrier while one of them is descheduled slow down far more than the load alone
explains (measured here: 17 CPU-seconds for what takes 1 on one thread). `--threads 1 --clock cpu`
then gives an estimate of the idle machine's speed per core: the process's CPU time, for the
peak and the workload alike.
"""

from __future__ import annotations

import argparse
import time

import torch

CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter  # set by `setup`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every benchmark takes: --quick, --threads, --clock."""
    parser.add_argument("--quick", action="store_true", help="a smaller workload, one timing each")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: as configured)")
    parser.add_argument("--clock", choices=sorted(CLOCK), default="wall",
                        help="wall clock, or this process's CPU time (see benchmarks/mfu.py)")


def setup(args) -> None:
    global clock
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = CLOCK[args.clock]


def timed(fn, repeats: int = 1):
    """(result of the last call, best seconds over `repeats` calls) on the chosen clock."""
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        out = fn()
        best = min(best, clock() - start)
    return out, best


def matmul_peak(dtype=torch.float32, n: int = 2048, seconds: float = 1.0) -> float:
    """FLOP/s of an n x n torch.mm at the configured thread count: the best of repeated calls
    over about `seconds` (the best, because other processes can only slow a call down)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)  # warm-up
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = clock()
        torch.mm(a, b)
        best = min(best, clock() - t)
    return 2 * n**3 / best


def _text_config(model):
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def non_embedding_params(model) -> int:
    """Parameters outside the input embeddings (token and position) and the output projection."""
    skip = {id(p) for m in (model.get_input_embeddings(), getattr(model, "get_output_embeddings", lambda: None)())
            if m is not None for p in m.parameters()}
    for name, module in model.named_modules():  # absolute position embeddings (GPT-2's wpe, BERT's)
        if name.endswith(("wpe", "position_embeddings", "token_type_embeddings")):
            skip |= {id(p) for p in module.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


def forward_flops(model, tokens: int, attended: int, logits: int = 0, depth: float = 1.0) -> float:
    """Model FLOPs of a forward pass: `tokens` run through a fraction `depth` of the blocks,
    `attended` (query, key) pairs in each block, `logits` positions projected onto the vocabulary."""
    config = _text_config(model)
    layers = config.num_hidden_layers
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    blocks = 2 * non_embedding_params(model) * tokens + 4 * layers * heads * head_dim * attended
    return depth * blocks + 2 * config.hidden_size * config.vocab_size * logits


def summary(benchmark: str, ratio: float, baseline: str, mfu: float, extra: str = "") -> str:
    """The one summary line every benchmark prints."""
    return f"{benchmark}: {ratio:.2f}x vs {baseline}; MFU {mfu:.3f}" + (f" ({extra})" if extra else "")
