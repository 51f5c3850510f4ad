"""Execute validated runs with papermill: run folders, run ids, git state, interruption, registry rows.

A run folder is `results/<stem>/<run-id>/` with run id
`YYYYmmdd-HHMMSS-<first 8 hex of sha256(canonical JSON of params)>` (`-2`, `-3`, ... when the same
parameters start twice in one second). `params.json` is written first, then papermill writes the
executed notebook `<stem>.ipynb` there, and the notebook writes `metrics.json` (`save_metrics`) and
its figures. The kernel runs in notebooks/ and learns its run folder from `$ALIGNLAB_RUN_DIR`.
Every run also keeps `run.json` in its folder (the registry's columns plus `params` and
`metrics`): written when it starts, rewritten with a heartbeat and the kernel's peak memory every
30 s (`alignlab.run.monitor`), and when it ends. `alignlab run` also records it in
`results/registry.sqlite` (`alignlab.run.registry`): `running` when it starts, then `ok` or
`failed` with the failing cell and error. Sweep jobs write only run.json (`record=False`); their
driver ingests it.

Interruption: while a notebook executes, SIGINT (Ctrl-C) and SIGTERM (`kill`, `scancel`) stop
it: the kernel (in its own session, so the terminal's Ctrl-C never reaches it) is shut down,
killed if it lingers, the run is marked `failed` with error `interrupted (SIGINT)` within
seconds, and the interrupt goes on (no later run starts). The handlers are installed even where
SIGINT was inherited as ignored (a command started with `&` from a script): a SIGINT sent to a
run always stops it. What the artifact cache holds stays. A runner killed outright (SIGKILL, the
out-of-memory killer) cannot say so; `registry.reconcile` finds it by its host and pid or its
stale heartbeat.

Identity: `run_key` hashes the notebook file, the profile, the parameters and the code version
(`code_version`: a hash of the alignlab package's source files, so it also covers uncommitted
changes and works outside git). Sweeps skip a run whose key already finished ok.

Headless kernels get `QUIET_KERNEL` in their environment, so progress bars and library advice
do not fill the executed notebook. Papermill (slow to import) is imported only when a notebook is
executed.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from alignlab.paths import atomic_write, cold_run_id, notebooks_dir, project_root, results_dir
from alignlab.run import monitor, registry
from alignlab.run.params import parameters_cell, plan_runs, resolve_notebook

# Environment of a headless kernel; a variable the caller has already set is left as it is.
# tqdm >= 4.66 reads TQDM_<ARG> as the default of <arg>. TQDM_DISABLE covers tqdm.std, but
# tqdm.auto inside a kernel with ipywidgets is tqdm.notebook, which ignores it (and an explicit
# `disable=False` overrides it): a delay longer than any run keeps those bars from ever showing.
QUIET_KERNEL = {
    "TQDM_DISABLE": "1",
    "TQDM_DELAY": "1e9",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",       # huggingface_hub and transformers' own bars
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


@dataclass
class RunResult:
    id: str
    notebook: str
    profile: str
    status: str                      # 'ok' or 'failed'
    run_dir: Path
    params: dict
    duration_s: float = 0.0
    metrics: dict = field(default_factory=dict)
    failed_cell: int | None = None   # index in notebooks/<stem>.ipynb
    error: str | None = None
    peak_rss_mb: float | None = None  # the kernel's process tree
    run_key: str | None = None


def canonical_json(params: dict) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


def make_run_id(params: dict, when: datetime.datetime | None = None) -> str:
    """`YYYYmmdd-HHMMSS-<first 8 hex of sha256 of the canonical JSON of params>`."""
    when = when or datetime.datetime.now()
    digest = hashlib.sha256(canonical_json(params).encode()).hexdigest()[:8]
    return f"{when:%Y%m%d-%H%M%S}-{digest}"


@functools.cache
def code_version() -> str:
    """First 12 hex digits of the sha256 of the alignlab package's Python source files (relative
    path and bytes, in sorted order): the same checkout gives the same version, any edit a new one."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def run_key(stem: str, profile: str, params: dict) -> str:
    """A run's identity: the first 16 hex digits of the sha256 of the notebook file's bytes, the
    profile name, the parameters (canonical JSON) and `code_version()`."""
    notebook = hashlib.sha256(resolve_notebook(stem).read_bytes()).hexdigest()
    identity = {"notebook": stem, "notebook_sha256": notebook, "profile": profile,
                "params": json.loads(canonical_json(params)), "code": code_version()}
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:16]


