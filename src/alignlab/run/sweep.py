"""Sweeps: the cross product of parameter grids, each combination an ordinary run, on an engine.

    alignlab sweep 01_w2sg_ensembles --grid seed "[0, 1, 2]" --grid strong_model "[a, b]" --jobs 2
    alignlab sweep status SWEEP_ID          alignlab sweep collect SWEEP_ID

1. Plan (`plan_sweep`): every combination's parameters are validated by the runner's own
   `resolve_params` before anything is created or submitted; a bad name or value names the
   combination. Each combination gets its identity, `execute.run_key` (notebook file, profile,
   parameters, code version); equal combinations are run once.
2. The sweep's id is `<stem>-<hash8>` of (notebook, profile, fixed parameters, grid): the same
   command finds the same folder, `results/sweeps/<id>/`, which holds `sweep.json` (the plan and
   every attempt's run folder) and `logs/`.
3. Resume: a combination whose latest attempt finished ok with the same run key (computed when
   it was planned; the job records the code version it actually ran) is skipped, one
   still queued or running is left alone, the rest (failed, interrupted, never started, or run
   by other code) get a new attempt: a new run folder `results/<stem>/<run-id>/`, created with
   an atomic mkdir, so two jobs never share one.
4. Engines. `local`: at most `--jobs` runs at once, each a child process
   `python -m alignlab.run.sweep RUN_DIR`. `slurm`: one job array through submitit (resources
   from flags or the profile's `slurm:` section, logs per job under `logs/`). `submitit-local`:
   submitit's local executor, the Slurm code path on one machine (for tests).
5. One registry writer. A job writes only its run folder's `run.json`; this driver (while it
   waits, or later `alignlab sweep status` / `alignlab runs --ingest`) copies run.json files
   into `results/registry.sqlite`. Job states come from run folders and `squeue`, never `sacct`
   (absent without Slurm accounting).

Everything before submission is cheap: no torch, papermill or submitit import to validate.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from alignlab.paths import atomic_write, project_root, results_dir
from alignlab.run import execute, monitor, registry
from alignlab.run.params import (
    check_name,
    check_value,
    load_profile,
    params_resolver,
    parse_value,
    read_parameters,
    resolve_notebook,
    resolve_paths,
)
from alignlab.study_config import ParameterError

ENGINES = ("local", "slurm", "submitit-local")
# The `slurm:` section of a profile: name -> the submitit parameter it sets
SLURM_RESOURCES = {"partition": "slurm_partition", "gpus_per_job": "gpus_per_node",
                   "cpus_per_job": "cpus_per_task", "mem_gb": "mem_gb", "time_min": "timeout_min"}
POLL_S = 1.0


@dataclass
class SweepRun:
    key: str                 # execute.run_key of (notebook, profile, params, code)
    varying: dict            # this combination's grid values
    params: dict             # the full validated parameters
    attempts: list = field(default_factory=list)  # [{"run_dir": ..., "job_id": ...}], oldest first


@dataclass
class Sweep:
    id: str
    notebook: str
    profile: str
    fixed: dict
    grid: dict
    runs: list[SweepRun]

    @property
    def folder(self) -> Path:
        return sweep_folder(self.id)


def sweep_folder(sweep_id: str) -> Path:
    return results_dir() / "sweeps" / sweep_id


# ---------------------------------------------------------------------------------------------
# Planning: every combination validated before anything is created

def parse_grid(pairs: list[tuple[str, str]]) -> dict:
    """`--grid NAME "[v1, v2]"` pairs -> {name: [values]} (YAML lists, like -p values)."""
    grid = {}
    for name, text in pairs:
        values = parse_value(text)
        if not isinstance(values, list) or not values:
            raise ParameterError(f"--grid {name}: give a non-empty YAML list of values, e.g. "
                                 f"--grid {name} \"[0, 1, 2]\"; got {text!r}.")
        if name in grid:
            raise ParameterError(f"--grid {name} is given twice; put all its values in one list.")
        grid[name] = values
    return grid


def make_sweep_id(stem: str, profile: str, fixed: dict, grid: dict) -> str:
    spec = execute.canonical_json({"notebook": stem, "profile": profile, "fixed": fixed, "grid": grid})
    return f"{stem}-{hashlib.sha256(spec.encode()).hexdigest()[:8]}"


def plan_sweep(notebook: str, profile: str = "quick", fixed: dict | None = None,
               grid: dict | None = None) -> Sweep:
    """Validate every combination of `grid` (with `fixed` overrides) and return the plan.
    Raises ParameterError naming the first bad combination; creates nothing."""
    fixed, grid = dict(fixed or {}), dict(grid or {})
    stem = resolve_notebook(notebook).stem
    parameters = read_parameters(stem)
    for name, values in grid.items():  # each value once, so an error names --grid
        where = "set with --grid"
        check_name(stem, name, parameters, where)
        if name in fixed:
            raise ParameterError(f"{name!r} is set with both -p and --grid; keep one.")
        p = parameters[name]
        for value in values:
            check_value(stem, p, resolve_paths(stem, name, value, Path.cwd(), where, p.choices), where)
    resolve = params_resolver(stem, profile)
    runs, seen = [], set()
    names = list(grid)
    for values in itertools.product(*(grid[n] for n in names)):
        varying = dict(zip(names, values))
        try:
            params = resolve({**fixed, **varying})
        except ParameterError as e:
            where = ", ".join(f"{k}={v!r}" for k, v in varying.items())
            raise ParameterError(f"sweep combination ({where}): {e}") from None
        key = execute.run_key(stem, profile, params)
        if key not in seen:  # equal combinations run once
            seen.add(key)
            runs.append(SweepRun(key, varying, params))
    return Sweep(make_sweep_id(stem, profile, fixed, grid), stem, profile, fixed, grid, runs)


# ---------------------------------------------------------------------------------------------
# The sweep folder

def save_sweep(sweep: Sweep, engine: str | None = None) -> None:
    document = {"id": sweep.id, "notebook": sweep.notebook, "profile": sweep.profile,
                "fixed": sweep.fixed, "grid": sweep.grid, "engine": engine,
                "runs": [{"key": r.key, "varying": r.varying, "params": r.params, "attempts": r.attempts}
                         for r in sweep.runs]}
    text = (json.dumps(document, indent=1, default=str) + "\n").encode()
    atomic_write(sweep.folder / "sweep.json", lambda f: f.write(text))


def load_sweep(sweep_id: str) -> tuple[Sweep, str | None]:
    """(the sweep, its engine) from results/sweeps/<id>/sweep.json."""
    path = sweep_folder(sweep_id) / "sweep.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = sorted(q.parent.name for q in (results_dir() / "sweeps").glob("*/sweep.json"))
        raise ParameterError(f"no sweep {sweep_id!r} (no {path}). Sweeps here: "
                             f"{', '.join(known) or '(none)'}.") from None
    runs = [SweepRun(r["key"], r["varying"], r["params"], r.get("attempts", [])) for r in doc["runs"]]
    return Sweep(doc["id"], doc["notebook"], doc["profile"], doc["fixed"], doc["grid"], runs), doc.get("engine")


def merge_attempts(sweep: Sweep) -> None:
    """Carry the attempts of an earlier launch of the same sweep over to this plan."""
    path = sweep.folder / "sweep.json"
    if not path.is_file():
        return
    earlier, _ = load_sweep(sweep.id)
    by_combination = {execute.canonical_json(r.varying): r.attempts for r in earlier.runs}
    for run in sweep.runs:
        run.attempts = by_combination.get(execute.canonical_json(run.varying), [])


def _absolute(run_dir: str) -> Path:
    return project_root() / run_dir


def attempt_state(attempt: dict, key: str | None = None) -> tuple[str, dict | None]:
    """(state, run.json) of one attempt. States: `queued` (its job has not started), `running`,
    `ok`, `failed`, `interrupted` (stopped, or its runner is gone), `stale` (ok, but another
    notebook, profile, parameters or code version than `key`), `missing` (no run.json)."""
    record = execute.read_run_json(_absolute(attempt["run_dir"]))
    if record is None:
        return "missing", None
    record = settle(record)
    status = record.get("status")
    if status == "failed" and str(record.get("error") or "").startswith("interrupted"):
        return "interrupted", record
    if status == "ok" and key is not None and record.get("run_key") != key:
        return "stale", record
    return status, record


def settle(record: dict) -> dict:
    """A run.json that says `running` although its runner is gone, as `failed`/`interrupted`."""
    if record.get("status") != "running":
        return record
    why = monitor.gone_reason(record.get("host"), record.get("pid"), record.get("started_at"),
                              record.get("heartbeat_at"))
    return record if why is None else {**record, "status": "failed", "error": f"interrupted ({why})"}


def ingest(sweep: Sweep) -> int:
    """Copy the run.json of every started attempt into the registry; returns how many."""
    count = 0
    for run in sweep.runs:
        for attempt in run.attempts:
            state, record = attempt_state(attempt)
            if record is not None and state not in ("queued", "missing"):
                registry.ingest_run_json(record)
                count += 1
    return count


def ingest_results() -> int:
    """`alignlab runs --ingest`: every results/<stem>/<run-id>/run.json into the registry."""
    count = 0
    for path in sorted(results_dir().glob("*/*/run.json")):
        record = execute.read_run_json(path.parent)
        if record and record.get("status") in ("running", "ok", "failed") and record.get("id"):
            registry.ingest_run_json(settle(record))
            count += 1
    return count


# ---------------------------------------------------------------------------------------------
# Launching

def slurm_resources(profile: str, flags: dict) -> dict:
    """submitit parameters from the profile's `slurm:` section, overridden by flags (None: unset)."""
    section = load_profile(profile).get("slurm", {})
    unknown = sorted(set(section) - set(SLURM_RESOURCES))
    if unknown:
        raise ParameterError(f"profile {profile!r}, section 'slurm': unknown {', '.join(unknown)}; "
                             f"allowed: {', '.join(SLURM_RESOURCES)}.")
    values = {**section, **{k: v for k, v in flags.items() if v is not None}}
    return {SLURM_RESOURCES[k]: v for k, v in values.items()}


