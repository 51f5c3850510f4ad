"""Tests for alignlab.figures: the style, sizes, saving, and the CI plot helpers."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from alignlab import figures  # noqa: E402


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    root = tmp_path / "project"
    run = tmp_path / "run"
    monkeypatch.setenv("ALIGNLAB_ROOT", str(root))
    monkeypatch.setenv("ALIGNLAB_RUN_DIR", str(run))
    return root, run


@pytest.fixture
def table():
    return pd.DataFrame(
        {
            "method": ["weak", "weak", "w2s", "w2s"],
            "task": ["sciq", "facts", "sciq", "facts"],
            "mean": [0.6, 0.7, 0.75, 0.8],
            "lo": [0.55, 0.65, 0.7, float("nan")],
            "hi": [0.65, 0.72, 0.8, float("nan")],
        }
    )


def _figure(table):
    figures.use_style()
    fig, ax = plt.subplots(figsize=figures.figsize("column"))
    figures.bar_with_ci(ax, table, x="method", hue="task")
    return fig


def test_use_style_is_idempotent_and_sets_paper_defaults():
    figures.use_style()
    first = dict(matplotlib.rcParams)
    figures.use_style()
    assert dict(matplotlib.rcParams) == first
    assert matplotlib.rcParams["pdf.fonttype"] == 42
    assert matplotlib.rcParams["figure.constrained_layout.use"] is True


def test_figsize():
    assert figures.figsize() == pytest.approx((figures.COLUMN_WIDTH, figures.COLUMN_WIDTH * 0.62))
    assert figures.figsize("text", aspect=0.5) == pytest.approx((figures.TEXT_WIDTH, figures.TEXT_WIDTH / 2))
    assert figures.figsize(4.0, 1.0) == (4.0, 4.0)
    with pytest.raises(ValueError, match="column"):
        figures.figsize("page")


def test_export_figure_writes_pdf_and_png_in_both_places(dirs, table):
    root, run = dirs
    fig = _figure(table)
    written = figures.export_figure(fig, "01_w2sg", "pgr-bars")
    expected = [
        root / "figures" / "01_w2sg" / "pgr-bars.pdf",
        root / "figures" / "01_w2sg" / "pgr-bars.png",
        run / "figures" / "pgr-bars.pdf",
        run / "figures" / "pgr-bars.png",
    ]
    assert written == expected
    for path in expected:
        assert path.is_file() and path.stat().st_size > 0
    assert expected[0].read_bytes().startswith(b"%PDF")
    assert expected[0].read_bytes() == expected[2].read_bytes()
    with Image.open(expected[1]) as image:
        dpi = image.info["dpi"]
        assert dpi == pytest.approx((300, 300), abs=0.5)
        # pixel size follows the paper size in inches at 300 dpi
        assert image.size[0] == pytest.approx(figures.COLUMN_WIDTH * 300, abs=2)
    assert not list((root / "figures" / "01_w2sg").glob("*.tmp"))  # no leftovers
    plt.close(fig)


@pytest.mark.parametrize("bad", ["", "a b", "../up", "x/y", "fig.pdf", "naïve"])
def test_export_figure_rejects_bad_names(dirs, table, bad):
    fig = _figure(table)
    with pytest.raises(ValueError, match="letters, digits"):
        figures.export_figure(fig, "study", bad)
    with pytest.raises(ValueError, match="study"):
        figures.export_figure(fig, bad, "ok")
    plt.close(fig)


def test_pdf_bytes_are_deterministic(dirs, table):
    root, _ = dirs
    fig = _figure(table)
    first = figures.export_figure(fig, "s", "a")[0].read_bytes()
    second = figures.export_figure(fig, "s", "a")[0].read_bytes()
    assert first == second
    assert b"CreationDate" not in first
    plt.close(fig)
    # a fresh figure with the same drawing gives the same bytes too
    again = _figure(table)
    assert figures.export_figure(again, "s", "b")[0].read_bytes() == first
    plt.close(again)


def test_bar_with_ci_draws_one_bar_per_row(table):
    fig = _figure(table)
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == sorted(table["mean"].round(6))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["weak", "w2s"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sciq", "facts"]
    plt.close(fig)


def test_bar_and_line_without_hue(table):
    fig, (left, right) = plt.subplots(1, 2)
    one = table[table["task"] == "sciq"]
    figures.bar_with_ci(left, one, x="method")
    assert len(left.patches) == 2 and left.get_legend() is None
    curve = pd.DataFrame({"size": [1, 2, 3], "mean": [0.1, 0.2, 0.3], "lo": [0.0, 0.1, 0.2], "hi": [0.2, 0.3, 0.4]})
    figures.line_with_ci(right, curve, x="size")
    assert len(right.lines) == 1
    plt.close(fig)
