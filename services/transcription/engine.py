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
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import ctranslate2
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.vad import VadOptions
from parlons.services.common.audio import TARGET_RATE, DecodedAudio
from parlons.errors import InvalidArgument, ModelCorrupt, ModelNotFound, NotFound
from parlons.languages import LanguageTag, WhisperCode, tag_of_whisper, whisper_code
from parlons.services.transcription.decode_options import clip_arguments, transcribe_arguments
from parlons.services.transcription.first_window import IdentifiedFirstWindow, identify_first_window
from parlons.services.transcription.languages import LIST_HINT, WHISPER_LANGUAGES
from parlons.services.transcription.options import TranscriptionOptions
from parlons.services.transcription.results import (
    LanguageDetection,
    ModelInfo,
    Segment,
    TranscriptionResult,
    Word,
    collect_segments,
    raise_if_cancelled,
)
from parlons.services.transcription.scheduler import BatchedWhisper, LiveDecodeScheduler
from parlons.services.transcription.speech_chunks import transcribe_speech_chunks
from parlons.services.transcription.utterances import transcribe_utterances
from parlons.services.transcription.window import (
    WINDOW_S,
    Encoded,
    WindowPolicy,
    choose_language,
    encode,
    language_probabilities,
    transcribe_clip,
    whisper_options,
)

log = logging.getLogger(__name__)

_REQUIRED_FILES: Final = ("model.bin", "config.json", "tokenizer.json")


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
        _, code, prob, probabilities = self.identify(clip, candidates)
        return LanguageDetection(
            tag_of_whisper(code),
            float(prob),
            tuple((tag_of_whisper(c), float(p)) for c, p in probabilities),
        )

    def identify(
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
        raise_if_cancelled(cancel)

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
            raise_if_cancelled(cancel)
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
            return transcribe_utterances(self, samples, options, channel, cancel)
        duration = samples.shape[0] / TARGET_RATE
        if not self.batched and self.window.enabled and not options.full_window:
            if not options.vad_filter and duration <= WINDOW_S:
                segments, language, probability = self.transcribe_short(
                    samples, options, channel, 0.0, duration, cancel
                )
                return segments, language, probability, duration
            if options.vad_filter:
                return transcribe_speech_chunks(self, samples, options, channel, cancel)
        language_code = options.model_language
        identified: IdentifiedFirstWindow | None = None
        if (language_code is None and not options.model_candidates and self.is_multilingual and not self.batched
                and not options.vad_filter):
            # faster-whisper would encode the first window twice (identify, then decode). With
            # candidates the language window identifies (below): on a short utterance it tells
            # a desk's two languages apart better than the 30-s window (espeak French).
            identified = identify_first_window(self._model, samples, options.model_candidates)
            language_code = identified.language
        elif language_code is None and options.model_candidates and self.is_multilingual:
            detection = self.detect_language(samples, options.model_candidates)
            language_code = whisper_code(detection.language)
        kwargs = transcribe_arguments(options, language_code)
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
            runner = self._model if identified is None else identified.model
        generator, info = runner.transcribe(samples, **kwargs)
        language = tag_of_whisper(info.language)
        probability = float(info.language_probability if identified is None else identified.probability)
        segments = collect_segments(generator, channel, language, probability, 0.0, duration, cancel)
        return segments, language, probability, float(info.duration_after_vad)

    def transcribe_short(
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
        raise_if_cancelled(cancel)
        language = language or options.model_language
        encoded = None
        if not self.is_multilingual:
            language, probability = WhisperCode("en"), 1.0
        elif language is None:
            encoded, language, probability, _ = self.identify(clip, options.model_candidates)
        raw = self.decode_clip(clip, options, language, encoded=encoded)
        bcp47 = tag_of_whisper(language)
        segments = collect_segments(raw, channel, bcp47, probability, offset, limit, cancel)
        return segments, bcp47, float(probability)

    def initial_prompt_tokens(self, options: TranscriptionOptions) -> list[int] | None:
        """The client's initial prompt as tokens (the chunk path prompts with tokens)."""
        if not options.initial_prompt:
            return None
        text = " " + options.initial_prompt.strip()
        return list(self._model.hf_tokenizer.encode(text, add_special_tokens=False).ids)

    def decode_clip(
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
        whisper = whisper_options(self._model, tokenizer, **clip_arguments(options, prompt_tokens))
        return transcribe_clip(
            self._model, clip, tokenizer, whisper, self.window, encoded=encoded, fallback=not options.preview
        )



def _renumber(segment: Segment, new_id: int) -> Segment:
    return replace(segment, id=new_id)


__all__ = [
    "LanguageDetection", "ModelInfo", "Segment", "TranscriptionEngine", "TranscriptionResult", "Word",
    "default_model", "resolve_compute_type", "resolve_device",
]
