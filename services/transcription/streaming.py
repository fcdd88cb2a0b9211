"""Live transcription: VAD end-pointing, interim hypotheses with LocalAgreement, finals.

A `StreamingSession` takes 16 kHz float32 chunks and returns events:

* The Silero VAD that faster-whisper ships runs incrementally (its LSTM state and
  64-sample context carried across chunks, so probabilities equal a whole-file pass).
  An utterance starts at the first frame above `vad_threshold` and ends after
  `end_of_utterance_ms` below the release threshold, or is cut at `max_utterance_s` (at the
  quietest frame of its last seconds) so that it fits one Whisper window.
* While an utterance grows, the whole utterance is re-decoded at most once per
  `interim_interval_s` of new audio and at most once per `feed` call (greedy, no
  timestamps: cheap). LocalAgreement-2: a word is committed once two successive
  hypotheses agree on it and on everything before it; committed words are never taken
  back or re-worded, so the interim text does not flicker. The committed words are then
  forced as the decoder's prefix, so later hypotheses only extend them (and one early
  word the model changes its mind about cannot block all later commits). `stability`
  is the share of committed words.
* At the end of an utterance it is decoded once more with the caller's options (beam,
  word timestamps, language identification) and a final event carries its segments with
  times in stream time (seconds since the first sample fed). That decode starts early,
  once the speaker has paused `early_final_ms`, while the end-pointer still waits for
  `end_of_utterance_ms`: when the pause does end the utterance, the final is ready.
* Language: given by the client, or identified at each interim until confident
  (`language_lock_probability`); nothing is committed before, so a wrong early guess is
  never forced into the text. Each utterance is identified on its own (a counter may
  switch between French and the visitor's language).
* `MultiChannelStreamingSession`: one session per channel (one microphone per speaker).

Cost stays bounded: audio older than the current utterance (plus a short pad) is
dropped, an utterance is at most 30 s, and a slow consumer that feeds several queued
chunks at once gets one interim decode for them, not one per chunk (natural backpressure:
the servicer should drain its queue into one `feed`). A session is not thread-safe; run
each session's `feed`/`finish` in one worker thread at a time. Many sessions may share
one engine.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
from faster_whisper.vad import get_vad_model
from parlons.services.common.audio import TARGET_RATE, DecodedAudio
from parlons.services.common.errors import Cancelled, InvalidArgument
from parlons.services.transcription.engine import (
    WINDOW_S,
    Segment,
    TranscriptionEngine,
    TranscriptionResult,
    Word,
)
from parlons.services.transcription.options import TranscriptionOptions

VAD_FRAME: Final = 512  # Silero v6 at 16 kHz: 32 ms frames
VAD_CONTEXT: Final = 64
_PROMPT_CHARS: Final = 200
_MAX_TOKENS: Final = 448  # Whisper's decoder context
_INTERIM_MAX_TOKENS: Final = 96
_MIN_INTERIM_LANGUAGE_PROB: Final = 0.5
_ABANDON_SILENCE: Final = 2 * TARGET_RATE  # a short burst followed by this much silence


@dataclass(frozen=True)
class StreamingConfig:
    """End-pointing and interim settings (per session; defaults suit a counter dialogue)."""

    end_of_utterance_ms: int = 500
    max_utterance_s: float = WINDOW_S
    interim_results: bool = True
    interim_interval_s: float = 1.0
    vad_threshold: float = 0.5
    speech_pad_ms: int = 200
    min_speech_ms: int = 250
    interim_beam_size: int = 1
    prompt_with_previous: bool = False
    language_lock_probability: float = 0.7
    early_final_ms: int = 250  # 0 disables the early final decode (see _speculate)
    # Finals decoded with dynamic context (the cut window) rather than exactly as
    # faster-whisper does; interims always are (TranscriptionOptions.preview).
    dynamic_finals: bool = False

    def __post_init__(self) -> None:
        checks = (
            ("end_of_utterance_ms", self.end_of_utterance_ms, 100, 10_000),
            ("max_utterance_s", self.max_utterance_s, 1.0, WINDOW_S),
            ("interim_interval_s", self.interim_interval_s, 0.1, 30.0),
            ("vad_threshold", self.vad_threshold, 0.05, 0.95),
            ("speech_pad_ms", self.speech_pad_ms, 0, 1000),
            ("min_speech_ms", self.min_speech_ms, 0, 5000),
            ("interim_beam_size", self.interim_beam_size, 1, 16),
            ("language_lock_probability", self.language_lock_probability, 0.0, 1.0),
            ("early_final_ms", self.early_final_ms, 0, 10_000),
        )
        for name, value, low, high in checks:
            if not low <= value <= high:
                raise InvalidArgument(f"{name} must be in [{low}, {high}], got {value!r}")


@dataclass(frozen=True)
class StreamEvent:
    """An interim hypothesis (`is_final=False`) or the final result of an utterance.

    Times are stream time in seconds. Interim: `committed_text` only ever grows within
    an utterance, `unstable_text` may change; `text` is both. Final: `segments` with
    words (when asked) in stream time, `stability` 1.0.
    """

    is_final: bool
    utterance_index: int
    start: float
    end: float
    text: str
    committed_text: str = ""
    unstable_text: str = ""
    stability: float = 0.0
    language: str | None = None
    language_probability: float = 0.0
    segments: tuple[Segment, ...] = ()
    words: tuple[Word, ...] = ()
    channel: int = 0


class _StreamingVad:
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


def _norm(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


class StreamingSession:
    """One live stream (see module docstring). Feed 16 kHz mono float32 chunks."""

    def __init__(
        self,
        engine: TranscriptionEngine,
        options: TranscriptionOptions | None = None,
        *,
        sample_rate: int = TARGET_RATE,
        config: StreamingConfig | None = None,
        cancel: threading.Event | None = None,
        channel: int = 0,
        **settings: Any,
    ) -> None:
        """`settings` override fields of `config` (e.g. end_of_utterance_ms=300);
        `channel` is the index stamped on events and segments."""
        if sample_rate != TARGET_RATE:
            raise InvalidArgument(
                f"streaming takes {TARGET_RATE} Hz audio, got {sample_rate} Hz; "
                "decode with PcmStreamDecoder first"
            )
        self.engine = engine
        self.options = options or TranscriptionOptions()
        engine.check_options(self.options)
        self.config = replace(config or StreamingConfig(), **settings)
        self.cancel = cancel
        self.channel = channel
        self._vad = _StreamingVad()
        self._pad = int(self.config.speech_pad_ms * TARGET_RATE / 1000)
        self._end_silence = int(self.config.end_of_utterance_ms * TARGET_RATE / 1000)
        self._early_final = int(self.config.early_final_ms * TARGET_RATE / 1000)
        self._max_utt = int(self.config.max_utterance_s * TARGET_RATE)
        self._min_speech = int(self.config.min_speech_ms * TARGET_RATE / 1000)
        self._release = max(self.config.vad_threshold - 0.15, 0.01)
        # Audio buffer: samples [self._buf_start, self._total) of the stream.
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0
        self._total = 0
        self._vad_pos = 0  # stream sample where the next VAD frame starts
        self._next_utterance_index = 0
        self._segment_ids = 0
        self._previous_text = ""
        self._finished = False
        self._reset_utterance()

    # -- public API ----------------------------------------------------------------

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio fed so far (stream time)."""
        return self._total / TARGET_RATE

    @property
    def buffered_s(self) -> float:
        """Seconds of audio held (the open utterance plus a pad): bounded by design."""
        return self._buf.shape[0] / TARGET_RATE

    @property
    def in_utterance(self) -> bool:
        return self._utt_start is not None

    def feed(self, chunk: np.ndarray, *, allow_interim: bool = True) -> list[StreamEvent]:
        """Add audio; returns the finals of utterances that ended in it, then at most one
        interim for the utterance still open. A caller that has fallen behind real time
        passes `allow_interim=False`: finals are what the listener waits for, and an
        interim decode would only push them further back."""
        if self._finished:
            raise InvalidArgument("audio sent after the end of the stream")
        self._check_cancel()
        samples = np.asarray(chunk, dtype=np.float32)
        if samples.ndim == 2 and samples.shape[0] == 1:
            samples = samples[0]
        if samples.ndim != 1:
            raise ValueError(f"chunks must be mono, got shape {samples.shape}")
        if samples.size == 0:
            return []
        self._buf = np.concatenate([self._buf, samples])
        self._total += samples.shape[0]

        events: list[StreamEvent] = []
        for prob in self._vad.process(samples):
            frame_end = self._vad_pos + VAD_FRAME
            events.extend(self._on_frame(float(prob), self._vad_pos, frame_end))
            self._vad_pos = frame_end
        if self._utt_start is None:
            self._trim(self._vad_pos - self._pad)
            return events
        self._trim(self._utt_start)
        if self._speculate():
            return events  # one decode per feed: the early final replaces the interim
        if allow_interim and self.config.interim_results and self._interim_due():
            event = self._interim()
            if event is not None:
                events.append(event)
        return events

    def finish(self) -> list[StreamEvent]:
        """End of stream: the final of the utterance still open, if any."""
        if self._finished:
            return []
        self._finished = True
        self._check_cancel()
        if self._utt_start is None:
            return []
        # Trailing silence adds nothing; ending at the same cut as an early final lets
        # that decode be reused.
        event = self._final(min(self._total, self._last_speech_end + self._pad))
        return [event] if event is not None else []

    # -- end-pointing ----------------------------------------------------------------

    def _reset_utterance(self) -> None:
        self._utt_start: int | None = None
        self._last_speech_end = 0
        self._speech_samples = 0
        self._frame_probs: list[tuple[int, float]] = []
        self._hypothesis: list[str] = []
        self._committed: list[str] = []
        self._interim_at = 0
        self._interims = 0
        self._utt_id: int | None = None
        self._speculative: tuple[tuple[int, str | None], TranscriptionResult] | None = None
        self._language: str | None = self.options.language
        self._language_probability = 1.0 if self.options.language else 0.0
        # English-only models and a language given by the client need no identification.
        self._language_locked = self.options.language is not None or not self.engine.is_multilingual
        if not self.engine.is_multilingual:
            self._language, self._language_probability = "en", 1.0

    def _on_frame(self, prob: float, start: int, end: int) -> list[StreamEvent]:
        if self._utt_start is None:
            if prob >= self.config.vad_threshold:
                self._utt_start = max(self._buf_start, start - self._pad)
                self._last_speech_end = end
                self._speech_samples = VAD_FRAME
                self._interim_at = self._utt_start
                self._frame_probs = [(end, prob)]
            return []

        self._frame_probs.append((end, prob))
        if prob >= self.config.vad_threshold:
            self._last_speech_end = end
            self._speech_samples += VAD_FRAME
        elif prob < self._release and end - self._last_speech_end >= self._end_silence:
            if self._speech_samples >= self._min_speech or self._interims:
                cut = min(self._last_speech_end + self._pad, end)
                event = self._final(cut)
                self._reset_utterance()
                return [event] if event is not None else []
            if end - self._last_speech_end >= _ABANDON_SILENCE:
                self._reset_utterance()  # a click or a breath, not speech
                return []
            # Too short to stand alone ("Hello?" can be one VAD frame on a phone line):
            # keep it open, so that speech resuming soon joins the same utterance.

        if end - self._utt_start >= self._max_utt:
            cut = self._quietest_cut()
            tail = [(e, p) for e, p in self._frame_probs if e > cut]
            speech_tail = sum(VAD_FRAME for _, p in tail if p >= self.config.vad_threshold)
            event = self._final(cut)
            self._reset_utterance()
            # The speech goes on: the next utterance starts where this one was cut.
            self._utt_start = cut
            self._last_speech_end = end
            self._speech_samples = speech_tail
            self._interim_at = cut
            self._frame_probs = tail
            return [event] if event is not None else []
        return []

    def _quietest_cut(self) -> int:
        """Where to cut an over-long utterance: the least speech-like frame of its last
        5 s (a pause between words), not mid-word at the hard limit."""
        assert self._utt_start is not None
        horizon = self._utt_start + max(self._max_utt - 5 * TARGET_RATE, self._max_utt // 2)
        tail = [(e, p) for e, p in self._frame_probs if e > horizon]
        if not tail:
            return self._utt_start + self._max_utt
        end, _ = min(reversed(tail), key=lambda ep: ep[1])  # latest among the quietest
        return end - VAD_FRAME // 2

    def _trim(self, keep_from: int) -> None:
        """Drop audio before `keep_from` (stream samples): memory stays bounded."""
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start = keep_from

    def _audio(self, start: int, end: int) -> np.ndarray:
        return self._buf[start - self._buf_start : end - self._buf_start]

    # -- decoding ----------------------------------------------------------------------

    def _interim_due(self) -> bool:
        assert self._utt_start is not None
        interval = int(self.config.interim_interval_s * TARGET_RATE)
        return (
            self._total - self._interim_at >= interval
            and self._speech_samples >= self._min_speech
        )

    def _interim(self) -> StreamEvent | None:
        assert self._utt_start is not None
        self._interim_at = self._total
        audio = self._audio(self._utt_start, self._total)
        if not self._language_locked:
            # The first second can sound like anything: identify again at every interim
            # until confident, and commit nothing before (a wrong language would be
            # forced into the prefix).
            detection = self.engine.detect_language(audio, self.options.language_candidates)
            self._language, self._language_probability = detection.language, detection.probability
            self._language_locked = detection.probability >= self.config.language_lock_probability
            if not self._language_locked:
                self._hypothesis, self._committed = [], []
                if detection.probability < _MIN_INTERIM_LANGUAGE_PROB:
                    return None  # no interim at all rather than text in a guessed language
        prompt = self._prompt()
        prefix = " ".join(self._committed) or None
        budget = (
            _MAX_TOKENS
            - 8
            - min(self.engine.count_tokens(prompt or ""), _MAX_TOKENS // 2 - 1)
            - self.engine.count_tokens(prefix or "")
        )
        options = self.options.with_(
            language=self._language if self.engine.is_multilingual else None,
            beam_size=self.config.interim_beam_size,
            best_of=1,
            temperatures=(0.0,),
            without_timestamps=True,
            word_timestamps=False,
            vad_filter=False,
            per_channel=False,
            detect_language_per_segment=False,
            condition_on_previous_text=False,
            preview=True,
            initial_prompt=prompt,
            prefix=prefix,
            # Bounded: a hallucination loop must not cost a 448-token decode per interim.
            max_new_tokens=max(1, min(_INTERIM_MAX_TOKENS, budget)),
        )
        result = self.engine.transcribe(
            DecodedAudio.from_array(audio), options, cancel=self.cancel
        )
        words = result.text.split()
        if not words:
            # Silence, or a hypothesis the guards refused (a loop in the cut window): no
            # interim, and the previous hypothesis stays the one the next is compared to.
            return None
        if self._language_locked:
            self._commit(words)
            self._hypothesis = words
        self._interims += 1
        # When the hypothesis no longer starts with the committed words, the committed
        # text stays as it is and the rest of the hypothesis is shown after it.
        tail = words[len(self._committed) :]
        committed = " ".join(self._committed)
        unstable = " ".join(tail)
        total = len(self._committed) + len(tail)
        return StreamEvent(
            is_final=False,
            utterance_index=self._utterance_index(),
            start=self._utt_start / TARGET_RATE,
            end=self._total / TARGET_RATE,
            text=" ".join(x for x in (committed, unstable) if x),
            committed_text=committed,
            unstable_text=unstable,
            stability=len(self._committed) / total if total else 0.0,
            language=self._language,
            language_probability=self._language_probability,
            channel=self.channel,
        )

    def _agrees(self, words: list[str]) -> bool:
        """Whether `words` starts with the committed words (normalised)."""
        n = len(self._committed)
        return len(words) >= n and all(
            _norm(a) == _norm(b) for a, b in zip(self._committed, words[:n])
        )

    def _commit(self, words: list[str]) -> None:
        """LocalAgreement-2: extend the committed prefix with the words on which this
        hypothesis and the previous one agree, if both still agree with what is already
        committed. The last word of the hypothesis is never committed (it sits at the
        edge of the audio, often cut or punctuated as if the sentence ended there).
        Committed words take this hypothesis's spelling, the one with more context."""
        if not self._hypothesis or not self._agrees(words) or not self._agrees(self._hypothesis):
            return
        n = len(self._committed)
        for previous, current in zip(self._hypothesis[n:], words[n : len(words) - 1]):
            if _norm(previous) != _norm(current):
                break
            self._committed.append(current)

    def _decode_final(self, end: int) -> TranscriptionResult:
        """The full-quality decode of the open utterance up to `end` (caller's options)."""
        assert self._utt_start is not None
        options = self.options.with_(
            # Unless the client gave it, the final identifies the language on the whole
            # utterance: the identification reads the same encoder output the decode then
            # uses, so it costs one decoder step, and the first second that locked the
            # interims' language is often too short to tell (espeak Arabic looks French).
            language=self.options.language,
            full_window=not self.config.dynamic_finals,
            vad_filter=False,
            per_channel=False,
            detect_language_per_segment=False,
            initial_prompt=self._prompt(),
        )
        audio = self._audio(self._utt_start, end)
        return self.engine.transcribe(DecodedAudio.from_array(audio), options, cancel=self.cancel)

    def _speculate(self) -> bool:
        """Decode the final early, during the pause that may end the utterance.

        When the speaker has been silent for `early_final_ms` (< end_of_utterance_ms),
        the audio the final will cover is already known: [start, last speech + pad].
        Decoding it now, while the end-pointer still waits, takes the decode off the
        latency between the end of speech and the final. If speech resumes the result
        is dropped (one wasted decode per short pause). Returns whether it decoded."""
        if self._utt_start is None or self.config.early_final_ms <= 0:
            return False
        if self._speech_samples < self._min_speech and self._interims == 0:
            return False
        silence = self._vad_pos - self._last_speech_end
        cut = self._last_speech_end + self._pad
        key = (self._last_speech_end, self._language if self._language_locked else None)
        if silence < self._early_final or cut > self._total:
            return False
        if self._speculative is not None and self._speculative[0] == key:
            return False
        self._speculative = (key, self._decode_final(cut))
        return True

    def _final(self, end: int) -> StreamEvent | None:
        assert self._utt_start is not None
        start = self._utt_start
        if self._speech_samples < self._min_speech and self._interims == 0:
            return None  # a click or a breath, not speech
        key = (self._last_speech_end, self._language if self._language_locked else None)
        if (
            self._speculative is not None
            and self._speculative[0] == key
            and end == self._last_speech_end + self._pad
        ):
            result = self._speculative[1]
        else:
            result = self._decode_final(end)
        self._speculative = None
        offset = start / TARGET_RATE
        segments = []
        for segment in result.segments:
            self._segment_ids += 1
            segments.append(_shift(segment, offset, self._segment_ids, self.channel))
        text = result.text
        if not text and self._interims == 0:
            return None
        if text:
            self._previous_text = text
        return StreamEvent(
            is_final=True,
            utterance_index=self._utterance_index(),
            start=offset,
            end=end / TARGET_RATE,
            text=text,
            committed_text=text,
            stability=1.0,
            language=result.language,
            language_probability=result.language_probability,
            segments=tuple(segments),
            words=tuple(w for seg in segments for w in seg.words),
            channel=self.channel,
        )

    def _utterance_index(self) -> int:
        """Ids count the utterances that produced events: 0, 1, 2, ..."""
        if self._utt_id is None:
            self._utt_id = self._next_utterance_index
            self._next_utterance_index += 1
        return self._utt_id

    def _prompt(self) -> str | None:
        parts = [self.options.initial_prompt or ""]
        if self.config.prompt_with_previous and self._previous_text:
            parts.append(self._previous_text[-_PROMPT_CHARS:])
        prompt = " ".join(p for p in parts if p).strip()
        return prompt or None

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("the stream was cancelled")


def _shift(segment: Segment, offset: float, new_id: int, channel: int) -> Segment:
    return replace(
        segment,
        id=new_id,
        channel=channel,
        start=round(segment.start + offset, 3),
        end=round(segment.end + offset, 3),
        words=tuple(
            Word(round(w.start + offset, 3), round(w.end + offset, 3), w.word, w.probability)
            for w in segment.words
        ),
    )


class MultiChannelStreamingSession:
    """Live per-channel transcription (one microphone per speaker at a counter).

    One `StreamingSession` per channel over the same engine; events carry their channel
    index, and `utterance_index` counts per channel. Costs one decode per channel.
    """

    def __init__(
        self,
        engine: TranscriptionEngine,
        options: TranscriptionOptions | None = None,
        *,
        channels: int,
        **kwargs: Any,
    ) -> None:
        if channels < 1:
            raise InvalidArgument(f"channels must be at least 1, got {channels}")
        self.sessions = [
            StreamingSession(engine, options, channel=i, **kwargs) for i in range(channels)
        ]

    @property
    def audio_seconds(self) -> float:
        return self.sessions[0].audio_seconds

    def feed(self, chunk: np.ndarray) -> list[StreamEvent]:
        """`chunk` is (channels, n) float32 at 16 kHz."""
        samples = np.asarray(chunk, dtype=np.float32)
        if samples.ndim != 2 or samples.shape[0] != len(self.sessions):
            raise ValueError(
                f"chunks must be shaped ({len(self.sessions)}, n), got {samples.shape}"
            )
        events: list[StreamEvent] = []
        for channel, session in enumerate(self.sessions):
            events.extend(session.feed(samples[channel]))
        return events

    def finish(self) -> list[StreamEvent]:
        return [e for session in self.sessions for e in session.finish()]
