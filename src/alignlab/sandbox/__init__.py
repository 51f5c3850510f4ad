"""The only way generated code is ever executed: a child process per program, in new network,
pid and mount namespaces where the kernel allows, with rlimits, a wall clock, and a verdict the
program cannot forge. Standard library only (no torch, no numpy), so it is cheap to import.

    from alignlab.sandbox import run_program
    result = run_program(source, tests=["assert f(2) == 4"], timeout=2)

Command line: `alignlab sandbox PROGRAM.py [--tests TESTS.py] [--timeout S] [--memory-mb M]`
(or `python -m alignlab.sandbox ...`).
"""

from alignlab.sandbox.execute import STATUSES, SandboxResult, isolation, isolation_note, run_program

__all__ = ["STATUSES", "SandboxResult", "isolation", "isolation_note", "run_program"]
