"""Speaker embeddings for the diarisation pipeline: SpeechBrain ECAPA-TDNN, in PyTorch or ONNX Runtime.

Why not pyannote's own SpeechBrain wrapper: it loads through `EncoderClassifier.from_hparams`,
which fetches the hyperparameters' `pretrained_path` from the hub and (pyannote 4.0.x with
speechbrain 1.1) fails on a `token` keyword. We build the same modules from the model
directory's `hyperparams.yaml` and load `embedding_model.ckpt`; the computation is
SpeechBrain's `EncoderClassifier.encode_batch` (filterbanks, per-utterance mean
normalisation, ECAPA-TDNN), checked equal in tests.

Why ONNX Runtime: single-threaded on CPU it runs ECAPA-TDNN a few per cent faster than
PyTorch eager (docs/diarization.md has the measurements). The network is exported once per checkpoint
(keyed by its sha256) into a cache directory, or kept in memory when none is writable.
Filterbanks stay in PyTorch: they are cheap and their complex STFT does not export.

`SpeakerEmbedding` also speaks pyannote's embedding protocol (`sample_rate`, `dimension`,
`metric`, `min_num_samples`, `__call__(waveforms, masks)` with the semantics of pyannote's
SpeechBrain wrapper), so pyannote's stock `get_embeddings` can use it: that is how the
benchmark runs the out-of-the-box pipeline on the same weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Final, Literal

from parlons.errors import ModelCorrupt, ModelNotFound
from parlons.torch_compat import prepare_pyannote_import

prepare_pyannote_import()  # speechbrain imports torchaudio too

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.utils.rnn import pad_sequence  # noqa: E402

log = logging.getLogger(__name__)

Backend = Literal["torch", "onnx"]
_EXPORT_VERSION: Final = "ecapa-onnx-v1"  # bump when the export changes
_CHECKPOINT: Final = "embedding_model.ckpt"
_HPARAMS: Final = "hyperparams.yaml"


@dataclass(frozen=True)
class EmbeddingSettings:
    """How to run the embedding model (from the pipeline config file)."""

    backend: Backend = "onnx"
    # Signals per forward pass; similar lengths are grouped so padding stays small.
    batch_size: int = 1
    # Longest padding accepted in a batch, as a fraction of the longest signal.
    max_padding: float = 0.15
    # Threads for ONNX Runtime / PyTorch; 0 = library default (all cores).
    threads: int = 0
    # Where exported ONNX files are kept; empty = PARLONS_CACHE_DIR or ~/.cache/parlons.
    onnx_cache_dir: str = ""


class _EcapaFeatures(torch.nn.Module):
    """Filterbanks + per-utterance mean normalisation, as `encode_batch` computes them."""

    def __init__(self, compute_features: torch.nn.Module, mean_var_norm: torch.nn.Module) -> None:
        super().__init__()
        self.compute_features = compute_features
        self.mean_var_norm = mean_var_norm

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> torch.Tensor:
        feats = self.compute_features(wavs.float())
        return self.mean_var_norm(feats, wav_lens)


class _EcapaNetwork(torch.nn.Module):
    """(features, relative lengths) -> (batch, dimension) embeddings."""

    def __init__(self, embedding_model: torch.nn.Module) -> None:
        super().__init__()
        self.embedding_model = embedding_model

    def forward(self, feats: torch.Tensor, wav_lens: torch.Tensor) -> torch.Tensor:
        return self.embedding_model(feats, wav_lens).squeeze(1)


def _load_speechbrain_modules(model_dir: Path) -> tuple[_EcapaFeatures, _EcapaNetwork, int]:
    """Build the SpeechBrain modules from hyperparams.yaml and load the checkpoint."""
    hparams_path = model_dir / _HPARAMS
    checkpoint = model_dir / _CHECKPOINT
    for path in (hparams_path, checkpoint):
        if not path.is_file():
            raise ModelNotFound(
                f"speaker embedding model directory {model_dir} has no {path.name}; "
                "expected a SpeechBrain speaker model (hyperparams.yaml + embedding_model.ckpt)"
            )
    from hyperpyyaml import load_hyperpyyaml

    with hparams_path.open(encoding="utf-8") as fin:
        # pretrained_path points the (unused) pretrainer at this directory, never the hub.
        hparams = load_hyperpyyaml(fin, overrides={"pretrained_path": str(model_dir)})
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        hparams["embedding_model"].load_state_dict(state)
    except (RuntimeError, OSError, ValueError) as exc:
        raise ModelCorrupt(f"cannot load {checkpoint}: {exc}") from exc
    sample_rate = int(getattr(hparams["compute_features"].compute_STFT, "sample_rate", 16000))
    features = _EcapaFeatures(hparams["compute_features"], hparams["mean_var_norm"]).eval()
    network = _EcapaNetwork(hparams["embedding_model"]).eval()
    return features, network, sample_rate


@contextlib.contextmanager
def _traceable_length_masks() -> Iterator[None]:
    """Swap SpeechBrain's length_to_mask for a broadcast form while exporting.

    The original calls `.expand(len(length), max_len)`: tracing turns `len(length)` into a
    constant, so the exported model would only accept the batch size used for export.
    """
    import speechbrain.lobes.models.ECAPA_TDNN as ecapa_module

    original = ecapa_module.length_to_mask

    def length_to_mask(length: torch.Tensor, max_len: int | None = None, dtype=None, device=None):  # type: ignore[no-untyped-def]
        if max_len is None:
            max_len = int(length.max().item())
        mask = torch.arange(max_len, device=length.device, dtype=length.dtype).unsqueeze(0)
        return (mask < length.unsqueeze(1)).to(dtype or length.dtype)

    ecapa_module.length_to_mask = length_to_mask
    try:
        yield
    finally:
        ecapa_module.length_to_mask = original


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fin:
        for block in iter(lambda: fin.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    return Path(os.environ.get("PARLONS_CACHE_DIR", "~/.cache/parlons")).expanduser() / "diarization-onnx"


def export_onnx(network: _EcapaNetwork) -> bytes:
    """Export the ECAPA network with dynamic batch and time axes (opset 17)."""
    feats = torch.randn(2, 200, 80)
    lens = torch.tensor([1.0, 0.7])
    buffer = io.BytesIO()
    with _traceable_length_masks(), torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter notes about constant folding
        torch.onnx.export(
            network,
            (feats, lens),
            buffer,  # type: ignore[arg-type]  # a file object is accepted, the stubs say paths
            input_names=["feats", "wav_lens"],
            output_names=["embeddings"],
            dynamic_axes={"feats": {0: "batch", 1: "frames"}, "wav_lens": {0: "batch"},
                          "embeddings": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return buffer.getvalue()


def _onnx_model_bytes(network: _EcapaNetwork, checkpoint: Path, cache_dir: Path) -> bytes:
    """The exported model, from the cache when this checkpoint was exported before."""
    key = hashlib.sha256(f"{_EXPORT_VERSION}:{_file_sha256(checkpoint)}".encode()).hexdigest()[:24]
    cached = cache_dir / f"ecapa-{key}.onnx"
    if cached.is_file():
        return cached.read_bytes()
    log.info("exporting the speaker embedding network to ONNX (once per checkpoint)")
    data = export_onnx(network)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(cached)
    except OSError as exc:
        log.warning("cannot cache the ONNX export in %s (%s); keeping it in memory", cache_dir, exc)
    return data


class SpeakerEmbedding:
    """ECAPA-TDNN speaker embeddings of speech-only signals.

    `embed(signals)` is the fast path used by our pipeline; `__call__(waveforms, masks)` is
    pyannote's protocol. Thread-safe: the modules are only evaluated.
    """

    metric: Final = "cosine"

    def __init__(
        self,
        model_dir: Path,
        settings: EmbeddingSettings = EmbeddingSettings(),
        device: torch.device = torch.device("cpu"),  # noqa: B008 - immutable
    ) -> None:
        self.model_dir = Path(model_dir)
        self.settings = settings
        self.device = device
        self._features, self._network, self.sample_rate = _load_speechbrain_modules(self.model_dir)
        self._features.to(device)
        self._session = None
        self.backend: str = settings.backend
        if settings.backend not in ("onnx", "torch"):
            raise ValueError(f"embedding backend must be 'onnx' or 'torch', not {settings.backend!r}")
        if settings.backend == "onnx":
            try:
                self._session = self._onnx_session()
            except ImportError as exc:  # onnx/onnxruntime missing: slower, same results
                log.warning("ONNX Runtime path unavailable (%s); embeddings run in PyTorch", exc)
                self.backend = "torch"
        if self.backend == "torch":
            self._network.to(device)

    # ----------------------------------------------------------------- backends
    def _onnx_session(self):  # type: ignore[no-untyped-def]
        import onnxruntime as ort

        cache = Path(self.settings.onnx_cache_dir).expanduser() if self.settings.onnx_cache_dir else default_cache_dir()
        data = _onnx_model_bytes(self._network, self.model_dir / _CHECKPOINT, cache)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.settings.threads > 0:
            options.intra_op_num_threads = self.settings.threads
        if self.settings.threads != 1:
            # idle workers spin-wait by default: on a shared CPU that burns the cores
            # the other workers need (measured: 5x slower under load)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the min-length probe fails on purpose; keep logs clean
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        return ort.InferenceSession(data, options, providers=providers)

    def _forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> np.ndarray:
        """(batch, samples) padded signals + relative lengths -> (batch, dimension)."""
        with torch.inference_mode():
            feats = self._features(wavs.to(self.device), wav_lens.to(self.device))
            if self._session is not None:
                out = self._session.run(
                    None,
                    {"feats": feats.cpu().numpy(), "wav_lens": wav_lens.cpu().numpy().astype(np.float32)},
                )[0]
                return np.asarray(out, dtype=np.float32)
            return self._network(feats, wav_lens.to(self.device)).float().cpu().numpy()

    # ----------------------------------------------------------------- our API
    @cached_property
    def dimension(self) -> int:
        return int(self._forward(torch.zeros(1, self.sample_rate), torch.ones(1)).shape[-1])

    @cached_property
    def min_num_samples(self) -> int:
        """Shortest signal the model accepts (found by bisection, as pyannote does).

        Probed with the PyTorch network, whatever the backend: a too-short input is a
        RuntimeError there, where ONNX Runtime would log an error per probe.
        """
        lower, upper = 2, round(0.5 * self.sample_rate)
        device = next(self._network.parameters()).device
        with torch.inference_mode():
            while lower + 1 < upper:
                middle = (lower + upper) // 2
                try:
                    wavs, lens = torch.randn(1, middle, device=self.device), torch.ones(1, device=self.device)
                    self._network(self._features(wavs, lens).to(device), lens.to(device))
                    upper = middle
                except RuntimeError:
                    lower = middle
        return upper

    def embed(
        self,
        signals: Sequence[np.ndarray],
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Embed each 1-D float32 signal; NaN rows for signals shorter than min_num_samples.

        Signals are sorted by length and batched so that no signal is padded by more than
        `max_padding` of the batch's longest: padding changes ECAPA's output near the end,
        so little padding keeps results equal to one-at-a-time, and batches keep the
        matrix products large. `progress(done, total)` is called after each batch (the
        engine raises Cancelled from it).
        """
        out = np.full((len(signals), self.dimension), np.nan, dtype=np.float32)
        order = sorted(
            (i for i, s in enumerate(signals) if len(s) >= self.min_num_samples),
            key=lambda i: len(signals[i]),
            reverse=True,
        )
        batches: list[list[int]] = []
        for index in order:
            if not batches or (
                len(batches[-1]) >= self.settings.batch_size
                or len(signals[index]) < (1.0 - self.settings.max_padding) * len(signals[batches[-1][0]])
            ):
                batches.append([])
            batches[-1].append(index)
        done = 0
        for batch in batches:
            out[batch] = self._embed_batch([signals[i] for i in batch])
            done += len(batch)
            if progress is not None:
                progress(done, len(order))
        return out

    def _embed_batch(self, signals: list[np.ndarray]) -> np.ndarray:
        lengths = torch.tensor([len(s) for s in signals], dtype=torch.float32)
        wavs = pad_sequence([torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32)) for s in signals],
                            batch_first=True)
        return self._forward(wavs, lengths / lengths.max())

    # ----------------------------------------------------------------- pyannote's protocol
    def __call__(self, waveforms: torch.Tensor, masks: torch.Tensor | None = None) -> np.ndarray:
        """pyannote's SpeechBrain wrapper semantics: masked samples, padded, relative lengths."""
        batch_size, num_channels, num_samples = waveforms.shape
        assert num_channels == 1
        waveforms = waveforms.squeeze(dim=1)
        if masks is None:
            signals = waveforms
            wav_lens = num_samples * torch.ones(batch_size)
        else:
            imasks = F.interpolate(masks.unsqueeze(dim=1), size=num_samples, mode="nearest").squeeze(dim=1) > 0.5
            signals = pad_sequence([w[m].contiguous() for w, m in zip(waveforms, imasks)], batch_first=True)
            wav_lens = imasks.sum(dim=1).float()
        max_len = wav_lens.max()
        if max_len < self.min_num_samples:
            return np.nan * np.zeros((batch_size, self.dimension))
        too_short = wav_lens < self.min_num_samples
        wav_lens = wav_lens / max_len
        wav_lens[too_short] = 1.0
        embeddings = self._forward(signals, wav_lens)
        embeddings[too_short.cpu().numpy()] = np.nan
        return embeddings

    def to(self, device: torch.device) -> SpeakerEmbedding:
        """pyannote calls this when the pipeline moves; devices are fixed at construction."""
        return self
