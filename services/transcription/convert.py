"""Proto <-> engine conversions for the transcription service (no logic of its own)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from parlons.services.common.config import TranscriptionSettings
from parlons.errors import InvalidArgument
from parlons.services.transcription.results import Segment, TranscriptionResult, Word
from parlons.services.transcription.options import TranscriptionOptions
from parlons.services.transcription.streaming import StreamingConfig

from parlons.v1 import audio_pb2, transcription_pb2

if TYPE_CHECKING:
    from parlons.services.transcription.servicer import TranscriptionModule

DEFAULT_BEAM_SIZE = 5


def options_from_proto(
    options: transcription_pb2.TranscriptionOptions,
    config: audio_pb2.AudioConfig,
    *,
    vad_filter_default: bool = True,
) -> TranscriptionOptions:
    """Validated engine options; the request's language wins over the config's hints."""
    hints = [h for h in config.language_hints if h.strip()]
    language = options.language or (hints[0] if len(hints) == 1 else "")
    values: dict[str, Any] = {
        "language": language or None,
        # Several hints: identification chooses among them (per utterance when live).
        "language_candidates": tuple(hints) if not language else (),
        "task": "translate" if options.task == transcription_pb2.TRANSLATE_TO_ENGLISH else "transcribe",
        "beam_size": options.beam_size or DEFAULT_BEAM_SIZE,
        "word_timestamps": options.word_timestamps,
        "vad_filter": options.vad_filter if options.HasField("vad_filter") else vad_filter_default,
        "initial_prompt": options.initial_prompt or None,
        "hotwords": options.hotwords or None,
        "per_channel": options.per_channel,
        "detect_language_per_segment": options.language_per_segment,
    }
    if options.beam_size < 0:
        raise InvalidArgument(f"beam_size must be >= 0 (0 = default), got {options.beam_size}", field="options.beam_size")
    if options.temperatures:
        values["temperatures"] = tuple(options.temperatures)
    if options.HasField("condition_on_previous_text"):
        values["condition_on_previous_text"] = options.condition_on_previous_text
    return TranscriptionOptions(**values)


def streaming_config(
    config: transcription_pb2.StreamingConfig, defaults: TranscriptionSettings
) -> StreamingConfig:
    """The session's typed settings from a stream's config; what the client leaves out
    keeps StreamingConfig's defaults (one set of them)."""
    overrides = {
        "early_final_ms": defaults.live_early_final_ms,
        "early_final_busy_ms": defaults.live_early_final_busy_ms,
        "sentence_end_ms": defaults.live_sentence_end_ms,
        "interim_pause_ms": defaults.live_interim_pause_ms,
    }
    values: dict[str, Any] = {"dynamic_finals": defaults.dynamic_finals}
    values.update({k: v for k, v in overrides.items() if v is not None})
    silence_ms = config.end_of_utterance_silence_ms
    if silence_ms:
        if not 100 <= silence_ms <= 10_000:
            raise InvalidArgument(f"end_of_utterance_silence_ms must be in 100..10000, got {silence_ms}",
                                  field="end_of_utterance_silence_ms")
        values["end_of_utterance_ms"] = silence_ms
    if config.max_utterance_s:
        if not 1.0 <= config.max_utterance_s <= 30.0:
            raise InvalidArgument(f"max_utterance_s must be in 1..30 s, got {config.max_utterance_s}",
                                  field="max_utterance_s")
        values["max_utterance_s"] = config.max_utterance_s
    if config.HasField("interim_results"):
        values["interim_results"] = config.interim_results
    return StreamingConfig(**values)


def _word(word: Word) -> transcription_pb2.WordInfo:
    return transcription_pb2.WordInfo(
        start_s=word.start, end_s=word.end, word=word.word, probability=word.probability
    )


def segment_to_proto(segment: Segment) -> transcription_pb2.Segment:
    return transcription_pb2.Segment(
        id=segment.id,
        start_s=segment.start,
        end_s=segment.end,
        text=segment.text,
        avg_logprob=segment.avg_logprob,
        no_speech_prob=segment.no_speech_prob,
        compression_ratio=segment.compression_ratio,
        language=segment.language,
        language_probability=segment.language_probability,
        channel=segment.channel,
        words=[_word(w) for w in segment.words],
    )


def response_from_result(
    result: TranscriptionResult, model: str, channels: int
) -> transcription_pb2.TranscribeResponse:
    return transcription_pb2.TranscribeResponse(
        segments=[segment_to_proto(s) for s in result.segments],
        text=result.text,
        language=result.language,
        language_probability=result.language_probability,
        audio_duration_s=result.duration_s,
        processing_duration_s=result.processing_s,
        model=result.model or model,
        channels=channels,
    )


def streaming_response(events: Sequence[Any], audio_seconds: float) -> transcription_pb2.StreamingTranscribeResponse:
    """StreamEvents from the streaming session to one response message."""
    return transcription_pb2.StreamingTranscribeResponse(
        results=[_streaming_result(e) for e in events], audio_processed_s=audio_seconds
    )


def _streaming_result(event: Any) -> transcription_pb2.StreamingResult:
    return transcription_pb2.StreamingResult(
        is_final=event.is_final,
        stability=event.stability,
        text=event.text,
        committed_text=event.committed_text,
        unstable_text=event.unstable_text,
        start_s=event.start,
        end_s=event.end,
        utterance_index=event.utterance_index,
        language=event.language or "",
        language_probability=event.language_probability or 0.0,
        words=[_word(w) for w in event.words],
        channel=getattr(event, "channel", 0),
    )


def describe_models(module: TranscriptionModule) -> transcription_pb2.ListModelsResponse:
    """The catalog's Whisper models, with the one this server has loaded."""
    engine = module.engine
    loaded = engine.info() if engine is not None else None
    descriptions = []
    seen_loaded = False
    for info in module.models.list():
        if info.kind != "whisper":
            continue
        is_loaded = loaded is not None and info.name in module.served_names
        seen_loaded |= is_loaded
        descriptions.append(_model_description(info, is_loaded, loaded))
    if loaded is not None and not seen_loaded:
        descriptions.append(
            transcription_pb2.ModelDescription(
                name=loaded.name, kind="whisper", languages=list(loaded.languages),
                multilingual=loaded.multilingual, installed=True, loaded=True,
                device=loaded.device, compute_type=loaded.compute_type,
            )
        )
    return transcription_pb2.ListModelsResponse(models=descriptions, default_model=module.model_name)


def _model_description(info: Any, is_loaded: bool, loaded: Any) -> transcription_pb2.ModelDescription:
    size_bytes = sum(f.stat().st_size for f in info.path.iterdir() if f.is_file()) if info.installed else 0
    description = transcription_pb2.ModelDescription(
        name=info.name,
        kind=info.kind,
        languages=list(info.languages),
        multilingual=len(info.languages) != 1,
        installed=info.installed,
        loaded=is_loaded,
        size_bytes=size_bytes,
        license=info.licence,
    )
    if is_loaded and loaded is not None:
        description.device = loaded.device
        description.compute_type = loaded.compute_type
        description.languages[:] = list(loaded.languages)
        description.multilingual = loaded.multilingual
    return description
