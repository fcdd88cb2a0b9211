"""End-pointing of a live stream: where utterances start and end. No model decode here.

The Silero VAD that faster-whisper ships runs incrementally (its LSTM state and
64-sample context carried across chunks, so probabilities equal a whole-file pass). An
utterance starts at the first frame above `vad_threshold` (less a pad of
`speech_pad_ms`) and ends after `end_of_utterance_ms` below the release threshold
(`vad_threshold - 0.15`), or is cut at `max_utterance_s`, at the quietest frame of its
last seconds, so that it fits one Whisper window; the speech then goes on in the next
utterance. A burst shorter than `min_speech_ms` stays open (a one-frame "Hello?" on a
phone line joins the speech that follows) and is dropped after 2 s of silence.

Everything is counted in stream samples at 16 kHz; the session keeps the audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
from faster_whisper.vad import get_vad_model
from parlons.services.common.audio import TARGET_RATE

if TYPE_CHECKING:
    from parlons.services.transcription.streaming import StreamingConfig

VAD_FRAME: Final = 512  # Silero v6 at 16 kHz: 32 ms frames
VAD_CONTEXT: Final = 64
_ABANDON_SILENCE: Final = 2 * TARGET_RATE  # a short burst followed by this much silence
_CUT_HORIZON: Final = 5 * TARGET_RATE  # an over-long utterance is cut in its last 5 s


class StreamingVad:
    """Silero VAD over a stream: one speech probability per 512-sample frame."""

    def __init__(self) -> None:
        self._model = get_vad_model()
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(VAD_CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, samples: np.ndarray) -> np.ndarray:
        data = np.concatenate([self._pending, samples])
        n_frames = data.shape[0] // VAD_FRAME
        self._pending = data[n_frames * VAD_FRAME :]
        if n_frames == 0:
            return np.zeros(0, dtype=np.float32)
        frames = data[: n_frames * VAD_FRAME].reshape(n_frames, VAD_FRAME)
        contexts = np.vstack([self._context[np.newaxis, :], frames[:-1, -VAD_CONTEXT:]])
        self._context = frames[-1, -VAD_CONTEXT:].copy()
        rows = np.concatenate([contexts, frames], axis=1)
        probs, self._h, self._c = self._model.session.run(
            None, {"input": rows, "h": self._h, "c": self._c}
        )
        return np.asarray(probs, dtype=np.float32).reshape(-1)


@dataclass(frozen=True)
class Utterance:
    """An utterance that ended: stream samples [start, end); its speech ended at
    `last_speech_end`; `by_length` when cut at the maximum length (speech goes on)."""

    start: int
    end: int
    last_speech_end: int
    speech_samples: int
    by_length: bool = False


class EndPointer:
    """Frame probabilities in, utterance boundaries out (see module docstring)."""

    def __init__(self, config: StreamingConfig, vad: StreamingVad | None = None) -> None:
        self.config = config
        self._vad = vad or StreamingVad()
        self.pad = int(config.speech_pad_ms * TARGET_RATE / 1000)
        self._end_silence = int(config.end_of_utterance_ms * TARGET_RATE / 1000)
        self._max_utt = int(config.max_utterance_s * TARGET_RATE)
        self.min_speech = int(config.min_speech_ms * TARGET_RATE / 1000)
        self._threshold = config.vad_threshold
        self._release = max(config.vad_threshold - 0.15, 0.01)
        self.position = 0  # stream sample where the next VAD frame starts
        # Where the last utterance ended: the next never starts before (a start pad
        # longer than half the end silence would reach back into it).
        self._floor = 0
        self.reset()

    def reset(self) -> None:
        """No utterance open (after a final, or when a burst is dropped)."""
        self.start: int | None = None
        self.last_speech_end = 0
        self.speech_samples = 0
        self._frame_probs: list[tuple[int, float]] = []

    @property
    def open(self) -> bool:
        return self.start is not None

    @property
    def silence_samples(self) -> int:
        """Samples of the open utterance since its last speech frame."""
        return self.position - self.last_speech_end

    def push(self, samples: np.ndarray, *, keep_short: bool = False) -> list[Utterance]:
        """Run the VAD over new samples; the utterances that ended in them. `keep_short`:
        an utterance whose speech is under `min_speech_ms` still ends as one (its
        interims were shown, so it needs a final)."""
        ended: list[Utterance] = []
        for prob in self._vad.process(samples):
            frame_end = self.position + VAD_FRAME
            utterance = self._on_frame(float(prob), self.position, frame_end, keep_short)
            self.position = frame_end
            if utterance is not None:
                ended.append(utterance)
                keep_short = False
        return ended

    def end_now(self) -> Utterance:
        """End the open utterance at its last speech (+ pad) before the pause has lasted
        `end_of_utterance_ms`: the session knows it ended (a finished sentence)."""
        assert self.start is not None
        utterance = Utterance(self.start, min(self.last_speech_end + self.pad, self.position),
                              self.last_speech_end, self.speech_samples)
        self._floor = utterance.end
        self.reset()
        return utterance

    def _on_frame(self, prob: float, start: int, end: int, keep_short: bool) -> Utterance | None:
        if self.start is None:
            if prob >= self._threshold:
                self.start = max(self._floor, start - self.pad)
                self.last_speech_end = end
                self.speech_samples = VAD_FRAME
                self._frame_probs = [(end, prob)]
            return None
        self._frame_probs.append((end, prob))
        if prob >= self._threshold:
            self.last_speech_end = end
            self.speech_samples += VAD_FRAME
        elif prob < self._release and end - self.last_speech_end >= self._end_silence:
            if self.speech_samples >= self.min_speech or keep_short:
                utterance = Utterance(self.start, min(self.last_speech_end + self.pad, end),
                                      self.last_speech_end, self.speech_samples)
                self._floor = utterance.end
                self.reset()
                return utterance
            if end - self.last_speech_end >= _ABANDON_SILENCE:
                self.reset()  # a click or a breath, not speech
            return None
        if end - self.start >= self._max_utt:
            return self._cut(end)
        return None

    def _cut(self, end: int) -> Utterance:
        """End an over-long utterance at its quietest recent frame; the next starts there."""
        assert self.start is not None
        cut = self._quietest_cut()
        tail = [(e, p) for e, p in self._frame_probs if e > cut]
        utterance = Utterance(self.start, cut, self.last_speech_end, self.speech_samples, by_length=True)
        self._floor = cut
        self.start = cut
        self.last_speech_end = end
        self.speech_samples = sum(VAD_FRAME for _, p in tail if p >= self._threshold)
        self._frame_probs = tail
        return utterance

    def _quietest_cut(self) -> int:
        """The least speech-like frame of the last 5 s (a pause between words), not
        mid-word at the hard limit."""
        assert self.start is not None
        horizon = self.start + max(self._max_utt - _CUT_HORIZON, self._max_utt // 2)
        tail = [(e, p) for e, p in self._frame_probs if e > horizon]
        if not tail:
            return self.start + self._max_utt
        end, _ = min(reversed(tail), key=lambda ep: ep[1])  # latest among the quietest
        return end - VAD_FRAME // 2
