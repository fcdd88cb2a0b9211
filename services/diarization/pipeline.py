"""pyannote's SpeakerDiarization, built from local model objects, with a faster embedding step.

`LocalSpeakerDiarization` is pyannote.audio 4's `SpeakerDiarization` unchanged except for
its constructor: pyannote's takes hub names/paths and builds its own embedding wrapper;
ours takes an already-loaded segmentation `Model`, our `SpeakerEmbedding` and an optional
PLDA, so nothing is fetched and the embedding backend is ours. Segmentation, speaker
counting, clustering and reconstruction are pyannote's code.

`FastSpeakerDiarization` replaces one step, `get_embeddings`, with an equivalent that does
less work:

* (chunk, speaker) pairs with no active frame are skipped (pyannote embeds every pair;
  its clustering discards the inactive ones, so their NaN embedding changes nothing);
* each pair is embedded from its speech samples only (what pyannote's SpeechBrain wrapper
  does too); when batching (GPU), pairs are grouped by similar length, not file order,
  so padding stays small;
* with `embedding_stride` > 1, only some windows are embedded (see the class below).

Each choice is measured separately in benchmarks/bench_diarization.py.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from parlons.torch_compat import prepare_pyannote_import

prepare_pyannote_import()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from pyannote.audio import Audio, Inference, Model  # noqa: E402
from pyannote.audio.core.pipeline import Pipeline as PyannotePipeline  # noqa: E402
from pyannote.audio.core.plda import PLDA  # noqa: E402
from pyannote.audio.pipelines.clustering import Clustering  # noqa: E402
from pyannote.audio.pipelines.speaker_diarization import DiarizeOutput, SpeakerDiarization  # noqa: E402
from pyannote.core import SlidingWindowFeature  # noqa: E402
from pyannote.pipeline.parameter import ParamDict, Uniform  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

from parlons.services.diarization.embedding import SpeakerEmbedding  # noqa: E402
from parlons.services.diarization.speaker_count import (  # noqa: E402
    CountingAgglomerativeClustering,
    CountReport,
    collect_count_reports,
)

CLUSTERING_METHODS = tuple(Clustering.__members__)


@dataclasses.dataclass
class CountedDiarizeOutput(DiarizeOutput):
    """pyannote's output, with the clustering's speaker-count report of this call (None
    when the clustering makes none: VBx, or no speech to cluster)."""

    count_report: CountReport | None = None


class LocalSpeakerDiarization(SpeakerDiarization):
    """pyannote's pipeline from loaded objects (mirrors SpeakerDiarization.__init__)."""

    def __init__(
        self,
        *,
        segmentation: Model,
        embedding: SpeakerEmbedding,
        clustering: str = "AgglomerativeClustering",
        plda: PLDA | None = None,
        segmentation_step: float = 0.1,
        segmentation_batch_size: int = 1,
        embedding_batch_size: int = 1,
        embedding_exclude_overlap: bool = False,
        device: torch.device = torch.device("cpu"),  # noqa: B008 - immutable
    ) -> None:
        PyannotePipeline.__init__(self)
        if clustering not in CLUSTERING_METHODS or clustering == "OracleClustering":
            raise ValueError(f"clustering must be one of {', '.join(CLUSTERING_METHODS[:-1])}")
        if clustering == "VBxClustering" and plda is None:
            raise ValueError("VBxClustering needs a PLDA (plda.npz + xvec_transform.npz)")
        self.legacy = False
        self.segmentation_model = segmentation
        self.segmentation_step = segmentation_step
        self.embedding = embedding  # type: ignore[assignment]  # pyannote types it for its loader (a name)
        self.embedding_batch_size = embedding_batch_size
        self.embedding_exclude_overlap = embedding_exclude_overlap
        self.plda = plda  # type: ignore[assignment]
        self._plda = plda  # type: ignore[assignment]  # pyannote's attribute is typed for its loader
        self.klustering = clustering
        self.der_variant = {"collar": 0.0, "skip_overlap": False}

        specifications = segmentation.specifications  # one task: never a tuple here
        duration = specifications.duration  # type: ignore[union-attr]
        self._segmentation = Inference(
            segmentation,
            duration=duration,
            step=segmentation_step * duration,
            skip_aggregation=True,
            batch_size=segmentation_batch_size,
            device=device,
        )
        if specifications.powerset:  # type: ignore[union-attr]
            self.segmentation = ParamDict(min_duration_off=Uniform(0.0, 1.0))
        else:
            self.segmentation = ParamDict(
                threshold=Uniform(0.1, 0.9), min_duration_off=Uniform(0.0, 1.0)
            )

        self._embedding = embedding
        self._audio = Audio(sample_rate=embedding.sample_rate, mono="downmix")
        klass = Clustering[clustering].value
        if clustering == "AgglomerativeClustering":
            klass = CountingAgglomerativeClustering  # the same, with a count report
        if clustering == "VBxClustering":
            self.clustering = klass(plda, metric=embedding.metric)
        else:
            self.clustering = klass(metric=embedding.metric)
        self._expects_num_speakers = self.clustering.expects_num_clusters
        self.device = device

    def apply(self, file: Any, **kwargs: Any) -> CountedDiarizeOutput:  # type: ignore[override]
        """pyannote's diarisation of one file, with the count report in the output."""
        with collect_count_reports() as reports:
            output = super().apply(file, **kwargs)
        if not isinstance(output, DiarizeOutput):  # pyannote's legacy mode: an Annotation alone
            return output  # type: ignore[no-any-return]
        fields = {f.name: getattr(output, f.name) for f in dataclasses.fields(output)}
        return CountedDiarizeOutput(**fields, count_report=reports[-1] if reports else None)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def co_activity(seg_a: np.ndarray, seg_b: np.ndarray, shift: int) -> np.ndarray:
    """Frames where local speakers of two overlapping chunks speak together.

    seg_a, seg_b: (frames, speakers) binary activity of chunks a and b; b starts `shift`
    frames after a (negative: before). Returns (speakers_a, speakers_b) counts over the
    frames both chunks cover.
    """
    frames = seg_a.shape[0]
    if abs(shift) >= frames:
        return np.zeros((seg_a.shape[1], seg_b.shape[1]))
    if shift >= 0:
        return seg_a[shift:].T @ seg_b[: frames - shift]
    return seg_a[: frames + shift].T @ seg_b[-shift:]


