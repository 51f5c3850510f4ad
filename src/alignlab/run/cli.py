"""The `alignlab` command: list models and datasets, run notebooks and sweeps, list runs.

    alignlab models
    alignlab data
    alignlab run NOTEBOOK... [--all] [--profile quick|paper] [-p NAME VALUE]... [--dry-run]
    alignlab sweep NOTEBOOK [--profile P] [-p NAME VALUE]... --grid NAME "[v1, v2]"...
                   [--engine local|slurm|submitit-local] [--jobs N] [--detach] [--dry-run]
    alignlab sweep status SWEEP_ID
    alignlab sweep collect SWEEP_ID [--out PATH]
    alignlab runs [--notebook X] [--limit N] [--sweep SWEEP_ID] [--ingest]
    alignlab sandbox PROGRAM.py [--tests TESTS.py] [--timeout S] [--memory-mb M]

Exit status: 0 when everything ran, 1 when a run failed, 2 for a bad command line, notebook,
profile or parameter (nothing was started), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys

EPILOG = """\
examples:
  alignlab run 00_overview                       the quick profile (the notebook's defaults)
  alignlab run 00_overview --profile paper       hub models and datasets at paper scale
  alignlab run 00 -p seeds "[0,1]" -p n_questions 50
  alignlab run --all --dry-run                   validate every notebook, show the parameters
  alignlab runs --notebook 00_overview --limit 5
  alignlab sweep 90_ok --grid n_items "[1, 2, 3]" --jobs 2
  alignlab sweep 90_ok --grid n_items "[1, 2, 3]" --engine slurm --slurm-partition gpu --detach
  alignlab sweep status 90_ok-1a2b3c4d
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alignlab", description="alignlab: a research compendium of alignment studies.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    commands.add_parser("models", help="the model zoo: embedded models and their sources")
    commands.add_parser("data", help="the datasets: name, rows, schema, source")

    run = commands.add_parser(
        "run", help="run notebooks headlessly (papermill) into results/<notebook>/<run-id>/",
        description="Run notebooks headlessly. Every run is validated before any starts.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                     help="a stem (00_overview), a filename or a path inside notebooks/")
    run.add_argument("--all", action="store_true", help="every notebooks/[0-9]*.ipynb, in order")
    run.add_argument("--profile", default="quick",
                     help="a profiles/<name>.yaml: quick (default; the notebooks' own defaults) or paper")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="override a parameter; VALUE is YAML: 5, 0.1, gpt2, \"[0,1]\"; a relative path is "
                          "taken from the current directory")
    run.add_argument("--dry-run", action="store_true",
                     help="validate and print the parameters of each run, execute nothing")
    run.add_argument("--log-output", action="store_true", help="stream the cells' output to the terminal")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    sweep = commands.add_parser(
        "sweep", help="a grid of runs of one notebook, resumable, on this machine or Slurm",
        usage="alignlab sweep NOTEBOOK [options]  |  alignlab sweep status|collect SWEEP_ID",
        description="Run the cross product of the --grid values, each an ordinary run. Every "
                    "combination is validated before anything starts; running the same command "
                    "again skips the runs that finished ok.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("target", metavar="NOTEBOOK", help="a notebook, or `status` / `collect`")
    sweep.add_argument("sweep_id", nargs="?", metavar="SWEEP_ID", help="with status / collect")
    sweep.add_argument("--profile", default="quick", help="a profiles/<name>.yaml (default quick)")
    sweep.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                       help="a parameter every run gets (VALUE is YAML)")
    sweep.add_argument("--grid", nargs=2, action="append", default=[], metavar=("NAME", "VALUES"),
                       help="a parameter to vary: a YAML list, e.g. \"[0, 1, 2]\"")
    sweep.add_argument("--engine", default="local", choices=("local", "slurm", "submitit-local"),
                       help="local: child processes here (default); slurm: a job array through "
                            "submitit; submitit-local: submitit's local executor")
    sweep.add_argument("--jobs", type=int, help="runs at once: local, default 1; slurm, default: "
                                                "as many as the cluster allows")
    sweep.add_argument("--slurm-partition", help="Slurm partition (else the profile's slurm: partition)")
    sweep.add_argument("--gpus-per-job", type=int, help="GPUs per job (slurm)")
    sweep.add_argument("--cpus-per-job", type=int, help="CPUs per job (slurm)")
    sweep.add_argument("--mem-gb", type=float, help="memory per job, GB (slurm)")
    sweep.add_argument("--time", type=int, metavar="MINUTES", help="time limit per job (slurm; default 60)")
    sweep.add_argument("--detach", action="store_true", help="submit and return (slurm, submitit-local)")
    sweep.add_argument("--no-retry", action="store_true", help="do not re-run failed or interrupted runs")
    sweep.add_argument("--dry-run", action="store_true", help="validate and list the runs, run nothing")
    sweep.add_argument("--out", help="collect: the output path without suffix "
                                     "(default results/sweeps/<id>/collected)")

    runs = commands.add_parser("runs", help="the run registry (results/registry.sqlite)")
    runs.add_argument("--notebook", help="only this notebook (a stem)")
    runs.add_argument("--limit", type=int, default=20, help="at most N runs, newest first (default 20; 0: all)")
    runs.add_argument("--sweep", metavar="SWEEP_ID", help="one sweep: its grid parameters and metrics")
    runs.add_argument("--ingest", action="store_true",
                      help="first add every results/<notebook>/<run-id>/run.json to the registry")

    commands.add_parser("sandbox", add_help=False,
                        help="run a program (and its tests) in the sandbox: alignlab sandbox --help")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sandbox"]:  # its own command line, parsed by alignlab.sandbox.cli
        from alignlab.sandbox.cli import main as sandbox_main
        return sandbox_main(argv[1:])
    args = build_parser().parse_args(argv)
    from alignlab.study_config import ParameterError
    try:
        return COMMANDS[args.command](args)
    except ParameterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------------------------------
# Commands

def cmd_models(args) -> int:
    from alignlab.models.zoo import list_models
    print(_show(list_models()))
    return 0


def cmd_data(args) -> int:
    from alignlab.data import list_datasets
    print(_show(list_datasets()))
    return 0


def cmd_run(args) -> int:
    from alignlab.paths import notebooks_dir
    from alignlab.run import execute, params
    from alignlab.study_config import ParameterError
    if args.all and args.notebooks:
        raise ParameterError("give notebooks or --all, not both.")
    notebooks = params.list_notebooks() if args.all else args.notebooks
    if args.all and not notebooks:
        raise ParameterError(f"--all: no notebooks/[0-9]*.ipynb in {notebooks_dir()}.")
    if not notebooks:
        raise ParameterError(
            "which notebook? Give one or more, or --all. Available notebooks: "
            f"{', '.join(params.list_notebooks()) or '(none)'}.")
    overrides = {name: params.parse_value(value) for name, value in args.param}
    plans = params.plan_runs(notebooks, args.profile, overrides)  # raises before anything starts

    if args.dry_run:
        for i, (stem, values) in enumerate(plans, 1):
            defaults = params.read_parameters(stem)
            print(f"[{i}/{len(plans)}] {stem} ({args.profile}) would run with:")
            for name, value in values.items():
                changed = "" if defaults[name].default == value else "   # changed"
                print(f"    {name} = {value!r}{changed}")
        return 0

    results = execute.run_plans(plans, args.profile, progress_bar=not args.no_progress,
                                log_output=args.log_output)
    print()
    print(_show(_summary(results)))
    failed = [r for r in results if r.status != "ok"]
    if failed:
        print(f"\n{len(failed)} of {len(results)} runs failed: "
              + ", ".join(f"{r.notebook} (cell {r.failed_cell})" if r.failed_cell is not None
                          else r.notebook for r in failed), file=sys.stderr)
        return 1
    return 0


def cmd_runs(args) -> int:
    from alignlab.run import registry, sweep
    if args.ingest:
        print(f"ingested {sweep.ingest_results()} run folders into {registry.registry_path()}")
    if args.sweep:
        return _show_sweep(args.sweep)
    registry.reconcile()  # runs whose runner is gone show as interrupted
    runs = registry.read_runs(notebook=args.notebook, limit=args.limit or None)
    if not runs:
        print(f"no runs yet in {registry.registry_path()}")
        return 0
    table = [{
        "id": run["id"],
        "notebook": run["notebook"],
        "profile": run["profile"],
        "status": run_status(run),
        "duration": format_duration(run["duration_s"]),
        "peak mem": format_memory(run["peak_rss_mb"]),
        "started": (run["started_at"] or "")[:19].replace("T", " "),
        "metrics": format_metrics(run["metrics"]) if run["status"] != "failed"
        else _failure(run["failed_cell"], run["error"]),
    } for run in runs]
    print(_show(table))
    return 0


def _show_sweep(sweep_id: str, n_metrics: int = 4) -> int:
    """A sweep as a table: the grid's parameters, status, and the first metrics, one row per
    combination (its latest attempt), from the registry after ingesting the sweep's run folders."""
    import json

    from alignlab.run import registry, sweep
    plan, _ = sweep.load_sweep(sweep_id)
    sweep.ingest(plan)
    rows = {run["run_dir"]: run for run in registry.read_runs(sweep_id=sweep_id)}
    table, names = [], []
    for run in plan.runs:
        row = rows.get(run.attempts[-1]["run_dir"]) if run.attempts else None
        if row and row["status"] == "ok":
            names += [n for n in row["metrics"] if n not in names]
    names = names[:n_metrics]
    for run in plan.runs:
        row = rows.get(run.attempts[-1]["run_dir"]) if run.attempts else None
        varying = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in run.varying.items()}
        if row is None:
            table.append({**varying, "status": "not run" if not run.attempts else "queued"})
            continue
        table.append({**varying, "status": run_status(row), "duration": format_duration(row["duration_s"]),
                      "peak mem": format_memory(row["peak_rss_mb"]),
                      **{n: row["metrics"].get(n) for n in names}})
    print(f"sweep {sweep_id}: {plan.notebook} ({plan.profile}), {len(plan.runs)} runs")
    print(_show([{k: row.get(k) for k in dict.fromkeys(k for r in table for k in r)} for row in table]))
    return 0


