"""One loaded translation model: its layout, a CTranslate2 `Translator` and its batcher.

The translator is shared by every request of the process; all calls go through the
micro-batcher, which runs them in its own thread. Device and precision are picked
automatically: CUDA in float16 when a GPU is visible, otherwise CPU in int8.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Hashable, Sequence

import ctranslate2

from parlons.services.common import metrics
from parlons.errors import InvalidArgument, ModelCorrupt
from parlons.services.translation.batcher import BatchItem, MicroBatcher
from parlons.services.translation.layouts import ModelLayout, load_layout

log = logging.getLogger("parlons.translation")


@dataclass(frozen=True)
class RuntimeOptions:
    """How models run: device, precision, threads and batching."""

    device: str = "auto"
    compute_type: str = "auto"
    #: Batches CTranslate2 runs at once (one model copy per worker).
    inter_threads: int = 1
    #: Threads per batch; 0 = CTranslate2's default.
    intra_threads: int = 0
    batch_wait_ms: float = 5.0
    max_batch_tokens: int = 4096
    max_pending_sentences: int = 20_000
    #: Output length bound: ratio * longest source + extra, at most `max_decoding_length`.
    decoding_ratio: float = 1.5
    decoding_extra: int = 10
    max_decoding_length: int = 512
    max_input_length: int = 1024


def pick_device(device: str, compute_type: str) -> tuple[str, str]:
    """`auto` means CUDA float16 with a GPU, CPU int8 without; fall back if unsupported."""
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device not in ("cpu", "cuda"):
        raise InvalidArgument(f"unknown device {device!r}; use auto, cpu or cuda")
    supported = set(ctranslate2.get_supported_compute_types(device))
    if compute_type == "auto":
        preferred = ["float16", "int8_float16", "float32"] if device == "cuda" else ["int8", "int8_float32", "float32"]
        compute_type = next(c for c in preferred if c in supported)
    elif compute_type not in supported:
        raise InvalidArgument(
            f"compute type {compute_type!r} is not supported on {device}; supported: {', '.join(sorted(supported))}")
    return device, compute_type


class TranslationModel:
    def __init__(self, layout: ModelLayout, options: RuntimeOptions | None = None) -> None:
        self.layout = layout
        self.name = layout.name
        self.options = options or RuntimeOptions()
        self.device, self.compute_type = pick_device(self.options.device, self.options.compute_type)
        started = time.perf_counter()
        try:
            self.translator = ctranslate2.Translator(
                str(layout.model_dir),
                device=self.device,
                compute_type=self.compute_type,
                inter_threads=self.options.inter_threads,
                intra_threads=self.options.intra_threads,
            )
        except (RuntimeError, ValueError, OSError, IndexError, KeyError) as exc:
            # CTranslate2 reports unreadable or incomplete model files through these.
            raise ModelCorrupt(f"cannot load translation model {layout.model_dir}: {exc}") from exc
        self.load_seconds = time.perf_counter() - started
        metrics.MODEL_LOAD_SECONDS.labels("translation", self.name).set(self.load_seconds)
        self.batcher = MicroBatcher(
            self._run_batch,
            max_wait_ms=self.options.batch_wait_ms,
            max_batch_tokens=self.options.max_batch_tokens,
            max_pending=self.options.max_pending_sentences,
            max_in_flight=self.options.inter_threads,
            name="translation",
        )
        log.info("translation model loaded", extra={"fields": {
            "model": self.name, "layout": layout.kind, "device": self.device,
            "compute_type": self.compute_type, "load_s": round(self.load_seconds, 2)}})

    @classmethod
    def load(cls, path: str | Path, options: RuntimeOptions | None = None, **layout_kwargs: object) -> TranslationModel:
        return cls(load_layout(path, **layout_kwargs), options)  # type: ignore[arg-type]

    @property
    def source_languages(self) -> frozenset[str]:
        return frozenset(self.layout.source_languages)

    @property
    def target_languages(self) -> frozenset[str]:
        return frozenset(self.layout.target_languages)

    @property
    def multilingual(self) -> bool:
        return self.layout.multilingual

    def _run_batch(self, sources: list[list[str]], prefixes: list[list[str] | None],
                   options: Hashable) -> list[list[str]]:
        """The blocking CTranslate2 call (runs in the batcher's thread)."""
        beam_size = int(options) if isinstance(options, int) and options > 0 else 2  # type: ignore[arg-type]
        longest = max(len(s) for s in sources)
        max_len = min(self.options.max_decoding_length,
                      int(longest * self.options.decoding_ratio) + self.options.decoding_extra)
        results = self.translator.translate_batch(
            sources,
            target_prefix=prefixes if any(p for p in prefixes) else None,
            max_batch_size=self.options.max_batch_tokens,
            batch_type="tokens",
            beam_size=beam_size,
            max_decoding_length=max_len,
            max_input_length=self.options.max_input_length,
            replace_unknowns=True,
        )
        return [r.hypotheses[0] for r in results]

    async def translate_strings(self, texts: Sequence[str], source: str, target: str,
                                beam_size: int = 2) -> list[str]:
        """Translate sentences (already split) from `source` to `target` (model tags)."""
        layout = self.layout
        prefix = layout.target_prefix(target)
        items = [BatchItem(layout.source_tokens(t, source, target), prefix, beam_size) for t in texts]
        outputs = await self.batcher.translate(items)
        return [detokenize(out, prefix) for out in outputs]

    async def aclose(self) -> None:
        await self.batcher.aclose()
        self.translator.unload_model()


def detokenize(tokens: list[str], prefix: list[str] | None) -> str:
    """SentencePiece pieces back to text; pieces copied by `replace_unknowns` kept as is."""
    if prefix and tokens[: len(prefix)] == prefix:
        tokens = tokens[len(prefix):]
    return "".join(tokens).replace("\u2581", " ").strip()
