"""The parameters-cell contract: parse, validate, profiles, merge order, paths.

1. A notebook's first code cell is tagged `parameters` (papermill). We parse it with `ast`: every
   `name = <literal>` line is a parameter, its default gives the type, and a trailing
   `# one of: a, b, c` comment restricts the values.
2. `check_value` validates one value; the runner calls it before any kernel starts and the
   notebook's second cell (`alignlab.nb.check_params`) calls it again. Rules:
   - the value must have the default's type; an int is fine where a float is expected; a
     default of None accepts anything; for a list, each element must have the type of the
     default's elements (when the default list is not empty);
   - `# one of: ...` restricts the value (each element, for a list);
   - `model`, `models`, `*_model`, `*_models` are checked by `alignlab.models.zoo.check_model_name`;
   - `n_*` must be >= 1; `seeds` must be a non-empty list of ints.
3. Paths (`resolve_paths`). A parameter named `*_path`, `*_folder` or `*_dir` names a file or
   folder; so does a `dataset` or model value that starts with `./`, `../`, `/` or `~`, or that
   exists as a path. Such a value is made absolute before the kernel (which runs in notebooks/)
   sees it, and must exist. Relative paths are taken from the current directory for `-p` values,
   from the project root for profile values and from notebooks/ for a notebook's own defaults
   (where its kernel runs). Other values (`gpt2`, `allenai/sciq`) stay as they are.
4. Profiles: `profiles/<name>.yaml` maps a notebook stem to parameter overrides; an optional
   `all:` section applies to every notebook that has those parameters. Merge order:
   notebook defaults < profile `all` < profile `<stem>` < `-p NAME VALUE` (parsed as YAML).
   Then the study's `Config.from_params` runs its own checks.

Everything here is cheap to import: validating a run takes a fraction of a second.
"""

from __future__ import annotations

import ast
import copy
import difflib
import io
import json
import numbers
import os
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import yaml

from alignlab.paths import notebooks_dir, profiles_dir, project_root
from alignlab.studies import config_class
from alignlab.study_config import ParameterError

__all__ = [
    "Parameter", "ParameterError", "check_name", "check_value", "list_notebooks", "list_profiles",
    "load_profile", "parameters_cell", "params_resolver", "parse_choices", "parse_parameters",
    "parse_value", "plan_runs", "read_parameters", "resolve_notebook", "resolve_params", "resolve_paths",
]


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


def is_model_parameter(name: str) -> bool:
    """`model`, `models`, `*_model`, `*_models`: values are model names, hub ids or local paths."""
    return name in ("model", "models") or name.endswith(("_model", "_models"))


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
            if item not in p.choices and not _is_local_dataset(p.name, item):
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
    if is_model_parameter(p.name):
        from alignlab.models.zoo import check_model_name  # huggingface_hub: only when a model is set
        for item in items:
            if isinstance(item, str):
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
# Paths: made absolute before the kernel (whose working directory is notebooks/) sees them

PATH_SUFFIXES = ("_path", "_folder", "_dir")
PATH_PREFIXES = ("./", "../", "/", "~")


def is_path_parameter(name: str) -> bool:
    """`*_path`, `*_folder`, `*_dir`: the value (a string, or None) names a file or folder."""
    return name.endswith(PATH_SUFFIXES)


def _embedded_names() -> tuple[str, ...]:
    from alignlab.models.zoo import EMBEDDED  # cheap, but only needed for model values

    return tuple(EMBEDDED)


def resolve_paths(notebook: str, name: str, value, base: Path, where: str = "", choices=None):
    """`value` with every path in it made absolute against `base` (see the module docstring).

    A path parameter's value must exist, and so must a `dataset` or model value written as a path
    (`./x`, `../x`, `/x`, `~/x`); a `dataset` or model value that exists relative to `base` is a
    path too, unless it is one of the parameter's `# one of:` choices or an embedded model name.
    Anything else (None, `gpt2`, `allenai/sciq`, numbers) is returned unchanged.
    Raises ParameterError naming the parameter and the resolved path."""
    always = is_path_parameter(name)
    if not always and name != "dataset" and not is_model_parameter(name):
        return value
    if isinstance(value, (list, tuple)):
        return [resolve_paths(notebook, name, item, base, where, choices) for item in value]
    if not isinstance(value, str) or not value:
        return value
    if not always and not value.startswith(PATH_PREFIXES) and (value in (choices or ()) or (
            is_model_parameter(name) and value in _embedded_names())):
        return value
    path = Path(os.path.abspath(Path(base) / Path(value).expanduser()))
    written_as_path = value.startswith(PATH_PREFIXES) or value in (".", "..")
    if path.exists():
        return str(path)
    if always or written_as_path:
        what = f"parameter {name!r} of {notebook}" + (f" ({where})" if where else "")
        relative = "" if Path(value).expanduser().is_absolute() else f", relative to {base}"
        raise ParameterError(f"{what}: no such file or folder: {path} (got {value!r}{relative}).")
    return value


def _is_local_dataset(name: str, value) -> bool:
    """A `dataset` value that `resolve_paths` made an existing absolute path: a local copy of a
    dataset (e.g. a SciQ folder), which the study's Config checks instead of the `# one of:` choices."""
    return name == "dataset" and isinstance(value, str) and os.path.isabs(value) and os.path.exists(value)


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
    return params_resolver(notebook, profile)(overrides)


def params_resolver(notebook: str, profile: str = "quick"):
    """`resolve(overrides) -> params`, as `resolve_params(notebook, profile, overrides)`, with the
    notebook, its defaults and the profile read and checked once (a sweep resolves hundreds)."""
    path = resolve_notebook(notebook)
    stem = path.stem
    parameters = read_parameters(path)
    sections = load_profile(profile)
    common = {k: v for k, v in sections.get("all", {}).items() if k in parameters}
    base = {name: resolve_paths(stem, name, p.default, notebooks_dir(), "its default", p.choices)
            for name, p in parameters.items() if p.literal}
    for layer, where in ((common, f"profile {profile!r}, section 'all'"),
                         (sections.get(stem, {}), f"profile {profile!r}")):
        for name, value in layer.items():
            check_name(stem, name, parameters, where)
            value = resolve_paths(stem, name, value, project_root(), where, parameters[name].choices)
            base[name] = check_value(stem, parameters[name], value, where)
    config = config_class(stem)

    def resolve(overrides: dict | None = None) -> dict:
        params, where, cwd = copy.deepcopy(base), "set with -p", Path.cwd()  # no list shared between runs
        for name, value in (overrides or {}).items():
            check_name(stem, name, parameters, where)
            value = resolve_paths(stem, name, value, cwd, where, parameters[name].choices)
            params[name] = check_value(stem, parameters[name], value, where)
        if config is not None:
            config.from_params(params)  # the study's own checks, before any kernel starts
        return params

    return resolve


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
