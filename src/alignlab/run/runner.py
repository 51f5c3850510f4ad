"""Run the study notebooks headlessly: parameters, profiles, run folders, the registry.

Read top to bottom:

1. Notebooks and their parameters. A notebook's first code cell is tagged `parameters`
   (papermill). We parse it with `ast`: every `name = <literal>` line is a parameter, its
   default gives the type, and a trailing `# one of: a, b, c` comment restricts the values.
2. Validation (`check_value`), shared by the runner (before any kernel starts) and by the
   notebooks themselves (`check_params(stem, globals())` in their second cell). Rules:
   - the value must have the default's type; an int is fine where a float is expected; a
     default of None accepts anything; for a list, each element must have the type of the
     default's elements (when the default list is not empty);
   - `# one of: ...` restricts the value (each element, for a list);
   - `model`, `models`, `*_model`, `*_models` are checked by `alignlab.models.check_model_name`;
   - `n_*` must be >= 1; `seeds` must be a non-empty list of ints.
3. Profiles: `profiles/<name>.yaml` maps a notebook stem to parameter overrides; an optional
   `all:` section applies to every notebook that has those parameters. Merge order:
   notebook defaults < profile `all` < profile `<stem>` < `-p NAME VALUE` (parsed as YAML).
4. Execution: a run folder `results/<stem>/<run-id>/` with run-id
   `YYYYmmdd-HHMMSS-<first 8 hex of sha256(canonical JSON of params)>`; `params.json` is
   written first, then papermill writes the executed notebook `<stem>.ipynb` there, and the
   notebook writes `metrics.json` (`save_metrics`) and its figures. The kernel learns the run
   folder from `$ALIGNLAB_RUN_DIR`. Every run is a row in `results/registry.sqlite`
   (see `alignlab.run.registry` for the schema).

Papermill (slow to import) is imported only when a notebook is executed, so importing this
module and validating parameters take a fraction of a second.
"""

from __future__ import annotations

import ast
import datetime
import difflib
import hashlib
import io
import json
import math
import numbers
import os
import re
import subprocess
import time
import tokenize
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from alignlab.run import registry
from alignlab.studies import config_class
from alignlab.studies.base import ParameterError
from alignlab.paths import notebooks_dir, profiles_dir, project_root, results_dir, run_dir




# ---------------------------------------------------------------------------------------------
# Notebooks and their parameters cell

def list_notebooks() -> list[str]:
    """Stems of the study notebooks, in order: `notebooks/[0-9]*.ipynb`."""
    return sorted(p.stem for p in notebooks_dir().glob("[0-9]*.ipynb"))


def resolve_notebook(name: str | os.PathLike) -> Path:
    """`00_overview`, `00_overview.ipynb`, `notebooks/00_overview.ipynb` or a unique prefix
    such as `00` -> the notebook's path inside `notebooks/`."""
    stem = Path(name).name
    if stem.endswith(".ipynb"):
        stem = stem[: -len(".ipynb")]
    path = notebooks_dir() / f"{stem}.ipynb"
    if stem and path.is_file():
        return path
    available = list_notebooks()
    prefixed = [s for s in available if s.startswith(stem + "_")]
    if stem and len(prefixed) == 1:
        return notebooks_dir() / f"{prefixed[0]}.ipynb"
    raise ParameterError(
        f"unknown notebook {str(name)!r}. Available notebooks (in {notebooks_dir()}): "
        f"{', '.join(available) or '(none)'}.")


@dataclass
class Parameter:
    """One line of a notebook's parameters cell."""
    name: str
    default: object                 # the literal value; the source text if not a literal
    literal: bool = True            # False: the default is an expression, any value goes
    choices: list | None = None     # from a trailing `# one of: a, b, c`
    comment: str = ""               # the trailing comment, without '#'

    def describe(self) -> str:
        default = repr(self.default) if self.literal else self.default
        return f"{self.name}={default}"


def parameters_cell(nb: dict) -> tuple[int | None, str]:
    """(index, source) of the first code cell tagged `parameters`, or (None, '')."""
    for index, cell in enumerate(nb.get("cells", [])):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") == "code" and "parameters" in tags:
            source = cell.get("source", "")
            return index, source if isinstance(source, str) else "".join(source)
    return None, ""


