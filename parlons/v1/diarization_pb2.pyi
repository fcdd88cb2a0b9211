from parlons.v1 import audio_pb2 as _audio_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DiarizationMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIARIZATION_MODE_UNSPECIFIED: _ClassVar[DiarizationMode]
    NEURAL: _ClassVar[DiarizationMode]
    CHANNEL: _ClassVar[DiarizationMode]
    NONE: _ClassVar[DiarizationMode]
DIARIZATION_MODE_UNSPECIFIED: DiarizationMode
NEURAL: DiarizationMode
CHANNEL: DiarizationMode
NONE: DiarizationMode

class DiarizationOptions(_message.Message):
    __slots__ = ("mode", "num_speakers", "min_speakers", "max_speakers", "channel_speaker_names", "speaker_references", "reference_threshold")
    MODE_FIELD_NUMBER: _ClassVar[int]
    NUM_SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    MIN_SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    MAX_SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_SPEAKER_NAMES_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_REFERENCES_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    mode: DiarizationMode
    num_speakers: int
    min_speakers: int
    max_speakers: int
    channel_speaker_names: _containers.RepeatedScalarFieldContainer[str]
    speaker_references: _containers.RepeatedCompositeFieldContainer[SpeakerReference]
    reference_threshold: float
    def __init__(self, mode: _Optional[_Union[DiarizationMode, str]] = ..., num_speakers: _Optional[int] = ..., min_speakers: _Optional[int] = ..., max_speakers: _Optional[int] = ..., channel_speaker_names: _Optional[_Iterable[str]] = ..., speaker_references: _Optional[_Iterable[_Union[SpeakerReference, _Mapping]]] = ..., reference_threshold: _Optional[float] = ...) -> None: ...

class SpeakerReference(_message.Message):
    __slots__ = ("name", "config", "audio")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: _audio_pb2.AudioConfig
    audio: _audio_pb2.Audio
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[_audio_pb2.AudioConfig, _Mapping]] = ..., audio: _Optional[_Union[_audio_pb2.Audio, _Mapping]] = ...) -> None: ...

class DiarizeRequest(_message.Message):
    __slots__ = ("config", "options", "audio", "uri")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    config: _audio_pb2.AudioConfig
    options: DiarizationOptions
    audio: _audio_pb2.Audio
    uri: str
    def __init__(self, config: _Optional[_Union[_audio_pb2.AudioConfig, _Mapping]] = ..., options: _Optional[_Union[DiarizationOptions, _Mapping]] = ..., audio: _Optional[_Union[_audio_pb2.Audio, _Mapping]] = ..., uri: _Optional[str] = ...) -> None: ...

class DiarizeUploadConfig(_message.Message):
    __slots__ = ("config", "options", "uri")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    config: _audio_pb2.AudioConfig
    options: DiarizationOptions
    uri: str
    def __init__(self, config: _Optional[_Union[_audio_pb2.AudioConfig, _Mapping]] = ..., options: _Optional[_Union[DiarizationOptions, _Mapping]] = ..., uri: _Optional[str] = ...) -> None: ...

class DiarizeUploadRequest(_message.Message):
    __slots__ = ("config", "audio_content")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CONTENT_FIELD_NUMBER: _ClassVar[int]
    config: DiarizeUploadConfig
    audio_content: bytes
    def __init__(self, config: _Optional[_Union[DiarizeUploadConfig, _Mapping]] = ..., audio_content: _Optional[bytes] = ...) -> None: ...

class SpeakerTurn(_message.Message):
    __slots__ = ("start_s", "end_s", "speaker", "overlap", "channel")
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    start_s: float
    end_s: float
    speaker: str
    overlap: bool
    channel: int
    def __init__(self, start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., speaker: _Optional[str] = ..., overlap: _Optional[bool] = ..., channel: _Optional[int] = ...) -> None: ...

class SpeakerSummary(_message.Message):
    __slots__ = ("speaker", "speaking_time_s", "turns", "reference_similarity")
    SPEAKER_FIELD_NUMBER: _ClassVar[int]
    SPEAKING_TIME_S_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    speaker: str
    speaking_time_s: float
    turns: int
    reference_similarity: float
    def __init__(self, speaker: _Optional[str] = ..., speaking_time_s: _Optional[float] = ..., turns: _Optional[int] = ..., reference_similarity: _Optional[float] = ...) -> None: ...

class DiarizeResponse(_message.Message):
    __slots__ = ("turns", "speakers", "rttm", "audio_duration_s", "processing_duration_s", "mode", "estimated_speakers", "speaker_count_confidence", "speaker_count_note", "dominant_turns")
    TURNS_FIELD_NUMBER: _ClassVar[int]
    SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    RTTM_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_COUNT_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_COUNT_NOTE_FIELD_NUMBER: _ClassVar[int]
    DOMINANT_TURNS_FIELD_NUMBER: _ClassVar[int]
    turns: _containers.RepeatedCompositeFieldContainer[SpeakerTurn]
    speakers: _containers.RepeatedCompositeFieldContainer[SpeakerSummary]
    rttm: str
    audio_duration_s: float
    processing_duration_s: float
    mode: DiarizationMode
    estimated_speakers: int
    speaker_count_confidence: float
    speaker_count_note: str
    dominant_turns: _containers.RepeatedCompositeFieldContainer[SpeakerTurn]
    def __init__(self, turns: _Optional[_Iterable[_Union[SpeakerTurn, _Mapping]]] = ..., speakers: _Optional[_Iterable[_Union[SpeakerSummary, _Mapping]]] = ..., rttm: _Optional[str] = ..., audio_duration_s: _Optional[float] = ..., processing_duration_s: _Optional[float] = ..., mode: _Optional[_Union[DiarizationMode, str]] = ..., estimated_speakers: _Optional[int] = ..., speaker_count_confidence: _Optional[float] = ..., speaker_count_note: _Optional[str] = ..., dominant_turns: _Optional[_Iterable[_Union[SpeakerTurn, _Mapping]]] = ...) -> None: ...

class TimeSpan(_message.Message):
    __slots__ = ("start_s", "end_s")
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    start_s: float
    end_s: float
    def __init__(self, start_s: _Optional[float] = ..., end_s: _Optional[float] = ...) -> None: ...

class EmbedVoicesRequest(_message.Message):
    __slots__ = ("config", "audio", "spans")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    config: _audio_pb2.AudioConfig
    audio: _audio_pb2.Audio
    spans: _containers.RepeatedCompositeFieldContainer[TimeSpan]
    def __init__(self, config: _Optional[_Union[_audio_pb2.AudioConfig, _Mapping]] = ..., audio: _Optional[_Union[_audio_pb2.Audio, _Mapping]] = ..., spans: _Optional[_Iterable[_Union[TimeSpan, _Mapping]]] = ...) -> None: ...

class VoicePrint(_message.Message):
    __slots__ = ("start_s", "end_s", "vector")
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    start_s: float
    end_s: float
    vector: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., vector: _Optional[_Iterable[float]] = ...) -> None: ...

class EmbedVoicesResponse(_message.Message):
    __slots__ = ("prints", "model", "dimension", "audio_duration_s")
    PRINTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    prints: _containers.RepeatedCompositeFieldContainer[VoicePrint]
    model: str
    dimension: int
    audio_duration_s: float
    def __init__(self, prints: _Optional[_Iterable[_Union[VoicePrint, _Mapping]]] = ..., model: _Optional[str] = ..., dimension: _Optional[int] = ..., audio_duration_s: _Optional[float] = ...) -> None: ...