def git_state(root: Path) -> tuple[str | None, int | None]:
    """(commit, dirty) of the project; None where git cannot tell."""
    def git(*args):
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None
    commit, status = git("rev-parse", "HEAD"), git("status", "--porcelain")
    return (commit.strip() if commit else None), (None if status is None else int(bool(status.strip())))


def display_path(path: Path) -> str:
    """`path` relative to the project root when it is inside it."""
    try:
        return str(Path(path).relative_to(project_root()))
    except ValueError:
        return str(path)


@contextmanager
def _environment(values: dict):
    """Set environment variables for the duration (the kernel inherits them), then restore."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def kernel_environment(stem: str, folder: Path, profile: str = "quick") -> dict:
    """What a headless kernel finds in its environment besides the caller's own."""
    # The kernel imports the same alignlab as this process, wherever it runs from.
    package_parent = str(Path(__file__).resolve().parents[2])
    pythonpath = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)
    quiet = {k: v for k, v in QUIET_KERNEL.items() if k not in os.environ}
    cold_run_id()  # a cold run's id is fixed here, before its first kernel, so all its kernels share it
    return {**quiet, "ALIGNLAB_RUN_DIR": str(folder), "ALIGNLAB_NOTEBOOK": stem, "ALIGNLAB_PROFILE": profile,
            "PYTHONPATH": pythonpath}


def _now() -> datetime.datetime:
    return datetime.datetime.now().astimezone()