def parse_parameters(source: str) -> dict[str, Parameter]:
    """The assignments of a parameters cell, in order (IPython `%magic` / `!shell` lines are
    skipped)."""
    source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                       for line in source.splitlines())
    tree = ast.parse(source)
    comments = {}  # line number -> comment text
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    parameters = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        try:
            default, literal = ast.literal_eval(value), True
        except ValueError:
            default, literal = ast.get_source_segment(source, value), False
        comment = next((comments[line] for line in range(node.lineno, node.end_lineno + 1)
                        if line in comments), "")
        parameters[target.id] = Parameter(target.id, default, literal, parse_choices(comment), comment)
    return parameters


def parse_choices(comment: str) -> list | None:
    """`one of: facts, sciq` -> ['facts', 'sciq']; `one of: 1, 2` -> [1, 2]; else None."""
    marker = "one of:"
    if marker not in comment.lower():
        return None
    text = comment[comment.lower().index(marker) + len(marker):]
    choices = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            choices.append(ast.literal_eval(item))
        except (ValueError, SyntaxError):
            choices.append(item)
    return choices


def read_parameters(notebook: str | os.PathLike) -> dict[str, Parameter]:
    """The parameters of a notebook (stem, filename or path), read from its parameters cell."""
    with open(resolve_notebook(notebook), encoding="utf-8") as f:
        nb = json.load(f)
    return parse_parameters(parameters_cell(nb)[1])


# ---------------------------------------------------------------------------------------------
# Validation: one function for one value, used by the runner and by check_params

def _kind(value) -> str:
    if value is None:
        return "None"
    names = {bool: "a bool", int: "an int", float: "a float", str: "a string",
             list: "a list", tuple: "a list", dict: "a mapping"}
    return names.get(type(value), f"a {type(value).__name__}")


def _same_type(value, default) -> bool:
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def _is_model_parameter(name: str) -> bool:
    return name in ("model", "models") or name.endswith(("_model", "_models"))


def _model_name_checker():
    """`alignlab.models.check_model_name`, or None while that module (or function) is absent."""
    try:
        from alignlab.models import check_model_name
    except ImportError as e:  # also ModuleNotFoundError
        if e.name == "alignlab.models":
            return None
        raise
    return check_model_name


def check_value(notebook: str, p: Parameter, value, where: str = ""):
    """Return `value` if it is allowed for parameter `p`, else raise ParameterError.
    `where` says where the value came from, e.g. "set with -p"."""
    what = f"parameter {p.name!r} of {notebook}" + (f" ({where})" if where else "")
    if not p.literal:
        return value
    is_list = isinstance(p.default, (list, tuple))
    if not _same_type(value, p.default):
        raise ParameterError(
            f"{what} must be {_kind(p.default)} like its default {p.default!r}; "
            f"got {value!r} ({_kind(value)}).")
    items = list(value) if is_list else [value]
    if is_list and p.default:
        for item in items:
            if not _same_type(item, p.default[0]):
                raise ParameterError(
                    f"{what} must be a list of elements like {p.default[0]!r} "
                    f"({_kind(p.default[0])}), as in its default {p.default!r}; "
                    f"element {item!r} is {_kind(item)}.")
    if p.choices is not None:
        for item in items:
            if item not in p.choices:
                each = " (each element)" if is_list else ""
                raise ParameterError(
                    f"{what} must be one of{each}: {', '.join(map(str, p.choices))}; got {item!r}.")
    if p.name.startswith("n_") and value is not None:
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"{what} must be a positive integer (>= 1); got {value!r}.")
    if p.name == "seeds":
        if (not isinstance(value, (list, tuple)) or not value
                or not all(isinstance(s, int) and not isinstance(s, bool) for s in value)):
            raise ParameterError(f"{what} must be a non-empty list of ints, e.g. [0, 1, 2]; "
                                 f"got {value!r}.")
    if _is_model_parameter(p.name):
        check_model_name = _model_name_checker()
        for item in items:
            if check_model_name is not None and isinstance(item, str):
                try:
                    check_model_name(item)
                except ValueError as e:
                    raise ParameterError(f"{what}: {e}") from None
    return value


