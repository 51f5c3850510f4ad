"""The run registry: one SQLite file, `results/registry.sqlite`, two tables.

Every `alignlab run` adds one row to `runs` when the notebook starts (status `running`) and
updates it when the notebook ends (`ok` or `failed`); the numbers the notebook saved with
`save_metrics` go to `metrics`, one row per name. Open it with any SQLite client:

    sqlite3 results/registry.sqlite "select id, notebook, status, duration_s from runs"

Schema
------
runs
    id           TEXT PRIMARY KEY  run id, `YYYYmmdd-HHMMSS-<hash8>` (hash8: first 8 hex digits of
                                   the sha256 of the parameters as canonical JSON)
    notebook     TEXT              notebook stem, e.g. `00_overview`
    profile      TEXT              profile name (`quick`, `paper`, ...)
    status       TEXT              `running`, `ok` or `failed`
    params_json  TEXT              the full parameters the notebook ran with (JSON, same as params.json)
    started_at   TEXT              local time, ISO 8601 with UTC offset
    finished_at  TEXT              local time, ISO 8601 with UTC offset (NULL while running)
    duration_s   REAL              wall-clock seconds (NULL while running)
    git_commit   TEXT              `git rev-parse HEAD` of the project (NULL outside git / no commits)
    git_dirty    INTEGER           1 if `git status --porcelain` lists changes, 0 if clean, NULL unknown
    run_dir      TEXT              run folder, relative to the project root
    failed_cell  INTEGER           0-based index of the failing cell in notebooks/<stem>.ipynb
                                   (markdown cells count; NULL if ok or the failure was not a cell)
    error        TEXT              `ename: evalue` of the failure, or `interrupted (...)`
    host         TEXT              the machine the runner process ran on
    pid          INTEGER           the runner process's id there
    heartbeat_at TEXT              when the run last said it was alive (run.json has the latest)
    peak_rss_mb  REAL              peak resident memory of the kernel's process tree, MiB
                                   (`alignlab.run.monitor`)
    run_key      TEXT              the run's identity: hash of notebook content, profile,
                                   parameters and code version (`alignlab.run.execute.run_key`)
    sweep_id     TEXT              the sweep the run belongs to (NULL for `alignlab run`)
metrics
    run_id       TEXT              runs.id
    name         TEXT              metric name, as given to save_metrics
    value        REAL              the number (NULL for NaN / inf)
    PRIMARY KEY (run_id, name)

One writer: every run also writes its own `run.json` (the same columns, plus `params` and
`metrics`) in its run folder. `alignlab run` writes the registry directly; sweep jobs, which may
run on other machines over a network file system, write only their run.json, and the sweep's
driver (or `alignlab runs --ingest`) copies those into the registry (`ingest_run_json`).

A `running` row whose runner is gone is marked failed with error `interrupted (...)` by
`reconcile`, which `alignlab runs` calls first: on this host, when its pid is gone (or was
reused); elsewhere, when its run.json's heartbeat is stale (`alignlab.run.monitor.gone_reason`;
sweeps settle their run.json files the same way before ingesting them).
Databases created before a column existed get it added on open.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from alignlab.paths import project_root, results_dir
from alignlab.run import monitor

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id          TEXT PRIMARY KEY,
    notebook    TEXT NOT NULL,
    profile     TEXT,
    status      TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
    params_json TEXT,
    started_at  TEXT,
    finished_at TEXT,
    duration_s  REAL,
    git_commit  TEXT,
    git_dirty   INTEGER,
    run_dir     TEXT,
    failed_cell INTEGER,
    error       TEXT,
    host        TEXT,
    pid         INTEGER,
    heartbeat_at TEXT,
    peak_rss_mb REAL,
    run_key     TEXT,
    sweep_id    TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_notebook ON runs (notebook, started_at);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs (id),
    name   TEXT NOT NULL,
    value  REAL,
    PRIMARY KEY (run_id, name)
);
"""

RUN_COLUMNS = ("id", "notebook", "profile", "status", "params_json", "started_at", "finished_at",
               "duration_s", "git_commit", "git_dirty", "run_dir", "failed_cell", "error",
               "host", "pid", "heartbeat_at", "peak_rss_mb", "run_key", "sweep_id")
# Columns added after the first release, with their types: added to older databases on open.
ADDED_COLUMNS = {"host": "TEXT", "pid": "INTEGER", "heartbeat_at": "TEXT", "peak_rss_mb": "REAL",
                 "run_key": "TEXT", "sweep_id": "TEXT"}


def registry_path() -> Path:
    return results_dir() / "registry.sqlite"


def connect(path: Path | None = None) -> sqlite3.Connection:
    """Open (and create if needed) the registry. Close it when done (`contextlib.closing`)."""
    path = Path(path) if path is not None else registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30)
    con.executescript(SCHEMA)
    present = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
    for name, kind in ADDED_COLUMNS.items():
        if name not in present:
            con.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
    con.execute("CREATE INDEX IF NOT EXISTS runs_by_sweep ON runs (sweep_id)")
    con.commit()
    return con


