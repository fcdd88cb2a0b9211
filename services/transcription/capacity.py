"""How many live streams one transcription replica admits by default.

A stream costs decodes all day long, whatever it says, so a replica must refuse the
stream it cannot serve at conversational speed rather than let every desk fall behind
(RESOURCE_EXHAUSTED with RetryInfo: the gateway opens it on another replica). The
numbers below are desks per replica at p95 final latency <= 2.5 s with live batching,
from `benchmarks/bench_capacity.py` (docs/benchmarks.md): on a CPU per core (two cores
measured, scaled by the cores this process may use), on a GPU per device. Models not
measured take the figure of the next larger measured one (a safe side).
`[transcription] max_streams` overrides it.
"""

from __future__ import annotations

import os
from typing import Final

# Desks per CPU core (the measurement machine: 2 cores). `base`, 2026-12-07: French
# read speech with the language given held 4 desks at p95 1.71 s, the English phone call
# with automatic language 3 (p95 1.8-2.2 s, since the first window is encoded once); 1.5
# per core (3 on 2 cores) holds both. `tiny` costs about
# half of `base`; the larger models are scaled by their decoder and encoder costs, not
# measured live here.
_CPU_PER_CORE: Final = {
    "tiny": 2.0,
    "base": 1.5,
    "small": 0.5,
    "medium": 0.25,
    "large": 0.1,
}
# Desks per GPU (not measured on a GPU yet: conservative figures from the encoder and
# decoder costs relative to base; docs/benchmarks.md says so).
_GPU: Final = {
    "tiny": 200,
    "base": 200,
    "small": 120,
    "medium": 60,
    "large-v3-turbo": 100,
    "turbo": 100,
    "large": 40,
}


def _family(model: str, table: dict[str, float] | dict[str, int]) -> str:
    """The table's key for a model name (`tiny.en` -> tiny, `large-v3` -> large)."""
    name = os.path.basename(model.rstrip("/")).lower()
    for key in sorted(table, key=len, reverse=True):
        if key in name:
            return key
    return "large"  # unknown: assume the most expensive


def default_live_capacity(model: str, device: str, cores: int | None = None) -> int:
    """Live streams a replica admits by default for `model` on `device` (>= 1)."""
    if device == "cuda":
        return int(_GPU[_family(model, _GPU)])
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, int(_CPU_PER_CORE[_family(model, _CPU_PER_CORE)] * cores))