def check_name(notebook: str, name: str, parameters: dict[str, Parameter], where: str = "") -> None:
    """Raise ParameterError (listing the parameters and their defaults) if `name` is not one."""
    if name in parameters:
        return
    close = difflib.get_close_matches(name, list(parameters), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(p.describe() for p in parameters.values()) or "(none)"
    raise ParameterError(
        f"{notebook} has no parameter {name!r}" + (f" ({where})" if where else "") + f".{hint} "
        f"Its parameters, with their defaults: {listing}.")


# ---------------------------------------------------------------------------------------------
# Profiles and the merge: defaults < profile `all` < profile `<stem>` < -p

class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but `1e-3` is a float (YAML 1.1 wants `1.0e-3`) and `2025-01-01`
    stays a string (no dates: parameters are plain Python literals)."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def parse_value(text: str):
    """A `-p NAME VALUE` value: YAML, so `5` is an int, `1e-3` a float, `[0,1]` a list,
    `gpt2` a string, `null` None."""
    return yaml.load(text, Loader=_YamlLoader)


def list_profiles() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.yaml"))


def load_profile(name: str) -> dict:
    """`profiles/<name>.yaml` as {section: {parameter: value}}; sections are `all` and stems."""
    path = profiles_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ParameterError(
            f"unknown profile {name!r}. Available profiles (in {profiles_dir()}): "
            f"{', '.join(list_profiles()) or '(none)'}.")
    try:
        profile = parse_value(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ParameterError(f"profile {path} is not valid YAML: {e}") from None
    if not isinstance(profile, dict):
        raise ParameterError(f"profile {path} must be a mapping of notebook stems (or 'all') "
                             f"to parameter overrides.")
    for section, overrides in profile.items():
        if overrides is not None and not isinstance(overrides, dict):
            raise ParameterError(f"profile {path}: section {section!r} must be a mapping of "
                                 f"parameter names to values, got {overrides!r}.")
    return {str(section): overrides or {} for section, overrides in profile.items()}


def resolve_params(notebook: str, profile: str = "quick", overrides: dict | None = None) -> dict:
    """The full, validated parameters of one run (raises ParameterError)."""
    path = resolve_notebook(notebook)
    stem = path.stem
    parameters = read_parameters(path)
    sections = load_profile(profile)
    common = {k: v for k, v in sections.get("all", {}).items() if k in parameters}
    params = {name: p.default for name, p in parameters.items() if p.literal}
    for layer, where in ((common, f"profile {profile!r}, section 'all'"),
                         (sections.get(stem, {}), f"profile {profile!r}"),
                         (overrides or {}, "set with -p")):
        for name, value in layer.items():
            check_name(stem, name, parameters, where)
            params[name] = check_value(stem, parameters[name], value, where)
    config = config_class(stem)
    if config is not None:
        config.from_params(params)  # the study's own checks, before any kernel starts
    return params


def plan_runs(notebooks: list[str], profile: str = "quick",
              overrides: dict | None = None) -> list[tuple[str, dict]]:
    """Validate every run before any starts: [(stem, params), ...].

    With several notebooks, each `-p` override goes to the notebooks that have that parameter
    (an error only if none has it); with one notebook, an unknown name is an error."""
    overrides = overrides or {}
    paths = [resolve_notebook(n) for n in notebooks]
    load_profile(profile)  # an unknown profile fails even with no notebooks
    parameters = [read_parameters(path) for path in paths]
    if len(paths) > 1:
        for name in overrides:
            if not any(name in ps for ps in parameters):
                raise ParameterError(f"none of {', '.join(p.stem for p in paths)} has a "
                                     f"parameter {name!r} (set with -p).")
    plans = []
    for path, ps in zip(paths, parameters):
        mine = overrides if len(paths) == 1 else {k: v for k, v in overrides.items() if k in ps}
        plans.append((path.stem, resolve_params(path, profile, mine)))
    return plans


# ---------------------------------------------------------------------------------------------
# Execution

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


def canonical_json(params: dict) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


def make_run_id(params: dict, when: datetime.datetime | None = None) -> str:
    """`YYYYmmdd-HHMMSS-<first 8 hex of sha256 of the canonical JSON of params>`."""
    when = when or datetime.datetime.now()
    digest = hashlib.sha256(canonical_json(params).encode()).hexdigest()[:8]
    return f"{when:%Y%m%d-%H%M%S}-{digest}"


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


@contextmanager
def _environment(**values):
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


def _now() -> datetime.datetime:
    return datetime.datetime.now().astimezone()


def display_path(path: Path) -> str:
    try:
        return str(path.relative_to(project_root()))
    except ValueError:
        return str(path)


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


def execute(stem: str, params: dict, profile: str, *, counter: str = "[1/1]",
            progress_bar: bool = True, log_output: bool = False) -> RunResult:
    """Run one notebook with already validated `params`; record it in the registry."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    started = _now()
    run_id = make_run_id(params, started)
    folder = results_dir() / stem / run_id
    suffix = 1
    while folder.exists():  # same parameters in the same second
        suffix += 1
        folder = results_dir() / stem / f"{run_id}-{suffix}"
    run_id = folder.name
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps(params, indent=2, default=str) + "\n")
    print(f"{counter} {stem} ({profile}) -> {display_path(folder)}/", flush=True)

    commit, dirty = git_state(project_root())
    registry.start_run(dict(
        id=run_id, notebook=stem, profile=profile, status="running",
        params_json=canonical_json(params), started_at=started.isoformat(timespec="seconds"),
        git_commit=commit, git_dirty=dirty, run_dir=display_path(folder)))

    # The kernel imports the same alignlab as this process, wherever it runs from.
    package_parent = str(Path(__file__).resolve().parents[2])
    pythonpath = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)
    result = RunResult(run_id, stem, profile, "ok", folder, params)
    t0 = time.monotonic()

    def finish():
        result.duration_s = time.monotonic() - t0
        result.metrics = _read_metrics(folder)
        registry.finish_run(run_id, result.status, finished_at=_now().isoformat(timespec="seconds"),
                            duration_s=round(result.duration_s, 3), failed_cell=result.failed_cell,
                            error=result.error, metrics=result.metrics)

    try:
        with _environment(ALIGNLAB_RUN_DIR=str(folder), ALIGNLAB_NOTEBOOK=stem, PYTHONPATH=pythonpath):
            papermill.execute_notebook(
                str(resolve_notebook(stem)), str(folder / f"{stem}.ipynb"), parameters=params,
                kernel_name="python3", language="python", progress_bar=progress_bar,
                log_output=log_output, cwd=str(notebooks_dir()))
    except PapermillExecutionError as e:
        result.status = "failed"
        result.failed_cell = _source_cell_index(stem, e.cell_index, injected=bool(params))
        result.error = f"{e.ename}: {e.evalue}"
    except KeyboardInterrupt:
        result.status, result.error = "failed", "interrupted"
        finish()
        raise
    except Exception as e:  # the kernel died, could not start, ...
        result.status, result.error = "failed", f"{type(e).__name__}: {e}"
    finish()
    if result.status == "failed":
        where = f"cell {result.failed_cell}: " if result.failed_cell is not None else ""
        print(f"    failed after {result.duration_s:.1f}s, {where}{result.error}", flush=True)
    return result


def run_notebooks(notebooks: list[str], profile: str = "quick", overrides: dict | None = None, *,
                  progress_bar: bool = True, log_output: bool = False) -> list[RunResult]:
    """Validate all runs, then execute them one after the other (a failure does not stop the
    rest; look at each result's status)."""
    plans = plan_runs(notebooks, profile, overrides)
    return [execute(stem, params, profile, counter=f"[{i}/{len(plans)}]",
                    progress_bar=progress_bar, log_output=log_output)
            for i, (stem, params) in enumerate(plans, 1)]


def run_notebook(notebook: str, profile: str = "quick", overrides: dict | None = None,
                 **kwargs) -> RunResult:
    """Run one notebook (see run_notebooks)."""
    return run_notebooks([notebook], profile, overrides, **kwargs)[0]
