"""The book's figure style: figures fit the column and no text is below 9 pt."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import helpers  # noqa: E402,F401  (importing helpers applies the book's style)
from helpers import figures  # noqa: E402


def test_importing_helpers_sets_the_book_style():
    assert tuple(matplotlib.rcParams["figure.figsize"]) == (figures.WIDTH, 3.6)
    for key in ("xtick.labelsize", "ytick.labelsize", "legend.fontsize"):
        assert matplotlib.rcParams[key] >= figures.MIN_FONT_PT


def test_the_column_width_in_pixels():
    # 780 px: the text column of the built book at a 1400 px window is 784 px (measured in Chromium)
    assert figures.WIDTH * figures.DPI == 780


def test_a_book_figure_passes_the_check():
    fig, axes = plt.subplots(1, 2, figsize=figures.size(3))
    for ax in axes:
        ax.plot([1, 2, 3], label="a curve")
        ax.set(title="title", xlabel="step", ylabel="loss")
        ax.legend()
    figures.check_figure(fig)
    plt.close(fig)


def test_small_text_fails_the_check():
    fig, ax = plt.subplots(figsize=figures.size(3))
    ax.plot([1, 2])
    ax.legend(["tiny"], fontsize=7)
    with pytest.raises(figures.FigureStyleError, match="below 9 pt.*tiny"):
        figures.check_figure(fig)
    plt.close(fig)


def test_a_figure_wider_than_the_column_fails_the_check():
    fig, ax = plt.subplots(figsize=(12, 3))
    ax.plot([1, 2])
    with pytest.raises(figures.FigureStyleError, match="wide"):
        figures.check_figure(fig)
    plt.close(fig)
    # a legend placed outside the axes widens the saved (tight) figure: caught too
    fig, ax = plt.subplots(figsize=figures.size(3))
    ax.plot([1, 2], label="a rather long legend entry placed outside")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    with pytest.raises(figures.FigureStyleError, match="wide"):
        figures.check_figure(fig)
    plt.close(fig)


def test_bad_input():
    with pytest.raises(ValueError, match="height must be > 0"):
        figures.size(0)
    fig, _ = plt.subplots(figsize=figures.size(2))
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        figures.show(fig, "")
    plt.close(fig)


def test_log_ticks_label_short_spans_plainly_and_long_spans_by_decade():
    fig, (short, long) = plt.subplots(1, 2, figsize=figures.size(3))
    short.semilogy([1, 2], [2.0, 4.5])
    long.semilogy([1, 2], [1e-4, 1.0])
    for ax in (short, long):
        figures.log_ticks(ax)
    fig.canvas.draw()
    shown = [t.get_text() for t in short.yaxis.get_ticklabels(minor=True) if t.get_text()]
    assert {"2", "3"} <= set(shown)
    assert not [t.get_text() for t in long.yaxis.get_ticklabels(minor=True) if t.get_text()]
    with pytest.raises(ValueError, match="axis must be 'x' or 'y'"):
        figures.log_ticks(short, "z")
    plt.close(fig)
