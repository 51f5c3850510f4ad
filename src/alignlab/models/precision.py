"""Choosing the precision models load in, by name, for a whole process.

`alignlab.models.load.pick_dtype` reads `$ALIGNLAB_DTYPE` at every load (default: fp32 on CPU, for
numbers that do not depend on the machine); `use_dtype` sets it from a study's `dtype` parameter,
including "fast" (bf16 only where the hardware computes it). Importing this module does not import
torch, so a study's config can check a `dtype` parameter before any kernel starts.
"""

from __future__ import annotations

import os

DTYPE_NAMES = ("auto", "fast", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")


def computes_bf16(device: str | None = None) -> bool:
    """Whether `device` (default: `pick_device()`) does bf16 arithmetic in hardware: a CUDA GPU with
    bf16 support, or a CPU whose flags list AVX512-BF16 or AMX-BF16 (read from /proc/cpuinfo, the
    same test as the Makefile's; elsewhere False, so bf16 is never chosen where it is emulated)."""
    import torch  # noqa: PLC0415 (here: a study's config imports DTYPE_NAMES without loading torch)

    from alignlab.models.load import pick_device  # noqa: PLC0415 (same reason)

    device = pick_device(device)
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as handle:
            flags = {word for line in handle if line.startswith("flags") for word in line.split()}
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def use_dtype(name: str) -> str:
    """Set the precision of every model this process loads from now on, as `$ALIGNLAB_DTYPE` does
    (cache keys record it too, so entries of another precision are never read), and return the
    name in force ("auto" leaves the default: fp32 on CPU).

    `name`: a dtype name (it wins over `$ALIGNLAB_DTYPE`); "auto" (the environment or default, as
    if not called); or "fast": bfloat16 where the device computes it in hardware (`computes_bf16`),
    else the default, unless the caller already set `$ALIGNLAB_DTYPE`, which wins. For studies
    whose cost is decoding and whose outcome is not a close log-likelihood call (06's code is
    judged by tests): bf16 decoding ran 2-3x faster than fp32 on an AVX512-BF16 CPU. Results then
    depend on the machine's precision, which the caller should print."""
    if name not in DTYPE_NAMES:
        raise ValueError(f"unknown dtype '{name}': use one of {', '.join(DTYPE_NAMES)}")
    if name == "fast":
        if os.environ.get("ALIGNLAB_DTYPE", "").strip():
            return os.environ["ALIGNLAB_DTYPE"].strip()
        name = "bfloat16" if computes_bf16() else "auto"
    if name != "auto":
        os.environ["ALIGNLAB_DTYPE"] = name
    return os.environ.get("ALIGNLAB_DTYPE", "").strip() or "auto"
