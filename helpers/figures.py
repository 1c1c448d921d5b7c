"""The book's figures: one width, readable fonts, numbered captions.

Every figure is drawn for the book's text column: :data:`WIDTH` inches wide at :data:`DPI` dots
per inch is 780 pixels, the width of the column at a 1400-pixel window, so a figure is shown at
its own size and a 9-point label stays 9 points. :func:`use_book_style` (run when ``helpers`` is
imported) sets matplotlib's defaults to that width and to fonts of at least
:data:`MIN_FONT_PT` points; :func:`check_figure` measures a drawn figure against both.

:func:`show` displays a figure that a page refers to by number: in the built book MyST-NB's
``glue`` stores it under a name, and the page's ``{glue:figure}`` directive gives it its number
and caption; where MyST-NB is not installed (Colab) it is simply displayed.
"""
from __future__ import annotations

import matplotlib

WIDTH = 7.8          # inches: the book's text column at DPI (780 px; the column is 784 px at 1400 px)
DPI = 100            # matplotlib's and the inline backend's default resolution
MIN_FONT_PT = 9      # no text in a figure is smaller
WIDTH_SLACK = 0.05   # a drawn figure (with its tight bounding box) may be this fraction wider

BOOK_RC = {
    "figure.figsize": (WIDTH, 3.6),
    "figure.dpi": DPI,
    "savefig.dpi": "figure",
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "legend.framealpha": 0.85,
    "figure.titlesize": 11,
}


def use_book_style() -> None:
    """Set matplotlib's defaults to the book's (:data:`BOOK_RC`)."""
    matplotlib.rcParams.update(BOOK_RC)


def size(height: float, width: float = WIDTH) -> tuple[float, float]:
    """A ``figsize`` of the column's width and ``height`` inches."""
    if not height > 0:
        raise ValueError(f"height must be > 0 inches; got {height!r}")
    return (width, height)


class FigureStyleError(ValueError):
    """A figure is wider than the column or has text below :data:`MIN_FONT_PT`."""


def check_figure(fig) -> None:
    """Raise :class:`FigureStyleError` if ``fig``, drawn with a tight bounding box (as the book
    and Jupyter save it), is wider than ``WIDTH·(1 + WIDTH_SLACK)`` inches, or if any visible
    text in it is smaller than :data:`MIN_FONT_PT` points."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width = fig.get_tightbbox(renderer).width  # inches
    problems = []
    if width > WIDTH * (1 + WIDTH_SLACK):
        problems.append(f"{width:.2f} in wide (the column is {WIDTH} in)")
    small = sorted({(round(t.get_fontsize(), 1), t.get_text()[:30]) for t in fig.findobj(matplotlib.text.Text)
                    if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_FONT_PT})
    if small:
        problems.append(f"text below {MIN_FONT_PT} pt: {small[:5]}")
    if problems:
        raise FigureStyleError("figure " + "; ".join(problems))


def show(fig, name: str) -> None:
    """Display ``fig`` as the numbered figure ``name`` (see the module docstring), then close it
    so that the inline backend does not show it a second time."""
    import matplotlib.pyplot as plt

    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string (the figure's label); got {name!r}")
    check_figure(fig)
    try:
        from myst_nb import glue
    except ImportError:  # Colab and bare Jupyter: no numbered captions, just the figure
        from IPython.display import display
        display(fig)
    else:
        glue(name, fig, display=True)
    plt.close(fig)