def cmd_sweep(args) -> int:
    from alignlab.run import params, sweep
    from alignlab.study_config import ParameterError
    if args.target in ("status", "collect"):
        if not args.sweep_id:
            raise ParameterError(f"alignlab sweep {args.target} SWEEP_ID: which sweep? "
                                 "(its id is printed when it starts; see results/sweeps/)")
        plan, engine = sweep.load_sweep(args.sweep_id)
        if args.target == "collect":
            for path in sweep.collect(plan, args.out):
                print(f"wrote {path}")
            return 0
        sweep.ingest(plan)
        rows = [{**{k: v for k, v in row.items() if k not in ("duration_s", "peak_rss_mb", "error", "run_dir")},
                 "duration": format_duration(row["duration_s"]), "peak mem": format_memory(row["peak_rss_mb"]),
                 "run folder": row["run_dir"], "error": _failure(None, row["error"]) if row["error"] else None}
                for row in sweep.status_rows(plan, engine)]
        print(f"sweep {plan.id}: {plan.notebook} ({plan.profile}) on {engine}")
        print(_show(rows))
        counts = sweep.state_counts(plan, engine)
        print("\n" + ", ".join(f"{n} {state}" for state, n in counts.items()))
        return 0 if set(counts) <= {"ok"} else 1
    if args.sweep_id:
        raise ParameterError(f"alignlab sweep {args.target}: unexpected {args.sweep_id!r}; "
                             "grid values go after --grid NAME.")
    fixed = {name: params.parse_value(value) for name, value in args.param}
    plan = sweep.plan_sweep(args.target, args.profile, fixed, sweep.parse_grid(args.grid))
    resources = sweep.slurm_resources(args.profile, {
        "partition": args.slurm_partition, "gpus_per_job": args.gpus_per_job,
        "cpus_per_job": args.cpus_per_job, "mem_gb": args.mem_gb, "time_min": args.time})
    if args.dry_run:
        sweep.check_engine(args.engine, resources)
        print(f"sweep {plan.id}: {len(plan.runs)} runs of {plan.notebook} ({plan.profile}) on {args.engine}")
        for i, run in enumerate(plan.runs, 1):
            print(f"[{i}/{len(plan.runs)}] " + (" ".join(f"{k}={v!r}" for k, v in run.varying.items())
                                               or "(no grid)") + f"   key {run.key}")
        return 0
    counts = sweep.launch(plan, args.engine, jobs=args.jobs, resources=resources,
                          detach=args.detach, retry=not args.no_retry)
    print(f"\nsweep {plan.id}: " + ", ".join(f"{n} {state}" for state, n in counts.items())
          + f"\n  alignlab sweep status {plan.id}    alignlab runs --sweep {plan.id}"
          f"    alignlab sweep collect {plan.id}")
    return 0 if set(counts) <= {"ok", "queued", "running"} else 1


