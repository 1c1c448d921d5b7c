"""The real-browser check of the built book (helpers.book_check): it finds what it promises to.

The text checks run everywhere; the browser checks need Chromium and Playwright (``.ci/run``
installs both) and are skipped, saying so, where either is missing.
"""
import importlib.util

import pytest

from helpers import book_check
from helpers.book_check import Finding, book_pages, text_findings


def kinds(found):
    return sorted({f.kind for f in found})


def test_template_text_is_found_outside_code():
    found = text_findings("p.html", 1400, "M = {S['llc_M']} and {crit} and {x.y:.2f}", "")
    assert [f.detail for f in found] == ["{S['llc_M']}", "{crit}", "{x.y:.2f}"]
    assert text_findings("p.html", 1400, "a set {1, 2} and a dict {'a': 1}", "") == []


def test_reprs_paths_and_tracebacks_are_found_in_outputs():
    outputs = ("{15: np.float64(1.003)}\n<torch._C.Generator at 0x7f710cba53b0>\n"
               "Result /root/book/x.json missing\nTraceback (most recent call last):\nValueError: bad\n")
    assert kinds(text_findings("p.html", 412, "", outputs)) == ["repr", "traceback"]
    assert len([f for f in text_findings("p.html", 412, "", outputs) if f.kind == "repr"]) == 3
    assert text_findings("p.html", 412, "", "error 1.0e-3 after 40 steps; see results/tree_cot/run.json") == []


def test_pages_of_a_missing_build(tmp_path):
    with pytest.raises(FileNotFoundError, match="root: .* has no index.html"):
        book_pages(tmp_path)
    assert book_check.main([str(tmp_path)]) == 2


def test_pages_skip_assets_and_generated_indexes(tmp_path):
    for rel in ("index.html", "book/a.html", "_static/x.html", "genindex.html", "search.html"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("<html></html>")
    assert book_pages(tmp_path) == ["book/a.html", "index.html"]
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/a.html" />\n')
    assert book_pages(tmp_path) == ["book/a.html"]   # a redirect has nothing to check


def _browser_available():
    try:
        book_check.find_chromium()
    except FileNotFoundError:
        return False
    return importlib.util.find_spec("playwright") is not None


browser = pytest.mark.skipif(not _browser_available(), reason="needs Chromium and Playwright (.ci/run installs them)")

def _png(path, width, height):
    """A plain PNG of ``width`` × ``height`` pixels (written with matplotlib, no other dependency)."""
    import matplotlib.image
    import numpy as np
    matplotlib.image.imsave(path, np.zeros((height, width, 3)))


PAGE = """<!doctype html><html><head><meta name="viewport" content="width=device-width"></head>
<body><main>{body}</main></body></html>"""


@browser
def test_the_browser_finds_each_kind_of_breakage(tmp_path):
    (tmp_path / "index.html").write_text(PAGE.format(body="<p>fine</p>"))
    (tmp_path / "bad.html").write_text(PAGE.format(body="""
      <p>| a | b |</p>
      <img src="missing.png">
      <script>undefined_function();</script>
      <table><tr><td style="white-space: nowrap">"""
        """a very long unbreakable cell that is wider than any phone's screen by far</td></tr></table>
      <div class="cell_output"><div class="output stderr"><pre>UserWarning: careful</pre></div>
      <pre>{'a': np.float64(1.0)}</pre></div>
      <p>M = {S['llc_M']}</p>
      <img src="https://example.org/elsewhere.png">
      <figure><img src="wide.png" style="max-width: 100%"></figure>
      <p>Math without its typesetter: <span class="math notranslate">\\(x^2\\)</span></p>"""))
    _png(tmp_path / "wide.png", 3000, 20)  # a figure wider than any column: shown shrunk
    found = book_check.check_book(tmp_path, log=lambda *_: None)
    bad = [f for f in found if f.page == "bad.html"]
    assert kinds(bad) == ["console", "image", "math", "raw-table", "repr", "shrunk-figure", "stderr", "template",
                          "wide-table"]
    assert {f.width for f in bad if f.kind == "shrunk-figure"} == {book_check.DESKTOP[0]}
    assert [f for f in found if f.page == "index.html"] == []
    # the wide table is judged at phone width only; the other image (another host) is blocked, not judged
    assert {f.width for f in bad if f.kind == "wide-table"} == {book_check.PHONE[0]}
    assert [f.detail for f in bad if f.kind == "image"] == ["missing.png"] * 2
    assert isinstance(bad[0], Finding) and "bad.html" in str(bad[0])


@browser
def test_a_clean_site_has_no_findings(tmp_path):
    (tmp_path / "index.html").write_text(PAGE.format(body="<h1>A page</h1><table><tr><td>1</td><td>2</td></tr></table>"
                                                          "<p>Math stays: <span class='math'>\\(\\{x\\}\\)</span>"
                                                          "</p><script src='mathjax/tex-chtml.js' defer></script>"
                                                          "<pre><code>f'{x}'</code></pre>"
                                                          '<figure><img src="fig.png" style="max-width: 100%"></figure>'
                                                          '<img src="icon.png" style="width: 20px">'))
    _png(tmp_path / "icon.png", 225, 225)  # an icon outside the figures: not a figure
    _png(tmp_path / "fig.png", 300, 100)
    (tmp_path / "mathjax").mkdir()
    (tmp_path / "mathjax" / "tex-chtml.js").write_text("// a stand-in for MathJax")
    assert book_check.check_book(tmp_path, log=lambda *_: None) == []
    assert book_check.main([str(tmp_path)]) == 0
