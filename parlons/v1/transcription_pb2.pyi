from parlons.v1 import audio_pb2 as _audio_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Task(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_UNSPECIFIED: _ClassVar[Task]
    TRANSCRIBE: _ClassVar[Task]
    TRANSLATE_TO_ENGLISH: _ClassVar[Task]
TASK_UNSPECIFIED: Task
TRANSCRIBE: Task
TRANSLATE_TO_ENGLISH: Task

class TranscriptionOptions(_message.Message):
    __slots__ = ("model", "language", "task", "beam_size", "word_timestamps", "vad_filter", "initial_prompt", "hotwords", "temperatures", "per_channel", "language_per_segment", "condition_on_previous_text")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    BEAM_SIZE_FIELD_NUMBER: _ClassVar[int]
    WORD_TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    VAD_FILTER_FIELD_NUMBER: _ClassVar[int]
    INITIAL_PROMPT_FIELD_NUMBER: _ClassVar[int]
    HOTWORDS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURES_FIELD_NUMBER: _ClassVar[int]
    PER_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PER_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CONDITION_ON_PREVIOUS_TEXT_FIELD_NUMBER: _ClassVar[int]
    model: str
    language: str
    task: Task
    beam_size: int
    word_timestamps: bool
    vad_filter: bool
    initial_prompt: str
    hotwords: str
    temperatures: _containers.RepeatedScalarFieldContainer[float]
    per_channel: bool
    language_per_segment: bool
    condition_on_previous_text: bool
    def __init__(self, model: _Optional[str] = ..., language: _Optional[str] = ..., task: _Optional[_Union[Task, str]] = ..., beam_size: _Optional[int] = ..., word_timestamps: _Optional[bool] = ..., vad_filter: _Optional[bool] = ..., initial_prompt: _Optional[str] = ..., hotwords: _Optional[str] = ..., temperatures: _Optional[_Iterable[float]] = ..., per_channel: _Optional[bool] = ..., language_per_segment: _Optional[bool] = ..., condition_on_previous_text: _Optional[bool] = ...) -> None: ...

class TranscribeRequest(_message.Message):
    __slots__ = ("config", "options", "audio")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    config: _audio_pb2.AudioConfig
    options: TranscriptionOptions
    audio: _audio_pb2.Audio
    def __init__(self, config: _Optional[_Union[_audio_pb2.AudioConfig, _Mapping]] = ..., options: _Optional[_Union[TranscriptionOptions, _Mapping]] = ..., audio: _Optional[_Union[_audio_pb2.Audio, _Mapping]] = ...) -> None: ...

class TranscribeUploadConfig(_message.Message):
    __slots__ = ("config", "options")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    config: _audio_pb2.AudioConfig
    options: TranscriptionOptions
    def __init__(self, config: _Optional[_Union[_audio_pb2.AudioConfig, _Mapping]] = ..., options: _Optional[_Union[TranscriptionOptions, _Mapping]] = ...) -> None: ...

class TranscribeUploadRequest(_message.Message):
    __slots__ = ("config", "audio_content")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CONTENT_FIELD_NUMBER: _ClassVar[int]
    config: TranscribeUploadConfig
    audio_content: bytes
    def __init__(self, config: _Optional[_Union[TranscribeUploadConfig, _Mapping]] = ..., audio_content: _Optional[bytes] = ...) -> None: ...

class WordInfo(_message.Message):
    __slots__ = ("start_s", "end_s", "word", "probability", "speaker", "overlap")
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    WORD_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    start_s: float
    end_s: float
    word: str
    probability: float
    speaker: str
    overlap: bool
    def __init__(self, start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., word: _Optional[str] = ..., probability: _Optional[float] = ..., speaker: _Optional[str] = ..., overlap: _Optional[bool] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("id", "start_s", "end_s", "text", "avg_logprob", "no_speech_prob", "compression_ratio", "language", "language_probability", "channel", "words", "speaker", "overlapping_speakers")
    ID_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AVG_LOGPROB_FIELD_NUMBER: _ClassVar[int]
    NO_SPEECH_PROB_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_FIELD_NUMBER: _ClassVar[int]
    OVERLAPPING_SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    id: int
    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    language: str
    language_probability: float
    channel: int
    words: _containers.RepeatedCompositeFieldContainer[WordInfo]
    speaker: str
    overlapping_speakers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[int] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., text: _Optional[str] = ..., avg_logprob: _Optional[float] = ..., no_speech_prob: _Optional[float] = ..., compression_ratio: _Optional[float] = ..., language: _Optional[str] = ..., language_probability: _Optional[float] = ..., channel: _Optional[int] = ..., words: _Optional[_Iterable[_Union[WordInfo, _Mapping]]] = ..., speaker: _Optional[str] = ..., overlapping_speakers: _Optional[_Iterable[str]] = ...) -> None: ...

class LanguageProbability(_message.Message):
    __slots__ = ("language", "probability")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    language: str
    probability: float
    def __init__(self, language: _Optional[str] = ..., probability: _Optional[float] = ...) -> None: ...

class TranscribeResponse(_message.Message):
    __slots__ = ("segments", "text", "language", "language_probability", "language_candidates", "audio_duration_s", "processing_duration_s", "model", "channels")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    text: str
    language: str
    language_probability: float
    language_candidates: _containers.RepeatedCompositeFieldContainer[LanguageProbability]
    audio_duration_s: float
    processing_duration_s: float
    model: str
    channels: int
    def __init__(self, segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., text: _Optional[str] = ..., language: _Optional[str] = ..., language_probability: _Optional[float] = ..., language_candidates: _Optional[_Iterable[_Union[LanguageProbability, _Mapping]]] = ..., audio_duration_s: _Optional[float] = ..., processing_duration_s: _Optional[float] = ..., model: _Optional[str] = ..., channels: _Optional[int] = ...) -> None: ...

class StreamingConfig(_message.Message):
    __slots__ = ("config", "options", "interim_results", "end_of_utterance_silence_ms", "max_utterance_s")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    INTERIM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    END_OF_UTTERANCE_SILENCE_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_UTTERANCE_S_FIELD_NUMBER: _ClassVar[int]
    config: _audio_pb2.AudioConfig
    options: TranscriptionOptions
    interim_results: bool
    end_of_utterance_silence_ms: int
    max_utterance_s: float
    def __init__(self, config: _Optional[_Union[_audio_pb2.AudioConfig, _Mapping]] = ..., options: _Optional[_Union[TranscriptionOptions, _Mapping]] = ..., interim_results: _Optional[bool] = ..., end_of_utterance_silence_ms: _Optional[int] = ..., max_utterance_s: _Optional[float] = ...) -> None: ...

class StreamingTranscribeRequest(_message.Message):
    __slots__ = ("config", "audio_content")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CONTENT_FIELD_NUMBER: _ClassVar[int]
    config: StreamingConfig
    audio_content: bytes
    def __init__(self, config: _Optional[_Union[StreamingConfig, _Mapping]] = ..., audio_content: _Optional[bytes] = ...) -> None: ...

class StreamingResult(_message.Message):
    __slots__ = ("is_final", "stability", "text", "committed_text", "unstable_text", "start_s", "end_s", "utterance_index", "language", "language_probability", "words", "channel")
    IS_FINAL_FIELD_NUMBER: _ClassVar[int]
    STABILITY_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_TEXT_FIELD_NUMBER: _ClassVar[int]
    UNSTABLE_TEXT_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    UTTERANCE_INDEX_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    is_final: bool
    stability: float
    text: str
    committed_text: str
    unstable_text: str
    start_s: float
    end_s: float
    utterance_index: int
    language: str
    language_probability: float
    words: _containers.RepeatedCompositeFieldContainer[WordInfo]
    channel: int
    def __init__(self, is_final: _Optional[bool] = ..., stability: _Optional[float] = ..., text: _Optional[str] = ..., committed_text: _Optional[str] = ..., unstable_text: _Optional[str] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., utterance_index: _Optional[int] = ..., language: _Optional[str] = ..., language_probability: _Optional[float] = ..., words: _Optional[_Iterable[_Union[WordInfo, _Mapping]]] = ..., channel: _Optional[int] = ...) -> None: ...

class StreamingTranscribeResponse(_message.Message):
    __slots__ = ("results", "audio_processed_s")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_PROCESSED_S_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[StreamingResult]
    audio_processed_s: float
    def __init__(self, results: _Optional[_Iterable[_Union[StreamingResult, _Mapping]]] = ..., audio_processed_s: _Optional[float] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelDescription(_message.Message):
    __slots__ = ("name", "kind", "languages", "multilingual", "installed", "loaded", "device", "compute_type", "size_bytes", "license")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    MULTILINGUAL_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    languages: _containers.RepeatedScalarFieldContainer[str]
    multilingual: bool
    installed: bool
    loaded: bool
    device: str
    compute_type: str
    size_bytes: int
    license: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., languages: _Optional[_Iterable[str]] = ..., multilingual: _Optional[bool] = ..., installed: _Optional[bool] = ..., loaded: _Optional[bool] = ..., device: _Optional[str] = ..., compute_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., license: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "default_model")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelDescription]
    default_model: str
    def __init__(self, models: _Optional[_Iterable[_Union[ModelDescription, _Mapping]]] = ..., default_model: _Optional[str] = ...) -> None: ...
