"""faster-whisper's full-window decode with its first window encoded once, not twice.

Why: `WhisperModel.transcribe` without a language (faster-whisper 1.2) encodes the first
30-s window to identify the language (`detect_language`), then encodes it again to
decode it (`generate_segments` starts from no encoder output). On a CPU the encoder is
most of a short utterance's decode: a live final of the phone call with `base` on two
cores is 0.33 s of encoder out of 0.78 s, and automatic language paid it twice.

How: the first window is encoded here exactly as `generate_segments` will cut it (the
features without their last padding frame, padded to 30 s: `window.encode` with the
fixed window), its language read from that encoding (among the caller's candidates),
and `transcribe` gets that language and a view of the model whose `encode` answers that
same window with the encoding already made. Any other window (the second 30 s of a
longer clip) is encoded as usual; a window that is not byte for byte the one encoded is
encoded anew, so the reuse can never change a result, only save the encoder pass.

Only without language candidates: with them (a desk's two languages) the engine keeps
identifying in its language window (`window.WindowPolicy.for_language`), which told
espeak's French from English where the 30-s window did not.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
from faster_whisper import WhisperModel

from parlons.languages import WhisperCode
from parlons.services.transcription.window import (
    Encoded,
    WindowPolicy,
    choose_language,
    encode,
    language_probabilities,
)

_FIXED_WINDOW = WindowPolicy(enabled=False)


@dataclass(frozen=True)
class IdentifiedFirstWindow:
    """The language of a clip's first 30-s window and a model that will not encode that
    window again."""

    model: WhisperModel
    language: WhisperCode
    probability: float


def identify_first_window(
    model: WhisperModel, samples: np.ndarray, candidates: tuple[WhisperCode, ...] = ()
) -> IdentifiedFirstWindow:
    """Encode the first window once, identify its language, and return the model view
    to hand to `transcribe` with that language."""
    encoded = encode(model, samples, _FIXED_WINDOW)
    code, probability = choose_language(language_probabilities(model, encoded), candidates)
    return IdentifiedFirstWindow(_reusing(model, encoded), WhisperCode(code), float(probability))


def _reusing(model: WhisperModel, encoded: Encoded) -> WhisperModel:
    """A shallow copy of `model` (shared weights, tokenizer and feature extractor) whose
    `encode` returns `encoded.output` for exactly the window it was made from."""
    window = encoded.window
    view = copy.copy(model)
    encode_anew = type(model).encode

    def encode_once(features: np.ndarray) -> Any:
        if features.shape == window.shape and np.array_equal(features, window):
            return encoded.output
        return encode_anew(view, features)

    view.encode = encode_once  # type: ignore[method-assign]
    return view


__all__ = ["IdentifiedFirstWindow", "identify_first_window"]
