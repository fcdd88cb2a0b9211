"""The two ways the engine hands options to faster-whisper, built explicitly: the arguments
of `WhisperModel.transcribe` (fixed 30-s windows, the batched pipeline) and those of
faster-whisper's option structure for a clip decoded in a cut window (`window.py`)."""

from __future__ import annotations

from typing import Any

from parlons.languages import WhisperCode
from parlons.services.transcription.options import TranscriptionOptions


def _shared(options: TranscriptionOptions) -> dict[str, Any]:
    """What both paths take under the same name."""
    return {
        "beam_size": options.beam_size,
        "best_of": options.best_of,
        "patience": options.patience,
        "compression_ratio_threshold": options.compression_ratio_threshold,
        "log_prob_threshold": options.log_prob_threshold,
        "no_speech_threshold": options.no_speech_threshold,
        "condition_on_previous_text": options.condition_on_previous_text,
        "initial_prompt": options.initial_prompt,
        "hotwords": options.hotwords,
        "word_timestamps": options.word_timestamps,
        "without_timestamps": options.without_timestamps,
        "max_new_tokens": options.max_new_tokens,
        "prefix": options.prefix,
    }


def transcribe_arguments(options: TranscriptionOptions, language: WhisperCode | None) -> dict[str, Any]:
    """`WhisperModel.transcribe`'s keyword arguments for these options (VAD off: the
    caller turns it on with its own parameters)."""
    return {
        **_shared(options),
        "language": language,
        "task": options.task,
        "temperature": list(options.temperatures),
        "vad_filter": False,
    }


def clip_arguments(options: TranscriptionOptions, prompt_tokens: list[int] | None = None) -> dict[str, Any]:
    """`window.whisper_options`' keyword arguments for a clip (language and task are the
    tokenizer's); `prompt_tokens`, when given, replace the initial prompt (the previous
    group's text, already tokenised)."""
    values = {**_shared(options), "temperatures": list(options.temperatures)}
    if prompt_tokens:
        values["initial_prompt"] = prompt_tokens
    return values


__all__ = ["clip_arguments", "transcribe_arguments"]
