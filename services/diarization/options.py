"""The diarisation pipeline configuration: typed, with defaults, read from a TOML file.

A deployment changes models and parameters by editing a copy of `pipeline.toml` (next
to this module) and pointing `[diarization] pipeline_config` at it; no code changes.
Every configuration measured in benchmarks/bench_diarization.py is such a file's content,
including pyannote's out-of-the-box behaviour (`fast = false`, `backend = "torch"`, ...).
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from collections.abc import Mapping

from parlons.errors import InvalidArgument

DEFAULT_PIPELINE_FILE = Path(__file__).with_name("pipeline.toml")

EmbeddingKind = Literal["speechbrain", "pyannote"]
EmbeddingBackendName = Literal["torch", "onnx"]


@dataclass(frozen=True)
class ModelsConfig:
    """Catalog names (models/catalog.toml) or local directories."""

    segmentation: str = "pyannote-segmentation-3.0"
    embedding: str = "speechbrain-ecapa-voxceleb"
    # Only VBxClustering uses it (plda.npz + xvec_transform.npz of community-1).
    plda: str = ""


@dataclass(frozen=True)
class SegmentationConfig:
    # Sliding-window step as a fraction of the 10-s window (pyannote's default 0.1).
    step: float = 0.1
    batch_size: int = 8
    min_duration_off: float = 0.0


@dataclass(frozen=True)
class EmbeddingConfig:
    # "speechbrain": a SpeechBrain speaker model directory (ECAPA-TDNN);
    # "pyannote": a pyannote.audio embedding checkpoint (WeSpeaker, community-1/embedding).
    kind: EmbeddingKind = "speechbrain"
    # "torch", or "onnx" (ONNX Runtime; exported once per checkpoint and cached). On our
    # 2-core CPU, single-threaded, the two measured the same (docs/diarization.md).
    backend: EmbeddingBackendName = "torch"
    # Our embedding step (pipeline.FastSpeakerDiarization); false = pyannote's own.
    fast: bool = True
    # Embed every k-th 10-s chunk; the others borrow the matching speaker's embedding.
    stride: int = 3
    # A window between two embedded ones borrows only when both neighbours hold the
    # voice and their embeddings agree (cosine similarity at least this); otherwise it
    # is embedded itself. 0 = borrow from the better-matching neighbour alone. 0.75 was
    # chosen on the AMI trn excerpts and holds on the dev ones (docs/diarization.md).
    neighbour_agreement: float = 0.75
    # Signals per forward pass; 0 = auto: 1 on CPU (larger batches are slower per
    # signal there, see docs/diarization.md), 32 on GPU.
    batch_size: int = 0
    max_padding: float = 0.15
    exclude_overlap: bool = False
    # Where the ONNX export is cached; empty = $PARLONS_CACHE_DIR or ~/.cache/parlons.
    onnx_cache_dir: str = ""


# pyannote speaker-diarization@2.1's agglomerative threshold for ECAPA-TDNN embeddings:
# what "pyannote out of the box" clusters with in the benchmarks.
PYANNOTE_ECAPA_THRESHOLD: Final = 0.7153814381597874


@dataclass(frozen=True)
class ClusteringConfig:
    # AgglomerativeClustering (any embedding) or VBxClustering (needs models.plda and
    # the embedding the PLDA was trained for: community-1's WeSpeaker ResNet34).
    method: str = "AgglomerativeClustering"
    # Agglomerative: chosen on the AMI trn excerpts (benchmarks/tune_clustering.py;
    # pyannote's speaker-diarization@2.1 value for ECAPA is PYANNOTE_ECAPA_THRESHOLD).
    threshold: float = 0.775
    linkage: str = "centroid"
    min_cluster_size: int = 15
    # VBx (community-1 defaults; threshold then means VBx's AHC initialisation).
    fa: float = 0.07
    fb: float = 0.8
    # The speaker count is checked over thresholds this far each side of `threshold`:
    # its confidence is the share of them that give the same count.
    count_band: float = 0.1


@dataclass(frozen=True)
class ReferencesConfig:
    """Known voices: when a found speaker takes a reference's name."""

    # Cosine similarity between the speaker's centroid and the reference's print.
    threshold: float = 0.5


@dataclass(frozen=True)
class ChannelModeConfig:
    """One speaker per channel: voice activity per channel, then cross-talk removal."""

    # Most channels accepted in channel mode (neural mode always downmixes).
    max_channels: int = 8
    vad_threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 300
    speech_pad_ms: int = 100
    # A channel's voice activity counts only where its level (relative to its own
    # loudest speech) is within this many dB of the loudest other channel: a voice
    # leaking into the other microphone is much quieter there than in its own.
    bleed_margin_db: float = 15.0