def _read_metrics(folder: Path) -> dict:
    """metrics.json of a run folder as {name: float or None}; {} if absent or unreadable."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: (float(v) if isinstance(v, (int, float)) else None)
            for k, v in metrics.items()} if isinstance(metrics, dict) else {}


def _source_cell_index(stem: str, executed_index: int, injected: bool) -> int:
    """Papermill counts cells in the executed notebook, which has the injected-parameters
    cell right after the parameters cell (or first, without one); map back to the source."""
    with open(resolve_notebook(stem), encoding="utf-8") as f:
        param_index = parameters_cell(json.load(f))[0]
    injected_at = 0 if param_index is None else param_index + 1
    return executed_index - 1 if injected and executed_index > injected_at else executed_index


def new_run_folder(stem: str, params: dict, started: datetime.datetime | None = None) -> Path:
    """Create `results/<stem>/<run-id>/`. mkdir is atomic: two processes starting the same
    parameters in the same second get `<run-id>` and `<run-id>-2`, never one folder."""
    run_id = make_run_id(params, started)
    (results_dir() / stem).mkdir(parents=True, exist_ok=True)
    for suffix in range(1, 10_000):
        folder = results_dir() / stem / (run_id if suffix == 1 else f"{run_id}-{suffix}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run folder for {run_id} in {results_dir() / stem}")


def write_run_json(folder: Path, record: dict) -> None:
    """`run.json` of a run folder, replaced atomically (a reader never sees half of it)."""
    text = (json.dumps(record, indent=1, default=str) + "\n").encode()
    atomic_write(Path(folder) / "run.json", lambda f: f.write(text))


def read_run_json(folder: Path) -> dict | None:
    try:
        return json.loads((Path(folder) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class _StopSignals:
    """While armed, SIGINT and SIGTERM terminate the kernel and raise KeyboardInterrupt in the
    main thread (once; later ones are noted and ignored, so the run's record is always written). Off the main thread
    (where Python allows no handlers) it does nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: str | None = None
        self.armed = True
        self._saved = {}

    def _handle(self, signum, frame):
        first = self.received is None
        self.received = self.received or signal.Signals(signum).name
        if first and self.armed:
            monitor.signal_children(signal.SIGTERM)  # the kernel stops now, not after a shutdown request
            raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._saved = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


def execute_run(stem: str, params: dict, profile: str, *, counter: str = "[1/1]",
                progress_bar: bool = True, log_output: bool = False, folder: Path | None = None,
                record: bool = True, sweep_id: str | None = None, key: str | None = None) -> RunResult:
    """Run one notebook with already validated `params` into a new run folder (or `folder`,
    created beforehand by a sweep) and write its run.json; with `record`, also its registry row.
    `key` is the run's identity as its sweep planned it (default: `run_key` now).
    Raises KeyboardInterrupt after recording an interrupted run."""
    import papermill
    import tqdm.std  # noqa: F401  (imported before QUIET_KERNEL is set: this process keeps its bar)
    import zmq
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    started = _now()
    folder = Path(folder) if folder is not None else new_run_folder(stem, params, started)
    run_id = folder.name
    (folder / "params.json").write_text(json.dumps(params, indent=2, default=str) + "\n")
    print(f"{counter} {stem} ({profile}) -> {display_path(folder)}/", flush=True)

    commit, dirty = git_state(project_root())
    key = key or run_key(stem, profile, params)
    row = dict(id=run_id, notebook=stem, profile=profile, status="running",
               params_json=canonical_json(params), started_at=started.isoformat(timespec="seconds"),
               git_commit=commit, git_dirty=dirty, run_dir=display_path(folder),
               host=monitor.hostname(), pid=os.getpid(), heartbeat_at=started.isoformat(timespec="seconds"),
               run_key=key, sweep_id=sweep_id)
    run_json = {**row, "params": params, "code_version": code_version(), "metrics": {}}
    write_run_json(folder, run_json)
    if record:
        registry.start_run(row)

    def beat(peak_mb):
        run_json.update(heartbeat_at=_now().isoformat(timespec="seconds"), peak_rss_mb=peak_mb)
        write_run_json(folder, run_json)

    result = RunResult(run_id, stem, profile, "ok", folder, params, run_key=key)
    t0 = time.monotonic()
    watch = monitor.RunMonitor(beat)
    with _StopSignals() as stop:
        try:
            with watch, _environment(kernel_environment(stem, folder, profile)):
                papermill.execute_notebook(
                    str(resolve_notebook(stem)), str(folder / f"{stem}.ipynb"), parameters=params,
                    kernel_name="python3", language="python", progress_bar=progress_bar,
                    log_output=log_output, cwd=str(notebooks_dir()),
                    store_widget_state=False,  # a headless run displays no widgets worth keeping
                    # CurveZMQ keys for the kernel's sockets where the kernelspec supports them; without,
                    # ipykernel warns on the terminal that its local TCP sockets are not encrypted
                    config=Config(KernelManager={"transport_encryption": "auto" if zmq.has("curve") else "disabled"}))
        except PapermillExecutionError as e:
            result.status = "failed"
            result.failed_cell = _source_cell_index(stem, e.cell_index, injected=bool(params))
            result.error = f"{e.ename}: {e.evalue}"
        except KeyboardInterrupt:
            stop.received = stop.received or "SIGINT"
        except Exception as e:  # the kernel died, could not start, ...
            result.status, result.error = "failed", f"{type(e).__name__}: {e}"
        stop.armed = False
        if stop.received:  # also when the signal came while papermill was already returning
            monitor.stop_children()
            result.status, result.error, result.failed_cell = "failed", f"interrupted ({stop.received})", None

        result.duration_s = time.monotonic() - t0
        result.metrics = _read_metrics(folder)
        result.peak_rss_mb = watch.peak_mb
        finished = _now().isoformat(timespec="seconds")
        run_json.update(status=result.status, finished_at=finished, heartbeat_at=finished,
                        duration_s=round(result.duration_s, 3), failed_cell=result.failed_cell,
                        error=result.error, metrics=result.metrics, peak_rss_mb=result.peak_rss_mb)
        write_run_json(folder, run_json)
        if record:
            registry.finish_run(run_id, result.status, finished_at=finished,
                                duration_s=round(result.duration_s, 3), failed_cell=result.failed_cell,
                                error=result.error, metrics=result.metrics, peak_rss_mb=result.peak_rss_mb)
    if stop.received:
        print(f"    interrupted ({stop.received}) after {result.duration_s:.1f}s", flush=True)
        raise KeyboardInterrupt
    if result.status == "failed":
        where = f"cell {result.failed_cell}: " if result.failed_cell is not None else ""
        print(f"    failed after {result.duration_s:.1f}s, {where}{result.error}", flush=True)
    return result


def run_plans(plans: list[tuple[str, dict]], profile: str, *, progress_bar: bool = True,
              log_output: bool = False) -> list[RunResult]:
    """Execute validated runs (`params.plan_runs`) one after the other. A failed run does not
    stop the rest (look at each result's status); an interrupt does."""
    return [execute_run(stem, params, profile, counter=f"[{i}/{len(plans)}]",
                        progress_bar=progress_bar, log_output=log_output)
            for i, (stem, params) in enumerate(plans, 1)]


def run_notebook(notebook: str, profile: str = "quick", overrides: dict | None = None,
                 **kwargs) -> RunResult:
    """Validate, then run one notebook (keyword arguments as for `run_plans`)."""
    return run_plans(plan_runs([notebook], profile, overrides), profile, **kwargs)[0]
