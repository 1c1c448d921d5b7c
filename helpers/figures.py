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


def log_ticks(ax, axis: str = "y") -> None:
    """Readable ticks on a log axis, once its limits are final: decade labels only where it spans
    more than :data:`LOG_LABEL_SPAN`; on a shorter span, also the 2s, 3s and 5s, as plain numbers
    (matplotlib would label them ``3×10⁻¹`` or leave the axis with one label)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y'; got {axis!r}")
    which = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())
    if lo <= 0 or hi / lo > LOG_LABEL_SPAN:
        which.set_minor_formatter(NullFormatter())
        return
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    which.set_minor_locator(LogLocator(subs=(2, 3, 5)))
    which.set_minor_formatter(plain)
    which.set_major_formatter(plain)


LOG_LABEL_SPAN = 40  # a log axis spanning more than this ratio gets decade labels only


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