def check_engine(engine: str, resources: dict) -> None:
    """A clear error, before anything is created, when the engine cannot be used."""
    if engine not in ENGINES:
        raise ParameterError(f"unknown engine {engine!r}; one of: {', '.join(ENGINES)}.")
    if engine == "local":
        return
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ParameterError(f"--engine {engine} needs submitit: .venv/bin/pip install submitit "
                             "(it is a dependency of alignlab; reinstall with `make setup`).") from None
    if engine != "slurm":
        return
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        raise ParameterError("--engine slurm: sbatch/sinfo not found on PATH: run the sweep on a Slurm "
                             "login node, or use --engine local.")
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise ParameterError("--engine slurm: Slurm cannot be reached (sinfo did not answer in 30 s).") from None
    if out.returncode != 0:
        raise ParameterError(f"--engine slurm: Slurm cannot be reached: sinfo says "
                             f"{(out.stderr or out.stdout).strip()!r}.")
    partitions = [p.rstrip("*") for p in out.stdout.split()]
    wanted = resources.get("slurm_partition")
    if wanted and wanted not in partitions:
        raise ParameterError(f"--slurm-partition {wanted!r} does not exist; partitions: "
                             f"{', '.join(partitions) or '(none)'}.")


def launch(sweep: Sweep, engine: str = "local", *, jobs: int | None = None, resources: dict | None = None,
           detach: bool = False, retry: bool = True) -> dict:
    """Submit the combinations that still need a run; wait for them unless `detach`. `jobs`: at
    most this many at once (local default 1; Slurm default: no limit of ours).
    Returns the final {state: count} (as `state_counts`)."""
    resources = resources or {}
    check_engine(engine, resources)
    if jobs is not None and jobs < 1:
        raise ParameterError(f"--jobs must be >= 1; got {jobs}.")
    if detach and engine == "local":
        raise ParameterError("--detach needs --engine slurm (or submitit-local): the local engine "
                             "runs its jobs as children of this command.")
    merge_attempts(sweep)
    todo, skipped = [], {}
    for run in sweep.runs:
        state = attempt_state(run.attempts[-1], run.key)[0] if run.attempts else "new"
        if state == "queued" and not _job_pending(run.attempts[-1], engine):
            state = "not started"  # its job is gone before it ran: submit it again
        if state in ("ok", "queued", "running") or (state in ("failed", "interrupted") and not retry):
            skipped[state] = skipped.get(state, 0) + 1
            continue
        if state == "stale":
            print(f"  {_describe(run.varying)}: ok before, but with another notebook file or code "
                  "version: runs again", flush=True)
        todo.append(run)
    sweep.folder.mkdir(parents=True, exist_ok=True)
    (sweep.folder / "logs").mkdir(exist_ok=True)
    note = ", ".join(f"{n} {s}" for s, n in skipped.items())
    print(f"sweep {sweep.id}: {len(sweep.runs)} runs, {len(todo)} to run"
          + (f" ({note}: skipped)" if note else "") + f" on {engine}", flush=True)

    new = []
    for run in todo:
        folder = execute.new_run_folder(sweep.notebook, run.params)
        record = {"id": folder.name, "notebook": sweep.notebook, "profile": sweep.profile,
                  "status": "queued", "params": run.params, "run_key": run.key, "sweep_id": sweep.id,
                  "run_dir": execute.display_path(folder)}
        execute.write_run_json(folder, record)
        attempt = {"run_dir": record["run_dir"]}
        if engine == "local":  # queued until this driver starts it
            attempt.update(job_host=monitor.hostname(), job_pid=os.getpid())
        run.attempts.append(attempt)
        new.append(run)
    save_sweep(sweep, engine)
    if not new:
        return state_counts(sweep)
    if engine == "local":
        _run_local(sweep, new, jobs or 1)
    else:
        _submit(sweep, new, engine, jobs, resources)
        save_sweep(sweep, engine)
        if detach:
            print(f"submitted {len(new)} jobs; follow them with: alignlab sweep status {sweep.id}")
            return state_counts(sweep, engine=engine)
        _wait(sweep, new, engine)
    ingest(sweep)
    return state_counts(sweep, engine=engine)


