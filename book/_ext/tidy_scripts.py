"""A Sphinx extension of the course's book: each page lists a script only once.

sphinx-thebe registers its inline configuration script when the environment starts reading,
and under Jupyter Book 1.0 that script reaches every page twice: the second copy re-declares
``const THEBE_JS_URL`` and the browser logs a SyntaxError on every page (the browser test in
tests/test_book.py found it). This drops the repeats from each page's script list.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        # one copy may name its file None and the other "" (an inline script has no file)
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
