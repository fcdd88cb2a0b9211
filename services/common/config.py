"""Server configuration: typed defaults, overridden by a TOML file, then by environment.

One structure for every service so that `parlons serve` (all services in one process)
and split deployments read the same file. Environment variables win over the file so a
container can change one value without a new file: `PARLONS_<SECTION>_<KEY>`, e.g.
`PARLONS_SERVER_PORT=50052`, `PARLONS_TRANSCRIPTION_MODEL=small`.

Every value is checked when the configuration loads, not when a model loads or a request
arrives: pydantic validates types, choices (`Literal`) and bounds, and an error names the
setting and where its value came from (the file and section, or the environment
variable). The sources stay the standard TOML reader and one fixed variable name per
setting, so the layout and the names of every deployment keep working. Settings changed
in code after loading (the in-process commands, tests) are validated on assignment too.
"""

from __future__ import annotations

import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from parlons.errors import InvalidArgument
from parlons.languages import is_tag, parse_tag

Port = Annotated[int, Field(ge=0, le=65535)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
# Seconds of a Whisper window: more than nothing, at most the model's 30 s.
WindowSeconds = Annotated[float, Field(gt=0, le=30)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# CTranslate2's compute types ("auto": the fastest the device supports, "default": the model's own).
ComputeType = Literal["auto", "default", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16",
                      "float16", "bfloat16", "float32"]
# PyTorch's devices for diarisation (a GPU by index too).
DiarizationDevice = Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$")]


def _language_tag(tag: str) -> str:
    if not is_tag(tag):
        raise ValueError("not a BCP-47 language tag (e.g. en, fr)")
    return parse_tag(tag)


Bcp47Tag = Annotated[str, AfterValidator(_language_tag)]


class Section(BaseModel):
    """One `[section]` of the file: unknown keys refused, values checked, also on assignment.

    From a TOML file or an environment variable, a list may be written "a, b" and an
    optional value may be left empty (None: the default of whoever reads it)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _from_text(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or info.field_name is None:
            return value
        kind = cls.model_fields[info.field_name].annotation
        options = typing.get_args(kind)
        if type(None) in options and not value.strip():
            return None
        if kind is list or typing.get_origin(kind) is list:
            return [item.strip() for item in value.split(",") if item.strip()]
        if info.field_name == "log_level":
            return value.strip().upper()
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        """A value set in code is checked as one read from a file (InvalidArgument, not a traceback)."""
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise InvalidArgument(_explain(exc, {}, prefix=f"{type(self).__name__}.")) from None


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: Port = 50051
    # Largest request/response message; whole-file RPCs are bounded by it.
    max_message_mb: Annotated[int, Field(ge=1, le=2047)] = 64
    # Prometheus metrics on this HTTP port; 0 = disabled. Metrics carry tenant names and
    # are not authenticated: loopback unless metrics_host opens them (then restrict who
    # reaches the port, e.g. a Kubernetes NetworkPolicy for Prometheus only).
    metrics_port: Port = 0
    metrics_host: str = "127.0.0.1"
    # Seconds in-flight calls get to finish on SIGTERM.
    grace_s: NonNegFloat = 30.0
    # On SIGTERM, health says NOT_SERVING this long before new calls are refused, so that
    # balancers (the gateway's health checks, Kubernetes readiness) move away first.
    shutdown_delay_s: NonNegFloat = 2.0
    tls_cert: str = ""
    tls_key: str = ""
    # When set, clients must present a certificate signed by this CA (mTLS).
    tls_client_ca: str = ""
    # A backend honours x-parlons-tenant only from the gateway: its client certificate's
    # CN/SAN is one of these (mTLS), or it sends this secret (x-parlons-gateway-secret).
    # require_gateway: refuse every other caller (UNAUTHENTICATED). See gateway_trust.py.
    trusted_gateway_identities: list[str] = Field(default_factory=list)
    gateway_secret: str = ""
    require_gateway: bool = False
    log_level: LogLevel = "INFO"
    log_json: bool = True
    # Every client stream (live audio, live translation, uploads): closed with
    # OUT_OF_RANGE after this long without a message, or this long open (0 = no bound).
    stream_idle_timeout_s: NonNegFloat = 60.0
    stream_max_duration_s: NonNegFloat = 4 * 3600.0
    # gRPC server reflection (grpcurl, buf curl list every service without the protos). It
    # answers without a key: unset, on only when `host` is loopback; true/false to choose.
    reflection: bool | None = None


class TranscriptionSettings(Section):
    enabled: bool = True
    # Catalog name or model directory; "auto": multilingual `base` on a CPU,
    # `large-v3-turbo` on a GPU when it is installed (else `base`). French first: an
    # English-only model (tiny.en) is used only when named.
    model: NonEmptyStr = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: ComputeType = "auto"
    cpu_threads: NonNegInt = 0
    # Parallel decodes inside CTranslate2 (one model copy).
    num_workers: PositiveInt = 1
    # Requests decoded at once; more wait in the queue.
    max_concurrent: PositiveInt = 1
    # Requests waiting beyond the running ones before RESOURCE_EXHAUSTED.
    max_queued: NonNegInt = 8
    # Longest audio accepted in one request, in seconds.
    max_audio_s: PositiveFloat = 4 * 3600.0
    # Decoded samples one request may hold (float32, all kept channels), in MiB.
    max_decoded_mb: PositiveInt = 1024
    # Largest client-streamed upload (Upload RPCs), in MiB: 4 h of 16-bit stereo WAV is 920.
    max_upload_mb: PositiveInt = 1024
    # Live streams served at once; more are refused with RESOURCE_EXHAUSTED and
    # RetryInfo (the gateway opens them on another replica). 0: derived from the
    # model and device (docs/benchmarks.md, bench_capacity.py).
    max_streams: NonNegInt = 0
    # Every live session's decodes go through one scheduler that batches them across
    # sessions (finals first, oldest first); off: each session calls the model alone.
    live_batching: bool = True
    # Most decodes in one model call, and how long the scheduler waits for more once
    # one is ready (milliseconds).
    live_batch_max: PositiveInt = 8
    live_batch_wait_ms: NonNegFloat = 5.0
    # Live finals, overriding StreamingConfig's defaults (streaming.py, where each is
    # explained; None keeps them): the early final decode starts after
    # `live_early_final_ms` of pause (`live_early_final_busy_ms` while the scheduler is
    # congested); semantic end-pointing after `live_sentence_end_ms` (0: off); no
    # interim once the pause has lasted `live_interim_pause_ms` (0: off).
    live_early_final_ms: NonNegInt | None = None
    live_early_final_busy_ms: NonNegInt | None = None
    live_sentence_end_ms: NonNegInt | None = None
    live_interim_pause_ms: NonNegInt | None = None
    # Batched pipeline: "auto" (GPU only), "on", "off".
    batched: Literal["auto", "on", "off"] = "auto"
    batch_size: PositiveInt = 8
    # Silero VAD before decoding when a request does not say (see docs/transcription.md).
    vad_filter_default: bool = True
    # Dynamic audio context: clips under 30 s encoded in a window cut to their length
    # plus `window_pad_s`, never below `window_floor_s` (docs/transcription.md).
    dynamic_context: bool = True
    window_floor_s: WindowSeconds = 3.0
    window_pad_s: NonNegFloat = 0.5
    # Language identification runs in a window of at least this (it needs more context).
    window_language_floor_s: WindowSeconds = 15.0
    # Seconds of live audio a stream may have waiting for its decoder; a client sending
    # faster than real time beyond it is refused with RESOURCE_EXHAUSTED.
    max_stream_buffer_s: PositiveFloat = 60.0
    # Live finals in the cut window too. Off by default: on the phone dialogue of
    # docs/benchmarks.md cut-window finals come 1 s sooner but lose 4 words of 81 that
    # the full window gets right; interims always use the cut window.
    dynamic_finals: bool = False


class DiarizationSettings(Section):
    enabled: bool = True
    # Pipeline config file; empty = the packaged default.
    pipeline_config: str = ""
    device: DiarizationDevice = "auto"
    max_concurrent: PositiveInt = 1
    max_queued: NonNegInt = 8
    max_audio_s: PositiveFloat = 4 * 3600.0
    # Decoded samples one request may hold (float32, all kept channels), in MiB.
    max_decoded_mb: PositiveInt = 1024
    # Largest client-streamed upload (Upload RPCs), in MiB: 4 h of 16-bit stereo WAV is 920.
    max_upload_mb: PositiveInt = 1024


class TranslationSettings(Section):
    enabled: bool = True
    # Model directories or catalog names, one per pair or multilingual.
    models: list[str] = Field(default_factory=list)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: ComputeType = "auto"
    # Micro-batching window and size.
    batch_wait_ms: NonNegFloat = 5.0
    max_batch_tokens: PositiveInt = 4096
    max_chars_per_request: PositiveInt = 100_000
    max_document_mb: PositiveInt = 20
    max_pdf_pages: PositiveInt = 200
    max_document_chars: PositiveInt = 1_000_000
    # Reading one document (before translating it): time budget, and how many at once.
    document_time_budget_s: PositiveFloat = 60.0
    max_concurrent_documents: PositiveInt = 2
    max_queued_documents: NonNegInt = 8
    beam_size: Annotated[int, Field(ge=1, le=16)] = 2
    # CTranslate2 threads: translations run in parallel x threads each.
    inter_threads: PositiveInt = 1
    intra_threads: NonNegInt = 0
    # Sentences waiting in the micro-batcher before RESOURCE_EXHAUSTED.
    max_pending_sentences: PositiveInt = 20_000
    # Tenant glossaries: <dir>/<tenant>/<name>.json (tenant from x-parlons-tenant).
    glossaries_dir: str = ""
    detect_language: bool = True
    pivot_language: Bcp47Tag = "en"
    max_streams: PositiveInt = 64
    max_stream_in_flight: PositiveInt = 32
    # Glossary entries one request may carry: as many as a tenant glossary, which the
    # gateway sends inline (its own clients are held to gateway.max_request_glossary_entries).
    max_request_glossary_entries: NonNegInt = 10_000


class AnonymizationSettings(Section):
    enabled: bool = True
    # "lang=model" pairs: the spaCy pipeline (catalog name or directory) that finds person
    # names in that language. Other languages get the rule recognisers only, and the
    # response says names were not checked.
    ner_models: list[str] = Field(default_factory=lambda: ["fr=spacy-fr-core-news-md"])
    # The learned recogniser beside the rules, French (docs/anonymization.md): "auto" uses
    # `counter-ner-fr` when it is in the model cache (scripts/train_counter_ner.py puts it
    # there), "off" never; a directory: that trained model, which must load.
    learned_model: str = "auto"
    # One request: characters over all its texts, and how many texts.
    max_chars_per_request: PositiveInt = 200_000
    max_texts: PositiveInt = 10_000
    # Seconds one request (or document) may take once it runs; INVALID_ARGUMENT beyond.
    time_budget_s: PositiveFloat = 60.0
    max_concurrent: PositiveInt = 2
    max_queued: NonNegInt = 16
    # Server-wide terms always masked / never masked (a request adds its own).
    always_mask: list[str] = Field(default_factory=list)
    never_mask: list[str] = Field(default_factory=list)


class GatewaySettings(Section):
    """The gateway: backends, tenants, REST facade (see docs/gateway.md)."""

    enabled: bool = True
    # Backend replicas per service: "host:port" entries (one replica each; names are
    # resolved at start), or one gRPC target such as "dns:///transcription:50051" whose
    # records are the replicas. Empty = the services running in this process.
    transcription: list[str] = Field(default_factory=list)
    diarization: list[str] = Field(default_factory=list)
    translation: list[str] = Field(default_factory=list)
    anonymization: list[str] = Field(default_factory=list)
    # TLS towards the backends: CA that signed their certificates (empty = plaintext),
    # and a client certificate/key when they require mTLS.
    backend_ca: str = ""
    backend_cert: str = ""
    backend_key: str = ""
    # Sent to the backends (x-parlons-gateway-secret) when they trust the gateway by a
    # shared secret rather than by its client certificate.
    backend_secret: str = ""
    # Attempts for an idempotent call, each on the next healthy replica.
    backend_attempts: PositiveInt = 3
    # Deadline for backend calls when the client sets none (0 = none).
    backend_timeout_s: NonNegFloat = 0.0
    # "auto": API keys when tenants_path is set, none when it is not and every listener
    # is on loopback; "api_key": keys (and mTLS identities) required; "none": no auth.
    auth: Literal["auto", "api_key", "none"] = "auto"
    # Tenants file (TOML) or directory of *.toml files; reloaded when they change.
    tenants_path: str = ""
    tenants_reload_s: PositiveFloat = 2.0
    # Largest upload the gateway buffers (client-streamed RPCs), in MiB.
    max_upload_mb: PositiveInt = 1024
    # Quota buckets shared by every gateway replica (redis://host:6379/0; empty = this
    # process only); Redis unreachable: "closed" refuses (UNAVAILABLE), "open" serves.
    quota_redis_url: str = ""
    quota_redis_failure: Literal["closed", "open"] = "closed"
    quota_redis_timeout_s: PositiveFloat = 0.5
    # What one client request may ask: target languages (TranscribeConversation) and
    # glossary entries of its own (tenant glossaries, named, are not counted).
    max_target_languages: PositiveInt = 8
    max_request_glossary_entries: NonNegInt = 1000
    # OpenAI-compatible REST facade (same process, own port; 0 = any free port).
    rest_enabled: bool = True
    rest_host: str = ""
    rest_port: Port = 8080
    rest_max_upload_mb: PositiveInt = 512
    # Longest recording (s, from its header) the REST facade takes; 0 = no limit. Behind
    # Albert API, whose provider timeout (300 s by default) would cut a long job with a
    # 504, a clear 400 pointing to the batch path is better (docs/gateway.md).
    rest_max_audio_s: NonNegFloat = 0.0
    # Extra model ids the REST facade answers to (OpenAI clients default to whisper-1).
    rest_model_aliases: list[str] = Field(default_factory=lambda: ["whisper-1"])


class ParlonsConfig(Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    transcription: TranscriptionSettings = Field(default_factory=TranscriptionSettings)
    diarization: DiarizationSettings = Field(default_factory=DiarizationSettings)
    translation: TranslationSettings = Field(default_factory=TranslationSettings)
    anonymization: AnonymizationSettings = Field(default_factory=AnonymizationSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> ParlonsConfig:
    """Defaults, then the TOML file (if any), then PARLONS_* environment variables."""
    values: dict[str, dict[str, Any]] = {}
    origins: dict[tuple[str, str], str] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidArgument(f"cannot read config file {path}: {exc}") from exc
        for section_name, section in data.items():
            if section_name not in ParlonsConfig.model_fields or not isinstance(section, Mapping):
                raise InvalidArgument(f"{path}: unknown section [{section_name}]")
            known = _section_type(section_name).model_fields
            for key, value in section.items():
                if key not in known:
                    raise InvalidArgument(f"{path}: [{section_name}] {key}: unknown setting")
                values.setdefault(section_name, {})[key] = value
                origins[(section_name, key)] = f"{path}: [{section_name}] {key}"
    environ = os.environ if environ is None else environ
    for section_name in ParlonsConfig.model_fields:
        for key in _section_type(section_name).model_fields:
            name = f"PARLONS_{section_name}_{key}".upper()
            if name in environ:
                values.setdefault(section_name, {})[key] = environ[name]
                origins[(section_name, key)] = name
    try:
        return ParlonsConfig.model_validate(values)
    except ValidationError as exc:
        raise InvalidArgument(_explain(exc, origins)) from None


def _section_type(name: str) -> type[Section]:
    kind = ParlonsConfig.model_fields[name].annotation
    assert isinstance(kind, type) and issubclass(kind, Section)
    return kind


def _explain(exc: ValidationError, origins: Mapping[tuple[str, str], str], prefix: str = "") -> str:
    """Each wrong value named by where it came from, with what was wrong and what it was."""
    lines = []
    for error in exc.errors(include_url=False):
        location = tuple(str(part) for part in error["loc"])
        key = (location[0], location[1]) if len(location) > 1 else (location[0], "")
        where = origins.get(key, prefix + ".".join(location))
        lines.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
    return "; ".join(lines)
