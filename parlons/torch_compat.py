"""Import pyannote.audio on a CPU-only PyTorch, whatever torchaudio/torchcodec wheel is installed.

Why this module exists: pyannote.audio 4 imports `torchaudio` at import time and
`torchcodec` when it can. The Linux wheels of both on the package index are CUDA builds
whose native libraries link `libc10_cuda.so`/`libtorch_cuda.so` (and a torch version
other than ours). With the CPU build of torch those libraries cannot load, and
`import torchaudio` raises OSError before any Python code of pyannote runs.

What pyannote needs from torchaudio on our path is pure Python (`compliance.kaldi`
filterbanks, `functional.resample`); torchaudio's native extension only serves features
we never call (forced alignment, RNN-T loss, codecs). torchaudio already supports running
without its extension ("library file not found" is its supported, documented case), so
when the native library is present but cannot load, we import torchaudio in that mode:
its loader is told the library is absent. torchcodec failing is handled by pyannote
itself (it warns and disables file decoding); we never decode through it: audio is
decoded by `parlons.services.common.audio` (PyAV) and handed to pyannote as a waveform.

Call `prepare_pyannote_import()` before the first `import pyannote.audio` or
`import speechbrain` (which imports torchaudio as well); our modules that use either do.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

_lock = threading.Lock()
_state: str | None = None

#: torchaudio imported with its native library ("native") or as pure Python ("python-only").
TORCHAUDIO_NATIVE: Final = "native"
TORCHAUDIO_PYTHON_ONLY: Final = "python-only"


def _drop_partial_torchaudio() -> None:
    """Forget the half-imported torchaudio modules a failed import leaves behind."""
    for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
        del sys.modules[name]


def _import_torchaudio_without_extension() -> None:
    """Import torchaudio with its extension loader reporting "library not found"."""
    spec = importlib.util.find_spec("torchaudio")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("torchaudio is not installed (pyannote.audio requires it)")
    utils_path = Path(list(spec.submodule_search_locations)[0]) / "_extension" / "utils.py"
    utils_spec = importlib.util.spec_from_file_location("torchaudio._extension.utils", utils_path)
    if utils_spec is None or utils_spec.loader is None:
        raise ImportError(f"cannot load {utils_path}")
    utils = importlib.util.module_from_spec(utils_spec)
    utils_spec.loader.exec_module(utils)
    if not hasattr(utils, "_load_lib"):
        raise ImportError(
            "this torchaudio version has no _extension.utils._load_lib; install a torchaudio "
            "whose native library matches the installed torch, see docs/diarization.md"
        )

    def _no_native_library(lib: str) -> bool:
        return False

    utils._load_lib = _no_native_library  # type: ignore[attr-defined]
    # torchaudio/_extension/__init__.py does `from .utils import _load_lib`: the import
    # system finds this already-loaded module in sys.modules and uses it.
    sys.modules["torchaudio._extension.utils"] = utils
    import torchaudio  # noqa: F401


def prepare_pyannote_import() -> str:
    """Make `import pyannote.audio` work on this machine; returns how torchaudio loaded.

    Idempotent and thread-safe. Also turns off pyannote's usage telemetry (which would
    try to reach the network) unless the operator set PYANNOTE_METRICS_ENABLED.
    """
    global _state
    with _lock:
        if _state is not None:
            return _state
        os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
        # We hand pyannote waveforms; its torchcodec file decoding is never used.
        warnings.filterwarnings("ignore", message=r"\s*torchcodec is not installed correctly")
        try:
            import torchaudio  # noqa: F401

            _state = TORCHAUDIO_NATIVE
        except OSError as exc:
            log.info(
                "torchaudio native library unusable with this torch (%s); "
                "using torchaudio's pure-Python parts only",
                exc.__cause__ or exc,
            )
            _drop_partial_torchaudio()
            _import_torchaudio_without_extension()
            _state = TORCHAUDIO_PYTHON_ONLY
        return _state
