"""Known voices: a speaker whose voice matches a reference takes the reference's name.

A reference is a few seconds of one person (the agent at a counter, say), recorded once
and sent with each call. Its voice print (the pipeline's embedding model on its speech)
is compared with each found speaker's centroid (the mean of that speaker's embeddings,
which pyannote returns); names go to the best one-to-one pairing (Hungarian), and only
where the similarity reaches the threshold, so an unknown visitor is never given the
agent's name. No torch here: the engine computes the prints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.optimize import linear_sum_assignment

from parlons.errors import InvalidArgument

MAX_REFERENCES: Final = 8
MAX_NAME_CHARS: Final = 64
# Speech a reference must hold for a usable print, and the most the service embeds.
MIN_REFERENCE_SPEECH_S: Final = 2.0
MAX_REFERENCE_S: Final = 60.0
_NAME = re.compile(r"^[\w][\w .'\-]*$")
_GENERATED = re.compile(r"^SPEAKER_\d+$")


@dataclass(frozen=True)
class VoiceReference:
    """A named voice print: unit-length embedding of the reference's speech."""

    name: str
    vector: np.ndarray
    speech_s: float


@dataclass(frozen=True)
class SpeakerName:
    name: str
    similarity: float


def check_reference_names(names: Sequence[str]) -> None:
    """Names callers give: refused before any audio is decoded."""
    if len(names) > MAX_REFERENCES:
        raise InvalidArgument(f"{len(names)} speaker references; at most {MAX_REFERENCES}",
                              field="options.speaker_references")
    seen: set[str] = set()
    for i, name in enumerate(names):
        where = f"options.speaker_references[{i}].name"
        if not name.strip():
            raise InvalidArgument(f"speaker reference {i} has no name", field=where)
        if len(name) > MAX_NAME_CHARS or not _NAME.match(name):
            raise InvalidArgument(
                f"speaker reference name {name[:MAX_NAME_CHARS]!r}: use at most {MAX_NAME_CHARS} letters, "
                "digits, spaces, _ . - '", field=where)
        if _GENERATED.match(name):
            raise InvalidArgument(f"speaker reference name {name!r} looks like a generated label; "
                                  "choose another", field=where)
        if name in seen:
            raise InvalidArgument(f"speaker reference name {name!r} is given twice", field=where)
        seen.add(name)


def check_reference_threshold(threshold: float) -> None:
    if not np.isfinite(threshold) or not -1.0 <= threshold <= 1.0:
        raise InvalidArgument(f"reference_threshold is a cosine similarity, -1 to 1 (0 = default); got {threshold}",
                              field="options.reference_threshold")


def name_speakers(
    centroids: Mapping[str, np.ndarray], references: Sequence[VoiceReference], threshold: float
) -> dict[str, SpeakerName]:
    """Speaker label -> reference name for the one-to-one pairing of highest similarity,
    keeping only pairs at or above `threshold`."""
    labels = [label for label, vector in centroids.items() if np.all(np.isfinite(vector)) and np.any(vector)]
    if not labels or not references:
        return {}
    speakers = np.stack([centroids[label] / np.linalg.norm(centroids[label]) for label in labels])
    prints = np.stack([r.vector for r in references])
    similarity = speakers @ prints.T
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    return {
        labels[r]: SpeakerName(references[c].name, round(float(similarity[r, c]), 4))
        for r, c in zip(rows, cols)
        if similarity[r, c] >= threshold
    }
