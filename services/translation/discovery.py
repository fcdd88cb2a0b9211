"""Which translation models to serve: the configured ones, or else every one installed.

A new user who pulls a translation model (`parlons models pull opus-mt-en-fr`) or unpacks
one into the model cache gets it served without editing a file: with `[translation]
models` empty, the service serves every catalog translation model the cache holds, and
whatever else sits there that reads as a translation model (a directory converted by
hand, an `.argosmodel`). A `models` list narrows that to the models it names (a catalog
name or a directory). A model that cannot be loaded, half-downloaded or altered, is
refused with its name and the check that failed, and the others are served.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING

from parlons.errors import ParlonsError
from parlons.language_names import language_name
from parlons.services.translation import languages

if TYPE_CHECKING:
    from parlons.models.manager import ModelManager

log = logging.getLogger("parlons.translation")


@dataclass(frozen=True)
class ModelSource:
    """A model to load: its name for clients, its files, and the languages the catalog
    states for layouts whose files do not record them (OPUS-MT)."""

    name: str
    path: Path
    source_languages: tuple[str, ...] = ()
    target_languages: tuple[str, ...] = ()
    #: Found in the cache under no catalog name: it may be another kind of model.
    guessed: bool = False


@dataclass(frozen=True)
class Refused:
    name: str
    reason: str


def model_sources(configured: list[str], manager: ModelManager) -> tuple[list[ModelSource], list[Refused]]:
    """The models to load and those refused before loading (missing, corrupt, unknown)."""
    if configured:
        return _configured(configured, manager)
    sources: list[ModelSource] = []
    refused: list[Refused] = []
    for info in manager.installed("translation"):
        if info.status in ("ok", "unpinned"):
            sources.append(ModelSource(info.name, info.path, info.source_languages, info.target_languages))
        else:
            refused.append(Refused(info.name, manager.verify(info.name).message))
    sources += [ModelSource(path.name, path, guessed=True) for path in manager.foreign_entries()]
    return sources, refused


def _configured(names: list[str], manager: ModelManager) -> tuple[list[ModelSource], list[Refused]]:
    sources: list[ModelSource] = []
    refused: list[Refused] = []
    foreign = {path.name: path for path in manager.foreign_entries()}
    for name in names:
        if name in foreign and manager.catalog.get(name) is None:  # converted by hand, in the cache
            sources.append(ModelSource(name, foreign[name]))
            continue
        try:
            path = manager.resolve(name, kind="translation")
        except ParlonsError as exc:
            refused.append(Refused(name, exc.message))
            continue
        if Path(name).expanduser().exists():
            sources.append(ModelSource(Path(name).name, path))
            continue
        entry = manager.catalog.get(name)
        languages = (entry.source_languages, entry.target_languages) if entry else ((), ())
        sources.append(ModelSource(entry.name if entry else name, path, *languages))
    return sources, refused


def catalog_suggestions(manager: ModelManager, loaded: set[str], pivot: str = "en") -> Callable[[str, str], str]:
    """What to install for a pair no loaded model serves, from the catalog: the bilingual
    models for it (directly, or two through the pivot), then the multilingual ones. Tags
    match as routing matches them (`languages.closest`)."""
    entries = [e for e in manager.catalog if e.kind == "translation" and e.name not in loaded]
    bilingual = [e for e in entries if e.source_languages and e.target_languages]
    multi = [f"{e.name} ({e.licence})" for e in entries if "*" in e.languages]

    def serving(source: str, target: str) -> list[str]:
        return [e.name for e in bilingual if languages.closest(source, frozenset(e.source_languages))
                and languages.closest(target, frozenset(e.target_languages))]

    def suggest(source: str, target: str) -> str:
        parts = []
        direct = serving(source, target)
        into_pivot, from_pivot = serving(source, pivot), serving(pivot, target)
        if direct:
            parts.append(f"the catalog's {', '.join(direct)} serves it")
        elif into_pivot and from_pivot:
            parts.append(f"the catalog's {into_pivot[0]} and {from_pivot[0]} serve it through {language_name(pivot).title()}")
        if multi:
            parts.append(f"multilingual models that may cover it: {', '.join(multi)} (docs/desk-languages.md)")
        return ("To add it: `parlons models pull NAME`; " + "; ".join(parts)) if parts else ""
    return suggest


def log_refused(refused: list[Refused]) -> None:
    for item in refused:
        log.error("translation model refused", extra={"fields": {"model": item.name, "reason": item.reason}})


__all__ = ["ModelSource", "Refused", "catalog_suggestions", "log_refused", "model_sources"]
