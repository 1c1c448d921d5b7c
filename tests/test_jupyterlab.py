"""A reader's JupyterLab, in a real browser: start JupyterLab on a free local port, open the
trajectory-PCA page of chapter 3 (it has an ipywidgets slider), run all its cells, move the
slider, and see the figure change; then shut the server down.

Needs Chromium and Playwright (``.ci/run`` installs both); skipped, saying so, where either is missing.
"""
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import book_check

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "book" / "transient_ridge" / "03_trajectory_pca.ipynb"
TOKEN = "book-test-token"


def _browser_available():
    try:
        book_check.find_chromium()
    except FileNotFoundError:
        return False
    return importlib.util.find_spec("playwright") is not None and importlib.util.find_spec("jupyterlab") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(port: int, proc, timeout: float = 60.0):
    url = f"http://127.0.0.1:{port}/api/status?token={TOKEN}"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"JupyterLab did not answer on port {port} within {timeout:.0f} s")


def wait_for_kernel(port: int, timeout: float = 60.0) -> None:
    """Until the server has a session for the notebook whose kernel is idle."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/sessions?token={TOKEN}", timeout=5) as r:
            sessions = json.loads(r.read())
        if any(s.get("path", "").endswith(NOTEBOOK.name) and (s.get("kernel") or {}).get("execution_state") == "idle"
               for s in sessions):
            return
        time.sleep(0.5)
    raise TimeoutError(f"no idle kernel for {NOTEBOOK.name} within {timeout:.0f} s")


def run_all_and_move_the_slider(page, port: int) -> None:
    page.goto(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    wait_for_kernel(port)  # the server's kernel for this notebook is up and idle
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator("[data-command='runmenu:run-all']").click()
    dialog = page.locator(".jp-Dialog button", has_text="Select")  # "Select Kernel", if the page still asks
    try:
        dialog.click(timeout=3_000)
    except Exception:
        pass
    # the first code cell is queued ("[*]") or has run ("[1]")
    page.wait_for_function("() => /\\[(\\*|\\d+)\\]/.test(document.querySelector("
                           "'.jp-CodeCell .jp-InputPrompt')?.textContent || '')", timeout=30_000)
    slider = page.locator(".widget-slider", has_text="checkpoint")
    slider.wait_for(timeout=120_000)
    figure = page.locator(".widget-output img").first
    figure.wait_for(timeout=60_000)
    before = figure.get_attribute("src")
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    for _ in range(3):
        handle.press("ArrowLeft")
    page.wait_for_function("(b) => { const i = document.querySelector('.widget-output img');"
                           " return i && i.getAttribute('src') !== b; }", arg=before, timeout=60_000)
    assert figure.get_attribute("src") != before


@pytest.mark.skipif(not _browser_available(),
                    reason="needs Chromium, Playwright and JupyterLab (.ci/run installs them)")
def test_moving_the_slider_in_jupyterlab_redraws_the_figure(tmp_path):
    from playwright.sync_api import sync_playwright

    work = tmp_path / "lab"
    work.mkdir()
    # A copy (JupyterLab saves what it runs: never into the repository), without its jupytext pairing
    # (jupytext's server extension would write a paired text file beside it).
    nb = json.loads(NOTEBOOK.read_text())
    nb["metadata"].pop("jupytext", None)
    (work / NOTEBOOK.name).write_text(json.dumps(nb))
    port = free_port()
    env = {**os.environ, "BOOK_MODE": "smoke", "BOOK_PROGRESS": "0",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings")}
    env.pop("MPLBACKEND", None)  # the kernel draws inline, as for a reader
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
                             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
                             f"--ServerApp.root_dir={work}", "--ServerApp.port_retries=0", "--allow-root"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_server(port, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=book_check.find_chromium(), args=book_check.CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                run_all_and_move_the_slider(page, port)
            except Exception as e:
                shot = tmp_path / "jupyterlab.png"
                page.screenshot(path=str(shot), full_page=True)
                errors = page.locator(".jp-OutputArea-output[data-mime-type*='stderr'], "
                                      ".jp-OutputArea-output[data-mime-type*='error']").all_inner_texts()
                raise AssertionError(f"{e}\nscreenshot: {shot}\nerror outputs: {errors[:3]}") from None
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
