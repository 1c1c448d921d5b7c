"""Read the built book in a real browser, the way a reader would, and list what is broken.

``python -m helpers.book_check _build/html`` serves the built HTML on a free local port, opens
every page in headless Chromium (the system's browser: Debian's ``chromium`` package; nothing is
downloaded) at a desktop width (1400 px) and at a phone width (412 px), and reports, per page:

- ``console``: an error in the browser console or an uncaught script error raised by the book's
  own files (requests to other hosts are blocked, so that the check does not depend on the
  network; they are counted, not judged);
- ``image``: an image of the book's own that did not load;
- ``raw-table``: a paragraph that starts with ``|`` (a Markdown table printed as text);
- ``template``: literal ``{name}`` or ``{name['key']}`` text outside code and math (an f-string
  that lost its ``f``);
- ``repr``: a Python repr in an output (``np.float64(…)``, ``<… at 0x…>``, ``torch._C…``) or a
  machine path (``/root/``, ``/home/``, ``/tmp/``, ``/work/``);
- ``traceback`` / ``stderr``: a stack trace or a standard-error block in a cell's output;
- ``wide-table``: at 412 px, a table wider than the viewport, or a page that scrolls sideways;
- ``shrunk-figure``: at 1400 px, a figure shown at less than :data:`MIN_FIGURE_SCALE` of its own
  width (its 9-point text then renders smaller than 9 points; :mod:`helpers.figures`);
- ``math``: a page with mathematics but no MathJax script, so that readers see raw TeX (MathJax
  itself comes from another host, so the check cannot watch it typeset).

It exits with status 1 if anything was found, 0 otherwise. ``--screenshots DIR`` also saves a
full-page screenshot of each page at both widths.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import socketserver
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

DESKTOP = (1400, 900)
PHONE = (412, 915)
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
# Flags for a machine with no network beyond localhost: no background requests, no sandbox (root).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SKIP_PAGES = {"genindex.html", "search.html"}
_REDIRECT = re.compile(r'\s*<meta http-equiv="refresh"[^>]*>\s*$', re.IGNORECASE)
MIN_FIGURE_SCALE = 0.95

TEMPLATE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*(\[[^\]\s]{1,40}\])*(\.[A-Za-z_]\w*)*(:[^{}\s]{0,12})?\}")
REPR = re.compile(r"np\.(float|int)\d*\(|<[\w.]+ (object )?at 0x[0-9a-fA-F]+>|torch\._C\."
                  r"|(?<![\w.])/(root|home|tmp|work)/")

# Math on the page (Sphinx marks it with class "math") but no script that loads MathJax.
_MATH_WITHOUT_MATHJAX_JS = """() => {
  const pieces = document.querySelectorAll('main .math').length;
  const loader = document.querySelector('script[src*="mathjax" i]');
  return pieces > 0 && !loader ? pieces : 0;
}"""

# Text a reader sees outside code and math. Cell inputs, code spans and math (typeset or not)
# legitimately hold braces; cell outputs and prose do not.
_VISIBLE_TEXT_JS = """() => {
  const main = document.querySelector('main') || document.body;
  const copy = main.cloneNode(true);
  copy.querySelectorAll('script, style, .cell_input, code, .math, mjx-container, .MathJax, '
    + '.tex2jax_process, .headerlink').forEach(e => e.remove());
  return copy.innerText;
}"""

_OUTPUT_TEXT_JS = """() => Array.from(document.querySelectorAll('.cell_output'))
  .map(e => e.innerText).join('\\n')"""

_RAW_TABLES_JS = """() => Array.from(document.querySelectorAll('main p'))
  .map(p => p.innerText.trim()).filter(t => t.startsWith('|')).map(t => t.slice(0, 80))"""

_BROKEN_IMAGES_JS = """() => Array.from(document.images)
  .filter(i => i.src.startsWith(location.origin))
  .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'))"""

_SHRUNK_FIGURES_JS = """(minScale) => Array.from(document.querySelectorAll('main .cell_output img, main figure img'))
  .filter(i => i.naturalWidth > 0 && i.getBoundingClientRect().width > 0)
  .filter(i => i.getBoundingClientRect().width < minScale * i.naturalWidth)
  .map(i => `${i.getAttribute('src')}: ${i.naturalWidth} px shown at `
    + `${Math.round(100 * i.getBoundingClientRect().width / i.naturalWidth)}%`)"""

_STDERR_JS = """() => Array.from(document.querySelectorAll('.cell_output .stderr, .cell_output .output.stderr'))
  .map(e => e.innerText.trim().slice(0, 120))"""

_WIDE_TABLES_JS = """() => {
  const out = [];
  const vw = document.documentElement.clientWidth;
  document.querySelectorAll('main table').forEach(t => {
    const w = Math.ceil(t.getBoundingClientRect().width);
    if (w > vw) {
      const head = (t.innerText || '').trim().split('\\n')[0].slice(0, 60);
      out.push(`${w} px > ${vw} px: ${head}`);
    }
  });
  const sw = document.documentElement.scrollWidth;
  if (sw > vw + 1) out.push(`the page scrolls sideways: ${sw} px > ${vw} px`);
  return out;
}"""


@dataclass(frozen=True)
class Finding:
    """One problem on one page: ``kind`` is one of the names in the module docstring."""
    page: str
    width: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page} @{self.width}px [{self.kind}] {self.detail}"


