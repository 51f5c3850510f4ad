"""One paper style for every study, and one way to save a figure.

- `use_style()` sets a single seaborn/matplotlib theme: white grid, the colour-blind-safe
  seaborn palette, 8-9 pt fonts sized for a two-column paper, TrueType fonts in PDFs
  (`pdf.fonttype = 42`, so text stays editable in Illustrator/Inkscape), constrained layout.
- `figsize("column" | "text", aspect)` gives sizes in inches that match the paper columns,
  so a figure is drawn at its printed size and its fonts print at the size set here.
- `export_figure(fig, study, name)` writes `figures/<study>/<name>.pdf` and `.png` (300 dpi)
  and a copy into the current run folder, `<run_dir>/figures/` (notebooks call it through
  `alignlab.nb.save_figure`). The PDF carries no creation date and a fixed producer, so saving
  the same figure twice gives the same bytes.
- `bar_with_ci` and `line_with_ci` draw the `mean, lo, hi` tables that `stats.summarize`
  produces. They draw with matplotlib rather than `seaborn.barplot`/`lineplot` because those
  compute their own intervals from raw rows, while these tables carry intervals already
  computed (a t-interval over seeds or a bootstrap over examples).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib as mpl
import numpy as np
import seaborn as sns

from alignlab import paths

COLUMN_WIDTH = 3.25  # inches: one column of a two-column paper (ACL, NeurIPS-style 2-col)
TEXT_WIDTH = 6.75  # inches: the full text width of the same page
PNG_DPI = 300

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")

# Fixed metadata: no dates, no library versions, so the bytes depend only on the drawing.
_PDF_METADATA = {"CreationDate": None, "ModDate": None, "Producer": "alignlab", "Creator": "alignlab"}
_PNG_METADATA = {"Software": "alignlab"}


def use_style() -> None:
    """Apply the paper theme to matplotlib's global state. Safe to call many times."""
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind")
    mpl.rcParams.update(
        {
            "figure.figsize": figsize("column"),
            "figure.dpi": 150,  # on-screen size in notebooks; saving uses PNG_DPI
            "figure.constrained_layout.use": True,
            "font.size": 8,
            "axes.titlesize": 9,
            "axes.labelsize": 8,
            "xtick.labelsize": 7,
            "ytick.labelsize": 7,
            "legend.fontsize": 7,
            "legend.title_fontsize": 8,
            "legend.frameon": False,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "lines.linewidth": 1.25,
            "lines.markersize": 4,
            "errorbar.capsize": 2,
            "pdf.fonttype": 42,  # TrueType: text stays editable
            "ps.fonttype": 42,
            "svg.fonttype": "none",
            "savefig.dpi": PNG_DPI,
        }
    )


def figsize(width: str | float = "column", aspect: float = 0.62) -> tuple[float, float]:
    """(width, height) in inches: `width` is "column", "text" or inches; height = width * aspect."""
    widths = {"column": COLUMN_WIDTH, "text": TEXT_WIDTH}
    if isinstance(width, str):
        if width not in widths:
            raise ValueError(f"width must be 'column', 'text' or a number of inches, got {width!r}")
        width = widths[width]
    return (float(width), float(width) * aspect)


def _check_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not _NAME_PATTERN.match(value):
        raise ValueError(
            f"figure {what} {value!r} is not valid: use letters, digits, '-' and '_' only "
            "(it becomes a file name)"
        )


def export_figure(fig, study: str, name: str) -> list[Path]:
    """Write `fig` as PDF and 300-dpi PNG to `figures/<study>/` and `<run_dir>/figures/`.

    Returns the four written paths: the two under `paths.figures_dir()` first, then the
    two copies in the run folder (`paths.run_dir(study)`), so the executed notebook's
    folder holds the figures it produced. `study` and `name` must be plain names (letters,
    digits, '-', '_'). The figure is left open so a notebook still displays it.
    """
    _check_name(study, "study")
    _check_name(name, "name")
    out_dir = paths.figures_dir() / study
    pdf_path = out_dir / f"{name}.pdf"
    png_path = out_dir / f"{name}.png"
    paths.atomic_write(pdf_path, lambda f: fig.savefig(f, format="pdf", metadata=_PDF_METADATA))
    paths.atomic_write(png_path, lambda f: fig.savefig(f, format="png", dpi=PNG_DPI, metadata=_PNG_METADATA))

    run_figures = paths.run_dir(study) / "figures"
    run_figures.mkdir(parents=True, exist_ok=True)
    written = [pdf_path, png_path]
    for source in (pdf_path, png_path):
        target = run_figures / source.name
        if target.resolve() != source.resolve():
            shutil.copyfile(source, target)
        written.append(target)
    return written


# -----------------------------------------------------------------------------
# plot helpers for `stats.summarize` tables

def _errors(df, y: str, lo: str, hi: str) -> np.ndarray:
    """Asymmetric error bar lengths [[below], [above]]; a missing interval draws no bar."""
    mean = df[y].to_numpy(dtype=float)
    below = np.nan_to_num(mean - df[lo].to_numpy(dtype=float), nan=0.0)
    above = np.nan_to_num(df[hi].to_numpy(dtype=float) - mean, nan=0.0)
    return np.vstack([below, above])


def _levels(series) -> list:
    """Category order: the categorical order if there is one, else order of appearance."""
    if hasattr(series, "cat"):
        present = set(series)
        return [level for level in series.cat.categories if level in present]
    return list(dict.fromkeys(series))


def bar_with_ci(ax, df, x: str, y: str = "mean", lo: str = "lo", hi: str = "hi", hue: str | None = None):
    """Bars of `df[y]` at each `x` category with error bars from `lo` to `hi`.

    `df` is a `summarize` table. With `hue`, bars are grouped side by side and labelled
    for a legend. Colours follow the axes' colour cycle (the paper palette). Returns `ax`.
    """
    x_levels = _levels(df[x])
    hue_levels = _levels(df[hue]) if hue else [None]
    group_width = 0.8
    bar_width = group_width / len(hue_levels)
    colors = mpl.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for i, level in enumerate(hue_levels):
        rows = df if hue is None else df[df[hue] == level]
        positions = np.array([x_levels.index(value) for value in rows[x]], dtype=float)
        positions += -group_width / 2 + bar_width * (i + 0.5)
        ax.bar(
            positions,
            rows[y].to_numpy(dtype=float),
            width=bar_width,
            yerr=_errors(rows, y, lo, hi),
            color=colors[i % len(colors)],
            label=None if hue is None else str(level),
            error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "0.2"},
        )
    ax.set_xticks(range(len(x_levels)))
    ax.set_xticklabels([str(level) for level in x_levels])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if hue is not None:
        ax.legend(title=hue)
    return ax


def line_with_ci(ax, df, x: str, y: str = "mean", lo: str = "lo", hi: str = "hi", hue: str | None = None):
    """A line of `df[y]` against numeric `x` with a shaded `lo`-`hi` band, one per `hue`.

    For curves over model size, training steps or number of in-context examples. Returns `ax`.
    """
    hue_levels = _levels(df[hue]) if hue else [None]
    for level in hue_levels:
        rows = (df if hue is None else df[df[hue] == level]).sort_values(x)
        line, = ax.plot(rows[x], rows[y], marker="o", label=None if hue is None else str(level))
        ax.fill_between(rows[x], rows[lo], rows[hi], color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if hue is not None:
        ax.legend(title=hue)
    return ax