def start_run(row: dict, path: Path | None = None) -> None:
    """Insert a run row (status `running`). `row` maps column names to values."""
    columns = [c for c in RUN_COLUMNS if c in row]
    sql = f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    with closing(connect(path)) as con, con:
        con.execute(sql, [row[c] for c in columns])


def finish_run(run_id: str, status: str, *, finished_at: str, duration_s: float,
               failed_cell: int | None = None, error: str | None = None,
               metrics: dict | None = None, peak_rss_mb: float | None = None,
               path: Path | None = None) -> None:
    """Mark a run `ok` or `failed` and store its metrics (name -> float or None)."""
    with closing(connect(path)) as con, con:
        con.execute(
            "UPDATE runs SET status = ?, finished_at = ?, duration_s = ?, failed_cell = ?, error = ?,"
            " peak_rss_mb = ? WHERE id = ?",
            (status, finished_at, duration_s, failed_cell, error, peak_rss_mb, run_id))
        for name, value in (metrics or {}).items():
            con.execute("INSERT OR REPLACE INTO metrics (run_id, name, value) VALUES (?, ?, ?)",
                        (run_id, name, value))


def ingest_run_json(record: dict, path: Path | None = None) -> None:
    """Insert or replace a run from its run.json (`alignlab.run.execute.write_run_json`),
    metrics included. A run.json still `queued` (its job has not started) is not a run yet."""
    if record.get("status") not in ("running", "ok", "failed"):
        return
    row = {c: record.get(c) for c in RUN_COLUMNS}
    if row["params_json"] is None and "params" in record:
        row["params_json"] = json.dumps(record["params"], sort_keys=True, separators=(",", ":"), default=str)
    sql = (f"INSERT OR REPLACE INTO runs ({', '.join(RUN_COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})")
    with closing(connect(path)) as con, con:
        con.execute(sql, [row[c] for c in RUN_COLUMNS])
        con.execute("DELETE FROM metrics WHERE run_id = ?", (row["id"],))
        for name, value in (record.get("metrics") or {}).items():
            con.execute("INSERT INTO metrics (run_id, name, value) VALUES (?, ?, ?)",
                        (row["id"], name, value))


def reconcile(path: Path | None = None) -> list[str]:
    """Settle `running` rows whose runner is gone; returns the ids changed.

    A run whose run.json has finished is ingested from it; one whose runner process on this host
    is gone, or whose run.json heartbeat is stale, is marked failed with error `interrupted
    (...)`: a SIGKILL, the out-of-memory killer or a preempted job leaves no other trace."""
    path = Path(path) if path is not None else registry_path()
    if not path.exists():
        return []
    with closing(connect(path)) as con:
        con.row_factory = sqlite3.Row
        running = [dict(r) for r in con.execute("SELECT * FROM runs WHERE status = 'running'")]
    changed = []
    for run in running:
        record = {}
        if run["run_dir"]:
            try:
                record = json.loads((project_root() / run["run_dir"] / "run.json").read_text())
            except (OSError, ValueError):
                record = {}
        if record.get("id") == run["id"] and record.get("status") in ("ok", "failed"):
            ingest_run_json(record, path)
            changed.append(run["id"])
            continue
        why = monitor.gone_reason(record.get("host") or run["host"], record.get("pid") or run["pid"],
                                  run["started_at"], record.get("heartbeat_at") or run["heartbeat_at"])
        if why:
            mark_interrupted(run["id"], why, path)
            changed.append(run["id"])
    return changed


def mark_interrupted(run_id: str, why: str, path: Path | None = None) -> None:
    with closing(connect(path)) as con, con:
        con.execute("UPDATE runs SET status = 'failed', error = ? WHERE id = ? AND status = 'running'",
                    (f"interrupted ({why})", run_id))


def read_runs(notebook: str | None = None, limit: int | None = None,
              path: Path | None = None, sweep_id: str | None = None) -> list[dict]:
    """Runs, newest first, each a dict of the `runs` columns plus `metrics` (name -> value,
    in the order the notebook saved them)."""
    path = Path(path) if path is not None else registry_path()
    if not path.exists():
        return []
    sql, where, args = "SELECT * FROM runs", [], []
    if notebook:
        where.append("notebook = ?")
        args.append(notebook)
    if sweep_id:
        where.append("sweep_id = ?")
        args.append(sweep_id)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started_at DESC, id DESC"
    if limit:
        sql += " LIMIT ?"
        args.append(int(limit))
    with closing(connect(path)) as con:
        con.row_factory = sqlite3.Row
        runs = [dict(row) for row in con.execute(sql, args)]
        for run in runs:
            rows = con.execute("SELECT name, value FROM metrics WHERE run_id = ? ORDER BY rowid",
                               (run["id"],))
            run["metrics"] = {name: value for name, value in rows}
    return runs