def _run_local(sweep: Sweep, runs: list[SweepRun], jobs: int) -> None:
    """At most `jobs` child processes at once. On Ctrl-C every child is interrupted (each marks
    its own run interrupted within seconds), then the interrupt goes on."""
    waiting = list(runs)
    active: dict[subprocess.Popen, SweepRun] = {}
    done = 0
    try:
        while waiting or active:
            while waiting and len(active) < jobs:
                run = waiting.pop(0)
                folder = _absolute(run.attempts[-1]["run_dir"])
                log = open(sweep.folder / "logs" / f"{folder.name}.log", "wb")
                active[subprocess.Popen([sys.executable, "-m", "alignlab.run.sweep", str(folder)],
                                        stdout=log, stderr=subprocess.STDOUT, cwd=project_root())] = run
                log.close()
            time.sleep(POLL_S / 4)
            for proc in [p for p in active if p.poll() is not None]:
                run = active.pop(proc)
                done += 1
                state, record = attempt_state(run.attempts[-1])
                if record is not None and state != "queued":
                    registry.ingest_run_json(record)
                print(f"[{done}/{len(runs)}] {_describe(run.varying)}: {state}", flush=True)
    except KeyboardInterrupt:
        for proc in active:
            proc.send_signal(signal.SIGINT)
        for proc in active:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        ingest(sweep)
        raise


