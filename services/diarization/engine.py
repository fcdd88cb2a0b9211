"""Diarisation engine: who spoke when, dataclasses in and out, no gRPC.

Two modes:
* neural (`diarize`): pyannote.audio's speaker-diarization pipeline (segmentation-3.0,
  speaker embeddings, clustering) on the downmixed audio, built from local model
  directories and the pipeline config file (options.py, pipeline.toml);
* channel (`diarize_channels`): one speaker per channel, from voice activity and channel
  levels (channel_mode.py); no neural pipeline.

One engine per process, shared by all requests: the models are only evaluated, so calls
from several threads are safe. PyTorch's thread count is process-wide; the engine sets it
from the config (`threads`) once, at load.

Cancellation: pyannote calls a hook between segmentation batches and after each
embedding batch; the engine's hook raises Cancelled there when `cancel` is set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from parlons.services.common.audio import TARGET_RATE, DecodedAudio
from parlons.errors import Cancelled, InvalidArgument, InvalidAudio, ModelCorrupt
from parlons.services.diarization.channel_mode import diarize_channels
from parlons.services.diarization.options import DiarizationConfig
from parlons.services.diarization.references import (
    MAX_REFERENCE_S,
    MIN_REFERENCE_SPEECH_S,
    SpeakerName,
    VoiceReference,
    name_speakers,
)
from parlons.services.diarization.results import (
    DiarizationResult,
    Mode,
    RawTurn,
    SpeakerSummary,
    SpeakerTurn,
    check_speaker_counts,
    count_note,
    finish,
    make_turns,
)
from parlons.torch_compat import prepare_pyannote_import

prepare_pyannote_import()

import torch  # noqa: E402

from parlons.services.diarization.embedding import EmbeddingSettings, SpeakerEmbedding  # noqa: E402
from parlons.services.diarization.pipeline import (  # noqa: E402
    FastSpeakerDiarization,
    LocalSpeakerDiarization,
)
from parlons.services.diarization.speaker_count import CountingAgglomerativeClustering  # noqa: E402

log = logging.getLogger("parlons.diarization")

# pyannote warns about cases it then handles itself (fewer speakers found than
# min_speakers on a short clip, an automatic instantiation); the result says it all.
# Filters are process-wide, so they are set once here rather than around each call.
warnings.filterwarnings("ignore", category=UserWarning, module=r"pyannote\.audio\.pipelines.*")

__all__ = [
    "DiarizationEngine", "DiarizationResult", "EngineInfo", "Mode", "SpeakerSummary", "SpeakerTurn",
    "check_speaker_counts", "diarize_channels", "resolve_device",
]
# pyannote's segmentation models all take 16 kHz; so does Silero VAD.
SAMPLE_RATE: Final = TARGET_RATE
# Below this RMS (about -70 dBFS) a span holds no voice to embed.
_SILENCE_RMS: Final = 10 ** (-70 / 20)


@dataclass(frozen=True)
class EngineInfo:
    """What was loaded, for logs, ListModels-style answers and the benchmark."""

    segmentation: str
    embedding: str
    plda: str
    device: str
    embedding_backend: str
    load_s: float
    torchaudio: str
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise InvalidArgument(f"unknown device {device!r}: use auto, cpu or cuda[:N]") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgument("device 'cuda' was asked for but PyTorch sees no GPU")
    return resolved


def _resolve_model(name: str, kind: str) -> Path:
    from parlons.models.manager import ModelManager

    return ModelManager().resolve(name, kind=kind)


class DiarizationEngine:
    """Loads the pipeline once; `diarize` and `diarize_channels` may run concurrently."""

    def __init__(
        self,
        config: DiarizationConfig | None = None,
        *,
        resolve_model: Callable[[str, str], Path] = _resolve_model,
    ) -> None:
        self.config = config or DiarizationConfig.from_file()
        self.config.validate()
        started = time.perf_counter()
        torchaudio_mode = prepare_pyannote_import()
        self.device = resolve_device(self.config.device)
        if self.config.threads > 0:
            torch.set_num_threads(self.config.threads)
        models = self.config.models
        self._segmentation_dir = resolve_model(models.segmentation, "diarization-segmentation")
        self._embedding_dir = resolve_model(models.embedding, "speaker-embedding")
        self._plda_dir = resolve_model(models.plda, "plda") if models.plda else None
        self._embedding = self._load_embedding()
        self._pipeline = self._build_pipeline()
        self._cache: OrderedDict[str, DiarizationResult] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.info = EngineInfo(
            segmentation=str(self._segmentation_dir),
            embedding=str(self._embedding_dir),
            plda=str(self._plda_dir or ""),
            device=str(self.device),
            embedding_backend=getattr(self._embedding, "backend", "torch"),
            load_s=time.perf_counter() - started,
            torchaudio=torchaudio_mode,
        )
        log.info("diarisation pipeline loaded", extra={"fields": {
            "device": self.info.device, "embedding_backend": self.info.embedding_backend,
            "load_s": round(self.info.load_s, 2)}})

    # ------------------------------------------------------------------ loading
    def _backend_name(self) -> str:
        return self.config.embedding.backend

    def _embedding_batch_size(self) -> int:
        size = self.config.embedding.batch_size
        return size if size > 0 else (32 if self.device.type == "cuda" else 1)

    def _load_embedding(self) -> Any:
        cfg = self.config.embedding
        if cfg.kind == "pyannote":
            from pyannote.audio.pipelines.speaker_verification import PyannoteAudioPretrainedSpeakerEmbedding

            try:
                return PyannoteAudioPretrainedSpeakerEmbedding(str(self._embedding_dir), device=self.device)
            except Exception as exc:
                raise ModelCorrupt(
                    f"cannot load the pyannote embedding model in {self._embedding_dir}: {exc}"
                ) from exc
        settings = EmbeddingSettings(
            backend=self._backend_name(),  # type: ignore[arg-type]
            batch_size=self._embedding_batch_size(),
            max_padding=cfg.max_padding,
            threads=self.config.threads,
            onnx_cache_dir=cfg.onnx_cache_dir,
        )
        return SpeakerEmbedding(self._embedding_dir, settings, device=self.device)

    def _build_pipeline(self) -> LocalSpeakerDiarization:
        from pyannote.audio import Model
        from pyannote.audio.core.plda import PLDA

        try:
            segmentation = Model.from_pretrained(str(self._segmentation_dir))
        except Exception as exc:
            raise ModelCorrupt(f"cannot load the segmentation model in {self._segmentation_dir}: {exc}") from exc
        if segmentation is None:
            raise ModelCorrupt(f"no segmentation model (pytorch_model.bin) in {self._segmentation_dir}")
        plda = None
        if self._plda_dir is not None:
            try:
                plda = PLDA(self._plda_dir / "xvec_transform.npz", self._plda_dir / "plda.npz")
            except (OSError, KeyError, ValueError) as exc:
                raise ModelCorrupt(
                    f"cannot load the PLDA in {self._plda_dir} (expected plda.npz and xvec_transform.npz): {exc}"
                ) from exc
        cfg = self.config
        fast = cfg.embedding.fast and cfg.embedding.kind == "speechbrain"
        klass = FastSpeakerDiarization if fast else LocalSpeakerDiarization
        pipeline = klass(
            segmentation=segmentation,
            embedding=self._embedding,
            clustering=cfg.clustering.method,
            plda=plda,
            segmentation_step=cfg.segmentation.step,
            segmentation_batch_size=cfg.segmentation.batch_size,
            embedding_batch_size=self._embedding_batch_size(),
            embedding_exclude_overlap=cfg.embedding.exclude_overlap,
            device=self.device,
        )
        if fast:
            pipeline.embedding_stride = cfg.embedding.stride
            pipeline.neighbour_agreement = cfg.embedding.neighbour_agreement
        pipeline.instantiate(cfg.pyannote_parameters())
        if isinstance(pipeline.clustering, CountingAgglomerativeClustering):
            pipeline.clustering.count_band = cfg.clustering.count_band
        return pipeline

    # ------------------------------------------------------------------ neural mode
    def diarize(
        self,
        audio: DecodedAudio,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        references: Sequence[VoiceReference] = (),
        reference_threshold: float | None = None,
        cancel: threading.Event | None = None,
    ) -> DiarizationResult:
        """Who spoke when, with the neural pipeline on the downmixed audio; speakers whose
        voice matches a reference carry its name."""
        started = time.perf_counter()
        num, low, high = check_speaker_counts(num_speakers, min_speakers, max_speakers)
        threshold = reference_threshold or self.config.references.threshold
        samples = self._mono(audio)
        duration = samples.shape[0] / SAMPLE_RATE
        key = self._cache_key(samples, num, low, high, threshold,
                              [(r.name, r.vector.tobytes()) for r in references])
        cached = self._cache_get(key)
        if cached is not None:
            return dataclasses.replace(cached, processing_s=time.perf_counter() - started)
        if samples.size == 0 or not np.any(samples):
            return finish([], duration, started, "neural")  # digital silence: nobody spoke

        def hook(step: str, artefact: Any, file: Any = None, total: Any = None, completed: Any = None) -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled("diarisation cancelled")

        if cancel is not None and cancel.is_set():
            raise Cancelled("diarisation cancelled")
        file = {"waveform": torch.from_numpy(samples)[None], "sample_rate": SAMPLE_RATE, "uri": "audio"}
        output = self._pipeline(file, num_speakers=num, min_speakers=low, max_speakers=high, hook=hook)
        report = output.count_report  # type: ignore[union-attr]
        # pyannote types __call__ as possibly an iterator (its streaming mode); not with these arguments
        raw = self._raw_turns(output.speaker_diarization, duration)  # type: ignore[union-attr]
        dominant = self._raw_turns(output.exclusive_speaker_diarization, duration)  # type: ignore[union-attr]
        names = self._names(output, references, threshold)
        if names:
            raw, dominant = (
                [(a, b, names[spk].name if spk in names else spk, ch) for a, b, spk, ch in turns]
                for turns in (raw, dominant)
            )
        result = finish(raw, duration, started, "neural")
        found = len(result.speakers)
        # Unconstrained, the estimate is the answer; forced, it is the clustering's own cut
        # (a cluster that never dominates a frame may then leave no turn).
        forced = num is not None or low is not None or high is not None
        estimated = report.estimated if report is not None and forced else found
        similarity = {names[label].name: names[label].similarity for label in names}
        result = dataclasses.replace(
            result,
            speakers=tuple(dataclasses.replace(s, reference_similarity=similarity.get(s.speaker, 0.0))
                           for s in result.speakers),
            estimated_speakers=estimated,
            count_confidence=report.confidence if report is not None else 1.0,
            count_note=count_note(found, estimated, num, low, high),
            dominant_turns=tuple(make_turns(dominant)),
        )
        self._cache_put(key, result)
        return result

    @staticmethod
    def _raw_turns(annotation: Any, duration: float) -> list[RawTurn]:
        return [
            (float(segment.start), float(min(segment.end, duration)), str(label), -1)
            for segment, _, label in annotation.itertracks(yield_label=True)
            if min(segment.end, duration) > segment.start
        ]

    @staticmethod
    def _names(output: Any, references: Sequence[VoiceReference], threshold: float) -> dict[str, SpeakerName]:
        """Speaker label -> SpeakerName for the speakers a reference names."""
        centroids = output.speaker_embeddings
        if not references or centroids is None:
            return {}
        labels = output.speaker_diarization.labels()
        return name_speakers({label: np.asarray(centroids[i]) for i, label in enumerate(labels)},
                             references, threshold)

    def reference_print(self, audio: DecodedAudio, name: str) -> VoiceReference:
        """The voice print of a reference recording, from its speech only (Silero VAD);
        refused when it is silent, too short or too long."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        samples = self._mono(audio)
        duration = samples.shape[0] / SAMPLE_RATE
        if duration > MAX_REFERENCE_S:
            raise InvalidArgument(f"speaker reference {name!r} lasts {duration:.1f} s; at most "
                                  f"{MAX_REFERENCE_S:.0f} s")
        if samples.size == 0 or np.sqrt(np.mean(samples ** 2)) < _SILENCE_RMS:
            raise InvalidArgument(f"speaker reference {name!r} is silent")
        spans = get_speech_timestamps(samples, VadOptions(min_speech_duration_ms=250, min_silence_duration_ms=300,
                                                          speech_pad_ms=100))
        speech = (np.concatenate([samples[s["start"]:s["end"]] for s in spans]) if spans
                  else samples[:0])
        speech_s = speech.shape[0] / SAMPLE_RATE
        if speech_s < MIN_REFERENCE_SPEECH_S:
            raise InvalidArgument(f"speaker reference {name!r} holds {speech_s:.1f} s of speech; at least "
                                  f"{MIN_REFERENCE_SPEECH_S:.0f} s are needed for a voice print")
        vector = self.embed_voices(DecodedAudio.from_array(speech, SAMPLE_RATE))[0]
        if np.isnan(vector).any():
            raise InvalidArgument(f"speaker reference {name!r} gives no voice print")
        return VoiceReference(name, vector, round(speech_s, 2))

    def _mono(self, audio: DecodedAudio) -> np.ndarray:
        if audio.sample_rate != SAMPLE_RATE:
            raise InvalidAudio(f"diarisation needs {SAMPLE_RATE} Hz audio, got {audio.sample_rate} Hz")
        samples = np.ascontiguousarray(audio.mono(), dtype=np.float32)
        if not np.all(np.isfinite(samples)):
            raise InvalidAudio("audio contains NaN or infinite samples")
        return samples

    # ------------------------------------------------------------------ voice prints
    def embed_voices(
        self,
        audio: DecodedAudio,
        spans: Sequence[tuple[float, float]] = (),
        *,
        cancel: threading.Event | None = None,
    ) -> np.ndarray:
        """One unit-length speaker embedding per (start, end) span of the downmixed audio,
        or for the whole audio when no span is given: (len(spans), dimension) float32, a
        NaN row for a span too short for the model or silent (below -70 dBFS: the model
        would still give a vector, of nobody's voice). Spans are clipped to the audio."""
        samples = self._mono(audio)
        duration = samples.shape[0] / SAMPLE_RATE
        wanted = list(spans) or [(0.0, duration)]
        signals = [
            samples[int(max(start, 0.0) * SAMPLE_RATE) : int(min(end, duration) * SAMPLE_RATE)]
            for start, end in wanted
        ]

        def progress(done: int, total: int) -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled("voice embedding cancelled")

        progress(0, len(signals))
        # A silent span becomes an empty signal, which the model leaves without a print.
        signals = [s if s.size and np.sqrt(np.mean(s**2)) >= _SILENCE_RMS else s[:0] for s in signals]
        if isinstance(self._embedding, SpeakerEmbedding):
            vectors = self._embedding.embed(signals, progress=progress)
        else:  # a pyannote embedding model: its own protocol, one signal at a time
            vectors = np.stack([self._pyannote_embed(signal) for signal in signals])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (vectors / norms).astype(np.float32)

    def _pyannote_embed(self, signal: np.ndarray) -> np.ndarray:
        dimension = int(self._embedding.dimension)
        if signal.shape[0] < max(int(getattr(self._embedding, "min_num_samples", 1)), 1):
            return np.full(dimension, np.nan, dtype=np.float32)
        waveform = torch.from_numpy(np.ascontiguousarray(signal))[None, None]
        return np.asarray(self._embedding(waveform), dtype=np.float32)[0]

    @property
    def embedding_model(self) -> str:
        """The embedding model's name as configured (catalog name or directory)."""
        return self.config.models.embedding

    @property
    def embedding_dimension(self) -> int:
        return int(self._embedding.dimension)

    # ------------------------------------------------------------------ channel mode
    def diarize_channels(
        self,
        audio: DecodedAudio,
        *,
        speaker_names: Sequence[str] = (),
        cancel: threading.Event | None = None,
    ) -> DiarizationResult:
        """One speaker per channel: SPEAKER_00 for channel 0 (or speaker_names[0]), ..."""
        return diarize_channels(audio, self.config, speaker_names=speaker_names, cancel=cancel)

    # ------------------------------------------------------------------ result cache
    def _cache_key(self, samples: np.ndarray, *options: Any) -> str | None:
        if self.config.result_cache_size <= 0:
            return None
        digest = hashlib.sha256(samples.tobytes())
        digest.update(repr(options).encode())
        return digest.hexdigest()

    def _cache_get(self, key: str | None) -> DiarizationResult | None:
        if key is None:
            return None
        with self._cache_lock:
            result = self._cache.get(key)
            if result is not None:
                self._cache.move_to_end(key)
            return result

    def _cache_put(self, key: str | None, result: DiarizationResult) -> None:
        if key is None:
            return
        with self._cache_lock:
            self._cache[key] = result
            while len(self._cache) > self.config.result_cache_size:
                self._cache.popitem(last=False)
