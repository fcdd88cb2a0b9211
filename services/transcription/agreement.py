"""LocalAgreement-2 over successive interim hypotheses: what an interim may commit.

A word is committed once two successive hypotheses agree on it and on everything
before it; committed words are never taken back or re-worded, so the interim text does
not flicker. The last word of a hypothesis is never committed: it sits at the edge of
the audio, often cut or punctuated as if the sentence ended there. Committed words take
the newer hypothesis's spelling (the one with more context). Words are compared lower
case, without punctuation. No audio and no model here (WhisperLiveKit's
`HypothesisBuffer` is the same idea).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


def normalise(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


@dataclass
class LocalAgreement:
    """The committed prefix of one utterance and the last hypothesis seen."""

    committed: list[str] = field(default_factory=list)
    hypothesis: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.committed, self.hypothesis = [], []

    @property
    def committed_text(self) -> str:
        return " ".join(self.committed)

    def agrees(self, words: list[str]) -> bool:
        """Whether `words` starts with the committed words."""
        n = len(self.committed)
        return len(words) >= n and all(
            normalise(a) == normalise(b) for a, b in zip(self.committed, words[:n])
        )

    def insert(self, words: list[str]) -> None:
        """A new hypothesis: extend the committed prefix with the words on which it and
        the previous one agree, if both still agree with what is already committed."""
        if self.hypothesis and self.agrees(words) and self.agrees(self.hypothesis):
            n = len(self.committed)
            for previous, current in zip(self.hypothesis[n:], words[n : len(words) - 1]):
                if normalise(previous) != normalise(current):
                    break
                self.committed.append(current)
        self.hypothesis = words

    def unstable(self, words: list[str]) -> list[str]:
        """The words of a hypothesis shown after the committed ones (when the hypothesis
        no longer starts with them, the committed text stays and this follows it)."""
        return words[len(self.committed) :]
