"""The Colab bootstrap: the first cell of every notebook.

On Colab the first cell clones this repository and installs ``helpers``; anywhere else it does
nothing. The repository URL lives in ONE setting, ``repository.url`` in ``_config.yml`` (which
also drives the book's launch buttons); the first cells are generated from it::

    python -m helpers.colab            # rewrite the first cell of every notebook under book/
    python -m helpers.colab --check    # exit 1 if any notebook's first cell is out of date

A test runs the check, so a changed URL cannot leave a notebook behind.

Used in: the first cell of every notebook under ``book/``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

from .results import atomic_write_text, repo_root

BOOTSTRAP_TAG = "colab-bootstrap"

_TEMPLATE = '''\
# Set-up. On Google Colab this installs the book's `helpers` package (about a minute);
# anywhere else it does nothing. Use a GPU runtime on Colab for the full-scale runs.
import sys
if "google.colab" in sys.modules:
    import os, subprocess
    # Where to clone from and to: Colab's values unless BOOK_REPO_URL / BOOK_REPO_DIR say otherwise.
    REPO_URL = os.environ.get("BOOK_REPO_URL", "{url}")
    REPO_DIR = os.environ.get("BOOK_REPO_DIR", "/content/book-repo")
    if not os.path.isdir(REPO_DIR):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "{branch}", REPO_URL, REPO_DIR], check=True)
    # `helpers` and what Colab lacks; Colab's own torch, numpy, matplotlib and ipywidgets are kept.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", REPO_DIR], check=True)
    sys.path.insert(0, REPO_DIR)'''


def repository_setting(config_path: Path | None = None) -> tuple[str, str]:
    """``(url, branch)`` from the ``repository:`` section of ``_config.yml`` (read with a YAML parser)."""
    config_path = repo_root() / "_config.yml" if config_path is None else Path(config_path)
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{config_path} is not valid YAML: {e}") from None
    section = config.get("repository") if isinstance(config, dict) else None
    if not isinstance(section, dict):
        raise ValueError(f"{config_path} has no 'repository:' section with the repository url")
    url = str(section.get("url") or "").strip()
    if not re.match(r"^https://\S+$", url):
        raise ValueError(f"repository.url in {config_path} must be an https URL; got {url!r}")
    return url, str(section.get("branch") or "main").strip() or "main"


def bootstrap_source(url: str | None = None, branch: str | None = None) -> str:
    """The source of the first cell, for ``url`` (default: the setting in ``_config.yml``)."""
    if url is None or branch is None:
        setting_url, setting_branch = repository_setting()
        url = setting_url if url is None else url
        branch = setting_branch if branch is None else branch
    return _TEMPLATE.format(url=url, branch=branch)


def notebooks(root: Path | None = None) -> list[Path]:
    """Every notebook of the book (under ``book/``, build outputs and checkpoints excluded)."""
    root = repo_root() if root is None else Path(root)
    return sorted(p for p in (root / "book").rglob("*.ipynb")
                  if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts)


def _first_cell_ok(nb: dict, source: str) -> bool:
    cells = nb.get("cells", [])
    if not cells or cells[0].get("cell_type") != "code":
        return False
    cell_source = cells[0].get("source", "")
    cell_source = "".join(cell_source) if isinstance(cell_source, list) else cell_source
    return cell_source == source


def sync(paths: list[Path] | None = None, check: bool = False) -> list[Path]:
    """Make the first cell of each notebook the bootstrap cell; return the notebooks that differed.

    With ``check=True`` nothing is written.
    """
    source = bootstrap_source()
    stale = []
    for path in notebooks() if paths is None else paths:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        if _first_cell_ok(nb, source):
            continue
        stale.append(Path(path))
        if check:
            continue
        cell = {"cell_type": "code", "execution_count": None, "id": BOOTSTRAP_TAG,
                "metadata": {"tags": [BOOTSTRAP_TAG, "remove-cell"]}, "outputs": [], "source": source}
        cells = nb.setdefault("cells", [])
        first = cells[0] if cells else {}
        if BOOTSTRAP_TAG in first.get("metadata", {}).get("tags", []):
            cells[0] = cell
        else:
            cells.insert(0, cell)
        atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report out-of-date notebooks, change nothing")
    args = parser.parse_args(argv)
    stale = sync(check=args.check)
    for path in stale:
        print(("out of date: " if args.check else "updated: ") + str(path.relative_to(repo_root())))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
