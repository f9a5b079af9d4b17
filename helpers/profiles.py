"""The two run profiles of the course, defined in one place.

Introduced in ``notebooks/00_setup.ipynb`` ("How to run the course").

Every notebook takes ``profile`` in its papermill ``parameters`` cell and asks this module
for its chapter's defaults, which each chapter declares once in ``helpers/chapters``:

* ``quick`` (the default) runs anywhere, offline, on 2 CPU cores, on real but small data and
  real small pretrained weights that ship inside packages. CI and ``make test`` use it.
* ``full`` is what a learner runs on a GPU: real downloads, real epochs, real accuracy.

A notebook's other parameters default to ``None``, meaning "take the profile's value"; a
value you set yourself wins::

    cfg = chapter_config(profile, "setup", matmul_size=matmul_size)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, SimpleNamespace
from typing import Any

from . import chapters

__all__ = ["Profile", "PROFILES", "DESCRIPTIONS", "DEFAULT_PROFILE", "get_profile",
           "chapter_config"]


@dataclass(frozen=True)
class Profile:
    """A named set of per-chapter defaults.

    Attributes:
        name: ``"quick"`` or ``"full"``.
        description: one line for tables and error messages.
        chapters: chapter key (e.g. ``"setup"``) -> parameter name -> default value.
    """

    name: str
    description: str
    chapters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _freeze(sections: dict[str, Mapping[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType({k: MappingProxyType(dict(v)) for k, v in sections.items()})


DESCRIPTIONS = {
    "quick": "offline, 2 CPU cores, minutes: real small data and packaged weights",
    "full": "one GPU (Colab, a workstation): real downloads, real epochs",
}


class _Profiles(Mapping[str, Profile]):
    """The profiles, each assembled from every chapter's declaration (``helpers/chapters``)."""

    def __getitem__(self, name: str) -> Profile:
        if name not in DESCRIPTIONS:
            raise KeyError(name)
        return Profile(name, DESCRIPTIONS[name], _freeze(
            {c.section: c.settings(name) for c in chapters.REGISTRY.values()}))

    def __iter__(self) -> Iterator[str]:
        return iter(DESCRIPTIONS)

    def __len__(self) -> int:
        return len(DESCRIPTIONS)


PROFILES: Mapping[str, Profile] = _Profiles()

DEFAULT_PROFILE = "quick"


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.
    """
    if name not in PROFILES:
        valid = ", ".join(repr(p) for p in PROFILES)
        raise ValueError(f"unknown profile {name!r}; valid profiles are {valid}")
    return PROFILES[name]


def chapter_config(profile: str, chapter: str, **overrides: Any) -> SimpleNamespace:
    """Defaults of ``chapter`` under ``profile``, with non-``None`` overrides applied.

    Overrides are the notebook's own parameters: ``None`` means "use the profile's value".

    Raises:
        ValueError: for an unknown profile or chapter, or an override the chapter does not
            define (the message lists what is valid).
    """
    prof = get_profile(profile)
    if chapter not in prof.chapters:
        valid = ", ".join(repr(c) for c in prof.chapters)
        raise ValueError(f"profile {profile!r} has no chapter {chapter!r}; chapters: {valid}")
    values = dict(prof.chapters[chapter])
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise ValueError(
            f"chapter {chapter!r} has no parameter(s) {unknown}; valid: {sorted(values)}"
        )
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SimpleNamespace(profile=profile, **values)
