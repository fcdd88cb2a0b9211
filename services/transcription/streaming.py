"""Live transcription: a session ties the end-pointer, the agreement buffer and the model.

A `StreamingSession` takes 16 kHz float32 chunks and returns events. Its pieces:

* `endpointer.EndPointer` (no model): Silero VAD run incrementally, where utterances
  start, end after `end_of_utterance_ms` of pause, or are cut at `max_utterance_s`.
* `agreement.LocalAgreement` (no model): which words of the interim hypotheses are
  committed (LocalAgreement-2; committed words never change).
* This module: the decodes. While an utterance grows, it is re-decoded at most once per
  `interim_interval_s` of new audio and at most once per `feed` call (greedy, no
  timestamps: cheap); the committed words are forced as the decoder's prefix, so later
  hypotheses only extend them. `stability` is the share of committed words. At the end
  of an utterance it is decoded once more with the caller's options (beam, word
  timestamps, language identification) and a final event carries its segments with
  times in stream time. That decode starts early, once the speaker has paused
  `early_final_ms`, while the end-pointer still waits for `end_of_utterance_ms`: when the
  pause does end the utterance, the final is ready.
* Language: given by the client, or identified at each interim until confident
  (`language_lock_probability`); nothing is committed before, so a wrong early guess is
  never forced into the text. Each utterance is identified on its own (a counter may
  switch between French and the visitor's language).
* Model calls: through the engine the session is given. On a replica with live batching
  that engine is a view (`TranscriptionEngine.through`) whose calls go to the shared
  `scheduler.LiveDecodeScheduler`, batched with every other session's; each decode says
  what it is for (`decode_as`): finals first, then identification, then interims, which
  the scheduler may drop when they waited too long and which the session skips while
  the scheduler is congested.
* `MultiChannelStreamingSession`: one session per channel (one microphone per speaker).

Cost stays bounded: audio older than the current utterance (plus a short pad) is
dropped, an utterance is at most 30 s, and a slow consumer that feeds several queued
chunks at once gets one interim decode for them, not one per chunk (natural backpressure:
the servicer drains its queue into one `feed`). A session is not thread-safe; run each
session's `feed`/`finish` in one worker thread at a time. Many sessions share one engine.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
from parlons.services.common.audio import TARGET_RATE, DecodedAudio
from parlons.errors import Cancelled, InvalidArgument
from parlons.services.transcription.engine import TranscriptionEngine
from parlons.services.transcription.results import Segment, TranscriptionResult, Word
from parlons.services.transcription.window import WINDOW_S
from parlons.services.transcription.agreement import LocalAgreement
from parlons.services.transcription.endpointer import EndPointer, Utterance
from parlons.services.transcription.options import TranscriptionOptions
from parlons.services.transcription.scheduler import INTERIM_DEADLINE_S, DecodeKind, DecodeSkipped, decode_as

_PROMPT_CHARS: Final = 200
_MAX_TOKENS: Final = 448  # Whisper's decoder context
_INTERIM_MAX_TOKENS: Final = 96
_MIN_INTERIM_LANGUAGE_PROB: Final = 0.5
# What ends a sentence in the scripts Whisper writes (Latin, Arabic, CJK, Devanagari...);
# not "..." or "…", which Whisper writes where speech trails off mid-sentence.
_SENTENCE_END: Final = re.compile(r"(?:(?<!\.)\.|[?!。？！؟।])['\"”»)\]]*\s*$")


@dataclass(frozen=True)
class StreamingConfig:
    """End-pointing and interim settings (per session; defaults suit a counter dialogue)."""

    end_of_utterance_ms: int = 500
    # An utterance is cut here (at its quietest recent frame): a counter turn rarely
    # lasts longer, and a shorter window decodes faster.
    max_utterance_s: float = 12.0
    interim_results: bool = True
    interim_interval_s: float = 1.0
    vad_threshold: float = 0.5
    speech_pad_ms: int = 200
    min_speech_ms: int = 250
    interim_beam_size: int = 1
    prompt_with_previous: bool = False
    language_lock_probability: float = 0.7
    # The early final decode starts after this pause (0: never; see _speculate), or
    # after `early_final_busy_ms` while the live scheduler is congested: a decode started
    # at a pause the speaker then goes on after is wasted, and under load the CPU is
    # better spent on other desks' finals. Measured in docs/benchmarks.md ("Capacity").
    early_final_ms: int = 100
    early_final_busy_ms: int = 250
    # Semantic end-pointing: once the pause has lasted this long and the early final's
    # text ends a sentence (. ? ! ...), the final is sent without waiting for
    # end_of_utterance_ms. 0: off.
    sentence_end_ms: int = 0
    # No interim once the speaker has paused this long: the early final is near, and an
    # interim decode then would hold the model when the final needs it. 0: off.
    interim_pause_ms: int = 0
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
            ("early_final_busy_ms", self.early_final_busy_ms, 0, 10_000),
            ("sentence_end_ms", self.sentence_end_ms, 0, 10_000),
            ("interim_pause_ms", self.interim_pause_ms, 0, 10_000),
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
        self.endpointer = EndPointer(self.config)
        self.agreement = LocalAgreement()
        self._early_final = int(self.config.early_final_ms * TARGET_RATE / 1000)
        self._early_final_busy = int(max(self.config.early_final_busy_ms, self.config.early_final_ms)
                                     * TARGET_RATE / 1000)
        # Audio buffer: samples [self._buf_start, self._total) of the stream.
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0
        self._total = 0
        self._next_utterance_index = 0
        self._segment_ids = 0
        self._previous_text = ""
        self._finished = False
        # Per utterance (reset at each final):
        self._interim_at: int | None = None
        self._interims = 0
        self._utt_id: int | None = None
        self._speculative: tuple[tuple[int, str | None], TranscriptionResult] | None = None
        self._language: str | None = None
        self._language_probability = 0.0
        self._language_locked = False
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
        return self.endpointer.open

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
        for utterance in self.endpointer.push(samples, keep_short=self._interims > 0):
            events.extend(self._close(utterance))
        start = self.endpointer.start
        if start is None:
            self._trim(self.endpointer.position - self.endpointer.pad)
            return events
        self._trim(start)
        if self._interim_at is None:
            self._interim_at = start
        if self._speculate():
            # One decode per feed: the early final replaces the interim.
            return events + self._sentence_end()
        ended = self._sentence_end()
        if ended:
            return events + ended
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
        ep = self.endpointer
        if ep.start is None:
            return []
        # Trailing silence adds nothing; ending at the same cut as an early final lets
        # that decode be reused.
        utterance = Utterance(ep.start, min(self._total, ep.last_speech_end + ep.pad),
                              ep.last_speech_end, ep.speech_samples)
        event = self._final(utterance)
        return [event] if event is not None else []

    # -- utterance state ---------------------------------------------------------------

    def _reset_utterance(self) -> None:
        self.agreement.clear()
        self._interim_at = None
        self._interims = 0
        self._utt_id = None
        self._speculative = None
        self._language = self.options.language
        self._language_probability = 1.0 if self.options.language else 0.0
        # English-only models and a language given by the client need no identification.
        self._language_locked = self.options.language is not None or not self.engine.is_multilingual
        if not self.engine.is_multilingual:
            self._language, self._language_probability = "en", 1.0

    def _trim(self, keep_from: int) -> None:
        """Drop audio before `keep_from` (stream samples): memory stays bounded."""
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start = keep_from

    def _audio(self, start: int, end: int) -> np.ndarray:
        return self._buf[start - self._buf_start : end - self._buf_start]

    # -- interims ----------------------------------------------------------------------

    def _interim_due(self) -> bool:
        interval = int(self.config.interim_interval_s * TARGET_RATE)
        assert self._interim_at is not None
        if self._total - self._interim_at < interval:
            return False
        if self.endpointer.speech_samples < self.endpointer.min_speech:
            return False
        pause_ms = self.config.interim_pause_ms
        if pause_ms and self.endpointer.silence_samples * 1000 >= pause_ms * TARGET_RATE:
            return False
        scheduler = self.engine.scheduler
        # Under load interims make room: the finals of every session come first.
        return scheduler is None or not scheduler.congested()

    def _interim(self) -> StreamEvent | None:
        start = self.endpointer.start
        assert start is not None
        self._interim_at = self._total
        audio = self._audio(start, self._total)
        try:
            if not self._language_locked and not self._identify(audio):
                return None
            with decode_as(DecodeKind.INTERIM, cancel=self.cancel):
                result = self.engine.transcribe(
                    DecodedAudio.from_array(audio), self._interim_options(), cancel=self.cancel
                )
        except DecodeSkipped:
            return None  # the scheduler was busy with finals; the next interim comes
        words = result.text.split()
        if not words:
            # Silence, or a hypothesis the guards refused (a loop in the cut window): no
            # interim, and the previous hypothesis stays the one the next is compared to.
            return None
        if self._language_locked:
            self.agreement.insert(words)
        self._interims += 1
        committed = self.agreement.committed_text
        unstable = " ".join(self.agreement.unstable(words))
        total = len(self.agreement.committed) + len(self.agreement.unstable(words))
        return StreamEvent(
            is_final=False,
            utterance_index=self._utterance_index(),
            start=start / TARGET_RATE,
            end=self._total / TARGET_RATE,
            text=" ".join(x for x in (committed, unstable) if x),
            committed_text=committed,
            unstable_text=unstable,
            stability=len(self.agreement.committed) / total if total else 0.0,
            language=self._language,
            language_probability=self._language_probability,
            channel=self.channel,
        )

    def _identify(self, audio: np.ndarray) -> bool:
        """Identify the utterance's language again (the first second can sound like
        anything) until confident; commit nothing before (a wrong language would be
        forced into the prefix). Whether an interim may be shown."""
        with decode_as(DecodeKind.LANGUAGE, max_wait_s=INTERIM_DEADLINE_S, cancel=self.cancel):
            detection = self.engine.detect_language(audio, self.options.model_candidates)
        self._language, self._language_probability = detection.language, detection.probability
        self._language_locked = detection.probability >= self.config.language_lock_probability
        if self._language_locked:
            return True
        self.agreement.clear()
        # No interim at all rather than text in a guessed language.
        return detection.probability >= _MIN_INTERIM_LANGUAGE_PROB

    def _interim_options(self) -> TranscriptionOptions:
        prompt = self._prompt()
        prefix = self.agreement.committed_text or None
        budget = (
            _MAX_TOKENS
            - 8
            - min(self.engine.count_tokens(prompt or ""), _MAX_TOKENS // 2 - 1)
            - self.engine.count_tokens(prefix or "")
        )
        return self.options.with_(
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

    # -- finals ------------------------------------------------------------------------

    def _decode_final(self, start: int, end: int) -> TranscriptionResult:
        """The full-quality decode of the open utterance up to `end` (caller's options)."""
        options = self.options.with_(
            # Unless the client gave it, the final identifies the language on the whole
            # utterance: the identification reads the same encoder output the decode then
            # uses (first_window.py), so it costs one decoder step, and the first second that locked the
            # interims' language is often too short to tell (espeak Arabic looks French).
            language=self.options.language,
            full_window=not self.config.dynamic_finals,
            vad_filter=False,
            per_channel=False,
            detect_language_per_segment=False,
            initial_prompt=self._prompt(),
        )
        audio = self._audio(start, end)
        with decode_as(DecodeKind.FINAL, cancel=self.cancel):
            return self.engine.transcribe(DecodedAudio.from_array(audio), options, cancel=self.cancel)

    def _speculation_key(self) -> tuple[int, str | None]:
        return (self.endpointer.last_speech_end, self._language if self._language_locked else None)

    def _speculate(self) -> bool:
        """Decode the final early, during the pause that may end the utterance.

        When the speaker has been silent for `early_final_ms` (< end_of_utterance_ms),
        the audio the final will cover is already known: [start, last speech + pad].
        Decoding it now, while the end-pointer still waits, takes the decode off the
        latency between the end of speech and the final. If speech resumes the result
        is dropped (one wasted decode per short pause). Returns whether it decoded."""
        ep = self.endpointer
        if ep.start is None or self.config.early_final_ms <= 0:
            return False
        if ep.speech_samples < ep.min_speech and self._interims == 0:
            return False
        cut = ep.last_speech_end + ep.pad
        key = self._speculation_key()
        scheduler = self.engine.scheduler
        wait = self._early_final_busy if scheduler is not None and scheduler.congested() else self._early_final
        if ep.silence_samples < wait or cut > self._total:
            return False
        if self._speculative is not None and self._speculative[0] == key:
            return False
        self._speculative = (key, self._decode_final(ep.start, cut))
        return True

    def _sentence_end(self) -> list[StreamEvent]:
        """The final now, when the early final ends a sentence and the pause has lasted
        `sentence_end_ms` (see StreamingConfig); nothing otherwise."""
        ep = self.endpointer
        wait_ms = self.config.sentence_end_ms
        if wait_ms <= 0 or ep.start is None or self._speculative is None:
            return []
        key, result = self._speculative
        if key != self._speculation_key() or ep.silence_samples * 1000 < wait_ms * TARGET_RATE:
            return []
        if not _SENTENCE_END.search(result.text):
            return []
        return self._close(ep.end_now())

    def _close(self, utterance: Utterance) -> list[StreamEvent]:
        """The final of an utterance that ended, and a fresh start for the next."""
        event = self._final(utterance)
        self._reset_utterance()
        return [event] if event is not None else []

    def _final(self, utterance: Utterance) -> StreamEvent | None:
        if utterance.speech_samples < self.endpointer.min_speech and self._interims == 0:
            return None  # a click or a breath, not speech
        key = (utterance.last_speech_end, self._language if self._language_locked else None)
        if (
            self._speculative is not None
            and self._speculative[0] == key
            and utterance.end == utterance.last_speech_end + self.endpointer.pad
        ):
            result = self._speculative[1]
        else:
            result = self._decode_final(utterance.start, utterance.end)
        self._speculative = None
        offset = utterance.start / TARGET_RATE
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
            end=utterance.end / TARGET_RATE,
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
