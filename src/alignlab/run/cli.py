"""The `alignlab` command: list models and datasets, run notebooks, list runs.

    alignlab models
    alignlab data
    alignlab run NOTEBOOK... [--all] [--profile quick|paper] [-p NAME VALUE]... [--dry-run]
    alignlab runs [--notebook X] [--limit N]

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

    runs = commands.add_parser("runs", help="the run registry (results/registry.sqlite)")
    runs.add_argument("--notebook", help="only this notebook (a stem)")
    runs.add_argument("--limit", type=int, default=20, help="at most N runs, newest first (default 20; 0: all)")
    return parser


def main(argv: list[str] | None = None) -> int:
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
    from alignlab.run import registry
    runs = registry.read_runs(notebook=args.notebook, limit=args.limit or None)
    if not runs:
        print(f"no runs yet in {registry.registry_path()}")
        return 0
    table = [{
        "id": run["id"],
        "notebook": run["notebook"],
        "profile": run["profile"],
        "status": run["status"],
        "duration": format_duration(run["duration_s"]),
        "started": (run["started_at"] or "")[:19].replace("T", " "),
        "metrics": format_metrics(run["metrics"]) if run["status"] != "failed"
        else _failure(run["failed_cell"], run["error"]),
    } for run in runs]
    print(_show(table))
    return 0


COMMANDS = {"models": cmd_models, "data": cmd_data, "run": cmd_run, "runs": cmd_runs}


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
