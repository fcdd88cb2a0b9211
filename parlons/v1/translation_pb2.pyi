from parlons.v1 import anonymization_pb2 as _anonymization_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DocumentFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOCUMENT_FORMAT_UNSPECIFIED: _ClassVar[DocumentFormat]
    TXT: _ClassVar[DocumentFormat]
    DOCX: _ClassVar[DocumentFormat]
    ODT: _ClassVar[DocumentFormat]
    HTML: _ClassVar[DocumentFormat]
    SRT: _ClassVar[DocumentFormat]
    VTT: _ClassVar[DocumentFormat]
    PDF: _ClassVar[DocumentFormat]
DOCUMENT_FORMAT_UNSPECIFIED: DocumentFormat
TXT: DocumentFormat
DOCX: DocumentFormat
ODT: DocumentFormat
HTML: DocumentFormat
SRT: DocumentFormat
VTT: DocumentFormat
PDF: DocumentFormat

class GlossaryEntry(_message.Message):
    __slots__ = ("source", "target", "do_not_translate", "case_sensitive")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DO_NOT_TRANSLATE_FIELD_NUMBER: _ClassVar[int]
    CASE_SENSITIVE_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    do_not_translate: bool
    case_sensitive: bool
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ..., do_not_translate: _Optional[bool] = ..., case_sensitive: _Optional[bool] = ...) -> None: ...

class Glossary(_message.Message):
    __slots__ = ("entries", "name")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[GlossaryEntry]
    name: str
    def __init__(self, entries: _Optional[_Iterable[_Union[GlossaryEntry, _Mapping]]] = ..., name: _Optional[str] = ...) -> None: ...

class TranslationOptions(_message.Message):
    __slots__ = ("source_language", "target_language", "model", "glossary", "beam_size", "anonymization")
    SOURCE_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    GLOSSARY_FIELD_NUMBER: _ClassVar[int]
    BEAM_SIZE_FIELD_NUMBER: _ClassVar[int]
    ANONYMIZATION_FIELD_NUMBER: _ClassVar[int]
    source_language: str
    target_language: str
    model: str
    glossary: Glossary
    beam_size: int
    anonymization: _anonymization_pb2.AnonymizationOptions
    def __init__(self, source_language: _Optional[str] = ..., target_language: _Optional[str] = ..., model: _Optional[str] = ..., glossary: _Optional[_Union[Glossary, _Mapping]] = ..., beam_size: _Optional[int] = ..., anonymization: _Optional[_Union[_anonymization_pb2.AnonymizationOptions, _Mapping]] = ...) -> None: ...

class TranslateTextRequest(_message.Message):
    __slots__ = ("texts", "options")
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    options: TranslationOptions
    def __init__(self, texts: _Optional[_Iterable[str]] = ..., options: _Optional[_Union[TranslationOptions, _Mapping]] = ...) -> None: ...

class Translation(_message.Message):
    __slots__ = ("text", "detected_source_language", "detection_confidence", "model")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DETECTED_SOURCE_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    DETECTION_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    text: str
    detected_source_language: str
    detection_confidence: float
    model: str
    def __init__(self, text: _Optional[str] = ..., detected_source_language: _Optional[str] = ..., detection_confidence: _Optional[float] = ..., model: _Optional[str] = ...) -> None: ...

class TranslateTextResponse(_message.Message):
    __slots__ = ("translations", "anonymization")
    TRANSLATIONS_FIELD_NUMBER: _ClassVar[int]
    ANONYMIZATION_FIELD_NUMBER: _ClassVar[int]
    translations: _containers.RepeatedCompositeFieldContainer[Translation]
    anonymization: _anonymization_pb2.AnonymizationSummary
    def __init__(self, translations: _Optional[_Iterable[_Union[Translation, _Mapping]]] = ..., anonymization: _Optional[_Union[_anonymization_pb2.AnonymizationSummary, _Mapping]] = ...) -> None: ...

class StreamingTranslateConfig(_message.Message):
    __slots__ = ("options",)
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    options: TranslationOptions
    def __init__(self, options: _Optional[_Union[TranslationOptions, _Mapping]] = ...) -> None: ...

class StreamingTranslateRequest(_message.Message):
    __slots__ = ("config", "text")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    config: StreamingTranslateConfig
    text: str
    def __init__(self, config: _Optional[_Union[StreamingTranslateConfig, _Mapping]] = ..., text: _Optional[str] = ...) -> None: ...

class StreamingTranslateResponse(_message.Message):
    __slots__ = ("translation", "source_text", "index")
    TRANSLATION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TEXT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    translation: Translation
    source_text: str
    index: int
    def __init__(self, translation: _Optional[_Union[Translation, _Mapping]] = ..., source_text: _Optional[str] = ..., index: _Optional[int] = ...) -> None: ...

class TranslateDocumentRequest(_message.Message):
    __slots__ = ("content", "format", "file_name", "mime_type", "options", "pdf_output_format")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PDF_OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    format: DocumentFormat
    file_name: str
    mime_type: str
    options: TranslationOptions
    pdf_output_format: DocumentFormat
    def __init__(self, content: _Optional[bytes] = ..., format: _Optional[_Union[DocumentFormat, str]] = ..., file_name: _Optional[str] = ..., mime_type: _Optional[str] = ..., options: _Optional[_Union[TranslationOptions, _Mapping]] = ..., pdf_output_format: _Optional[_Union[DocumentFormat, str]] = ...) -> None: ...

class TranslateDocumentResponse(_message.Message):
    __slots__ = ("content", "format", "mime_type", "file_name", "detected_source_language", "segments_translated", "characters", "notes", "anonymization")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    DETECTED_SOURCE_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_TRANSLATED_FIELD_NUMBER: _ClassVar[int]
    CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    ANONYMIZATION_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    format: DocumentFormat
    mime_type: str
    file_name: str
    detected_source_language: str
    segments_translated: int
    characters: int
    notes: _containers.RepeatedScalarFieldContainer[str]
    anonymization: _anonymization_pb2.AnonymizationSummary
    def __init__(self, content: _Optional[bytes] = ..., format: _Optional[_Union[DocumentFormat, str]] = ..., mime_type: _Optional[str] = ..., file_name: _Optional[str] = ..., detected_source_language: _Optional[str] = ..., segments_translated: _Optional[int] = ..., characters: _Optional[int] = ..., notes: _Optional[_Iterable[str]] = ..., anonymization: _Optional[_Union[_anonymization_pb2.AnonymizationSummary, _Mapping]] = ...) -> None: ...

class ListLanguagesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LanguagePair(_message.Message):
    __slots__ = ("source_language", "target_language", "model", "pivot")
    SOURCE_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PIVOT_FIELD_NUMBER: _ClassVar[int]
    source_language: str
    target_language: str
    model: str
    pivot: bool
    def __init__(self, source_language: _Optional[str] = ..., target_language: _Optional[str] = ..., model: _Optional[str] = ..., pivot: _Optional[bool] = ...) -> None: ...

class ListLanguagesResponse(_message.Message):
    __slots__ = ("pairs", "detectable_languages")
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    DETECTABLE_LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    pairs: _containers.RepeatedCompositeFieldContainer[LanguagePair]
    detectable_languages: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pairs: _Optional[_Iterable[_Union[LanguagePair, _Mapping]]] = ..., detectable_languages: _Optional[_Iterable[str]] = ...) -> None: ...