def _submit(sweep: Sweep, runs: list[SweepRun], engine: str, jobs: int | None, resources: dict) -> None:
    import submitit

    folder = sweep.folder / "logs" / "%j"
    if engine == "slurm":
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        limit = {"slurm_array_parallelism": jobs} if jobs else {}
        executor.update_parameters(name=f"alignlab-{sweep.id}", **limit, **{"timeout_min": 60, **resources})
    else:
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=int(resources.get("timeout_min", 60)))
    dirs = [str(_absolute(run.attempts[-1]["run_dir"])) for run in runs]
    submitted = executor.map_array(run_job, dirs)
    for run, job in zip(runs, submitted):
        run.attempts[-1]["job_id"] = str(job.job_id)
        if engine == "submitit-local":
            run.attempts[-1]["job_pid"] = int(job._process.pid)  # submitit keeps the Popen
            run.attempts[-1]["job_host"] = monitor.hostname()
    print(f"submitted job array {submitted[0].job_id.split('_')[0]} ({len(submitted)} jobs), "
          f"logs in {execute.display_path(sweep.folder / 'logs')}/", flush=True)


def _job_pending(attempt: dict, engine: str | None) -> bool:
    """Whether the job behind a queued attempt may still start: its process (the local driver,
    a submitit-local job) is alive, or Slurm still lists it."""
    if "job_pid" in attempt:
        return bool(monitor.runner_alive(attempt.get("job_host"), attempt["job_pid"], None))
    job_id = attempt.get("job_id")
    return job_id is not None and job_id in squeue([job_id])


