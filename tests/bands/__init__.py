"""Each chapter's bands, one file per chapter: ``b<stem>.py`` holds ``BANDS``.

``BANDS`` maps a recorded key to ``(band, why)``: a band is (low, high), inclusive, or a set of
allowed values, and ``why`` says where it comes from (a chance level, an anchor, or the spread
observed over seeds 0-4 of the quick profile). The file is found by the chapter's stem, as
declared in ``helpers/chapters``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["bands_of"]


def bands_of(stem: str) -> dict[str, tuple[Any, str]]:
    """The bands of chapter ``stem``.

    Raises:
        FileNotFoundError: the chapter has no band file (every chapter needs one).
    """
    try:
        module = importlib.import_module(f"{__name__}.b{stem}")
    except ModuleNotFoundError as err:
        raise FileNotFoundError(f"chapter {stem!r} has no bands: write tests/bands/b{stem}.py "
                                "with BANDS = {recorded key: (band, why)}") from err
    return dict(module.BANDS)
