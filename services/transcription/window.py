"""Dynamic audio context: encode a short clip in a window cut to its length.

Whisper's encoder is trained on 30-s windows, and faster-whisper pads every window to
3000 mel frames, so a 2-s live utterance pays for 30 s of encoder work and the decoder
cross-attends over 1500 positions instead of 100. CTranslate2's Whisper encoder accepts
shorter inputs: a clip encoded in `max(clip + pad, floor)` seconds gives the same text at
a fraction of the cost (docs/transcription.md has the measurements). Below a floor the
model has too little context and invents text, so the floor is a measured setting.

Everything here uses public pieces of faster-whisper and CTranslate2: the feature
extractor, `WhisperModel.encode`, `ctranslate2.models.Whisper.detect_language` on the
encoder output, and `WhisperModel.generate_segments`, which takes a precomputed encoder
output for its first window. That keeps faster-whisper's whole decoding loop for free:
temperature fallback, compression-ratio / log-prob / no-speech guards, prompts, prefix,
hotwords and word timestamps (`align` runs on the short encoder output). When the
decoder does not finish the clip in one window, faster-whisper encodes the rest in a
regular 30-s window: slower, never wrong.

A cut window is not always as good as the full one: on very short telephone turns it
sometimes loops ("Hello Hello Hello") or needs the temperature fallback. So the short
window gets ONE greedy-or-beam pass at the first temperature, and its result is kept only
when it passes faster-whisper's own fallback guards (compression ratio, average log-prob)
and a repetition guard; otherwise the clip is decoded exactly as faster-whisper would,
in a 30-s window with the whole temperature fallback. Accuracy is the full window's,
and the cost is the short window's on the clips that pass (most of them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import Segment as WhisperSegment
from faster_whisper.transcribe import TranscriptionOptions as WhisperOptions
from faster_whisper.transcribe import get_suppressed_tokens

from parlons.audio_constants import SAMPLE_RATE

HOP: Final = 160  # samples per mel frame (10 ms)
FULL_FRAMES: Final = 3000  # 30 s
WINDOW_S: Final = 30.0  # Whisper's input window, in seconds
# Above 24 s a cut window saves little and a refused short result costs a second decode:
# such clips go straight to the full window.
SHORT_LIMIT_FRAMES: Final = 2400
# Whisper keeps at most 223 prompt tokens of 448: a budget up to this always fits.
MAX_BUDGET: Final = 200
# Whisper languages whose script its byte-level BPE codes in many tokens per syllable
# (Ethiopic, Indic, Sinhala, Southeast Asian, Tibetan, Georgian, Armenian), and the
# unknown language (identification not done yet).
DENSE_SCRIPT_LANGUAGES: Final = frozenset(
    "am as bn bo gu hi hy ka km kn lo ml mr my ne pa sa si ta te th".split()
) | {None}


@dataclass(frozen=True)
class WindowPolicy:
    """How a clip's window is sized: its length plus `pad_s`, never below `floor_s`,
    never above 30 s. `enabled=False` gives faster-whisper's fixed 30-s window."""

    enabled: bool = True
    floor_s: float = 3.0
    pad_s: float = 0.5
    # Language identification needs more context than decoding: on the 13 turns of
    # sample.wav a 3-s window identified 7 as English, 8 s 12, 15 s and 30 s all 13.
    language_floor_s: float = 15.0
    # Token budget of a short clip's decode: `tokens_floor` + `tokens_per_s` per second
    # of clip (`dense_tokens_per_s` in the scripts Whisper's BPE codes nearly byte by
    # byte). Speech needs fewer: a counter sentence said in 3.5 s is 6 tokens/s in
    # English, 8 in French, 11 in Arabic, 13 in Persian, 35 in Amharic. A decoder stuck
    # in a loop ("like, like, like") otherwise writes 448 tokens, and beam search goes on
    # while any beam loops: 2.4 s for a 2-s clip here.
    tokens_per_s: float = 20.0
    dense_tokens_per_s: float = 50.0
    tokens_floor: int = 24
    # A short-window result is kept only above this average log-probability (per
    # segment; faster-whisper's own fallback threshold is -1.0): a cut window that is
    # unsure ("This is dying in New Jersey", -0.7) is often wrong where the full window
    # is right, so doubt buys the full window.
    min_log_prob: float = -1.0

    def token_budget(self, samples: int, language: str | None, cap: int | None) -> int | None:
        """Most new tokens a decode of a clip of `samples` in `language` may write (None:
        the model's limit). Only short clips get a budget: a long one's prompt plus the
        budget could pass the decoder's 448-token context."""
        rate = self.dense_tokens_per_s if language in DENSE_SCRIPT_LANGUAGES else self.tokens_per_s
        budget = self.tokens_floor + int(np.ceil(rate * samples / SAMPLE_RATE))
        if not self.enabled or budget > MAX_BUDGET:
            return cap
        return budget if cap is None else min(cap, budget)

    def for_language(self) -> WindowPolicy:
        """The window language identification is run in (a larger floor)."""
        return replace(self, floor_s=max(self.floor_s, self.language_floor_s))

    def frames(self, samples: int) -> int:
        """Mel frames of the encoder input for a clip of `samples` samples (even: the
        encoder's convolution halves it); the full window above SHORT_LIMIT_FRAMES."""
        if not self.enabled:
            return FULL_FRAMES
        seconds = max(samples / SAMPLE_RATE + self.pad_s, self.floor_s)
        frames = int(np.ceil(seconds * SAMPLE_RATE / HOP))
        frames += frames % 2
        return frames if frames <= SHORT_LIMIT_FRAMES else FULL_FRAMES


