"""Sweeps, interruption, the registry's liveness checks, and the cache on unreliable locks.

Everything runs in a temporary project (`$ALIGNLAB_ROOT`) holding the runner's test notebooks
(tests/notebooks/90_ok, 91_fails). Planning tests never start a kernel; the tests marked slow
start a few (each 90_ok run takes seconds); the Slurm test runs only where slurm-wlm is installed
(scripts/slurm/ starts and stops a one-node cluster).
"""

import datetime
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import types
from pathlib import Path

import psutil
import pytest

from alignlab.run import cli, execute, monitor, registry, sweep
from alignlab.study_config import ParameterError

HERE = Path(__file__).parent
REPO = HERE.parent
SLURM_SCRIPTS = REPO / "scripts" / "slurm"


@pytest.fixture
def project(runner_project, monkeypatch):
    """The runner's tiny project (conftest). The driver's code version is fixed: edits elsewhere in
    the checkout must not make a finished run look stale between two launches of one test."""
    monkeypatch.setattr(execute, "code_version", lambda: "test-version")
    return runner_project


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if anything starts a notebook or a local job."""
    import papermill

    def execute_notebook(*args, **kwargs):
        raise AssertionError("papermill.execute_notebook called: validation came too late")

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    monkeypatch.setattr(subprocess, "Popen", None)


# ---------------------------------------------------------------------------------------------
# Planning: every combination validated before anything exists

def test_plan_is_the_cross_product_with_one_identity_per_distinct_run(project):
    plan = sweep.plan_sweep("90_ok", "quick", {"label": "b"},
                            sweep.parse_grid([("n_items", "[1, 2, 2]"), ("scale", "[0.5, 1]")]))
    assert [r.varying for r in plan.runs] == [
        {"n_items": 1, "scale": 0.5}, {"n_items": 1, "scale": 1}, {"n_items": 2, "scale": 0.5},
        {"n_items": 2, "scale": 1}]  # the repeated 2 runs once
    assert all(r.params["label"] == "b" for r in plan.runs)
    assert len({r.key for r in plan.runs}) == 4
    assert plan.id.startswith("90_ok-") and plan.id == sweep.plan_sweep(
        "90_ok", "quick", {"label": "b"}, {"n_items": [1, 2, 2], "scale": [0.5, 1]}).id
    # the identity: parameters, profile, notebook content and code version
    params = plan.runs[0].params
    key = execute.run_key("90_ok", "quick", params)
    assert key == plan.runs[0].key and key != execute.run_key("90_ok", "paper", params)
    notebook = project / "notebooks" / "90_ok.ipynb"
    notebook.write_text(notebook.read_text().replace("progress-bar", "progress bar"))
    assert execute.run_key("90_ok", "quick", params) != key
    assert not (project / "results").exists()


@pytest.mark.parametrize("argv, words", [
    (["--grid", "n_itemz", "[1, 2]"], ["no parameter 'n_itemz'", "--grid", "Did you mean 'n_items'"]),
    (["--grid", "n_items", "[1, x]"], ["'n_items'", "--grid", "an int", "'x'"]),
    (["--grid", "label", "[a, c]"], ["'label'", "one of: a, b", "'c'"]),
    (["--grid", "n_items", "3"], ["--grid n_items", "non-empty YAML list"]),
    (["--grid", "n_items", "[1]", "-p", "n_items", "2"], ["both -p and --grid"]),
    (["--grid", "n_items", "[1]", "--engine", "slurm", "--slurm-partition", "x"], ["sbatch", "--engine local"]),
    (["--grid", "n_items", "[1]", "--detach"], ["--detach needs --engine slurm"]),
    (["--grid", "n_items", "[1]", "--jobs", "0"], ["--jobs must be >= 1"]),
])
def test_bad_sweeps_fail_before_anything_is_created(project, no_kernel, monkeypatch, capsys, argv, words):
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no Slurm here
    assert cli.main(["sweep", "90_ok", *argv]) == 2
    err = capsys.readouterr().err
    assert all(word in err for word in words), err
    assert not (project / "results").exists()


def test_unreachable_slurm_and_missing_submitit_are_clear_errors(project, monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sbatch", "sinfo"):
        (bin_dir / name).write_text("#!/bin/sh\necho 'slurm_load_partitions: Unable to contact slurm controller' >&2\n"
                                    "exit 1\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ParameterError, match="Slurm cannot be reached.*Unable to contact"):
        sweep.check_engine("slurm", {})
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    with pytest.raises(ParameterError, match="needs submitit: .*pip install submitit"):
        sweep.check_engine("submitit-local", {})


def test_slurm_resources_come_from_flags_over_the_profile(project):
    (project / "profiles" / "cluster.yaml").write_text(
        "slurm:\n  partition: gpu\n  gpus_per_job: 1\n  time_min: 30\n")
    assert sweep.slurm_resources("cluster", {"time_min": 90, "mem_gb": None}) == {
        "slurm_partition": "gpu", "gpus_per_node": 1, "timeout_min": 90}
    (project / "profiles" / "bad.yaml").write_text("slurm:\n  gpus: 1\n")
    with pytest.raises(ParameterError, match="unknown gpus; allowed: partition"):
        sweep.slurm_resources("bad", {})


def test_planning_100_runs_takes_under_two_seconds_without_heavy_imports():
    """On a real study (its Config checks included), in a fresh interpreter, imports included."""
    code = ("import sys, time; t = time.monotonic()\n"
            "from alignlab.run import sweep\n"
            "grid = {'seeds': [[s] for s in range(25)], 'n_questions': [50, 100, 150, 200]}\n"
            "plan = sweep.plan_sweep('00_overview', 'quick', {}, grid)\n"
            "heavy = [m for m in ('torch', 'papermill', 'submitit', 'pandas') if m in sys.modules]\n"
            "print(len(plan.runs), round(time.monotonic() - t, 2), heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    runs, seconds, heavy = out.stdout.split(maxsplit=2)
    assert runs == "100" and heavy.strip() == "[]"
    assert float(seconds) < 2.0, f"planning 100 runs took {seconds} s"


def test_dry_run_lists_the_runs(project, no_kernel, capsys):
    assert cli.main(["sweep", "90_ok", "--grid", "n_items", "[1, 2]", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 runs of 90_ok (quick) on local" in out and "[2/2] n_items=2" in out


# ---------------------------------------------------------------------------------------------
# The registry: one writer, run.json ingested, runs whose runner is gone

def _record(project, run_id="20260101-000000-aaaaaaaa", **fields):
    folder = project / "results" / "90_ok" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    record = {"id": run_id, "notebook": "90_ok", "profile": "quick", "status": "running",
              "params": {"n_items": 1}, "started_at": now, "heartbeat_at": now,
              "run_dir": f"results/90_ok/{run_id}", "host": monitor.hostname(), "pid": os.getpid(),
              "metrics": {}, **fields}
    execute.write_run_json(folder, record)
    return record


def test_runs_whose_runner_is_gone_show_as_interrupted(project, capsys):
    old = (datetime.datetime.now().astimezone() - datetime.timedelta(hours=1)).isoformat(timespec="seconds")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cases = {
        "20260101-000000-00000001": {},                                   # this process: alive
        "20260101-000000-00000002": {"pid": dead.pid},                    # gone
        "20260101-000000-00000003": {"host": "node-7", "pid": 1},         # elsewhere, fresh heartbeat
        "20260101-000000-00000004": {"host": "node-7", "pid": 1, "heartbeat_at": old},  # stale
        "20260101-000000-00000005": {"pid": 1, "started_at": old},        # pid 1 started before: alive
    }
    for run_id, fields in cases.items():
        registry.ingest_run_json(_record(project, run_id, **fields))
    assert sorted(registry.reconcile()) == ["20260101-000000-00000002", "20260101-000000-00000004"]
    runs = {r["id"]: r for r in registry.read_runs()}
    assert runs["20260101-000000-00000002"]["error"] == f"interrupted (runner process {dead.pid} on " \
                                                       f"{monitor.hostname()} is gone)"
    assert runs["20260101-000000-00000004"]["error"].startswith("interrupted (no heartbeat from node-7")
    assert [runs[i]["status"] for i in sorted(runs)] == ["running", "failed", "running", "failed", "running"]
    assert cli.main(["runs"]) == 0
    assert sum("interrupted" in line for line in capsys.readouterr().out.splitlines()) == 2


def test_ingest_adds_run_json_and_old_registries_gain_the_new_columns(project, capsys):
    path = project / "results" / "registry.sqlite"
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as con:  # the first release's schema
        con.executescript(
            "CREATE TABLE runs (id TEXT PRIMARY KEY, notebook TEXT NOT NULL, profile TEXT, status TEXT NOT NULL"
            " CHECK (status IN ('running', 'ok', 'failed')), params_json TEXT, started_at TEXT, finished_at TEXT,"
            " duration_s REAL, git_commit TEXT, git_dirty INTEGER, run_dir TEXT, failed_cell INTEGER, error TEXT);"
            "CREATE TABLE metrics (run_id TEXT NOT NULL, name TEXT NOT NULL, value REAL, PRIMARY KEY (run_id, name));"
            "INSERT INTO runs (id, notebook, status) VALUES ('old', '90_ok', 'ok');")
    _record(project, status="ok", peak_rss_mb=321.5, duration_s=2.0, metrics={"acc": 0.5}, sweep_id="s1")
    _record(project, "20260101-000000-bbbbbbbb", status="queued")  # not started: not a run yet
    assert cli.main(["runs", "--ingest"]) == 0
    assert "ingested 1 run folders" in capsys.readouterr().out
    runs = {r["id"]: r for r in registry.read_runs()}
    assert set(runs) == {"old", "20260101-000000-aaaaaaaa"}
    new = runs["20260101-000000-aaaaaaaa"]
    assert (new["peak_rss_mb"], new["sweep_id"], new["metrics"]) == (321.5, "s1", {"acc": 0.5})
    assert json.loads(new["params_json"]) == {"n_items": 1}
    assert cli.main(["runs"]) == 0
    assert "322 MB" in capsys.readouterr().out


def test_monitor_measures_the_peak_memory_of_child_processes():
    code = "import time; x = bytearray(200 * 2**20); time.sleep(1.5)"
    with monitor.RunMonitor() as watch:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert 200 < watch.peak_mb < 400


# ---------------------------------------------------------------------------------------------
# The artifact cache when file locks are unreliable

def test_cache_computes_without_a_lock_that_fails_or_never_comes(tmp_path, monkeypatch):
    import filelock

    from alignlab import cache as cache_module
    from alignlab.cache import Cache

    monkeypatch.setattr(cache_module, "_warned_about_locks", False)
    store = Cache(tmp_path / "cache")

    def no_lock_manager(self, *args, **kwargs):
        raise OSError(37, "No locks available")  # ENOLCK: NFS without a lock manager

    monkeypatch.setattr(filelock.FileLock, "acquire", no_lock_manager)
    with pytest.warns(RuntimeWarning, match="computing without it"):
        assert store.memo("k", "1", lambda: {"a": 1}, x=1) == {"a": 1}
    assert store.memo("k", "1", lambda: {"a": 2}, x=1) == {"a": 1}  # stored: a hit
    monkeypatch.undo()

    # a lock held elsewhere and never released: wait the timeout, then compute anyway
    monkeypatch.setenv("ALIGNLAB_CACHE_LOCK_TIMEOUT", "0.3")
    key = store.key("k", "1", x=2)
    folder = store.root / "k" / key[:2]
    folder.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", f"from filelock import FileLock; import time\n"
                               f"l = FileLock({str(folder / (key + '.lock'))!r}); l.acquire(); print(1, flush=True);"
                               f" time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "1"
        t = time.monotonic()
        with pytest.warns(RuntimeWarning, match="Timeout"):
            assert store.memo("k", "1", lambda: [3], x=2) == [3]
        assert time.monotonic() - t < 10
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------------------------------------
# Interruption of a real run: Ctrl-C, SIGTERM, SIGKILL

def _start_run(project, extra_env=None, ignore_sigint=False):
    def preexec():
        os.setsid()  # its own process group, like a shell's foreground job
        signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_sigint else signal.SIG_DFL)

    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "alignlab.run.cli", "run", "90_ok", "-p", "sleep_s", "120",
                             "--no-progress"], preexec_fn=preexec, env=env, cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pids = list((project / "results" / "90_ok").glob("*/kernel.pid"))
        if pids and pids[0].read_text():
            return proc, int(pids[0].read_text()), pids[0].parent
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read())
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the kernel did not start in 120 s")


def _gone(pid, within_s):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("signum, ignored", [(signal.SIGINT, True), (signal.SIGTERM, False)],
                         ids=["ctrl-c-even-where-sigint-was-ignored", "sigterm"])
def test_a_signal_stops_the_kernel_and_marks_the_run_interrupted(project, signum, ignored):
    """Ctrl-C sends SIGINT to the foreground process group; the kernel sits in a session of its
    own. A runner started with SIGINT ignored (`cmd &` in a script) computed on before."""
    proc, kernel_pid, folder = _start_run(project, ignore_sigint=ignored)
    t = time.monotonic()
    os.killpg(proc.pid, signum)
    assert proc.wait(timeout=30) == 130
    assert time.monotonic() - t < 10, "the run took more than 10 s to stop"
    assert _gone(kernel_pid, 5), "the kernel survived"
    name = signal.Signals(signum).name
    [run] = registry.read_runs()
    assert (run["status"], run["error"]) == ("failed", f"interrupted ({name})")
    record = json.loads((folder / "run.json").read_text())
    assert (record["status"], record["error"]) == ("failed", f"interrupted ({name})")
    assert record["peak_rss_mb"] > 20  # the kernel's, measured while it ran
    assert not (folder / "metrics.json").exists()


@pytest.mark.slow
def test_a_killed_runner_shows_as_interrupted_not_running(project, capsys):
    proc, kernel_pid, folder = _start_run(project, extra_env={"ALIGNLAB_HEARTBEAT_S": "1"})
    time.sleep(1.5)  # at least one heartbeat
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    try:
        [run] = registry.read_runs()
        assert run["status"] == "running"  # what the registry was left with
        assert cli.main(["runs"]) == 0
        out = capsys.readouterr().out
        assert "interrupted" in out and "running" not in out
        [run] = registry.read_runs()
        assert run["error"] == f"interrupted (runner process {proc.pid} on {monitor.hostname()} is gone)"
        assert json.loads((folder / "run.json").read_text())["heartbeat_at"] > run["started_at"]
        assert _gone(kernel_pid, 15), "the kernel outlived its runner"  # ipykernel polls its parent
    finally:
        if psutil.pid_exists(kernel_pid):
            os.kill(kernel_pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# Real sweeps: the local engine, submitit's local executor

@pytest.mark.slow
def test_local_sweep_runs_ingests_resumes_and_collects(project, capsys):
    argv = ["sweep", "90_ok", "--grid", "n_items", "[1, 2]", "--grid", "label", "[b]", "-p", "scale", "2",
            "--jobs", "2"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    plan = sweep.plan_sweep("90_ok", "quick", {"scale": 2}, {"n_items": [1, 2], "label": ["b"]})
    assert f"sweep {plan.id}: 2 runs, 2 to run on local" in out and "2 ok" in out

    # one registry row per run, written by this driver from each job's run.json
    runs = registry.read_runs(sweep_id=plan.id)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"ok"}
    assert {r["run_key"] for r in runs} == {r.key for r in plan.runs}
    assert all(r["peak_rss_mb"] > 20 and r["host"] == monitor.hostname() for r in runs)
    assert {(json.loads(r["params_json"])["n_items"], r["metrics"]["total"]) for r in runs} == {(1, 2.0), (2, 4.0)}
    assert len(list((project / "results" / "sweeps" / plan.id / "logs").glob("*.log"))) == 2

    # the same command again: nothing to do
    assert cli.main(argv) == 0
    assert "2 runs, 0 to run (2 ok: skipped)" in capsys.readouterr().out

    # one run failed (say, killed): only it runs again, in a new folder
    saved, _ = sweep.load_sweep(plan.id)
    victim = saved.runs[1]
    first = project / victim.attempts[-1]["run_dir"]
    record = json.loads((first / "run.json").read_text())
    execute.write_run_json(first, {**record, "status": "failed", "error": "interrupted (SIGKILL)"})
    assert cli.main(argv) == 0
    assert "2 runs, 1 to run (1 ok: skipped)" in capsys.readouterr().out
    saved, _ = sweep.load_sweep(plan.id)
    assert [len(r.attempts) for r in saved.runs] == [1, 2]
    assert saved.runs[1].attempts[0]["run_dir"] == victim.attempts[-1]["run_dir"]

    # status, the table, the tidy file
    assert cli.main(["sweep", "status", plan.id]) == 0
    assert capsys.readouterr().out.count(" ok ") == 2
    assert cli.main(["runs", "--sweep", plan.id]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[:6] == ["n_items", "label", "status", "duration", "peak", "mem"]
    assert cli.main(["sweep", "collect", plan.id]) == 0
    import pandas as pd
    frame = pd.read_csv(project / "results" / "sweeps" / plan.id / "collected.csv")
    assert list(frame.columns) == ["sweep_id", "run_id", "n_items", "label", "metric", "value"]
    totals = frame[frame.metric == "total"].set_index(["n_items", "label"])["value"]
    assert totals.to_dict() == {(1, "b"): 2.0, (2, "b"): 4.0}


@pytest.mark.slow
def test_submitit_local_executor_runs_the_slurm_code_path(project, capsys):
    pytest.importorskip("submitit")
    argv = ["sweep", "90_ok", "--grid", "n_items", "[1, 2]", "--engine", "submitit-local"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "submitted job array" in out and "2 ok" in out
    runs = registry.read_runs()
    assert sorted(r["metrics"]["total"] for r in runs) == [1.5, 3.0]
    plan_id = runs[0]["sweep_id"]
    assert list((project / "results" / "sweeps" / plan_id / "logs").glob("*/*.out"))  # submitit's logs
    assert cli.main(argv) == 0
    assert "0 to run (2 ok: skipped)" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# A real Slurm: a one-node cluster on this host (scripts/slurm/)

def _slurm_skip_reason() -> str | None:
    if shutil.which("slurmctld") is None or shutil.which("slurmd") is None:
        return "slurm-wlm is not installed (apt-get install slurm-wlm munge; scripts/slurm/start.sh)"
    if os.geteuid() != 0:
        return "starting slurmctld and slurmd needs root"
    return None


@pytest.fixture
def slurm_cluster():
    reason = _slurm_skip_reason()
    if reason:
        pytest.skip(reason)
    started = subprocess.run(["bash", str(SLURM_SCRIPTS / "start.sh")], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield
    finally:
        subprocess.run(["bash", str(SLURM_SCRIPTS / "stop.sh")], capture_output=True, timeout=60)


@pytest.mark.slow
def test_slurm_sweep_runs_is_ingested_and_resumes_after_a_cancelled_job(project, slurm_cluster, capsys):
    argv = ["sweep", "90_ok", "--grid", "n_items", "[1, 2, 3]", "--engine", "slurm", "--slurm-partition",
            "debug", "--jobs", "1", "--time", "10"]
    assert cli.main([*argv, "--detach"]) == 0
    out = capsys.readouterr().out
    plan = sweep.plan_sweep("90_ok", "quick", {}, {"n_items": [1, 2, 3]})
    assert "submitted job array" in out
    saved, engine = sweep.load_sweep(plan.id)
    assert engine == "slurm"
    # with one job at a time, the last one is still pending: cancel it
    last = saved.runs[-1].attempts[-1]["job_id"]
    subprocess.run(["scancel", last], check=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and sweep.state_counts(saved, "slurm").get("ok", 0) < 2:
        time.sleep(2)
    counts = sweep.state_counts(saved, "slurm")
    assert counts == {"ok": 2, "not started": 1}, counts
    assert cli.main(["sweep", "status", plan.id]) == 1  # not all ok
    assert len(registry.read_runs(sweep_id=plan.id)) == 2  # ingested by `sweep status`

    assert cli.main(argv) == 0  # resume: only the cancelled one, waited for
    out = capsys.readouterr().out
    assert "3 runs, 1 to run (2 ok: skipped)" in out and "3 ok" in out
    runs = registry.read_runs(sweep_id=plan.id)
    assert sorted(r["metrics"]["total"] for r in runs) == [1.5, 3.0, 4.5]


# ---------------------------------------------------------------------------------------------
# alignlab sandbox: handed to alignlab.sandbox.cli

def test_sandbox_command_hands_its_arguments_to_the_sandbox_cli(monkeypatch):
    calls = []
    fake = types.ModuleType("alignlab.sandbox.cli")
    fake.main = lambda argv: calls.append(argv) or 3
    if "alignlab.sandbox" not in sys.modules:
        monkeypatch.setitem(sys.modules, "alignlab.sandbox", types.ModuleType("alignlab.sandbox"))
    monkeypatch.setitem(sys.modules, "alignlab.sandbox.cli", fake)
    argv = ["prog.py", "--tests", "t.py", "--timeout", "5", "--memory-mb", "256"]
    assert cli.main(["sandbox", *argv]) == 3
    assert calls == [argv]
