"""Shared pieces of the gateway tests: servers, tenants, audio, speaker scoring."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator, Sequence

import jiwer
import numpy as np
from scipy.optimize import linear_sum_assignment

from parlons.serve import available_services, build_modules
from parlons.services.common.audio import decode_audio
from parlons.services.common.config import ParlonsConfig
from parlons.services.common.server import BackgroundServer
from parlons.services.gateway.servicer import GatewayModule
from parlons.services.gateway.tenants import TenantStore
from speech import normalise, stm_turns
from translation_models import build_bilingual_model


def diarization_available() -> bool:
    return "diarization" in available_services()


def translation_models(root: Path) -> list[str]:
    """fr->en and en->fr test models (random weights: structure, not meaning)."""
    return [
        str(build_bilingual_model(root / "fr-en", "fr", "en", seed=0)),
        str(build_bilingual_model(root / "en-fr", "en", "fr", seed=5)),
    ]


@dataclass
class Tenants:
    path: Path
    keys: dict[str, str]

    def metadata(self, tenant: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.keys[tenant]}"),)


def make_tenants(path: Path) -> Tenants:
    """a: unlimited, glossary "accueil"; b: unlimited; small: tight quotas."""
    store = TenantStore(path)
    keys = {
        "a": store.create_key("a")[0],
        "b": store.create_key("b")[0],
        "small": store.create_key(
            "small",
            quotas={"audio_seconds_per_minute": 5, "characters_per_minute": 40, "concurrent_streams": 1},
        )[0],
    }
    path.write_text(
        path.read_text()
        + '\n[tenants.a.glossaries.accueil]\nentries = [{ source = "CAF", do_not_translate = true }]\n'
    )
    return Tenants(path, keys)


def gateway_config(
    tenants: Tenants | None,
    models_dir: Path | None,
    *,
    transcription_model: str = "tiny.en",
) -> ParlonsConfig:
    config = ParlonsConfig()
    config.server.port = 0
    config.server.grace_s = 1.0
    config.transcription.model = transcription_model
    config.transcription.max_concurrent = 1
    config.transcription.max_queued = 16
    config.transcription.max_streams = 8
    if models_dir is not None:
        config.translation.models = translation_models(models_dir)
    config.gateway.rest_port = 0
    if tenants is not None:
        config.gateway.tenants_path = str(tenants.path)
        config.gateway.tenants_reload_s = 0.1
    return config


def start_embedded(config: ParlonsConfig, services: Sequence[str]) -> BackgroundServer:
    return BackgroundServer(config.server, build_modules(config, [*services, "gateway"])).start(timeout_s=900)


def gateway_module(server: BackgroundServer) -> GatewayModule:
    """The gateway of a server started by `start_embedded`: its one public module."""
    module = server.running.modules[0]
    assert isinstance(module, GatewayModule), module
    return module


def pcm16(samples: np.ndarray) -> bytes:
    """Interleaved little-endian int16 from float samples shaped (n,) or (channels, n)."""
    data = np.atleast_2d(samples)
    return (np.clip(data.T, -1, 1) * 32767).astype("<i2").tobytes()


def load_mono(path: Path) -> np.ndarray:
    return decode_audio(path.read_bytes()).mono()


def realtime_chunks(data: bytes, bytes_per_second: int, chunk_ms: int = 100) -> Iterator[bytes]:
    """Chunks sent at the pace of the audio (a live microphone)."""
    size = bytes_per_second * chunk_ms // 1000
    started = time.monotonic()
    for i, offset in enumerate(range(0, len(data), size)):
        delay = started + i * chunk_ms / 1000 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield data[offset : offset + size]


@dataclass
class Attribution:
    right: int  # reference words aligned to a hypothesis word of the mapped speaker
    aligned: int  # reference words aligned to a hypothesis word (same or substituted)
    reference: int  # all reference words
    wer: float

    @property
    def of_reference(self) -> float:
        """Share of all reference words attributed right (deleted words count as wrong)."""
        return self.right / self.reference

    @property
    def of_aligned(self) -> float:
        """Share of the reference words the transcript has, attributed right."""
        return self.right / self.aligned if self.aligned else 0.0


def speaker_attribution(stm: Path, hypothesis: Sequence[tuple[str, str]]) -> Attribution:
    """Speaker attribution after the best one-to-one mapping of hypothesis speakers to
    reference speakers, and the WER.

    Reference and hypothesis words are aligned by edit distance (jiwer); a reference word
    is right when it is aligned to a hypothesis word (same or substituted) whose speaker
    maps to the reference word's speaker.
    """
    ref_words: list[tuple[str, str]] = []
    for speaker, _, _, text in sorted(stm_turns(stm), key=lambda t: t[1]):
        ref_words += [(w, speaker) for w in normalise(text).split()]
    hyp_words: list[tuple[str, str]] = []
    for speaker, text in hypothesis:
        hyp_words += [(w, speaker) for w in normalise(text).split()]
    output = jiwer.process_words(" ".join(w for w, _ in ref_words), " ".join(w for w, _ in hyp_words))
    pairs: list[tuple[str, str]] = []  # (reference speaker, hypothesis speaker)
    for chunk in output.alignments[0]:
        if chunk.type in ("equal", "substitute"):
            for k in range(chunk.ref_end_idx - chunk.ref_start_idx):
                pairs.append((ref_words[chunk.ref_start_idx + k][1], hyp_words[chunk.hyp_start_idx + k][1]))
    ref_speakers = sorted({s for _, s in ref_words})
    hyp_speakers = sorted({s for _, s in hyp_words})
    counts = np.zeros((len(hyp_speakers), len(ref_speakers)))
    for r, h in pairs:
        counts[hyp_speakers.index(h), ref_speakers.index(r)] += 1
    rows, cols = linear_sum_assignment(counts, maximize=True)  # best one-to-one mapping
    return Attribution(int(counts[rows, cols].sum()), len(pairs), len(ref_words), float(output.wer))