@dataclass(frozen=True)
class Encoded:
    """A clip's features and its encoder output (reusable for language and decoding)."""

    features: np.ndarray  # (n_mels, frames of the clip + 1)
    window: np.ndarray  # the encoder's input: the features cut or padded to window_frames
    output: ctranslate2.StorageView
    window_frames: int


def encode(model: WhisperModel, samples: np.ndarray, policy: WindowPolicy) -> Encoded:
    """Mel features of a clip of at most 30 s and its encoder output in a cut window."""
    features = model.feature_extractor(samples)
    frames = policy.frames(samples.shape[0])
    # The last frame is padding: faster-whisper's decoding loop leaves it out too, so a
    # full window here is exactly the one it would encode.
    content = features[:, : min(features.shape[-1] - 1, FULL_FRAMES)]
    window = pad_or_trim(content, frames)
    return Encoded(features=features, window=window, output=model.encode(window), window_frames=frames)


def language_probabilities(model: WhisperModel, encoded: Encoded) -> list[tuple[str, float]]:
    """(Whisper code, probability) for every language, most likely first."""
    results = model.model.detect_language(encoded.output)[0]
    return [(token[2:-2], float(prob)) for token, prob in results]


def choose_language(
    probabilities: Sequence[tuple[str, float]], candidates: Sequence[str] = ()
) -> tuple[str, float]:
    """The most likely language, among `candidates` when there are any; its probability
    is renormalised over the candidates (a desk with French and Arabic compares those two
    only, so a short Arabic answer is never transcribed as Portuguese)."""
    if not candidates:
        return probabilities[0]
    allowed = {c: p for c, p in probabilities if c in set(candidates)}
    if not allowed:
        return probabilities[0]
    total = sum(allowed.values())
    best = max(allowed, key=lambda c: allowed[c])
    return best, (allowed[best] / total if total > 0 else 1.0 / len(allowed))


def whisper_options(model: WhisperModel, tokenizer: Tokenizer, **kwargs: Any) -> WhisperOptions:
    """faster-whisper's option structure with its own defaults for what callers omit."""
    values: dict[str, Any] = {
        "beam_size": 5,
        "best_of": 5,
        "patience": 1.0,
        "length_penalty": 1.0,
        "repetition_penalty": 1.0,
        "no_repeat_ngram_size": 0,
        "log_prob_threshold": -1.0,
        "no_speech_threshold": 0.6,
        "compression_ratio_threshold": 2.4,
        "condition_on_previous_text": True,
        "prompt_reset_on_temperature": 0.5,
        "temperatures": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
        "initial_prompt": None,
        "prefix": None,
        "suppress_blank": True,
        "suppress_tokens": [-1],
        "without_timestamps": False,
        "max_initial_timestamp": 1.0,
        "word_timestamps": False,
        "prepend_punctuations": "\"'“¿([{-",
        "append_punctuations": "\"'.。,，!！?？:：”)]}、",
        "multilingual": False,
        "max_new_tokens": None,
        "clip_timestamps": "0",
        "hallucination_silence_threshold": None,
        "hotwords": None,
    }
    values.update(kwargs)
    if values["suppress_tokens"]:
        values["suppress_tokens"] = get_suppressed_tokens(tokenizer, values["suppress_tokens"])
    values["temperatures"] = list(values["temperatures"])
    return WhisperOptions(**values)


def decode(
    model: WhisperModel,
    encoded: Encoded,
    tokenizer: Tokenizer,
    options: WhisperOptions,
) -> Iterator[WhisperSegment]:
    """faster-whisper's segment generator over the clip, first window from `encoded`."""
    return model.generate_segments(
        encoded.features, tokenizer, options, log_progress=False, encoder_output=encoded.output
    )


_WORD = re.compile(r"[\w']+")


