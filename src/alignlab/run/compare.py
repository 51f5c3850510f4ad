"""Compare two runs' metrics.json: the same keys, and values equal within a tolerance.

    python -m alignlab.run.compare results/01_w2sg_ensembles/<run-a> results/01_w2sg_ensembles/<run-b>

Each argument is a run folder or a metrics.json. Prints every key that is missing on one side or
differs by more than `--tol` (absolute), and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def read_metrics(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8"))


def differences(a: dict, b: dict, tol: float = 0.0) -> list[str]:
    """One line per key that is only on one side or whose values differ by more than `tol`."""
    lines = [f"only in first: {k}" for k in a if k not in b] + [f"only in second: {k}" for k in b if k not in a]
    for key in (k for k in a if k in b):
        x, y = a[key], b[key]
        if x is None or y is None:
            if x is not y:
                lines.append(f"{key}: {x} vs {y}")
        elif not (math.isclose(x, y, rel_tol=0.0, abs_tol=tol) or x == y):
            lines.append(f"{key}: {x!r} vs {y!r} (diff {y - x:.3g})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--tol", type=float, default=0.0, help="absolute tolerance (default 0: identical)")
    args = parser.parse_args(argv)
    a, b = read_metrics(args.first), read_metrics(args.second)
    lines = differences(a, b, args.tol)
    for line in lines:
        print(line)
    print(f"{len(a)} vs {len(b)} metrics; {len(lines)} difference(s) beyond {args.tol:g}")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
