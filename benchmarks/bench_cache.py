"""Cold vs warm run of the study notebook: the cache must make a warm re-run >= 10x faster.

    .venv/bin/python benchmarks/bench_cache.py [NOTEBOOK] [-p NAME VALUE]... [--quick]

Runs the notebook twice through the runner (quick profile): cold, with ALIGNLAB_NO_CACHE=1 (every
`Cache.memo` recomputes and rewrites: features, per-seed weak-to-strong results, ICL scores), then
warm (everything read back). Prints both wall times and `cache: <ratio>x vs cold run; MFU n/a`
(a warm run computes nothing: there is no model FLOP rate to report). `--quick` is accepted for
`make bench` and changes nothing (the runs are the quick profile already), and so are --threads
and --clock (ignored: the notebook runs in its own kernel, timed by the wall clock). The converted model weights are
not artifacts of this cache and are not re-converted in either run.
"""

import os
import sys
import time

from alignlab.run.execute import run_notebook
from alignlab.run.params import parse_value


def run(notebook, overrides, cold):
    os.environ.pop("ALIGNLAB_NO_CACHE", None)
    if cold:
        os.environ["ALIGNLAB_NO_CACHE"] = "1"
    start = time.perf_counter()
    result = run_notebook(notebook, "quick", overrides, progress_bar=False)
    seconds = time.perf_counter() - start
    os.environ.pop("ALIGNLAB_NO_CACHE", None)
    if result.status != "ok":
        sys.exit(f"{notebook} failed in cell {result.failed_cell}: {result.error}")
    return seconds


def _without_shared_flags(args):
    """The arguments less the flags `make bench` gives every benchmark (benchmarks/mfu.py): the
    notebook runs in its own kernel at its own thread count and is timed by the wall clock."""
    out = []
    while args:
        if args[0] == "--quick":
            args = args[1:]
        elif args[0] in ("--threads", "--clock"):
            args = args[2:]
        else:
            out, args = out + args[:1], args[1:]
    return out


def main():
    args = _without_shared_flags(sys.argv[1:])
    notebook = args.pop(0) if args and not args[0].startswith("-") else "01_w2sg_ensembles"
    overrides = {}
    while args:
        flag, name, value, *args = args
        if flag != "-p":
            sys.exit(f"unexpected argument {flag!r}; use -p NAME VALUE")
        overrides[name] = parse_value(value)
    cold = run(notebook, overrides, cold=True)
    warm = run(notebook, overrides, cold=False)
    print(f"{notebook} {overrides or ''}")
    print(f"cold run: {cold:8.1f} s")
    print(f"warm run: {warm:8.1f} s")
    print(f"cache: {cold / warm:.2f}x vs cold run; MFU n/a (target >= 10x)")


if __name__ == "__main__":
    main()
