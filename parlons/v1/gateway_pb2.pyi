from parlons.v1 import audio_pb2 as _audio_pb2
from parlons.v1 import transcription_pb2 as _transcription_pb2
from parlons.v1 import diarization_pb2 as _diarization_pb2
from parlons.v1 import translation_pb2 as _translation_pb2
from parlons.v1 import anonymization_pb2 as _anonymization_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TranscribeConversationRequest(_message.Message):
    __slots__ = ("config", "audio", "transcription", "diarization", "target_languages", "subtitles", "glossary", "uri", "anonymization")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DIARIZATION_FIELD_NUMBER: _ClassVar[int]
    TARGET_LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    SUBTITLES_FIELD_NUMBER: _ClassVar[int]
    GLOSSARY_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    ANONYMIZATION_FIELD_NUMBER: _ClassVar[int]
    config: _audio_pb2.AudioConfig
    audio: _audio_pb2.Audio
    transcription: _transcription_pb2.TranscriptionOptions
    diarization: _diarization_pb2.DiarizationOptions
    target_languages: _containers.RepeatedScalarFieldContainer[str]
    subtitles: bool
    glossary: _translation_pb2.Glossary
    uri: str
    anonymization: _anonymization_pb2.AnonymizationOptions
    def __init__(self, config: _Optional[_Union[_audio_pb2.AudioConfig, _Mapping]] = ..., audio: _Optional[_Union[_audio_pb2.Audio, _Mapping]] = ..., transcription: _Optional[_Union[_transcription_pb2.TranscriptionOptions, _Mapping]] = ..., diarization: _Optional[_Union[_diarization_pb2.DiarizationOptions, _Mapping]] = ..., target_languages: _Optional[_Iterable[str]] = ..., subtitles: _Optional[bool] = ..., glossary: _Optional[_Union[_translation_pb2.Glossary, _Mapping]] = ..., uri: _Optional[str] = ..., anonymization: _Optional[_Union[_anonymization_pb2.AnonymizationOptions, _Mapping]] = ...) -> None: ...

class TranscribeConversationUploadRequest(_message.Message):
    __slots__ = ("config", "audio_content")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CONTENT_FIELD_NUMBER: _ClassVar[int]
    config: TranscribeConversationRequest
    audio_content: bytes
    def __init__(self, config: _Optional[_Union[TranscribeConversationRequest, _Mapping]] = ..., audio_content: _Optional[bytes] = ...) -> None: ...

class TurnTranslation(_message.Message):
    __slots__ = ("language", "text")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    language: str
    text: str
    def __init__(self, language: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class ConversationTurn(_message.Message):
    __slots__ = ("speaker", "start_s", "end_s", "text", "language", "words", "translations", "channel", "overlapping_speakers")
    SPEAKER_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    TRANSLATIONS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OVERLAPPING_SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    speaker: str
    start_s: float
    end_s: float
    text: str
    language: str
    words: _containers.RepeatedCompositeFieldContainer[_transcription_pb2.WordInfo]
    translations: _containers.RepeatedCompositeFieldContainer[TurnTranslation]
    channel: int
    overlapping_speakers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, speaker: _Optional[str] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., text: _Optional[str] = ..., language: _Optional[str] = ..., words: _Optional[_Iterable[_Union[_transcription_pb2.WordInfo, _Mapping]]] = ..., translations: _Optional[_Iterable[_Union[TurnTranslation, _Mapping]]] = ..., channel: _Optional[int] = ..., overlapping_speakers: _Optional[_Iterable[str]] = ...) -> None: ...

class TranscribeConversationResponse(_message.Message):
    __slots__ = ("turns", "speakers", "language", "audio_duration_s", "processing_duration_s", "srt", "vtt", "rttm", "transcription_model", "transcript", "translated_transcripts", "anonymization")
    TURNS_FIELD_NUMBER: _ClassVar[int]
    SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    SRT_FIELD_NUMBER: _ClassVar[int]
    VTT_FIELD_NUMBER: _ClassVar[int]
    RTTM_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPTION_MODEL_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    TRANSLATED_TRANSCRIPTS_FIELD_NUMBER: _ClassVar[int]
    ANONYMIZATION_FIELD_NUMBER: _ClassVar[int]
    turns: _containers.RepeatedCompositeFieldContainer[ConversationTurn]
    speakers: _containers.RepeatedCompositeFieldContainer[_diarization_pb2.SpeakerSummary]
    language: str
    audio_duration_s: float
    processing_duration_s: float
    srt: str
    vtt: str
    rttm: str
    transcription_model: str
    transcript: _transcription_pb2.TranscribeResponse
    translated_transcripts: _containers.RepeatedCompositeFieldContainer[_transcription_pb2.TranscribeResponse]
    anonymization: _anonymization_pb2.AnonymizationSummary
    def __init__(self, turns: _Optional[_Iterable[_Union[ConversationTurn, _Mapping]]] = ..., speakers: _Optional[_Iterable[_Union[_diarization_pb2.SpeakerSummary, _Mapping]]] = ..., language: _Optional[str] = ..., audio_duration_s: _Optional[float] = ..., processing_duration_s: _Optional[float] = ..., srt: _Optional[str] = ..., vtt: _Optional[str] = ..., rttm: _Optional[str] = ..., transcription_model: _Optional[str] = ..., transcript: _Optional[_Union[_transcription_pb2.TranscribeResponse, _Mapping]] = ..., translated_transcripts: _Optional[_Iterable[_Union[_transcription_pb2.TranscribeResponse, _Mapping]]] = ..., anonymization: _Optional[_Union[_anonymization_pb2.AnonymizationSummary, _Mapping]] = ...) -> None: ...

