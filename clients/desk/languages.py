"""The visitor languages the desk offers: only those the installed models serve both ways.

A language is offered when the transcription model recognises its speech and some
installed translation model (or two, through the pivot language) translates it into the
agent's language and back. The page names each in its own script and says which go
through a pivot (slower, and each hop loses a little). Nothing else is offered: a visitor
who picks a language the desk cannot translate would talk to a wall.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Offer:
    code: str  # BCP-47, as the translation models name it ("fa-AF" for Dari)
    pivot: bool  # one direction or both go through the pivot language

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "pivot": self.pivot}


@dataclass(frozen=True)
class Pair:
    source: str
    target: str
    pivot: bool


def primary(tag: str) -> str:
    return tag.replace("_", "-").split("-")[0].lower()


def offered(transcribed: Iterable[str], pairs: Iterable[Pair], agent: str = "fr") -> list[Offer]:
    """Languages X with speech recognised (by primary subtag) and pairs X->agent and
    agent->X; pivoted when the best route either way is."""
    heard = {primary(code) for code in transcribed}
    into: dict[str, bool] = {}
    out_of: dict[str, bool] = {}
    for pair in pairs:
        if primary(pair.target) == primary(agent) and primary(pair.source) != primary(agent):
            into[pair.source] = into.get(pair.source, True) and pair.pivot
        elif primary(pair.source) == primary(agent) and primary(pair.target) != primary(agent):
            out_of[pair.target] = out_of.get(pair.target, True) and pair.pivot
    codes = sorted(set(into) & set(out_of))
    return [Offer(code, into[code] or out_of[code]) for code in codes if primary(code) in heard]


__all__ = ["Offer", "Pair", "offered", "primary"]
