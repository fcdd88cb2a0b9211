"""French common words, to tell a word of the dictionary from a name.

Why: a recogniser that reads shapes (the learned NER, spaCy's NER) takes "Prénom ?",
"Bonne journée" or "jumeaux" in a note for a name. The French pipeline the engine
already loads (fr_core_news_md) carries its lemmatizer's tables: a lookup of inflected
forms and an index of lemmas per part of speech, about 200,000 forms. A word in them that
no name list knows ("bonnet", "martin", "rose" are names too) is a common word, never a
name on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .names import lower_gazetteer

# What `FrenchWords` and the learned recogniser need of fr_core_news_md is its vocabulary
# (with the vectors) and its lemmatizer's tables; the rest is not loaded.
_NOT_NEEDED = ["tok2vec", "morphologizer", "parser", "attribute_ruler", "ner", "senter"]


def load_vocabulary_and_lemmatizer(model_dir: Path) -> Any:
    """fr_core_news_md (at `model_dir`) with only its vocabulary and lemmatizer, for
    scripts and benchmarks that build `FrenchWords` or the learned recogniser without the
    engine (the engine shares the pipeline it has loaded)."""
    import spacy

    return spacy.load(model_dir, exclude=_NOT_NEEDED)


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

    def known(self, word: str) -> bool:
        """`word` is in the dictionary (a name list may hold it too: "rose", "poulain")."""
        lowered = word.lower()
        return lowered in self._lemmas or lowered in self._inflected

    def common(self, word: str) -> bool:
        """`word` is in the dictionary and in no name list."""
        return self.known(word) and word.lower() not in lower_gazetteer()