COMMANDS = {"models": cmd_models, "data": cmd_data, "run": cmd_run, "runs": cmd_runs, "sweep": cmd_sweep}


# ---------------------------------------------------------------------------------------------
# Formatting

def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_memory(megabytes: float | None) -> str:
    if megabytes is None:
        return ""
    return f"{megabytes / 1024:.1f} GB" if megabytes >= 1024 else f"{megabytes:.0f} MB"


def run_status(run: dict) -> str:
    """A registry row's status, with `interrupted` for a failed run that was interrupted."""
    if run["status"] == "failed" and str(run.get("error") or "").startswith("interrupted"):
        return "interrupted"
    return run["status"]


def format_metrics(metrics: dict, limit: int = 4) -> str:
    """The first `limit` metrics, in the order the notebook saved them: `acc=0.812 pgr=0.41`."""
    shown = [f"{name}={'null' if value is None else f'{value:.4g}'}"
             for name, value in list(metrics.items())[:limit]]
    more = len(metrics) - limit
    return " ".join(shown) + (f" (+{more})" if more > 0 else "")


def _failure(failed_cell, error) -> str:
    text = (f"cell {failed_cell}: " if failed_cell is not None else "") + (error or "")
    return text if len(text) <= 60 else text[:57] + "..."


def _summary(results) -> list[dict]:
    from alignlab.run.execute import display_path
    return [{
        "notebook": r.notebook,
        "status": r.status,
        "duration": format_duration(r.duration_s),
        "peak mem": format_memory(r.peak_rss_mb),
        "run folder": display_path(r.run_dir) + "/",
        "metrics": format_metrics(r.metrics, limit=3) if r.status == "ok"
        else _failure(r.failed_cell, r.error),
    } for r in results]


def _show(table) -> str:
    """A table (a list of dicts, or a pandas DataFrame) as plain text: strings left-aligned,
    numbers right-aligned, no index."""
    if hasattr(table, "to_dict"):
        table = table.to_dict("records")
    if not table:
        return "(empty)"
    columns = list(table[0])
    cells = {c: [_cell(row.get(c)) for row in table] for c in columns}
    numeric = {c: all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in table)
               for c in columns}
    widths = {c: max(len(c), *(len(v) for v in cells[c])) for c in columns}

    def line(values):
        return "  ".join(v.rjust(widths[c]) if numeric[c] else v.ljust(widths[c])
                         for c, v in zip(columns, values)).rstrip()

    return "\n".join([line(columns)] + [line([cells[c][i] for c in columns]) for i in range(len(table))])


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"  # NaN: empty
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
