"""Transcription engine: one faster-whisper model per process, dataclasses in and out.

No gRPC here; the servicer maps these results and the errors to protos and statuses.

Concurrency: the engine holds ONE `WhisperModel`; `transcribe` may be called from several
threads at once. CTranslate2 models are thread-safe, and `num_workers` (CTranslate2's
inter_threads) sets how many calls actually run the model in parallel; more callers
queue inside CTranslate2. Everything else used per call (features, tokenizer, the batched
pipeline, which keeps per-call state) is created per call, so calls share no mutable
state. On CPU, `cpu_threads * num_workers` should not exceed the cores.

Dynamic audio context (`window.py`): a clip shorter than 30 s (a live utterance, an
interim, a VAD speech chunk of a file) is encoded in a window cut to its length, with a
measured floor, and re-decoded in the full window when the short result fails
faster-whisper's own guards. Files with the VAD filter are decoded chunk by chunk that
way, the previous chunk's text as the prompt (as faster-whisper conditions one window on
the last). `WindowPolicy(enabled=False)` restores faster-whisper's fixed 30-s windows.

Cancellation: faster-whisper decodes lazily, one 30-s window per step of its segment
generator; `cancel` is checked before the work starts, between channels and between
segments, and raises Cancelled, so a client that goes away stops the work within one
window.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import ctranslate2
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import restore_speech_timestamps
from faster_whisper.vad import VadOptions, get_speech_timestamps
from parlons.services.common.audio import TARGET_RATE, DecodedAudio
from parlons.errors import (
    Cancelled,
    InvalidArgument,
    ModelCorrupt,
    ModelNotFound,
    NotFound,
)
from parlons.languages import LanguageTag, WhisperCode, tag_of_whisper, whisper_code
from parlons.services.transcription.languages import LIST_HINT, WHISPER_LANGUAGES
from parlons.services.transcription.options import TranscriptionOptions
from parlons.services.transcription.scheduler import BatchedWhisper, LiveDecodeScheduler
from parlons.services.transcription.window import (
    Encoded,
    WindowPolicy,
    choose_language,
    encode,
    language_probabilities,
    loops,
    transcribe_clip,
    whisper_options,
)

log = logging.getLogger(__name__)

WINDOW_S: Final = 30.0  # Whisper's input window
_REQUIRED_FILES: Final = ("model.bin", "config.json", "tokenizer.json")
_TURN_SILENCE_MS: Final = 500  # a pause this long may change speaker, so language


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """One transcribed segment; times in seconds from the start of the audio."""

    id: int
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    language: str  # BCP-47
    language_probability: float
    channel: int = 0
    words: tuple[Word, ...] = ()
    temperature: float | None = None


@dataclass(frozen=True)
class TranscriptionResult:
    segments: tuple[Segment, ...]
    # BCP-47; the language of the channel with the most speech ("" when nothing could be
    # identified: no samples, or no speech in per-segment mode)
    language: str
    language_probability: float
    duration_s: float
    processing_s: float
    model: str = ""
    duration_after_vad_s: float | None = None

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def real_time_factor(self) -> float:
        return self.processing_s / self.duration_s if self.duration_s else 0.0


@dataclass(frozen=True)
class LanguageDetection:
    language: LanguageTag
    probability: float
    all_probabilities: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class ModelInfo:
    """What ListModels / ListLanguages report about the loaded model."""

    name: str
    path: str
    device: str
    compute_type: str
    multilingual: bool
    languages: tuple[str, ...]  # BCP-47
    batched: bool
    load_s: float
    dynamic_context: bool = True


def resolve_device(device: str) -> str:
    """`auto` -> `cuda` when CTranslate2 sees a GPU, else `cpu`."""
    if device == "auto":
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    return device


AUTO_MODEL: Final = "auto"
CPU_DEFAULT_MODEL: Final = "base"  # multilingual: a French counter's languages
GPU_DEFAULT_MODEL: Final = "large-v3-turbo"


def default_model(setting: str, device: str, manager: Any) -> str:
    """The model to load for `setting`: itself, or for "auto" the multilingual default
    of the device (`large-v3-turbo` on a GPU when installed, `base` otherwise). An
    English-only model is never chosen for the user. `manager` is a ModelManager."""
    if setting != AUTO_MODEL:
        return setting
    if device == "cuda":
        info = manager.info(GPU_DEFAULT_MODEL)
        if info.installed and info.status == "ok":
            return GPU_DEFAULT_MODEL
        log.warning(
            "large-v3-turbo is not installed; using base on the GPU "
            "(`parlons models pull large-v3-turbo` for the GPU default)"
        )
    return CPU_DEFAULT_MODEL


def resolve_compute_type(device: str, compute_type: str) -> str:
    """`auto` -> float16 on CUDA, int8 on CPU; an explicit type must be supported."""
    if compute_type == "auto":
        return "float16" if device == "cuda" else "int8"
    supported = ctranslate2.get_supported_compute_types(device)
    if compute_type != "default" and compute_type not in supported:
        raise ValueError(
            f"compute type {compute_type!r} is not supported on {device}; "
            f"supported: {', '.join(sorted(supported))}"
        )
    return compute_type


class TranscriptionEngine:
    """A loaded Whisper model and the calls a servicer needs (see module docstring)."""

    def __init__(
        self,
        model_dir: Path | str,
        *,
        device: str = "auto",
        compute_type: str = "auto",
        cpu_threads: int = 0,
        num_workers: int = 1,
        batched: bool | None = None,
        batch_size: int = 8,
        name: str | None = None,
        window: WindowPolicy | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.name = name or self.model_dir.name
        if not self.model_dir.is_dir():
            raise ModelNotFound(f"model directory {self.model_dir} does not exist")
        missing = [f for f in _REQUIRED_FILES if not (self.model_dir / f).is_file()]
        if missing:
            raise ModelCorrupt(
                f"model directory {self.model_dir} lacks {', '.join(missing)}; "
                "pull the model again (`parlons models pull`)"
            )
        self.device = resolve_device(device)
        self.compute_type = resolve_compute_type(self.device, compute_type)
        # Batching pays on a GPU (many windows per forward pass); on CPU it only adds
        # VAD chunking and drops the temperature fallback, so it is off by default there.
        self.batched = (self.device == "cuda") if batched is None else batched
        self.batch_size = batch_size
        self.window = window or WindowPolicy()
        if cpu_threads <= 0:  # CTranslate2 would start 4 threads even on 2 cores
            cpu_threads = min(4, len(os.sched_getaffinity(0)))
        started = time.perf_counter()
        try:
            self._model = WhisperModel(
                str(self.model_dir),
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=cpu_threads,
                num_workers=num_workers,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelCorrupt(
                f"could not load the Whisper model in {self.model_dir}: {exc}"
            ) from exc
        self.load_s = time.perf_counter() - started
        self.is_multilingual = bool(self._model.model.is_multilingual)
        # Set on the view that live sessions use (`through`): their model calls batched.
        self.scheduler: LiveDecodeScheduler | None = None
        self._languages = self._model_languages()
        log.info(
            "whisper model loaded",
            extra={
                "model": self.name,
                "device": self.device,
                "compute_type": self.compute_type,
                "batched": self.batched,
                "load_s": round(self.load_s, 3),
            },
        )

    def live_scheduler(self, *, max_batch: int, wait_s: float) -> LiveDecodeScheduler:
        """A scheduler for this engine's model (one per replica: scheduler.py)."""
        return LiveDecodeScheduler(self._model.model, max_batch=max_batch, wait_s=wait_s)

    def through(self, scheduler: LiveDecodeScheduler) -> TranscriptionEngine:
        """This engine with its model calls made by `scheduler`, batched with the other
        live sessions' calls; the model, tokenizer and settings are shared, not copied."""
        model = copy.copy(self._model)
        sot_id = self._model.hf_tokenizer.token_to_id("<|startoftranscript|>")
        model.model = BatchedWhisper(self._model.model, scheduler, sot_id)
        view = copy.copy(self)
        view._model = model
        view.scheduler = scheduler
        return view

    # -- discovery -------------------------------------------------------------------

    def _model_languages(self) -> tuple[WhisperCode, ...]:
        """Whisper codes this model has a language token for (`yue` is large-v3 only)."""
        if not self.is_multilingual:
            return (WhisperCode("en"),)
        tokenizer = self._model.hf_tokenizer
        return tuple(WhisperCode(c) for c in WHISPER_LANGUAGES if tokenizer.token_to_id(f"<|{c}|>") is not None)

    @property
    def supported_languages(self) -> tuple[str, ...]:
        """BCP-47 tags this model can transcribe."""
        return tuple(tag_of_whisper(c) for c in self._languages)

    def count_tokens(self, text: str) -> int:
        """Whisper tokens in `text` (to keep prompts inside the 448-token context)."""
        if not text:
            return 0
        return len(self._model.hf_tokenizer.encode(" " + text.strip(), add_special_tokens=False).ids)

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            path=str(self.model_dir),
            device=self.device,
            compute_type=self.compute_type,
            multilingual=self.is_multilingual,
            languages=self.supported_languages,
            batched=self.batched,
            load_s=self.load_s,
            dynamic_context=self.window.enabled,
        )

    def check_options(self, options: TranscriptionOptions) -> None:
        """Refuse what this model cannot do, instead of silently doing something else
        (faster-whisper would transcribe French as English with a `.en` model)."""
        if options.model_language is not None and options.model_language not in self._languages:
            if not self.is_multilingual:
                raise NotFound(
                    f"model {self.name} is English-only; language {options.language!r} "
                    "needs a multilingual model"
                )
            raise NotFound(
                f"language {options.language!r} is not supported by model {self.name}; "
                f"{LIST_HINT}"
            )
        unknown = [t for t, c in zip(options.language_candidates, options.model_candidates) if c not in self._languages]
        if unknown:
            raise InvalidArgument(
                f"language hint(s) {', '.join(map(repr, unknown))} not supported by model "
                f"{self.name}; {LIST_HINT}"
            )
        if options.task == "translate" and not self.is_multilingual:
            raise InvalidArgument(
                f"model {self.name} is English-only and cannot translate; "
                "use a multilingual model"
            )

    # -- language identification ------------------------------------------------------

    def detect_language(
        self, audio: DecodedAudio | np.ndarray, candidates: tuple[WhisperCode, ...] = ()
    ) -> LanguageDetection:
        """Identify the spoken language from the first 30 s (mono mix), among
        `candidates` (Whisper codes) when given (see `_identify`)."""
        samples = audio.mono() if isinstance(audio, DecodedAudio) else np.asarray(audio)
        if not self.is_multilingual:
            return LanguageDetection(LanguageTag("en"), 1.0, (("en", 1.0),))
        clip = np.ascontiguousarray(samples[: int(WINDOW_S * TARGET_RATE)], dtype=np.float32)
        _, code, prob, probabilities = self._identify(clip, candidates)
        return LanguageDetection(
            tag_of_whisper(code),
            float(prob),
            tuple((tag_of_whisper(c), float(p)) for c, p in probabilities),
        )

    def _identify(
        self, clip: np.ndarray, candidates: tuple[WhisperCode, ...]
    ) -> tuple[Encoded, WhisperCode, float, list[tuple[str, float]]]:
        """(encoding, Whisper code, its probability, every probability) of a clip of at
        most 30 s, identified in the language window (it needs more context than
        decoding); the caller may decode that same encoding."""
        encoded = encode(self._model, clip, self.window.for_language())
        probabilities = language_probabilities(self._model, encoded)
        code, probability = choose_language(probabilities, candidates)
        return encoded, WhisperCode(code), probability, probabilities

    # -- transcription -------------------------------------------------------------------

    def transcribe(
        self,
        audio: DecodedAudio,
        options: TranscriptionOptions | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> TranscriptionResult:
        """Transcribe 16 kHz audio; per channel when `options.per_channel`."""
        options = options or TranscriptionOptions()
        if audio.sample_rate != TARGET_RATE:
            raise ValueError(f"audio must be at {TARGET_RATE} Hz, got {audio.sample_rate}")
        self.check_options(options)
        started = time.perf_counter()
        _raise_if_cancelled(cancel)

        if audio.num_samples == 0:
            channels = []
        elif options.per_channel and audio.channels > 1:
            channels = [(i, audio.channel(i)) for i in range(audio.channels)]
        else:
            channels = [(0, audio.mono())]

        segments: list[Segment] = []
        best: tuple[float, str, float] | None = None  # (speech seconds, lang, prob)
        after_vad = 0.0
        for index, samples in channels:
            _raise_if_cancelled(cancel)
            channel_segments, language, probability, vad_s = self._transcribe_mono(
                samples, options, index, cancel
            )
            segments.extend(channel_segments)
            after_vad += vad_s
            speech = sum(s.end - s.start for s in channel_segments)
            if best is None or speech > best[0]:
                best = (speech, language, probability)

        segments.sort(key=lambda s: (s.start, s.channel, s.end))
        segments = [_renumber(s, i) for i, s in enumerate(segments, start=1)]
        if best is None:  # no samples at all
            best = (0.0, "" if self.is_multilingual else "en", 0.0)
        return TranscriptionResult(
            segments=tuple(segments),
            language=best[1],
            language_probability=best[2],
            duration_s=audio.duration_s,
            processing_s=time.perf_counter() - started,
            model=self.name,
            duration_after_vad_s=after_vad if options.vad_filter else None,
        )

    def _transcribe_mono(
        self,
        samples: np.ndarray,
        options: TranscriptionOptions,
        channel: int,
        cancel: threading.Event | None,
    ) -> tuple[list[Segment], str, float, float]:
        """One channel: (segments, language, its probability, seconds after VAD)."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if options.detect_language_per_segment and options.model_language is None and self.is_multilingual:
            return self._transcribe_utterances(samples, options, channel, cancel)
        duration = samples.shape[0] / TARGET_RATE
        if not self.batched and self.window.enabled and not options.full_window:
            if not options.vad_filter and duration <= WINDOW_S:
                segments, language, probability = self._transcribe_clip(
                    samples, options, channel, 0.0, duration, cancel
                )
                return segments, language, probability, duration
            if options.vad_filter:
                return self._transcribe_speech_chunks(samples, options, channel, cancel)
        language_code = options.model_language
        if language_code is None and options.model_candidates and self.is_multilingual:
            detection = self.detect_language(samples, options.model_candidates)
            language_code = whisper_code(detection.language)
        kwargs = self._decode_kwargs(options, language_code)
        if options.vad_filter:
            kwargs["vad_filter"] = True
            kwargs["vad_parameters"] = VadOptions(
                min_silence_duration_ms=options.vad_min_silence_ms
            )
        if self.batched:
            # Batched decoding needs speech chunks: VAD ones, or fixed 30-s windows when
            # the caller turned VAD off. It uses only the first temperature.
            runner: Any = BatchedInferencePipeline(self._model)  # per call: it has state
            kwargs["batch_size"] = self.batch_size
            if options.vad_filter:
                kwargs["vad_parameters"] = None  # faster-whisper's batched VAD settings
            else:
                kwargs["clip_timestamps"] = [
                    {"start": float(s), "end": min(float(s) + WINDOW_S, duration)}
                    for s in np.arange(0.0, duration, WINDOW_S)
                ]
        else:
            runner = self._model
        generator, info = runner.transcribe(samples, **kwargs)
        language = tag_of_whisper(info.language)
        probability = float(info.language_probability)
        segments = self._collect(generator, channel, language, probability, 0.0, duration, cancel)
        return segments, language, probability, float(info.duration_after_vad)

    def _transcribe_clip(
        self,
        clip: np.ndarray,
        options: TranscriptionOptions,
        channel: int,
        offset: float,
        limit: float,
        cancel: threading.Event | None,
        *,
        language: WhisperCode | None = None,
        probability: float = 1.0,
    ) -> tuple[list[Segment], str, float]:
        """A clip of at most 30 s with dynamic context: identify its language on the
        clip's own encoding when none is known, then decode it (window.transcribe_clip)."""
        _raise_if_cancelled(cancel)
        language = language or options.model_language
        encoded = None
        if not self.is_multilingual:
            language, probability = WhisperCode("en"), 1.0
        elif language is None:
            encoded, language, probability, _ = self._identify(clip, options.model_candidates)
        raw = self._decode_clip(clip, options, language, encoded=encoded)
        bcp47 = tag_of_whisper(language)
        segments = self._collect(raw, channel, bcp47, probability, offset, limit, cancel)
        return segments, bcp47, float(probability)

    def _decode_clip(
        self,
        clip: np.ndarray,
        options: TranscriptionOptions,
        language: WhisperCode | None,
        *,
        prompt_tokens: list[int] | None = None,
        encoded: Encoded | None = None,
    ) -> list[Any]:
        """faster-whisper segments of a clip of at most 30 s (window.transcribe_clip);
        `encoded`, the identification's encoding, is decoded rather than encoding anew."""
        tokenizer = Tokenizer(
            self._model.hf_tokenizer, self.is_multilingual, task=options.task, language=language
        )
        kwargs = self._decode_kwargs(options, language)
        for name in ("language", "task", "temperature", "vad_filter"):
            kwargs.pop(name)
        kwargs["temperatures"] = list(options.temperatures)
        if prompt_tokens:
            kwargs["initial_prompt"] = prompt_tokens
        whisper = whisper_options(self._model, tokenizer, **kwargs)
        return transcribe_clip(
            self._model, clip, tokenizer, whisper, self.window, encoded=encoded, fallback=not options.preview
        )

    def _transcribe_speech_chunks(
        self,
        samples: np.ndarray,
        options: TranscriptionOptions,
        channel: int,
        cancel: threading.Event | None,
    ) -> tuple[list[Segment], str, float, float]:
        """A file with the VAD filter: speech chunks joined into groups of at most 30 s
        (as faster-whisper's `collect_chunks`, whose metadata loses the first chunk of
        every group after the first: not used), each group decoded in a window cut to its
        length, times mapped back to the file (`restore_speech_timestamps`). A file
        with less than 30 s of speech costs one short window instead of a full one.
        Measured: one window per chunk instead is slower on meetings (many sub-second
        chunks, each its own decode) and no more accurate (docs/transcription.md).
        The language, when not given, is identified once on the first group, as
        faster-whisper does on the first 30 s of speech; the previous group's tokens
        prompt the next when `condition_on_previous_text`."""
        chunks = get_speech_timestamps(
            samples,
            VadOptions(min_silence_duration_ms=options.vad_min_silence_ms, max_speech_duration_s=WINDOW_S),
        )
        if not chunks:
            return [], ("en" if not self.is_multilingual else ""), 0.0, 0.0
        grouped = _group_chunks(chunks, int(WINDOW_S * TARGET_RATE))
        groups = [np.concatenate([samples[c["start"] : c["end"]] for c in group]) for group in grouped]
        language, probability = options.model_language, 1.0
        first = None  # the first group's encoding, when identification made it
        if language is None and self.is_multilingual:
            first, language, probability, _ = self._identify(groups[0], options.model_candidates)
        tag = tag_of_whisper(language or "en")
        segments: list[Segment] = []
        previous: list[int] = []
        pending = [(group_chunks, first if number == 0 else None) for number, group_chunks in enumerate(grouped)]
        while pending:
            _raise_if_cancelled(cancel)
            group_chunks, encoded = pending.pop(0)
            group = np.concatenate([samples[c["start"] : c["end"]] for c in group_chunks])
            raw = self._decode_clip(group, options, language, prompt_tokens=previous or None, encoded=encoded)
            looped = next((i for i, segment in enumerate(raw) if loops([segment])), None)
            if looped is not None:
                # Keep what came before the loop and decode the rest of the group anew
                # (a loop that opens the clip is skipped): a fresh window rarely loops.
                resume = raw[looped].start if looped > 0 else raw[looped].end
                rest = chunks_after(group_chunks, int(resume * TARGET_RATE))
                if rest:
                    pending.insert(0, (rest, None))
                raw = raw[:looped]
            restored = list(restore_speech_timestamps(raw, group_chunks, TARGET_RATE))
            segments.extend(
                self._collect(restored, channel, tag, probability, 0.0,
                              samples.shape[0] / TARGET_RATE, cancel)
            )
            previous = self._next_prompt(options, raw, previous)
        kept = sum(g.shape[0] for g in groups)
        return segments, tag, float(probability), kept / TARGET_RATE

    def _next_prompt(
        self, options: TranscriptionOptions, raw: list[Any], previous: list[int]
    ) -> list[int]:
        """The prompt of the next group: the initial prompt and the text so far (at most
        223 tokens, Whisper's prompt half), reset after a high-temperature decode."""
        if not options.condition_on_previous_text or any((s.temperature or 0.0) > 0.5 for s in raw):
            return self._initial_prompt_tokens(options) or []
        tokens = previous or (self._initial_prompt_tokens(options) or [])
        for segment in raw:
            tokens = tokens + list(segment.tokens)
        return tokens[-223:]

    def _initial_prompt_tokens(self, options: TranscriptionOptions) -> list[int] | None:
        if not options.initial_prompt:
            return None
        text = " " + options.initial_prompt.strip()
        return list(self._model.hf_tokenizer.encode(text, add_special_tokens=False).ids)

    def _transcribe_utterances(
        self,
        samples: np.ndarray,
        options: TranscriptionOptions,
        channel: int,
        cancel: threading.Event | None,
    ) -> tuple[list[Segment], str, float, float]:
        """Language per segment: split at pauses (VAD), identify each utterance's
        language and transcribe it in that language. Whisper itself picks one language
        per 30-s window, which loses the second speaker at a bilingual counter.
        Costs one extra encoder pass per utterance."""
        chunks = get_speech_timestamps(
            samples,
            VadOptions(
                min_silence_duration_ms=_TURN_SILENCE_MS,
                max_speech_duration_s=WINDOW_S,
                speech_pad_ms=200,
            ),
        )
        segments: list[Segment] = []
        speech_by_language: dict[str, tuple[float, float]] = {}
        kept = 0
        for chunk in chunks:
            _raise_if_cancelled(cancel)
            clip = samples[chunk["start"] : chunk["end"]]
            kept += clip.shape[0]
            found, language, probability = self._transcribe_clip(
                clip,
                options.with_(condition_on_previous_text=False),
                channel,
                chunk["start"] / TARGET_RATE,
                chunk["end"] / TARGET_RATE,
                cancel,
            )
            segments.extend(found)
            seconds, best = speech_by_language.get(language, (0.0, 0.0))
            speech_by_language[language] = (
                seconds + clip.shape[0] / TARGET_RATE,
                max(best, float(probability)),
            )
        if not speech_by_language:  # no speech: no language either
            return [], "", 0.0, 0.0
        language = max(speech_by_language, key=lambda k: speech_by_language[k][0])
        return segments, language, speech_by_language[language][1], kept / TARGET_RATE

    def _decode_kwargs(self, options: TranscriptionOptions, language: WhisperCode | None) -> dict[str, Any]:
        """faster-whisper's transcribe() arguments for these options (VAD off)."""
        return {
            "language": language,
            "task": options.task,
            "beam_size": options.beam_size,
            "best_of": options.best_of,
            "patience": options.patience,
            "temperature": list(options.temperatures),
            "compression_ratio_threshold": options.compression_ratio_threshold,
            "log_prob_threshold": options.log_prob_threshold,
            "no_speech_threshold": options.no_speech_threshold,
            "condition_on_previous_text": options.condition_on_previous_text,
            "initial_prompt": options.initial_prompt,
            "hotwords": options.hotwords,
            "word_timestamps": options.word_timestamps,
            "without_timestamps": options.without_timestamps,
            "vad_filter": False,
            "max_new_tokens": options.max_new_tokens,
            "prefix": options.prefix,
        }

    @staticmethod
    def _collect(
        generator: Iterable[Any],
        channel: int,
        language: str,
        probability: float,
        offset: float,
        limit: float,
        cancel: threading.Event | None,
    ) -> list[Segment]:
        """Drain faster-whisper's lazy generator, checking `cancel` between segments.

        Times are shifted by `offset` and clamped to `limit` (the end of the audio):
        Whisper's timestamps can run past the end of a short clip."""

        def at(t: float) -> float:
            return round(min(float(t) + offset, limit), 3)

        segments: list[Segment] = []
        try:
            for raw in generator:
                _raise_if_cancelled(cancel)
                segments.append(
                    Segment(
                        id=0,
                        start=at(raw.start),
                        end=at(raw.end),
                        text=raw.text,
                        avg_logprob=float(raw.avg_logprob),
                        no_speech_prob=float(raw.no_speech_prob),
                        compression_ratio=float(raw.compression_ratio),
                        language=language,
                        language_probability=probability,
                        channel=channel,
                        words=tuple(
                            Word(at(w.start), at(w.end), w.word, float(w.probability))
                            for w in (raw.words or ())
                        ),
                        temperature=raw.temperature,
                    )
                )
        finally:
            close = getattr(generator, "close", None)
            if close is not None:
                close()
        return segments


def _group_chunks(chunks: list[dict[str, int]], max_samples: int) -> list[list[dict[str, int]]]:
    """Consecutive speech chunks in groups of at most `max_samples` (each chunk is at
    most that long itself: the VAD cuts longer speech)."""
    groups: list[list[dict[str, int]]] = []
    size = 0
    for chunk in chunks:
        length = chunk["end"] - chunk["start"]
        if not groups or size + length > max_samples:
            groups.append([])
            size = 0
        groups[-1].append(chunk)
        size += length
    return groups


def chunks_after(chunks: list[dict[str, int]], offset: int) -> list[dict[str, int]]:
    """The speech chunks of a group from `offset` samples of its joined audio on (the
    chunk that holds it cut there); nothing when less than 0.5 s is left."""
    rest: list[dict[str, int]] = []
    for chunk in chunks:
        length = chunk["end"] - chunk["start"]
        if offset < length:
            rest.append({"start": chunk["start"] + max(0, offset), "end": chunk["end"]})
        offset -= length
    left = sum(c["end"] - c["start"] for c in rest)
    return rest if left >= TARGET_RATE // 2 else []


def _raise_if_cancelled(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("the transcription was cancelled")


def _renumber(segment: Segment, new_id: int) -> Segment:
    return replace(segment, id=new_id)
