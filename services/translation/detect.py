"""Source-language detection with lingua, limited to languages the service can translate.

Restricting lingua to the languages the loaded models accept makes it faster, smaller in
memory and more accurate (it cannot answer a language nobody can translate). Only the
first `max_chars` characters are looked at: enough for a reliable answer, bounded time.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

from parlons.services.translation import languages


@dataclass(frozen=True)
class Detection:
    #: BCP-47 primary tag, or None when the text gives nothing to go on (digits only...).
    language: str | None
    #: lingua's confidence for that language, 0..1.
    confidence: float
    alternatives: tuple[tuple[str, float], ...] = ()


def lingua_language(tag: str) -> Language | None:
    code = languages.to_iso1(tag)
    if code == "nb" or code == "nn" or code == "no":
        code = "nb"
    try:
        iso = IsoCode639_1.from_str(code)
        return Language.from_iso_code_639_1(iso)
    except (ValueError, AttributeError):
        return None


def supported(tags: Iterable[str]) -> list[str]:
    """The tags lingua can detect, as BCP-47 primary tags."""
    return sorted({languages.to_iso1(t) for t in tags if lingua_language(t) is not None})


class LanguageDetector:
    def __init__(self, tags: Iterable[str] | None = None, *, low_accuracy: bool | None = None,
                 max_chars: int = 2000, preload: bool = True) -> None:
        """`preload` loads lingua's n-gram tables now, not on the first request.

        `low_accuracy=None` picks lingua's low-accuracy mode above 16 languages: with all
        75, high accuracy costs ~1.3 GB and ~20 s to load, low accuracy ~90 MB and ~1 s,
        and stays reliable on sentence-length text.
        """
        wanted = {lingua_language(t) for t in tags} if tags is not None else set(Language.all())
        wanted.discard(None)
        self.max_chars = max_chars
        self.languages: list[str] = sorted(
            lang.iso_code_639_1.name.lower() for lang in wanted if lang is not None)
        self._single = self.languages[0] if len(self.languages) == 1 else None
        self._detector = None
        if low_accuracy is None:
            low_accuracy = len(wanted) > 16
        self.low_accuracy = low_accuracy
        if len(wanted) >= 2:
            builder = LanguageDetectorBuilder.from_languages(*wanted)  # type: ignore[arg-type]
            if low_accuracy:
                builder = builder.with_low_accuracy_mode()
            if preload:
                builder = builder.with_preloaded_language_models()
            self._detector = builder.build()

    def detect(self, text: str) -> Detection:
        sample = text[: self.max_chars]
        if not any(ch.isalpha() for ch in sample):
            return Detection(None, 0.0)
        if self._detector is None:
            return Detection(self._single, 1.0 if self._single else 0.0)
        values = self._detector.compute_language_confidence_values(sample)
        ranked = tuple((v.language.iso_code_639_1.name.lower(), float(v.value)) for v in values[:5])
        if not ranked or ranked[0][1] <= 0.0:
            return Detection(None, 0.0, ranked)
        return Detection(ranked[0][0], ranked[0][1], ranked)
