import json

import pytest

from helpers import colab


def test_repository_setting_is_read_from_config():
    url, branch = colab.repository_setting()
    assert url.startswith("https://") and branch


@pytest.mark.parametrize("config", [
    "repository: {url: 'https://example.org/r', branch: dev}  # flow style\n",
    "title: t\nrepository:\n  # the address\n  url: \"https://example.org/r\"   # quoted, commented\n  branch: dev\n",
    "repository:\n  branch: dev\n  url: >-\n    https://example.org/r\n",
])
def test_repository_setting_reads_any_yaml_spelling(tmp_path, config):
    path = tmp_path / "_config.yml"
    path.write_text(config)
    assert colab.repository_setting(path) == ("https://example.org/r", "dev")


def test_bootstrap_is_a_noop_outside_colab():
    namespace = {}
    exec(colab.bootstrap_source("https://example.org/repo", "main"), namespace)  # must not clone or install
    assert "REPO_URL" not in namespace


def test_bootstrap_carries_the_url_and_branch():
    source = colab.bootstrap_source("https://example.org/repo", "dev")
    assert 'REPO_URL = os.environ.get("BOOK_REPO_URL", "https://example.org/repo")' in source
    assert '"--branch", "dev"' in source
    assert 'REPO_DIR = os.environ.get("BOOK_REPO_DIR", "/content/book-repo")' in source
    compile(source, "<bootstrap>", "exec")


@pytest.mark.parametrize("config, match", [
    ("title: x\n", "no 'repository:' section"),
    ("repository:\n  url: ftp://x\n", "must be an https URL"),
    ("repository: [1, 2]\n", "no 'repository:' section"),
    ("repository:\n  url: [unclosed\n", "not valid YAML"),
])
def test_bad_repository_setting(tmp_path, config, match):
    path = tmp_path / "_config.yml"
    path.write_text(config)
    with pytest.raises(ValueError, match=match):
        colab.repository_setting(path)


def test_sync_inserts_then_replaces_the_first_cell(tmp_path):
    nb_path = tmp_path / "n.ipynb"
    nb_path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# T"}],
                                   "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert colab.sync([nb_path], check=True) == [nb_path]
    assert json.loads(nb_path.read_text())["cells"][0]["cell_type"] == "markdown"  # check changed nothing
    colab.sync([nb_path])
    cells = json.loads(nb_path.read_text())["cells"]
    assert len(cells) == 2 and cells[0]["source"] == colab.bootstrap_source() and cells[1]["source"] == "# T"
    cells[0]["source"] = "old"
    nb_path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    colab.sync([nb_path])
    cells = json.loads(nb_path.read_text())["cells"]
    assert len(cells) == 2 and cells[0]["source"] == colab.bootstrap_source()
    assert colab.sync([nb_path], check=True) == []


def test_intro_clone_command_uses_the_repository_setting():
    from pathlib import Path
    url, _ = colab.repository_setting()
    intro = (Path(__file__).resolve().parents[1] / "book" / "intro.md").read_text()
    assert f"git clone {url}\n" in intro, "book/intro.md: the clone command must use repository.url of _config.yml"
