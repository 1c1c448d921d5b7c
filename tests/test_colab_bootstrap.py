"""The first cell of every notebook, run the way Colab runs it.

A fresh virtual environment stands in for Colab's runtime: it sees the packages Colab has
preinstalled (torch, numpy, matplotlib, ipywidgets, …: here, those of this environment, through a
folder that omits `helpers`) and a stand-in `google.colab` module. The set-up cell clones the
repository from a local URL (this working tree's HEAD, as a bare repository) into a temporary
folder and installs `helpers` from it; then every notebook's import cell must run. The test also
checks that the set-up cell installed no torch of its own (it must never reinstall Colab's).
"""
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from helpers.colab import notebooks, repository_setting

ROOT = Path(__file__).resolve().parents[1]
OWN = ("helpers", "__editable__", "_helpers", "__pycache__")  # what Colab does not have: the book itself


def colab_stack(where: Path) -> Path:
    """A folder that shows this environment's installed packages, except `helpers` and any .pth."""
    where.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(OWN) or entry.suffix == ".pth":
            continue
        (where / entry.name).symlink_to(entry)
    return where


RUN_CELLS = textwrap.dedent('''
    import json, os, sys
    import google.colab  # the stand-in: Colab's marker module
    try:
        import helpers
        raise SystemExit("helpers was importable before the set-up cell: the test proves nothing")
    except ImportError:
        pass
    notebooks = json.loads(sys.argv[1])
    for i, path in enumerate(notebooks):
        cells = [c for c in json.load(open(path))["cells"] if c["cell_type"] == "code"]
        if i == 0:
            exec("".join(cells[0]["source"]), {"__name__": "__main__"})  # the set-up cell
        exec("".join(cells[1]["source"]), {"__name__": "__main__"})      # the notebook's import cell
    import helpers
    print("HELPERS", helpers.__file__)
''')


@pytest.mark.skipif(sys.platform != "linux", reason="Colab runs Linux")
def test_the_set_up_cell_installs_the_book_as_on_colab(tmp_path):
    _, branch = repository_setting()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(ROOT), str(origin)], check=True)
    subprocess.run(["git", "-C", str(origin), "update-ref", f"refs/heads/{branch}", head.stdout.strip()], check=True)

    venv = tmp_path / "colab-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "colab_stack.pth").write_text(str(colab_stack(tmp_path / "colab-stack")) + "\n")
    stub = tmp_path / "stub" / "google" / "colab"
    stub.mkdir(parents=True)
    (stub.parent / "__init__.py").write_text("")
    (stub / "__init__.py").write_text('"""A stand-in for Colab\'s google.colab module."""\n')

    content = tmp_path / "content"  # Colab's working folder
    content.mkdir()
    repo_dir = content / "book-repo"
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "stub"), "BOOK_REPO_URL": origin.as_uri(),
           "BOOK_REPO_DIR": str(repo_dir), "BOOK_MODE": "smoke", "MPLBACKEND": "Agg",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("VIRTUAL_ENV", None)
    paths = [str(p) for p in notebooks()]
    result = subprocess.run([str(python), "-c", RUN_CELLS, json.dumps(paths)], cwd=content, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"HELPERS {repo_dir / 'helpers' / '__init__.py'}" in result.stdout  # from the clone, not this tree
    assert (repo_dir / ".git").is_dir()
    assert not list(site.glob("torch*")), "the set-up cell installed torch: it must keep Colab's"


def test_the_set_up_cell_does_nothing_outside_colab(tmp_path):
    cells = json.loads(notebooks()[0].read_text())["cells"]
    namespace = {"__name__": "__main__"}
    exec("".join(cells[0]["source"]), namespace)
    assert "REPO_DIR" not in namespace and "google.colab" not in sys.modules
