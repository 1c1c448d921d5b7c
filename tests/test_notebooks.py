"""Checks on the committed notebooks themselves (nbval executes them separately).

Every notebook ``X.ipynb`` is paired with a text file ``X.nb.md`` (jupytext, MyST markdown):
the text is what people review and diff, the ``.ipynb`` what the book builds and nbval runs.
After editing either, run ``jupytext --sync book/*.ipynb book/*/*.ipynb``.
"""
import ast
import importlib
import json
import re

import jupytext
import numpy as np
import pytest
import torch

import helpers
from helpers import colab
from helpers.results import repo_root

NOTEBOOKS = colab.notebooks()
IDS = [str(p.relative_to(repo_root())) for p in NOTEBOOKS]


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


def test_there_are_notebooks():
    assert any(p.name == "getting_started.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_committed_without_outputs(path):
    dirty = [i for i, c in enumerate(cells(path))
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them (the book build executes notebooks)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
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


# ------------------------------------------------------------------ the paired text files

@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_and_its_text_file_agree(path):
    text = path.with_suffix(".nb.md")
    assert text.is_file(), f"{text.name} is missing; run `jupytext --set-formats ipynb,.nb.md:myst {path}`"
    nb_cells = [(c["cell_type"], source(c).strip(), sorted(tags(c))) for c in cells(path)]
    md_cells = [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", [])))
                for c in jupytext.read(text).cells]
    assert len(nb_cells) == len(md_cells), (f"{path.name} has {len(nb_cells)} cells, {text.name} {len(md_cells)}; "
                                            "run `jupytext --sync` on the one you did not edit")
    for i, (a, b) in enumerate(zip(nb_cells, md_cells)):
        assert a == b, f"cell {i} differs between {path.name} and {text.name}; run `jupytext --sync {path}`"


# ------------------------------------------------------------------ lint

FIGURE = re.compile(r"plt\.(subplots|figure|show)\(|\bplots\.\w+\(")
ROLE = re.compile(r"\{[\w:.-]+\}`[^`\n]*`")   # a MyST role: {cite:t}`key`, {doc}`page`
MATH_OR_CODE = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$|```.*?```|`[^`\n]*`", re.DOTALL)
TEMPLATE = re.compile(r"\{[^{}\n]*\}")


def unrendered_templates(markdown: str) -> list[str]:
    """``{…}`` left in prose: what is not math, code, a MyST role ``{name}`…``` or a directive."""
    lines = [ln for ln in markdown.splitlines() if not ln.lstrip().startswith((":::", "```", ":"))]
    text = MATH_OR_CODE.sub(" ", ROLE.sub(" ", "\n".join(lines)))
    return TEMPLATE.findall(text)


def test_template_finder_catches_python_formatting_and_spares_myst():
    assert unrendered_templates("the LLC at {S['llc_M']} is {x:.2f}") == ["{S['llc_M']}", "{x:.2f}"]
    assert unrendered_templates("see {cite:t}`paper` and $\\mathbb{E}[x]$ and\n```{note}\nhi\n```\n:::{tip}\n:::") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_markdown_cells_have_no_unrendered_templates(path):
    bad = {i: unrendered_templates(source(c)) for i, c in enumerate(cells(path)) if c["cell_type"] == "markdown"}
    bad = {i: t for i, t in bad.items() if t}
    assert not bad, f"{path.name}: markdown cells show template text to readers: {bad}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_figure_is_followed_by_what_to_see(path):
    cs = cells(path)
    bad = [i for i, c in enumerate(cs) if c["cell_type"] == "code" and FIGURE.search(source(c))
           and (i + 1 == len(cs) or cs[i + 1]["cell_type"] != "markdown")]
    assert not bad, f"{path.name}: figure cells {bad} need a markdown cell right after that says what to see"


def imports(code: str) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every import statement in ``code`` (IPython magics skipped)."""
    code = "\n".join(ln for ln in code.splitlines() if not ln.lstrip().startswith(("%", "!")))
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebooks_import_only_public_package_names(path):
    for i, c in enumerate(cells(path)):
        if c["cell_type"] != "code":
            continue
        for module, names in imports(source(c)):
            if not module.startswith("helpers"):
                continue
            assert "__main__" not in module, f"{path.name} cell {i}: imports from {module}; use the package"
            assert module.count(".") <= 1, (f"{path.name} cell {i}: imports from {module}; import from the "
                                            "package (its __init__ exports the public API)")
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{path.name} cell {i}: imports private names {private} from {module}"


EXERCISES = [(p, i) for p in NOTEBOOKS for i, c in enumerate(cells(p)) if "exercise" in tags(c)]


def test_the_book_has_exercises():
    assert len(EXERCISES) >= 6


@pytest.mark.parametrize("path, i", EXERCISES, ids=[f"{p.relative_to(repo_root())}#{i}" for p, i in EXERCISES])
def test_no_exercise_stub_passes_its_checker(path, i):
    """An exercise cell defines ``my_…`` and calls ``check_…(my_…)``; the stub as committed must fail."""
    code = source(cells(path)[i])
    tree = ast.parse(code)
    stubs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("my_")]
    checks = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
              and n.func.id.startswith("check_")}
    assert len(stubs) == 1 and len(checks) == 1, (f"{path.name} cell {i}: an exercise defines one my_… "
                                                  f"and calls one check_…")
    chapter = path.parent.name
    package = importlib.import_module(f"helpers.{chapter}")
    namespace = {"torch": torch, "np": np, **{n: getattr(helpers, n) for n in helpers.__all__},
                 **{n: getattr(package, n) for n in package.__all__}}
    defs = ast.Module(body=[n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.Import, ast.ImportFrom))],
                      type_ignores=[])
    exec(compile(defs, f"{path.name}#{i}", "exec"), namespace)
    check = namespace[checks.pop()]
    with pytest.raises((helpers.ExerciseError, NotImplementedError)):
        check(namespace[stubs[0]])
