"""Report a collected sweep: one metric of its runs against the strong model's measured capability.

    from alignlab.run import sweep as sweeps
    from alignlab import sweep_report

    config = sweep_report.Config.from_params(check_params("90_sweep_report", globals()))
    collected = sweep_report.collected_sweep(config, sweeps)    # the demo sweep runs first if no id
    points = sweep_report.metric_points(collected, config)       # one row per run
    summary = sweep_report.summarize_by_x(points, config)        # one row per x: mean, lo, hi, n

The host-side sweep API (`alignlab.run.sweep`) is handed in by the notebook rather than imported
here: library code does not import the runner's layer.

- **The x axis.** `x` is one of the sweep's grid parameters. A value that names a model (a string,
  or a list of model names, read weakest first so its last element is the strong model: `models`
  of studies 05 and 07, `strong_models` of study 01 with one pair) is placed at the model's
  capability on the overview's card (`alignlab.ladder`; `results/ladder-cards/<profile>/<dataset>.json`,
  dataset from the runs' `ladder_dataset` or `dataset`). When the card lacks one of the models,
  every model is placed at its parameter count instead (embedded models), or, failing that, at
  its rank in the grid; the axis label and the finding say which. Numeric values are their own x.
- **Replicates.** Runs with the same x value are replicates (typically one per seed, the other
  grid parameters); the figure shows each, and their mean with a 95% CI over them (`ci`: a
  percentile bootstrap or a Student-t interval, `alignlab.stats`).
- **The finding.** The metric at the most capable x minus the least capable, paired by replicate
  where both have the same replicates, with the same kind of interval.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from alignlab import ladder
from alignlab.figures import figsize, use_style
from alignlab.models.zoo import EMBEDDED
from alignlab.paths import notebooks_dir, project_root, results_dir
from alignlab.stats import bootstrap_ci, format_ci, summarize, t_ci, verdict
from alignlab.study_config import ParameterError, StudyConfig, is_int

NOTEBOOK = "90_sweep_report"
CIS = ("bootstrap", "t")
TABLE_COLUMNS = ("sweep_id", "run_id", "metric", "value")  # the collected table's own columns


def _sweep_json(sweep_id: str) -> dict:
    """results/sweeps/<id>/sweep.json, or ParameterError listing the sweeps there."""
    path = results_dir() / "sweeps" / sweep_id / "sweep.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = sorted(p.parent.name for p in (results_dir() / "sweeps").glob("*/sweep.json"))
        raise ParameterError(f"parameter 'sweep_id' of {NOTEBOOK}: no sweep {sweep_id!r} (no {path}). Sweeps "
                             f"here: {', '.join(known) or '(none)'}; \"\" runs the demo sweep.") from None


def _ok_metric_names(document: dict) -> set[str]:
    """The metric names of the sweep's runs whose latest attempt finished ok (from run.json)."""
    names = set()
    for run in document.get("runs", []):
        if not run.get("attempts"):
            continue
        try:
            record = json.loads((project_root() / run["attempts"][-1]["run_dir"] / "run.json").read_text())
        except (OSError, ValueError):
            continue
        if record.get("status") == "ok":
            names.update(record.get("metrics") or {})
    return names


def unknown_metric(metric: str, available, where: str) -> ParameterError:
    """The error for a metric no run has: the closest names, and how many there are."""
    available = sorted(available)
    close = difflib.get_close_matches(metric, available, n=5, cutoff=0.4)
    hint = f" Closest: {', '.join(close)}." if close else ""
    return ParameterError(f"parameter 'metric' of {NOTEBOOK}: no run of {where} has a metric {metric!r}.{hint} "
                          f"It has {len(available)}: {', '.join(available[:40])}"
                          f"{', ...' if len(available) > 40 else ''}.")