def repeats(text: str, *, max_run: int = 3) -> bool:
    """Whether the text loops, as a decoder stuck on a short window writes: the same
    word `max_run` times in a row, a phrase of 2 to 6 words `max_run` times in a row, or
    one phrase of up to 12 words said twice that makes most of the text ("there. Leave
    the desire. Leave the desire."). Natural speech repeats a word or a phrase once
    ("no no", "I think I think") inside longer text; that is not refused."""
    words = [w.lower() for w in _WORD.findall(text)]
    for size in range(1, 13):
        for i in range(len(words) - 2 * size + 1):
            phrase = words[i : i + size]
            times = 1
            while words[i + times * size : i + (times + 1) * size] == phrase:
                times += 1
            if (times >= max_run and size <= 6) or (
                size > 1 and times == 2 and 2 * size * 2 >= len(words) + 1
            ):
                return True
    return False


def loops(segments: Sequence[WhisperSegment], *, max_run: int = 5) -> bool:
    """Whether a long decode has a segment stuck in a loop ("stupid, stupid, stupid, ..."
    fourteen times after 27 s of good text). faster-whisper's compression-ratio guard
    is computed over the whole 30-s window, so a loop at its end passes it; speech says
    a word three times ("no, no, no"), not five."""
    return any(_runs(segment.text, max_run) for segment in segments)


def _runs(text: str, max_run: int) -> bool:
    """The same word, or phrase of up to 6 words, `max_run` times in a row."""
    words = [w.lower() for w in _WORD.findall(text)]
    for size in range(1, 7):
        for i in range(len(words) - max_run * size + 1):
            phrase = words[i : i + size]
            if all(words[i + k * size : i + (k + 1) * size] == phrase for k in range(1, max_run)):
                return True
    return False


def acceptable(
    segments: Sequence[WhisperSegment],
    options: WhisperOptions,
    budget: int | None = None,
    min_log_prob: float | None = None,
) -> bool:
    """Whether a short-window decode passes the guards that would have made
    faster-whisper fall back to a higher temperature, does not loop, and ended on its
    own: a decode cut by its token `budget` was looping, and the cut may hide the loop
    from the compression-ratio guard."""
    if not segments:
        return False  # the full window decides whether a clip is silence
    if budget is not None and sum(len(s.tokens) for s in segments) >= budget - 1:
        return False
    for segment in segments:
        if (
            options.compression_ratio_threshold is not None
            and segment.compression_ratio > options.compression_ratio_threshold
        ):
            return False
        if options.log_prob_threshold is not None and segment.avg_logprob < options.log_prob_threshold:
            return False
        if min_log_prob is not None and segment.avg_logprob < min_log_prob:
            return False
    return not repeats(" ".join(s.text for s in segments))


def transcribe_clip(
    model: WhisperModel,
    samples: np.ndarray,
    tokenizer: Tokenizer,
    options: WhisperOptions,
    policy: WindowPolicy,
    *,
    encoded: Encoded | None = None,
    fallback: bool = True,
) -> list[WhisperSegment]:
    """Segments of a clip of at most 30 s: short windows first, the full window when
    they are refused (see module docstring).

    `encoded` (made for language identification, in a larger window) is tried first;
    when it is refused the clip's own cut window is tried too (a cheap encode: the two
    windows fail on different clips). `fallback=False` (live interims) accepts unsure
    text, stops there and returns nothing rather than pay for the full window; a clip
    that has no short window (over 24 s, or dynamic context off) is always decoded in
    the full one."""
    budget = policy.token_budget(samples.shape[0], tokenizer.language_code, options.max_new_tokens)
    single = replace(options, temperatures=list(options.temperatures[:1]), max_new_tokens=budget)
    frames = policy.frames(samples.shape[0])
    # A preview is replaced by the final anyway: unsure text may show (it is what an
    # interim is), loops may not.
    guards = options if fallback else replace(options, log_prob_threshold=None)
    min_log_prob = policy.min_log_prob if fallback else None
    tried: set[int] = set()
    for candidate in (encoded, None):
        window = candidate.window_frames if candidate is not None else frames
        if window >= FULL_FRAMES or window in tried:
            continue
        tried.add(window)
        short = candidate or encode(model, samples, policy)
        segments = list(decode(model, short, tokenizer, single))
        if acceptable(segments, guards, budget, min_log_prob):
            return segments
    if tried and not fallback:
        return []
    if encoded is None or encoded.window_frames < FULL_FRAMES:
        encoded = encode(model, samples, WindowPolicy(enabled=False))
    if frames < FULL_FRAMES:  # a short clip: loops in the full window are bounded too
        options = replace(options, max_new_tokens=budget)
    return list(decode(model, encoded, tokenizer, options))
