"""Checks on the committed notebooks themselves (nbval executes them separately)."""
import json

import pytest

from helpers import colab
from helpers.results import repo_root

NOTEBOOKS = colab.notebooks()


def test_there_are_notebooks():
    assert any(p.name == "getting_started.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(repo_root())))
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them (the book build executes notebooks)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(repo_root())))
def test_notebook_uses_the_python3_kernel(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"


def test_first_cells_match_the_repository_setting():
    stale = colab.sync(check=True)
    assert not stale, f"first (Colab) cells out of date in {stale}; run `python -m helpers.colab`"


def test_every_notebook_is_in_the_table_of_contents():
    toc = (repo_root() / "_toc.yml").read_text()
    for path in NOTEBOOKS:
        entry = str(path.relative_to(repo_root()).with_suffix(""))
        assert f"file: {entry}" in toc, f"{entry} is not in _toc.yml"
