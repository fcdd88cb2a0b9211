"""French common words, to tell a word of the dictionary from a name.

Why: a recogniser that reads shapes (the learned NER, spaCy's NER) takes "Prénom ?",
"Bonne journée" or "jumeaux" in a note for a name. The French pipeline the engine
already loads (fr_core_news_md) carries its lemmatizer's tables: a lookup of inflected
forms and an index of lemmas per part of speech, about 200,000 forms. A word in them that
no name list knows ("bonnet", "martin", "rose" are names too) is a common word, never a
name on its own.
"""

from __future__ import annotations

from typing import Any

from .names import lower_gazetteer


class FrenchWords:
    """The forms and lemmas of the loaded French pipeline's lemmatizer."""

    def __init__(self, nlp: Any) -> None:
        lemmas: set[str] = set()
        self._inflected: Any = {}  # a spaCy Table: its keys are hashes, `in` hashes the word
        if "lemmatizer" in nlp.pipe_names:
            lookups = nlp.get_pipe("lemmatizer").lookups
            if lookups.has_table("lemma_lookup"):
                self._inflected = lookups.get_table("lemma_lookup")
            if lookups.has_table("lemma_index"):
                for per_part_of_speech in lookups.get_table("lemma_index").values():
                    lemmas.update(per_part_of_speech)
        self._lemmas = frozenset(lemmas)

    def __len__(self) -> int:
        return len(self._lemmas) + len(self._inflected)

    def common(self, word: str) -> bool:
        """`word` is in the dictionary and in no name list."""
        lowered = word.lower()
        return (lowered in self._lemmas or lowered in self._inflected) and lowered not in lower_gazetteer()