@dataclass
class Config(StudyConfig):
    """The notebook's parameters (defaults: its parameters cell). `check` reads only small files:
    an existing sweep's sweep.json and its runs' run.json."""

    notebook = NOTEBOOK

    sweep_id: str
    demo_notebook: str
    demo_profile: str
    demo_grid: dict
    demo_params: dict
    metric: str
    x: str
    capability: str
    ci: str
    n_boot: int
    bootstrap_seed: int

    def check(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            self.fail("metric", f"must name one metric of the sweep's runs (a metrics.json key), got {self.metric!r}")
        if self.capability not in ladder.METRICS:
            self.fail("capability", f"must be one of {', '.join(ladder.METRICS)}, got {self.capability!r}")
        if self.ci not in CIS:
            self.fail("ci", f"must be one of {', '.join(CIS)}, got {self.ci!r}")
        if not is_int(self.n_boot) or self.n_boot < 1:
            self.fail("n_boot", f"must be an integer >= 1, got {self.n_boot!r}")
        if self.sweep_id:
            document = _sweep_json(self.sweep_id)
            if self.x not in document["grid"]:
                self.fail("x", f"must be one of sweep {self.sweep_id}'s grid parameters "
                               f"({', '.join(document['grid']) or 'none'}), got {self.x!r}")
            names = _ok_metric_names(document)
            if not names:
                raise ParameterError(f"sweep {self.sweep_id} has no run that finished ok yet; see "
                                     f"`alignlab sweep status {self.sweep_id}`.")
            if self.metric not in names:
                raise unknown_metric(self.metric, names, f"sweep {self.sweep_id}")
            return
        if self.demo_notebook == NOTEBOOK or not (notebooks_dir() / f"{self.demo_notebook}.ipynb").is_file():
            self.fail("demo_notebook", f"must be a study notebook under notebooks/ other than this one, got "
                                       f"{self.demo_notebook!r}")
        if not isinstance(self.demo_grid, dict) or not self.demo_grid or not all(
                isinstance(v, list) and v for v in self.demo_grid.values()):
            self.fail("demo_grid", f"must map parameter names of {self.demo_notebook} to non-empty lists of "
                                   f"values, got {self.demo_grid!r}")
        if self.x not in self.demo_grid:
            self.fail("x", f"must be one of demo_grid's parameters ({', '.join(self.demo_grid)}), got {self.x!r}")
        if not isinstance(self.demo_params, dict):
            self.fail("demo_params", f"must map parameter names of {self.demo_notebook} to values, "
                                     f"got {self.demo_params!r}")


# ---------------------------------------------------------------------------------------------
# The collected sweep

@dataclass
class CollectedSweep:
    id: str
    notebook: str
    grid: list                   # the grid's parameter names
    table: pd.DataFrame          # `alignlab sweep collect`'s table: one row per (ok run, metric)
    dataset: str                 # whose capability card places the models
    states: dict = field(default_factory=dict)  # {state: runs}
    ran_demo: bool = False
    profile: str = "quick"       # the runs' profile: whose capability card places the models


def card_dataset(params: dict) -> str:
    """The dataset whose card orders a run's models: its `ladder_dataset`, else its `dataset`."""
    value = params.get("ladder_dataset") or params.get("dataset") or "world-facts"
    return str(value)


def collected_sweep(config: Config, sweeps) -> CollectedSweep:
    """The sweep `config.sweep_id`, or (id "") the demo sweep, planned (every combination validated
    before anything starts), run on the local engine one job at a time (a second call finds its runs
    done and only collects), then collected. `sweeps` is `alignlab.run.sweep`."""
    if config.sweep_id:
        sweep, _ = sweeps.load_sweep(config.sweep_id)
        states = sweeps.state_counts(sweep)
    else:
        sweep = sweeps.plan_sweep(config.demo_notebook, config.demo_profile, config.demo_params, config.demo_grid)
        states = sweeps.launch(sweep, "local", jobs=1)
    csv = next(p for p in sweeps.collect(sweep) if p.suffix == ".csv")
    table = pd.read_csv(csv)
    datasets = sorted({card_dataset(run.params) for run in sweep.runs})
    return CollectedSweep(sweep.id, sweep.notebook, list(sweep.grid), table, datasets[0], states,
                          ran_demo=not config.sweep_id, profile=sweep.profile)


def describe_sweep(collected: CollectedSweep) -> str:
    """One paragraph: which sweep, how many runs in which state, and where its table is."""
    states = ", ".join(f"{n} {s}" for s, n in sorted(collected.states.items()))
    runs = collected.table["run_id"].nunique() if len(collected.table) else 0
    return (f"Sweep `{collected.id}` ({'the demo sweep' if collected.ran_demo else 'given'}) of "
            f"`{collected.notebook}` over {', '.join(f'`{g}`' for g in collected.grid)}: runs {states}; "
            f"{runs} collected into `results/sweeps/{collected.id}/collected.csv`.")


# ---------------------------------------------------------------------------------------------
# One point per run, and where it sits on the x axis

def strong_model_of(value) -> str | None:
    """The model a grid value names: a string, or the last element of a list of strings (a ladder
    list, weakest first). A list arrives as JSON text from the collected CSV. Else None."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        value = parsed
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value[-1]
    if isinstance(value, str) and not _is_number(value):
        return value
    return None


def _is_number(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def parameter_count(model: str) -> float | None:
    """Parameters of an embedded model, from its spec ("22.7M", "1.78B"); None for other models."""
    spec = EMBEDDED.get(model)
    match = re.fullmatch(r"([0-9.]+)\s*([KMB])", spec.params.strip()) if spec else None
    if not match:
        return None
    return float(match.group(1)) * {"K": 1e3, "M": 1e6, "B": 1e9}[match.group(2)]


@dataclass
class Axis:
    kind: str        # "capability", "parameters", "rank" or "value"
    label: str       # the axis label
    note: str = ""   # a sentence for the finding when the card could not be used
    log: bool = False


def model_axis(models: list[str], dataset: str, measure: str = "probe_acc",
               profile: str | None = None) -> tuple[dict, Axis]:
    """({model: x}, axis): the card's `measure` when every model is on `dataset`'s card; else the
    parameter count when every model has one; else the models' rank in the given order."""
    card = ladder.read_card(dataset, profile)
    missing = [m for m in models if (card.get(m) or {}).get(measure) is None]
    if not missing:
        return ({m: float(card[m][measure]) for m in models},
                Axis("capability", f"strong model's {measure} (capability card, {dataset})"))
    profile = profile or ladder.current_profile()
    run = f"run 00_overview --profile {profile}"
    why = (f"{', '.join(missing)} not on the {profile} profile's capability card of {dataset} "
           f"({'no card: ' + run if not card else run + ' on it'})")
    counts = {m: parameter_count(m) for m in models}
    if all(c is not None for c in counts.values()):
        return counts, Axis("parameters", f"strong model's parameters (fallback: not on the {dataset} card)",
                            note=f"The x axis is the parameter count, not measured capability: {why}.", log=True)
    return ({m: float(i) for i, m in enumerate(models)},
            Axis("rank", f"strong model, in grid order (fallback: not on the {dataset} card)",
                 note=f"The x axis is the grid's order of the strong models, not measured capability: {why}, "
                      f"and not every model has a known parameter count."))


def metric_points(collected: CollectedSweep, config: Config) -> tuple[pd.DataFrame, Axis]:
    """One row per run with `config.metric`: run_id, x_label (the x value as shown), x (its place on
    the axis), replicate (the other grid values), value; and the axis. Raises ParameterError for a
    metric or x the sweep does not have."""
    table, metric, x = collected.table, config.metric, config.x
    grid = [c for c in table.columns if c not in TABLE_COLUMNS] or collected.grid
    if x not in grid:
        raise ParameterError(f"parameter 'x' of {NOTEBOOK}: sweep {collected.id} varies "
                             f"{', '.join(grid) or 'nothing'}, not {x!r}.")
    if not len(table):
        raise ParameterError(f"sweep {collected.id} has no run that finished ok (states: {collected.states}); "
                             f"its logs are in results/sweeps/{collected.id}/logs/.")
    rows = table[table["metric"] == metric]
    if rows.empty:
        raise unknown_metric(metric, set(table["metric"]), f"sweep {collected.id}")
    others = [c for c in grid if c != x]
    points = pd.DataFrame({
        "run_id": rows["run_id"].to_numpy(),
        "x_value": rows[x].to_numpy(),
        "replicate": [", ".join(f"{c}={r[c]}" for c in others) or r["run_id"] for _, r in rows.iterrows()],
        "value": pd.to_numeric(rows["value"], errors="coerce").to_numpy(),
    })
    order = list(dict.fromkeys(points["x_value"].tolist()))  # the x values, in the table's order
    models = [strong_model_of(v) for v in order]
    if all(models) and len(set(models)) == len(models):
        places, axis = model_axis(models, collected.dataset, config.capability, collected.profile)
        labels = dict(zip(order, models))
        points["x_label"] = points["x_value"].map(labels)
        points["x"] = points["x_label"].map(places)
    elif all(_is_number(v) for v in order):
        points["x_label"] = points["x_value"].astype(str)
        points["x"] = points["x_value"].astype(float)
        axis = Axis("value", x)
    else:
        raise ParameterError(f"parameter 'x' of {NOTEBOOK}: the values of {x!r} ({', '.join(map(str, order))}) are "
                             f"neither model names nor numbers; choose a grid parameter that varies the model "
                             f"or a number.")
    return points[["run_id", "x_label", "x", "replicate", "value"]], axis


# ---------------------------------------------------------------------------------------------
# Aggregation, figure, finding, metrics

def _interval(values, config: Config) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size < 2:
        return (math.nan, math.nan)
    if config.ci == "t":
        return t_ci(values)
    return bootstrap_ci(values, n_boot=config.n_boot, seed=config.bootstrap_seed)


def summarize_by_x(points: pd.DataFrame, config: Config) -> pd.DataFrame:
    """One row per x value, least capable first: x_label, x, mean, lo, hi (95%, `config.ci`), n, std."""
    summary = summarize(points, by=["x", "x_label"], value="value", ci=config.ci, n_boot=config.n_boot,
                        seed=config.bootstrap_seed)
    return summary.sort_values("x", kind="stable").reset_index(drop=True)


def sweep_summary_table(summary: pd.DataFrame, axis: Axis, metric: str) -> pd.DataFrame:
    """The summary as the notebook shows it: x value, its place on the axis, metric mean [95% CI], n."""
    return pd.DataFrame({"x": summary["x_label"], axis.kind: [f"{v:.4g}" for v in summary["x"]],
                         f"{metric} mean [95% CI]": [format_ci(r.mean, r.lo, r.hi) for r in summary.itertuples()],
                         "runs": summary["n"]})


def plot_metric(points: pd.DataFrame, summary: pd.DataFrame, axis: Axis, metric: str, ci: str):
    """Each run's value (small dots) and the mean per x with its 95% CI (error bar), means joined."""
    use_style()
    fig, ax = plt.subplots(figsize=figsize("column", 0.75))
    ax.scatter(points["x"], points["value"], s=14, color="C1", edgecolor="white", linewidth=0.4, zorder=4,
               label="one run")
    err = np.array([summary["mean"] - summary["lo"], summary["hi"] - summary["mean"]])
    err = np.where(np.isnan(err), 0.0, err)
    ax.errorbar(summary["x"], summary["mean"], yerr=err, fmt="o-", color="C0", capsize=3, zorder=3,
                label=f"mean, 95% CI ({'bootstrap' if ci == 'bootstrap' else 't'})")
    for row in summary.itertuples():
        ax.annotate(row.x_label, (row.x, row.mean), textcoords="offset points", xytext=(4, 4), fontsize="x-small")
    if axis.log:
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(summary["x"], [f"{v / 1e6:.4g}M" if v < 1e9 else f"{v / 1e9:.3g}B" for v in summary["x"]])
    if axis.kind == "rank":
        ax.set_xticks(summary["x"], summary["x_label"])
    ax.axhline(0, color="0.3", linewidth=0.6)
    ax.set_xlabel(axis.label, fontsize="small", wrap=True)
    ax.set_ylabel(metric)
    ax.legend(fontsize="x-small")
    return fig


def _difference(points: pd.DataFrame, low: str, high: str) -> tuple[np.ndarray, bool]:
    """Per-replicate high - low where both x values have the same replicates (paired); else None."""
    a = points[points["x_label"] == low].set_index("replicate")["value"]
    b = points[points["x_label"] == high].set_index("replicate")["value"]
    if a.index.is_unique and b.index.is_unique and set(a.index) == set(b.index) and len(a) > 1:
        return (b - a.reindex(b.index)).to_numpy(dtype=float), True
    return np.array([]), False


def difference(points: pd.DataFrame, summary: pd.DataFrame, config: Config) -> dict:
    """The metric at the most capable x minus the least capable: mean, lo, hi, paired."""
    if len(summary) < 2:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "paired": False}
    low, high = summary["x_label"].iloc[0], summary["x_label"].iloc[-1]
    diffs, paired = _difference(points, low, high)
    if paired:
        mean, (lo, hi) = float(np.nanmean(diffs)), _interval(diffs, config)
    else:  # unpaired: the difference of the means, without an interval
        mean, lo, hi = float(summary["mean"].iloc[-1] - summary["mean"].iloc[0]), math.nan, math.nan
    return {"mean": mean, "lo": lo, "hi": hi, "paired": paired, "low": low, "high": high}


