"""Typed transcription options, validated once at construction.

A servicer builds `TranscriptionOptions` straight from a request: every value a client can
get wrong raises InvalidArgument (or NotFound for an unknown language, see `languages`)
with a message that names the field. Defaults are faster-whisper's own defaults for
`WhisperModel.transcribe` (beam 5, temperature fallback 0.0..1.0, condition on previous
text), with ONE exception: `vad_filter` is on. Without it, Whisper base on the test
phone call (sample.wav) falls into repetition loops whose temperature-fallback sampling
is random: WER 11% to 79% from run to run (4 seeds). With the VAD it is 21% on every run
and 8x faster. Clients can still turn it off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from parlons.errors import InvalidArgument, NotFound
from parlons.languages import LanguageTag, WhisperCode, whisper_code
from parlons.services.transcription.languages import parse_language

Task = Literal["transcribe", "translate"]
TASKS: Final = ("transcribe", "translate")
DEFAULT_TEMPERATURES: Final = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
MAX_BEAM_SIZE: Final = 16
# Whisper keeps at most ~223 prompt tokens; far longer text is a client mistake.
MAX_PROMPT_CHARS: Final = 2000
MAX_LANGUAGE_CANDIDATES: Final = 16


@dataclass(frozen=True)
class TranscriptionOptions:
    """What a client may ask of a transcription.

    `language`: BCP-47 tag or None for automatic identification (on the first 30 s, as
    Whisper does; `detect_language_per_segment` adds a cheap per-segment identification).
    It stays the client's tag (canonical casing, `pt_br` -> `pt-BR`); `model_language` is
    the Whisper code derived from it once (`pt-BR` -> `pt`, `jv` -> `jw`), what the engine
    gives faster-whisper.
    `per_channel`: transcribe every channel on its own (one speaker per microphone) and
    merge the segments by time, each tagged with its channel index.
    """

    language: LanguageTag | str | None = None
    task: Task = "transcribe"
    beam_size: int = 5
    best_of: int = 5
    patience: float = 1.0
    word_timestamps: bool = False
    without_timestamps: bool = False
    vad_filter: bool = True
    vad_min_silence_ms: int = 2000
    initial_prompt: str | None = None
    hotwords: str | None = None
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES
    condition_on_previous_text: bool = True
    compression_ratio_threshold: float | None = 2.4
    log_prob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    per_channel: bool = False
    detect_language_per_segment: bool = False
    max_new_tokens: int | None = None
    # Text the transcript must start with (first window only). Streaming forces the
    # committed words of an utterance this way, so interim hypotheses cannot reword them.
    prefix: str | None = None
    # Languages identification may choose from when `language` is None (a desk's French
    # and the visitor's language), as tags; empty = any language the model knows.
    language_candidates: tuple[str, ...] = ()
    # A cheap hypothesis (live interims, set by the server, not by clients): one pass in
    # the cut window, and no text rather than the full-window fallback when its guards
    # refuse it; the final decode of the utterance pays for that.
    preview: bool = False
    # Decode exactly as faster-whisper does, in 30-s windows, whatever the engine's
    # window policy (live finals, unless the server's `dynamic_finals` is on).
    full_window: bool = False
    # Derived once from `language` and `language_candidates`: Whisper's own codes.
    model_language: WhisperCode | None = field(init=False, default=None)
    model_candidates: tuple[WhisperCode, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        tag = parse_language(self.language) if self.language is not None and self.language.strip() else None
        object.__setattr__(self, "language", tag)
        object.__setattr__(self, "model_language", whisper_code(tag) if tag is not None else None)
        tags = _candidates(self.language_candidates)
        object.__setattr__(self, "language_candidates", tags)
        object.__setattr__(self, "model_candidates", tuple(whisper_code(t) for t in tags))
        if self.task not in TASKS:
            raise InvalidArgument(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        _check_range("beam_size", self.beam_size, 1, MAX_BEAM_SIZE)
        _check_range("best_of", self.best_of, 1, MAX_BEAM_SIZE)
        _check_range("patience", self.patience, 0.0, 10.0, exclusive_low=True)
        _check_range("vad_min_silence_ms", self.vad_min_silence_ms, 0, 60_000)
        temperatures = tuple(float(t) for t in self.temperatures)
        if not temperatures:
            raise InvalidArgument("temperatures must hold at least one value (e.g. [0.0])")
        for value in temperatures:
            _check_range("temperatures", value, 0.0, 1.0)
        object.__setattr__(self, "temperatures", temperatures)
        for name in ("initial_prompt", "hotwords", "prefix"):
            text = getattr(self, name)
            if text is not None and len(text) > MAX_PROMPT_CHARS:
                raise InvalidArgument(
                    f"{name} is {len(text)} characters long; at most {MAX_PROMPT_CHARS}"
                )
            if text is not None and not text.strip():
                object.__setattr__(self, name, None)
        if self.compression_ratio_threshold is not None:
            _check_range("compression_ratio_threshold", self.compression_ratio_threshold, 0.0, 100.0)
        if self.log_prob_threshold is not None:
            _check_range("log_prob_threshold", self.log_prob_threshold, -100.0, 0.0)
        if self.no_speech_threshold is not None:
            _check_range("no_speech_threshold", self.no_speech_threshold, 0.0, 1.0)
        if self.max_new_tokens is not None:
            _check_range("max_new_tokens", self.max_new_tokens, 1, 448)

    def with_(self, **changes: object) -> TranscriptionOptions:
        """A copy with some fields changed (re-validated)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _candidates(hints: tuple[str, ...] | list[str]) -> tuple[LanguageTag, ...]:
    """Language hints as tags, one per Whisper language, in order; a hint that is no
    language tag, or one Whisper does not know, is named in the error."""
    if len(hints) > MAX_LANGUAGE_CANDIDATES:
        raise InvalidArgument(
            f"at most {MAX_LANGUAGE_CANDIDATES} language hints, got {len(hints)}"
        )
    tags: dict[WhisperCode, LanguageTag] = {}
    bad: list[str] = []
    for hint in hints:
        if not hint.strip():
            continue
        try:
            tag = parse_language(hint)
        except (InvalidArgument, NotFound):
            bad.append(hint)
            continue
        tags.setdefault(whisper_code(tag), tag)
    if bad:
        raise InvalidArgument(
            f"language hint(s) {', '.join(map(repr, bad))} unknown to Whisper; "
            "give BCP-47 tags of supported languages (e.g. 'fr', 'ar'); call ListLanguages"
        )
    return tuple(tags.values())


def _check_range(
    name: str,
    value: float,
    low: float,
    high: float,
    *,
    exclusive_low: bool = False,
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{name} must be a number, got {value!r}")
    if math.isnan(value) or (value <= low if exclusive_low else value < low) or value > high:
        bound = "(" if exclusive_low else "["
        raise InvalidArgument(f"{name} must be in {bound}{low:g}, {high:g}], got {value!r}")
