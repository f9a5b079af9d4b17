"""The maintainers' tools: they build, check and publish the course; learners never import them.

* ``runner``: execute the chapters with papermill, check them, stage the book source;
* ``toc``: the chapters listed in ``book/_toc.yml``;
* ``colab``: every chapter's badge and install cells, rendered from one place;
* ``workshop``: learner copies (solutions out) and the facilitator's guide;
* ``booksite``: the built book opened page by page in headless Chromium;
* ``thin_venv``: each clone's own ``.venv`` over the shared, cached environment.

``tools`` may import ``helpers`` (the learners' library); ``helpers`` never imports ``tools``
(``tests/test_layout.py`` checks both directions and that no import cycle exists). ``tools`` is
not part of the wheel learners install.
"""
