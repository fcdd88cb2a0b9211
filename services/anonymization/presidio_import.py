"""Import Presidio's analyzer without Hugging Face Transformers.

presidio-analyzer imports `transformers` at import time for its optional transformer
NER engine, which parlons does not use: that pulls in PyTorch (seconds and hundreds of
MB for a text anonymiser) and, on a CPU torch beside a CUDA-built torchaudio, fails
with an OSError Presidio does not catch. Presidio treats an ImportError as "transformers
not installed", so the first import is made with `transformers` masked in sys.modules
(unless it is already imported, in which case Presidio simply reuses it).
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType

_lock = threading.Lock()


def import_presidio_analyzer() -> ModuleType:
    with _lock:
        if "presidio_analyzer" in sys.modules:
            return sys.modules["presidio_analyzer"]
        masked = "transformers" not in sys.modules
        if masked:
            sys.modules["transformers"] = None  # type: ignore[assignment]  # import -> ImportError
        try:
            import presidio_analyzer
        finally:
            if masked and sys.modules.get("transformers", 0) is None:
                del sys.modules["transformers"]
        return presidio_analyzer
