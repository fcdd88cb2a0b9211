"""Which model translates a (source, target) pair, pivoting through English when needed.

Preference: a bilingual model for the exact pair (OPUS-MT/argos: smaller, usually better),
then a multilingual one (NLLB/M2M100), then two hops through the pivot language
(`uk -> en -> fr` with two OPUS-MT models). Tags are matched with `languages.closest`,
so `fr-FR` is served by a model for `fr`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from collections.abc import Callable, Sequence

from parlons.errors import NotFound
from parlons.services.translation import languages


class ServesLanguages(Protocol):
    name: str

    @property
    def source_languages(self) -> frozenset[str]: ...

    @property
    def target_languages(self) -> frozenset[str]: ...

    @property
    def multilingual(self) -> bool: ...


@dataclass(frozen=True)
class Hop:
    model: ServesLanguages
    #: Tags as the model knows them (keys of its layout's language maps).
    source: str
    target: str


@dataclass(frozen=True)
class Route:
    source: str
    target: str
    hops: tuple[Hop, ...]

    @property
    def model_name(self) -> str:
        return ">".join(h.model.name for h in self.hops)

    @property
    def pivot(self) -> bool:
        return len(self.hops) > 1


@dataclass(frozen=True)
class PairInfo:
    source: str
    target: str
    model: str
    pivot: bool


Suggest = Callable[[str, str], str]


class ModelRegistry:
    def __init__(self, models: Sequence[ServesLanguages], pivot_language: str = "en",
                 suggest: Suggest | None = None) -> None:
        self.models = list(models)
        self.pivot_language = pivot_language
        # Which models not loaded here would serve a pair (the catalog's), for NOT_FOUND.
        self.suggest = suggest
        self._pairs: list[PairInfo] | None = None

    def by_name(self, name: str) -> ServesLanguages:
        for model in self.models:
            if model.name == name:
                return model
        raise NotFound(f"no translation model named {name!r}; loaded: {', '.join(m.name for m in self.models) or 'none'}")

    @property
    def source_languages(self) -> set[str]:
        return {lang for m in self.models for lang in m.source_languages}

    @property
    def target_languages(self) -> set[str]:
        return {lang for m in self.models for lang in m.target_languages}

    def _direct(self, source: str, target: str, candidates: Sequence[ServesLanguages]) -> Hop | None:
        ranked = sorted(candidates, key=lambda m: m.multilingual)  # bilingual first, stable
        for model in ranked:
            src = languages.closest(source, model.source_languages)
            tgt = languages.closest(target, model.target_languages)
            if src is not None and tgt is not None and src != tgt:
                return Hop(model, src, tgt)
        return None

    def route(self, source: str, target: str, model_name: str = "") -> Route:
        """The hops for a pair; NOT_FOUND listing what is available when none exists."""
        source, target = languages.normalize(source), languages.normalize(target)
        if languages.primary(source) == languages.primary(target) and (
            source == target or languages.closest(source, {target}) or languages.closest(target, {source})
        ):
            return Route(source, target, ())  # same language: nothing to do
        candidates = [self.by_name(model_name)] if model_name else self.models
        hop = self._direct(source, target, candidates)
        if hop is not None:
            return Route(source, target, (hop,))
        if not model_name:
            pivot = self.pivot_language
            first = self._direct(source, pivot, self.models)
            second = self._direct(pivot, target, self.models)
            if first is not None and second is not None:
                return Route(source, target, (first, second))
        raise NotFound(self._not_found_message(source, target, model_name))

    def _not_found_message(self, source: str, target: str, model_name: str) -> str:
        where = f"model {model_name!r}" if model_name else "the loaded models"
        pairs = self.pairs()
        listed = ", ".join(f"{p.source}>{p.target}" for p in pairs[:40])
        more = f" (and {len(pairs) - 40} more; see ListLanguages)" if len(pairs) > 40 else ""
        hint = self.suggest(source, target) if self.suggest and not model_name else ""
        return (f"cannot translate {source} to {target} with {where}; available pairs: {listed or 'none'}{more}"
                + (f". {hint}" if hint else ""))

    def pairs(self) -> list[PairInfo]:
        """Every pair served, direct first; pivot pairs only where no direct model exists.
        Computed once: the models do not change after loading, and a multilingual model of
        450 languages serves 200,000 pairs (half a second to list)."""
        if self._pairs is None:
            self._pairs = self._all_pairs()
        return self._pairs

    def _all_pairs(self) -> list[PairInfo]:
        direct: dict[tuple[str, str], PairInfo] = {}
        for model in sorted(self.models, key=lambda m: m.multilingual):
            for s in sorted(model.source_languages):
                for t in sorted(model.target_languages):
                    if s != t:
                        direct.setdefault((s, t), PairInfo(s, t, model.name, False))
        out = dict(direct)
        pivot = self.pivot_language
        into_pivot = [p for (s, t), p in direct.items() if t == pivot]
        out_of_pivot = [p for (s, t), p in direct.items() if s == pivot]
        for a in into_pivot:
            for b in out_of_pivot:
                if a.source != b.target and (a.source, b.target) not in out:
                    out[(a.source, b.target)] = PairInfo(a.source, b.target, f"{a.model}>{b.model}", True)
        return sorted(out.values(), key=lambda p: (p.pivot, p.source, p.target))
