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
    error        TEXT              `ename: evalue` of the failure, or `interrupted`
metrics
    run_id       TEXT              runs.id
    name         TEXT              metric name, as given to save_metrics
    value        REAL              the number (NULL for NaN / inf)
    PRIMARY KEY (run_id, name)

A run left `running` after its process died stays `running`: that is the honest answer.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from alignlab.paths import results_dir

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
    error       TEXT
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
               "duration_s", "git_commit", "git_dirty", "run_dir", "failed_cell", "error")


def registry_path() -> Path:
    return results_dir() / "registry.sqlite"


def connect(path: Path | None = None) -> sqlite3.Connection:
    """Open (and create if needed) the registry. Close it when done (`contextlib.closing`)."""
    path = Path(path) if path is not None else registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30)
    con.executescript(SCHEMA)
    return con


def start_run(row: dict, path: Path | None = None) -> None:
    """Insert a run row (status `running`). `row` maps column names to values."""
    columns = [c for c in RUN_COLUMNS if c in row]
    sql = f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    with closing(connect(path)) as con, con:
        con.execute(sql, [row[c] for c in columns])


def finish_run(run_id: str, status: str, *, finished_at: str, duration_s: float,
               failed_cell: int | None = None, error: str | None = None,
               metrics: dict | None = None, path: Path | None = None) -> None:
    """Mark a run `ok` or `failed` and store its metrics (name -> float or None)."""
    with closing(connect(path)) as con, con:
        con.execute(
            "UPDATE runs SET status = ?, finished_at = ?, duration_s = ?, failed_cell = ?, error = ?"
            " WHERE id = ?",
            (status, finished_at, duration_s, failed_cell, error, run_id))
        for name, value in (metrics or {}).items():
            con.execute("INSERT OR REPLACE INTO metrics (run_id, name, value) VALUES (?, ?, ?)",
                        (run_id, name, value))


def read_runs(notebook: str | None = None, limit: int | None = None,
              path: Path | None = None) -> list[dict]:
    """Runs, newest first, each a dict of the `runs` columns plus `metrics` (name -> value,
    in the order the notebook saved them)."""
    path = Path(path) if path is not None else registry_path()
    if not path.exists():
        return []
    sql, args = "SELECT * FROM runs", []
    if notebook:
        sql += " WHERE notebook = ?"
        args.append(notebook)
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
