"""`alignlab sandbox PROGRAM.py [--tests TESTS.py] [--timeout S] [--memory-mb M]`: run one program
in the sandbox by hand. Prints one JSON object (status, detail, per-case results, captured and
size-capped output, the isolation in force) and exits 0 only when the status is `passed`.

TESTS.py is run in its own process with every function PROGRAM.py defines bound to a proxy, so it
is written as if it shared the program's namespace: `assert add(1, 2) == 3`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from alignlab.sandbox.execute import isolation_note, run_program


def sandbox_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alignlab sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("program", type=Path, help="the Python file to run (untrusted)")
    parser.add_argument("--tests", type=Path, help="a Python file of assertions about the program's functions")
    parser.add_argument("--timeout", type=float, default=5.0, help="wall-clock limit in seconds (default 5)")
    parser.add_argument("--memory-mb", type=int, default=512, help="address-space limit in MB (default 512)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = sandbox_parser().parse_args(argv)
    sources = {}
    for name, path in (("program", args.program), ("tests", args.tests)):
        if path is None:
            continue
        try:
            sources[name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            print(f"alignlab sandbox: cannot read {name} file {path}: {error}", file=sys.stderr)
            return 2
    if args.timeout <= 0 or args.memory_mb < 16:
        print("alignlab sandbox: --timeout must be > 0 and --memory-mb >= 16", file=sys.stderr)
        return 2
    result = run_program(sources["program"], sources.get("tests"), timeout=args.timeout, memory_mb=args.memory_mb)
    out = result.to_dict()
    out["isolation_note"] = isolation_note(result.isolation)
    print(json.dumps(out, indent=1))
    return 0 if result.passed else 1