def squeue(job_ids: list[str]) -> set[str]:
    """The ids (`<array>_<task>`) among `job_ids` that Slurm still lists (pending or running)."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    if not arrays or shutil.which("squeue") is None:
        return set()
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i", "-j", ",".join(arrays)],
                         capture_output=True, text=True, timeout=30)
    return set(out.stdout.split()) if out.returncode == 0 else set()


def _wait(sweep: Sweep, runs: list[SweepRun], engine: str) -> None:
    """Until every submitted run is finished or its job is gone; ingests as they finish."""
    pending = list(runs)
    done = 0
    try:
        while pending:
            time.sleep(POLL_S)
            listed = squeue([r.attempts[-1]["job_id"] for r in pending]) if engine == "slurm" else set()
            for run in list(pending):
                attempt = run.attempts[-1]
                state, record = attempt_state(attempt)
                if state in ("queued", "running", "missing"):
                    alive = (attempt["job_id"] in listed) if engine == "slurm" else _job_pending(attempt, engine)
                    if alive:
                        continue
                    time.sleep(POLL_S)  # the job just ended: its last run.json write may be landing
                    state, record = attempt_state(attempt)
                    if state == "running":  # the job ended without finishing its run
                        record = {**record, "status": "failed", "error": "interrupted (its job ended)"}
                        execute.write_run_json(_absolute(attempt["run_dir"]), record)
                        state = "interrupted"
                    elif state in ("queued", "missing"):
                        state = "not started"  # cancelled before it ran: resume submits it again
                if record is not None and state not in ("queued", "not started"):
                    registry.ingest_run_json(record)
                pending.remove(run)
                done += 1
                print(f"[{done}/{len(runs)}] {_describe(run.varying)}: {state}", flush=True)
    except KeyboardInterrupt:
        print(f"\nstopped waiting; the jobs go on. Follow them with: alignlab sweep status {sweep.id}",
              file=sys.stderr)
        ingest(sweep)
        raise


def _describe(varying: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in varying.items()) or "(no grid)"


# ---------------------------------------------------------------------------------------------
# Status and results

def status_rows(sweep: Sweep, engine: str | None = None) -> list[dict]:
    """One row per combination: its grid values, state, run folder, duration, peak memory."""
    rows = []
    listed = set()
    if engine == "slurm":
        listed = squeue([r.attempts[-1]["job_id"] for r in sweep.runs if r.attempts and "job_id" in r.attempts[-1]])
    for run in sweep.runs:
        state, record = attempt_state(run.attempts[-1], run.key) if run.attempts else ("new", None)
        if state == "queued" and not (run.attempts[-1].get("job_id") in listed
                                      or _job_pending(run.attempts[-1], engine)):
            state = "not started"
        record = record or {}
        rows.append({**run.varying, "state": state, "attempts": len(run.attempts),
                     "duration_s": record.get("duration_s"), "peak_rss_mb": record.get("peak_rss_mb"),
                     "run_dir": run.attempts[-1]["run_dir"] if run.attempts else None,
                     "error": record.get("error")})
    return rows


def state_counts(sweep: Sweep, engine: str | None = None) -> dict:
    counts = {}
    for row in status_rows(sweep, engine):
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return counts


def collect(sweep: Sweep, out: Path | None = None) -> list[Path]:
    """The ok runs as a tidy table, one row per (run, metric): sweep_id, run_id, the grid's
    parameters, metric, value. Written as CSV and, where pyarrow is installed, parquet;
    list-valued parameters are JSON text. Returns the files written."""
    import pandas as pd

    rows = []
    for run in sweep.runs:
        for attempt in reversed(run.attempts):
            state, record = attempt_state(attempt, run.key)
            if state == "ok":
                break
        else:
            continue
        grid = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in run.varying.items()}
        for name, value in (record.get("metrics") or {}).items():
            rows.append({"sweep_id": sweep.id, "run_id": record["id"], **grid,
                         "metric": name, "value": value})
    columns = ["sweep_id", "run_id", *sweep.grid, "metric", "value"]
    frame = pd.DataFrame(rows, columns=columns)
    out = Path(out) if out is not None else sweep.folder / "collected"
    out.parent.mkdir(parents=True, exist_ok=True)
    written = [out.with_suffix(".csv")]
    frame.to_csv(written[0], index=False)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return written
    frame.to_parquet(out.with_suffix(".parquet"), index=False)
    return written + [out.with_suffix(".parquet")]


# ---------------------------------------------------------------------------------------------
# The job: what runs on a worker (a child process, a submitit job)

def run_job(run_dir: str) -> str:
    """Execute the queued run in `run_dir` (its run.json says what to run); no registry writes.
    Returns the run's status."""
    folder = Path(run_dir)
    record = execute.read_run_json(folder)
    if record is None:
        raise FileNotFoundError(f"{folder / 'run.json'}: no queued run here")
    result = execute.execute_run(record["notebook"], record["params"], record["profile"],
                                 folder=folder, record=False, sweep_id=record.get("sweep_id"),
                                 key=record.get("run_key"),
                                 counter=f"[{record.get('sweep_id')}]", progress_bar=False)
    return result.status


def main(argv: list[str] | None = None) -> int:
    """`python -m alignlab.run.sweep RUN_DIR`: one local-engine job. Exit 0 ok, 1 failed, 130
    interrupted."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m alignlab.run.sweep RUN_DIR", file=sys.stderr)
        return 2
    try:
        return 0 if run_job(argv[0]) == "ok" else 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
