"""The audio format every speech model here reads, in one place for services and clients.

Whisper, pyannote and the ECAPA voice prints all read 16 kHz mono float samples: the
services decode everything to it, and clients that capture or cut audio themselves (the
desk, the microphone source, the gateway's live lanes) send it so no one resamples twice.
"""

from __future__ import annotations

from typing import Final

#: Samples per second of the audio the models read.
SAMPLE_RATE: Final = 16000

__all__ = ["SAMPLE_RATE"]
