from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AnonymizationPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANONYMIZATION_POLICY_PLACEHOLDER: _ClassVar[AnonymizationPolicy]
    ANONYMIZATION_POLICY_REDACT: _ClassVar[AnonymizationPolicy]
    ANONYMIZATION_POLICY_PSEUDONYM: _ClassVar[AnonymizationPolicy]
ANONYMIZATION_POLICY_PLACEHOLDER: AnonymizationPolicy
ANONYMIZATION_POLICY_REDACT: AnonymizationPolicy
ANONYMIZATION_POLICY_PSEUDONYM: AnonymizationPolicy

class AnonymizationOptions(_message.Message):
    __slots__ = ("policy", "entity_types", "always_mask", "never_mask", "return_mapping", "language", "seed")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    ENTITY_TYPES_FIELD_NUMBER: _ClassVar[int]
    ALWAYS_MASK_FIELD_NUMBER: _ClassVar[int]
    NEVER_MASK_FIELD_NUMBER: _ClassVar[int]
    RETURN_MAPPING_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    policy: AnonymizationPolicy
    entity_types: _containers.RepeatedScalarFieldContainer[str]
    always_mask: _containers.RepeatedScalarFieldContainer[str]
    never_mask: _containers.RepeatedScalarFieldContainer[str]
    return_mapping: bool
    language: str
    seed: int
    def __init__(self, policy: _Optional[_Union[AnonymizationPolicy, str]] = ..., entity_types: _Optional[_Iterable[str]] = ..., always_mask: _Optional[_Iterable[str]] = ..., never_mask: _Optional[_Iterable[str]] = ..., return_mapping: _Optional[bool] = ..., language: _Optional[str] = ..., seed: _Optional[int] = ...) -> None: ...

class AnonymizeTextRequest(_message.Message):
    __slots__ = ("texts", "options")
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    options: AnonymizationOptions
    def __init__(self, texts: _Optional[_Iterable[str]] = ..., options: _Optional[_Union[AnonymizationOptions, _Mapping]] = ...) -> None: ...

class PersonalDataSpan(_message.Message):
    __slots__ = ("start", "end", "entity_type", "score", "replacement")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    ENTITY_TYPE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REPLACEMENT_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    entity_type: str
    score: float
    replacement: str
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ..., entity_type: _Optional[str] = ..., score: _Optional[float] = ..., replacement: _Optional[str] = ...) -> None: ...

class AnonymizedText(_message.Message):
    __slots__ = ("text", "spans")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    text: str
    spans: _containers.RepeatedCompositeFieldContainer[PersonalDataSpan]
    def __init__(self, text: _Optional[str] = ..., spans: _Optional[_Iterable[_Union[PersonalDataSpan, _Mapping]]] = ...) -> None: ...

class MappingEntry(_message.Message):
    __slots__ = ("replacement", "original")
    REPLACEMENT_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_FIELD_NUMBER: _ClassVar[int]
    replacement: str
    original: str
    def __init__(self, replacement: _Optional[str] = ..., original: _Optional[str] = ...) -> None: ...

class AnonymizeTextResponse(_message.Message):
    __slots__ = ("texts", "names_checked", "language", "mapping")
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    NAMES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    MAPPING_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedCompositeFieldContainer[AnonymizedText]
    names_checked: bool
    language: str
    mapping: _containers.RepeatedCompositeFieldContainer[MappingEntry]
    def __init__(self, texts: _Optional[_Iterable[_Union[AnonymizedText, _Mapping]]] = ..., names_checked: _Optional[bool] = ..., language: _Optional[str] = ..., mapping: _Optional[_Iterable[_Union[MappingEntry, _Mapping]]] = ...) -> None: ...

class AnonymizationSummary(_message.Message):
    __slots__ = ("spans", "names_checked", "mapping", "duration_s", "masked")
    SPANS_FIELD_NUMBER: _ClassVar[int]
    NAMES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    MAPPING_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    MASKED_FIELD_NUMBER: _ClassVar[int]
    spans: int
    names_checked: bool
    mapping: _containers.RepeatedCompositeFieldContainer[MappingEntry]
    duration_s: float
    masked: _containers.RepeatedCompositeFieldContainer[MaskedSpan]
    def __init__(self, spans: _Optional[int] = ..., names_checked: _Optional[bool] = ..., mapping: _Optional[_Iterable[_Union[MappingEntry, _Mapping]]] = ..., duration_s: _Optional[float] = ..., masked: _Optional[_Iterable[_Union[MaskedSpan, _Mapping]]] = ...) -> None: ...

class MaskedSpan(_message.Message):
    __slots__ = ("start_s", "end_s", "entity_type")
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    ENTITY_TYPE_FIELD_NUMBER: _ClassVar[int]
    start_s: float
    end_s: float
    entity_type: str
    def __init__(self, start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., entity_type: _Optional[str] = ...) -> None: ...

class AnonymizeDocumentRequest(_message.Message):
    __slots__ = ("content", "file_name", "mime_type", "options", "pdf_output_format")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PDF_OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    file_name: str
    mime_type: str
    options: AnonymizationOptions
    pdf_output_format: str
    def __init__(self, content: _Optional[bytes] = ..., file_name: _Optional[str] = ..., mime_type: _Optional[str] = ..., options: _Optional[_Union[AnonymizationOptions, _Mapping]] = ..., pdf_output_format: _Optional[str] = ...) -> None: ...

class AnonymizeDocumentResponse(_message.Message):
    __slots__ = ("content", "file_name", "mime_type", "format", "segments", "spans", "names_checked", "mapping", "notes", "characters")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    NAMES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    MAPPING_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    file_name: str
    mime_type: str
    format: str
    segments: int
    spans: int
    names_checked: bool
    mapping: _containers.RepeatedCompositeFieldContainer[MappingEntry]
    notes: _containers.RepeatedScalarFieldContainer[str]
    characters: int
    def __init__(self, content: _Optional[bytes] = ..., file_name: _Optional[str] = ..., mime_type: _Optional[str] = ..., format: _Optional[str] = ..., segments: _Optional[int] = ..., spans: _Optional[int] = ..., names_checked: _Optional[bool] = ..., mapping: _Optional[_Iterable[_Union[MappingEntry, _Mapping]]] = ..., notes: _Optional[_Iterable[str]] = ..., characters: _Optional[int] = ...) -> None: ...