@dataclass(frozen=True)
class DiarizationConfig:
    models: ModelsConfig = field(default_factory=ModelsConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    channel_mode: ChannelModeConfig = field(default_factory=ChannelModeConfig)
    references: ReferencesConfig = field(default_factory=ReferencesConfig)
    # "auto" (CUDA when PyTorch sees a GPU), "cpu", "cuda", "cuda:1"...
    device: str = "auto"
    # Intra-op threads of PyTorch and ONNX Runtime; 0 = the libraries' default (all
    # cores). 1 is best on a shared CPU: see docs/diarization.md.
    threads: int = 1
    # Results kept for identical audio + options (0 = off). Off by default: a cache hit
    # is observable by timing, which tells a caller someone sent the same audio.
    result_cache_size: int = 0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DiarizationConfig:
        return _build(cls, data, "")

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> DiarizationConfig:
        """The file's settings over the defaults; None = the packaged pipeline.toml."""
        file = Path(path) if path else DEFAULT_PIPELINE_FILE
        try:
            with file.open("rb") as fin:
                data = tomllib.load(fin)
        except FileNotFoundError:
            raise InvalidArgument(f"diarisation pipeline config {file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidArgument(f"diarisation pipeline config {file} is not valid TOML: {exc}") from None
        config = cls.from_mapping(data)
        config.validate()
        return config

    def replace(self, **sections: Any) -> DiarizationConfig:
        """A copy with some sections or fields changed: replace(embedding={"stride": 1})."""
        changes: dict[str, Any] = {}
        for name, value in sections.items():
            current = getattr(self, name)
            if dataclasses.is_dataclass(current) and not isinstance(current, type) and isinstance(value, Mapping):
                value = dataclasses.replace(current, **value)
            changes[name] = value
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        problems = []
        if not 0.0 < self.segmentation.step <= 1.0:
            problems.append("segmentation.step must be in (0, 1]")
        if self.segmentation.batch_size < 1 or self.embedding.batch_size < 0:
            problems.append("segmentation.batch_size must be >= 1, embedding.batch_size >= 0 (0 = auto)")
        if self.embedding.stride < 1:
            problems.append("embedding.stride must be >= 1")
        if not -1.0 <= self.embedding.neighbour_agreement <= 1.0:
            problems.append("embedding.neighbour_agreement is a cosine similarity: -1 to 1 (0 = off)")
        if self.embedding.kind not in typing.get_args(EmbeddingKind):
            problems.append(f"embedding.kind must be one of {typing.get_args(EmbeddingKind)}")
        if self.embedding.backend not in typing.get_args(EmbeddingBackendName):
            problems.append(f"embedding.backend must be one of {typing.get_args(EmbeddingBackendName)}")
        if self.clustering.method not in ("AgglomerativeClustering", "VBxClustering"):
            problems.append("clustering.method must be AgglomerativeClustering or VBxClustering")
        if self.clustering.method == "VBxClustering" and not self.models.plda:
            problems.append("VBxClustering needs models.plda")
        if self.threads < 0 or self.result_cache_size < 0:
            problems.append("threads and result_cache_size must be >= 0")
        if not 0.0 <= self.clustering.count_band < 1.0:
            problems.append("clustering.count_band must be in [0, 1)")
        if not -1.0 <= self.references.threshold <= 1.0:
            problems.append("references.threshold is a cosine similarity: -1 to 1")
        if self.channel_mode.max_channels < 1:
            problems.append("channel_mode.max_channels must be >= 1")
        if problems:
            raise InvalidArgument("invalid diarisation pipeline config: " + "; ".join(problems))

    def pyannote_parameters(self) -> dict[str, Any]:
        """The hyper-parameters pyannote's `Pipeline.instantiate` expects."""
        c = self.clustering
        if c.method == "VBxClustering":
            clustering: dict[str, Any] = {"threshold": c.threshold, "Fa": c.fa, "Fb": c.fb}
        else:
            clustering = {"method": c.linkage, "min_cluster_size": c.min_cluster_size, "threshold": c.threshold}
        return {
            "segmentation": {"min_duration_off": self.segmentation.min_duration_off},
            "clustering": clustering,
        }


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    """A (nested) dataclass from a mapping; unknown keys and wrong types are errors."""
    if not isinstance(data, Mapping):
        raise InvalidArgument(f"diarisation config section {prefix or '<root>'} must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InvalidArgument(
            f"unknown diarisation config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"known: {', '.join(prefix + k for k in fields)}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, f"{prefix}{name}.")
            continue
        kwargs[name] = _coerce(value, hint, f"{prefix}{name}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, name: str) -> Any:
    if typing.get_origin(hint) is Literal:
        if value not in typing.get_args(hint):
            raise InvalidArgument(f"{name} must be one of {typing.get_args(hint)}, not {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (type(value) is not hint):
        raise InvalidArgument(f"{name} must be {hint.__name__}, not {type(value).__name__} ({value!r})")
    return value