class TranslateSpeechRequest(_message.Message):
    __slots__ = ("config", "audio", "transcription", "target_language", "glossary", "anonymization")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    GLOSSARY_FIELD_NUMBER: _ClassVar[int]
    ANONYMIZATION_FIELD_NUMBER: _ClassVar[int]
    config: _audio_pb2.AudioConfig
    audio: _audio_pb2.Audio
    transcription: _transcription_pb2.TranscriptionOptions
    target_language: str
    glossary: _translation_pb2.Glossary
    anonymization: _anonymization_pb2.AnonymizationOptions
    def __init__(self, config: _Optional[_Union[_audio_pb2.AudioConfig, _Mapping]] = ..., audio: _Optional[_Union[_audio_pb2.Audio, _Mapping]] = ..., transcription: _Optional[_Union[_transcription_pb2.TranscriptionOptions, _Mapping]] = ..., target_language: _Optional[str] = ..., glossary: _Optional[_Union[_translation_pb2.Glossary, _Mapping]] = ..., anonymization: _Optional[_Union[_anonymization_pb2.AnonymizationOptions, _Mapping]] = ...) -> None: ...

class TranslateSpeechResponse(_message.Message):
    __slots__ = ("segments", "translated_segments", "text", "translated_text", "source_language", "target_language", "audio_duration_s", "processing_duration_s", "anonymization")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    TRANSLATED_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TRANSLATED_TEXT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    ANONYMIZATION_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[_transcription_pb2.Segment]
    translated_segments: _containers.RepeatedScalarFieldContainer[str]
    text: str
    translated_text: str
    source_language: str
    target_language: str
    audio_duration_s: float
    processing_duration_s: float
    anonymization: _anonymization_pb2.AnonymizationSummary
    def __init__(self, segments: _Optional[_Iterable[_Union[_transcription_pb2.Segment, _Mapping]]] = ..., translated_segments: _Optional[_Iterable[str]] = ..., text: _Optional[str] = ..., translated_text: _Optional[str] = ..., source_language: _Optional[str] = ..., target_language: _Optional[str] = ..., audio_duration_s: _Optional[float] = ..., processing_duration_s: _Optional[float] = ..., anonymization: _Optional[_Union[_anonymization_pb2.AnonymizationSummary, _Mapping]] = ...) -> None: ...

class Party(_message.Message):
    __slots__ = ("name", "language", "channel", "voice_sample")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    VOICE_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    language: str
    channel: int
    voice_sample: bytes
    def __init__(self, name: _Optional[str] = ..., language: _Optional[str] = ..., channel: _Optional[int] = ..., voice_sample: _Optional[bytes] = ...) -> None: ...

class LiveConversationConfig(_message.Message):
    __slots__ = ("config", "parties", "transcription", "interim_results", "glossary", "end_of_utterance_silence_ms")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INTERIM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    GLOSSARY_FIELD_NUMBER: _ClassVar[int]
    END_OF_UTTERANCE_SILENCE_MS_FIELD_NUMBER: _ClassVar[int]
    config: _audio_pb2.AudioConfig
    parties: _containers.RepeatedCompositeFieldContainer[Party]
    transcription: _transcription_pb2.TranscriptionOptions
    interim_results: bool
    glossary: _translation_pb2.Glossary
    end_of_utterance_silence_ms: int
    def __init__(self, config: _Optional[_Union[_audio_pb2.AudioConfig, _Mapping]] = ..., parties: _Optional[_Iterable[_Union[Party, _Mapping]]] = ..., transcription: _Optional[_Union[_transcription_pb2.TranscriptionOptions, _Mapping]] = ..., interim_results: _Optional[bool] = ..., glossary: _Optional[_Union[_translation_pb2.Glossary, _Mapping]] = ..., end_of_utterance_silence_ms: _Optional[int] = ...) -> None: ...

class LiveConversationRequest(_message.Message):
    __slots__ = ("config", "audio_content")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CONTENT_FIELD_NUMBER: _ClassVar[int]
    config: LiveConversationConfig
    audio_content: bytes
    def __init__(self, config: _Optional[_Union[LiveConversationConfig, _Mapping]] = ..., audio_content: _Optional[bytes] = ...) -> None: ...

class LiveUtterance(_message.Message):
    __slots__ = ("party", "is_final", "stability", "text", "language", "language_probability", "translation", "translation_language", "start_s", "end_s", "utterance_index", "translation_error", "channel")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    IS_FINAL_FIELD_NUMBER: _ClassVar[int]
    STABILITY_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    TRANSLATION_FIELD_NUMBER: _ClassVar[int]
    TRANSLATION_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    UTTERANCE_INDEX_FIELD_NUMBER: _ClassVar[int]
    TRANSLATION_ERROR_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    party: str
    is_final: bool
    stability: float
    text: str
    language: str
    language_probability: float
    translation: str
    translation_language: str
    start_s: float
    end_s: float
    utterance_index: int
    translation_error: str
    channel: int
    def __init__(self, party: _Optional[str] = ..., is_final: _Optional[bool] = ..., stability: _Optional[float] = ..., text: _Optional[str] = ..., language: _Optional[str] = ..., language_probability: _Optional[float] = ..., translation: _Optional[str] = ..., translation_language: _Optional[str] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., utterance_index: _Optional[int] = ..., translation_error: _Optional[str] = ..., channel: _Optional[int] = ...) -> None: ...

class LiveConversationResponse(_message.Message):
    __slots__ = ("utterances",)
    UTTERANCES_FIELD_NUMBER: _ClassVar[int]
    utterances: _containers.RepeatedCompositeFieldContainer[LiveUtterance]
    def __init__(self, utterances: _Optional[_Iterable[_Union[LiveUtterance, _Mapping]]] = ...) -> None: ...
