"""pytest configuration for the whole repository.

Every notebook under book/ runs under nbval in SMOKE mode: the variable is set here, before any
kernel starts, so the kernels nbval launches inherit it.
"""
import os

os.environ["BOOK_MODE"] = "smoke"
# Notebook kernels must not pop up figure windows.
os.environ.setdefault("MPLBACKEND", "Agg")