def _more(axis: Axis, x: str) -> str:
    """What "further right on the axis" means, in words."""
    return {"capability": "the more capable strong model",
            "parameters": "the larger strong model (by parameters; capability not measured)",
            "rank": "the strong model later in the grid (capability not measured)"}.get(axis.kind, f"a larger {x}")


def conclusion(collected: CollectedSweep, points: pd.DataFrame, summary: pd.DataFrame, axis: Axis,
               config: Config) -> str:
    """The finding in Markdown, from the run's numbers."""
    metric, ci = config.metric, ("percentile bootstrap" if config.ci == "bootstrap" else "Student-t")
    counts = sorted({int(n) for n in summary["n"]})
    runs = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    parts = [f"**{metric}** of `{collected.notebook}` at each value of `{config.x}` (mean [95% {ci} CI] "
             f"over its {runs} runs): "
             + "; ".join(f"{r.x_label} ({axis.kind} {r.x:.3g}): {format_ci(r.mean, r.lo, r.hi)}"
                         for r in summary.itertuples()) + "."]
    above = [r.x_label for r in summary.itertuples() if r.lo > 0]
    below = [r.x_label for r in summary.itertuples() if r.hi < 0]
    if above or below:
        parts.append(f"The 95% CI lies above 0 at {', '.join(above) or 'no value'} and below 0 at "
                     f"{', '.join(below) or 'no value'}; elsewhere it includes 0 (or there is one run).")
    else:
        parts.append(f"At every value of `{config.x}` the 95% CI includes 0 (or there is one run): no mean is "
                     f"shown to differ from 0.")
    if axis.note:
        parts.append(axis.note)
    d = difference(points, summary, config)
    if len(summary) >= 2:
        between, more = f"{d['high']} minus {d['low']}", _more(axis, config.x)
        if d["paired"]:
            word = verdict(d["mean"], d["lo"], d["hi"], above=f"**higher** for {more}", below=f"**lower** for {more}",
                           straddles="**not shown** to change (the 95% CI includes 0)",
                           unknown="not determined (fewer than 2 paired runs)")
            parts.append(f"{metric}, {between}, paired by replicate: {format_ci(d['mean'], d['lo'], d['hi'])} "
                         f"({ci}): {metric} is {word} at this scale.")
        else:
            parts.append(f"{metric}, {between}: {d['mean']:.3f} (difference of means; the replicates do not "
                         f"pair up, so no interval).")
    small = int(summary["n"].min()) if len(summary) else 0
    if config.ci == "bootstrap" and small < 10:
        text = (f"With {small} runs per value a percentile bootstrap interval is narrower than it should be; "
                f"`-p ci t` gives the Student-t interval that `alignlab.stats` recommends for a few seeds")
        if d["paired"] and len(summary) >= 2:
            diffs, _ = _difference(points, d["low"], d["high"])
            lo, hi = t_ci(diffs)
            text += f" (for the difference above: {format_ci(d['mean'], lo, hi)})"
        parts.append(text + ".")
    return "\n\n".join(parts)


def sweep_metrics(summary: pd.DataFrame, axis: Axis, points: pd.DataFrame, config: Config) -> dict:
    """Flat metrics.json: per x value `mean/<x>`, `lo/<x>`, `hi/<x>`, `runs/<x>`, `x/<x>` (its place
    on the axis); `difference` (most minus least capable) with `_lo`, `_hi`; `axis_is_capability`."""
    out = {}
    for row in summary.itertuples():
        for name, value in (("mean", row.mean), ("lo", row.lo), ("hi", row.hi), ("runs", row.n), ("x", row.x)):
            out[f"{name}/{row.x_label}"] = float(value)
    d = difference(points, summary, config)
    out["difference"], out["difference_lo"], out["difference_hi"] = d["mean"], d["lo"], d["hi"]
    out["axis_is_capability"] = float(axis.kind == "capability")
    out["n_runs"] = float(len(points))
    return out