def find_chromium(explicit: str | None = None) -> str:
    """The path of a Chromium executable (``explicit``, ``$CHROMIUM`` or a system location)."""
    for candidate in (explicit, os.environ.get("CHROMIUM"), *CHROMIUM_CANDIDATES,
                      shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise FileNotFoundError("no Chromium found: install Debian's 'chromium' package or pass "
                            "--chromium PATH (or set CHROMIUM)")


def book_pages(root: Path) -> list[str]:
    """Every page of the built book, as paths relative to ``root`` (sorted); redirect-only pages are left out."""
    root = Path(root)
    if not (root / "index.html").is_file():
        raise FileNotFoundError(f"root: {root} has no index.html; build the book first "
                                "(jupyter-book build .) and pass _build/html")
    pages = []
    for path in sorted(root.rglob("*.html")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in {"_static", "_sources", "_images"} or rel in SKIP_PAGES:
            continue
        if _REDIRECT.match(path.read_text(errors="replace")):
            continue  # a redirect (the root index.html): no content, and it navigates away while checked
        pages.append(rel)
    return pages


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on stderr
        pass


class serve:
    """Serve ``root`` over HTTP on a free local port, in a background thread (a context manager
    whose value is the base URL)."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def text_findings(page: str, width: int, visible: str, outputs: str) -> list[Finding]:
    """The template-text and repr findings in a page's visible text and its outputs' text."""
    found = []
    for match in TEMPLATE.finditer(visible):
        found.append(Finding(page, width, "template", match.group(0)))
    for match in REPR.finditer(outputs):
        line = outputs[max(0, match.start() - 30): match.end() + 30].replace("\n", " ")
        found.append(Finding(page, width, "repr", line))
    for line in outputs.splitlines():
        if "Traceback (most recent call last)" in line or re.match(r"\w+(Error|Exception): ", line):
            found.append(Finding(page, width, "traceback", line.strip()[:120]))
    return found


def check_page(browser, base: str, page: str, width: int, height: int,
               screenshots: Path | None = None) -> tuple[list[Finding], int]:
    """Open one page at one viewport size; return its findings and its count of blocked
    requests to other hosts."""
    context = browser.new_context(viewport={"width": width, "height": height})
    tab = context.new_page()
    found: list[Finding] = []
    external = []

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    def on_console(message):
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        if message.text.startswith("Failed to load resource") and url and not url.startswith(base):
            return  # a request to another host, blocked above
        found.append(Finding(page, width, "console", f"{message.text[:200]} ({url})"))

    tab.route("**/*", route)
    tab.on("console", on_console)
    tab.on("pageerror", lambda error: found.append(
        Finding(page, width, "console", f"uncaught: {str(error)[:200]}")))
    tab.goto(base + page, wait_until="load")
    tab.wait_for_timeout(300)
    for src in tab.evaluate(_BROKEN_IMAGES_JS):
        found.append(Finding(page, width, "image", src))
    for text in tab.evaluate(_RAW_TABLES_JS):
        found.append(Finding(page, width, "raw-table", text))
    for text in tab.evaluate(_STDERR_JS):
        found.append(Finding(page, width, "stderr", text))
    untypeset = tab.evaluate(_MATH_WITHOUT_MATHJAX_JS)
    if untypeset:
        found.append(Finding(page, width, "math", f"{untypeset} pieces of math and no MathJax script"))
    found += text_findings(page, width, tab.evaluate(_VISIBLE_TEXT_JS), tab.evaluate(_OUTPUT_TEXT_JS))
    if width <= PHONE[0]:
        for text in tab.evaluate(_WIDE_TABLES_JS):
            found.append(Finding(page, width, "wide-table", text))
    else:
        for text in tab.evaluate(_SHRUNK_FIGURES_JS, MIN_FIGURE_SCALE):
            found.append(Finding(page, width, "shrunk-figure", text))
    if screenshots is not None:
        name = page.replace("/", "__").removesuffix(".html")
        tab.screenshot(path=str(screenshots / f"{name}@{width}.png"), full_page=True)
    context.close()
    return found, len(external)


def check_book(root: Path, chromium: str | None = None, screenshots: Path | None = None,
               pages: list[str] | None = None, log=print) -> list[Finding]:
    """Check every page of the built book under ``root`` at both widths; return the findings."""
    from playwright.sync_api import sync_playwright  # imported here: only this check needs it

    root = Path(root)
    pages = book_pages(root) if pages is None else pages
    executable = find_chromium(chromium)
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    findings: list[Finding] = []
    blocked = 0
    with serve(root) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            for page in pages:
                for width, height in (DESKTOP, PHONE):
                    page_found, external = check_page(browser, base, page, width, height, screenshots)
                    findings += page_found
                    blocked += external
        finally:
            browser.close()
    log(f"checked {len(pages)} pages at {DESKTOP[0]} px and {PHONE[0]} px in {executable}; "
        f"{blocked} requests to other hosts blocked; {len(findings)} findings")
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.book_check", description=__doc__.split("\n")[0])
    parser.add_argument("root", nargs="?", default="_build/html", help="the built book (default: _build/html)")
    parser.add_argument("--chromium", help="the Chromium executable (default: $CHROMIUM or /usr/bin/chromium)")
    parser.add_argument("--screenshots", type=Path, help="save a full-page screenshot of every page here")
    parser.add_argument("--page", action="append", help="check only this page (relative path; repeatable)")
    args = parser.parse_args(argv)
    try:
        findings = check_book(Path(args.root), args.chromium, args.screenshots, args.page)
    except FileNotFoundError as error:
        print(f"book_check: {error}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