class FastSpeakerDiarization(LocalSpeakerDiarization):
    """Same pipeline; embeddings of active speakers only, speech-only, length-batched.

    With `embedding_stride` k > 1, only every k-th chunk (and the last) is embedded. A
    local speaker of another chunk takes the embedding of the speaker it matches in the
    nearest embedded chunk: chunks overlap by 90 % at the default step, and the speaker
    whose frames coincide over that overlap is the same voice (this is how pyannote's
    earlier pipelines stitched chunks). Speakers without a clear match (a voice that
    starts in the part of the chunk no embedded neighbour covers) are embedded directly.
    The segmentation keeps its fine step, so speaker turns stay as precise as pyannote's.
    """

    #: Embed every k-th chunk; 1 = every chunk (pyannote's behaviour).
    embedding_stride: int = 1
    #: A borrowed match must cover this share of the speaker's frames in the shared part...
    min_agreement: float = 0.5
    #: ...and the shared part must hold this share of the speaker's frames in the chunk.
    min_covered: float = 0.5
    #: > 0: borrow only when both embedded neighbours hold the voice with embeddings at
    #: least this similar (cosine); a window where they disagree is embedded itself.
    neighbour_agreement: float = 0.0


    def _speech_signals(
        self,
        file: dict[str, Any],
        binary_segmentations: SlidingWindowFeature,
        pairs: list[tuple[int, int]],
        masks_all: np.ndarray,
        clean_all: np.ndarray,
        min_num_frames: int,
    ) -> list[np.ndarray]:
        """The speech samples of each (chunk, speaker) pair, as pyannote's wrapper selects them."""
        window = binary_segmentations.sliding_window
        signals: list[np.ndarray] = []
        cropped: dict[int, torch.Tensor] = {}
        for c, s in pairs:
            if c not in cropped:
                cropped.clear()
                waveform, _ = self._audio.crop(file, window[c], mode="pad")
                cropped[c] = waveform[0]
            samples = cropped[c]
            clean = clean_all[c, :, s]
            mask = clean if clean.sum() > min_num_frames else masks_all[c, :, s]
            # same frame->sample mapping as pyannote's wrapper (nearest interpolation)
            sample_mask = F.interpolate(
                torch.from_numpy(mask)[None, None], size=samples.shape[0], mode="nearest"
            )[0, 0] > 0.5
            signals.append(samples[sample_mask].numpy())
        return signals

    def _borrow(
        self,
        c: int,
        s: int,
        masks_all: np.ndarray,
        embeddings: np.ndarray,
        neighbours: list[int],
        frame_shift: float,
    ) -> np.ndarray | None:
        """The embedding of the speaker matching (c, s) in an embedded neighbour chunk."""
        total = masks_all[c, :, s].sum()
        found: list[tuple[float, np.ndarray]] = []
        for e in dict.fromkeys(neighbours):
            shift = int(round((e - c) * frame_shift))
            agreement = co_activity(masks_all[c], masks_all[e], shift)
            rows, cols = linear_sum_assignment(agreement, maximize=True)
            match = dict(zip(rows.tolist(), cols.tolist())).get(s)
            if match is None:
                continue
            frames = masks_all.shape[1]
            shared = masks_all[c, shift:, s].sum() if shift >= 0 else masks_all[c, : frames + shift, s].sum()
            if shared < self.min_covered * total or agreement[s, match] < self.min_agreement * shared:
                continue
            value = embeddings[e, match]
            if np.isnan(value).any():
                continue
            found.append((agreement[s, match] / max(shared, 1.0), value))
        if not found:
            return None
        if self.neighbour_agreement > 0 and len(set(neighbours)) == 2:
            if len(found) < 2 or _cosine(found[0][1], found[1][1]) < self.neighbour_agreement:
                return None  # the neighbours do not hold the same voice: embed this one
        return max(found, key=lambda item: item[0])[1]

    def get_embeddings(
        self,
        file: dict[str, Any],
        binary_segmentations: SlidingWindowFeature,
        exclude_overlap: bool = False,
        hook: Callable[..., Any] | None = None,
    ) -> np.ndarray:
        duration = binary_segmentations.sliding_window.duration
        num_chunks, num_frames, num_speakers = binary_segmentations.data.shape
        embedding: SpeakerEmbedding = self._embedding

        masks_all = np.nan_to_num(binary_segmentations.data, nan=0.0).astype(np.float32)
        if exclude_overlap:
            # pyannote's rule: drop overlapped frames unless too little speech is left
            num_samples = duration * embedding.sample_rate
            min_num_frames = math.ceil(num_frames * embedding.min_num_samples / num_samples)
            clean_all = masks_all * (np.sum(masks_all, axis=2, keepdims=True) < 2)
        else:
            min_num_frames = -1
            clean_all = masks_all
        active = masks_all.any(axis=1)  # (chunks, speakers)

        stride = max(1, int(self.embedding_stride))
        embedded = sorted(set(range(0, num_chunks, stride)) | {num_chunks - 1})
        is_embedded = set(embedded)
        embeddings = np.full((num_chunks, num_speakers, embedding.dimension), np.nan, dtype=np.float32)

        def run(pairs: list[tuple[int, int]]) -> None:
            if not pairs:
                return
            signals = self._speech_signals(file, binary_segmentations, pairs, masks_all, clean_all, min_num_frames)

            def progress(done: int, total: int) -> None:
                if hook is not None:
                    hook("embeddings", None, total=total, completed=done)

            for (c, s), value in zip(pairs, embedding.embed(signals, progress=progress)):
                embeddings[c, s] = value

        run([(c, s) for c in embedded for s in range(num_speakers) if active[c, s]])
        if stride == 1:
            return embeddings

        frame_shift = binary_segmentations.sliding_window.step / self._segmentation.model.receptive_field.step
        direct: list[tuple[int, int]] = []
        position = np.searchsorted(embedded, np.arange(num_chunks))
        for c in range(num_chunks):
            if c in is_embedded:
                continue
            neighbours = [embedded[position[c] - 1], embedded[position[c]]]
            for s in np.flatnonzero(active[c]):
                value = self._borrow(c, int(s), masks_all, embeddings, neighbours, frame_shift)
                if value is None:
                    direct.append((c, int(s)))
                else:
                    embeddings[c, s] = value
        run(direct)
        return embeddings
