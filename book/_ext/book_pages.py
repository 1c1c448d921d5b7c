"""A Sphinx extension of the book's own: small repairs to the pages the theme writes.

- Each script is included once. sphinx-thebe registers its configuration script at every
  ``env-before-read-docs`` event, and a Jupyter Book build can emit that event twice, so every
  page declared ``const THEBE_JS_URL`` twice and the browser reported a SyntaxError on load.
  The list is thinned *in place*: it is the builder's own list, to which extensions that run
  later on the same page add their scripts (MathJax does, on pages with math); a new list would
  lose them.
"""


def _unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # An inline script is registered once with filename None and once with '': same script.
        filename = getattr(script, "filename", script) or ""
        key = (str(filename), tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    # Early: html-page-context stops at the first handler that returns a template name.
    app.connect("html-page-context", _unique_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
