"""Server configuration: typed defaults, overridden by a TOML file, then by environment.

One structure for every service so that `parlons serve` (all services in one process)
and split deployments read the same file. Environment variables win over the file so a
container can change one value without a new file: `PARLONS_<SECTION>_<KEY>`, e.g.
`PARLONS_SERVER_PORT=50052`, `PARLONS_TRANSCRIPTION_MODEL=small`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from parlons.errors import InvalidArgument


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 50051
    # Largest request/response message; whole-file RPCs are bounded by it.
    max_message_mb: int = 64
    # Prometheus metrics on this HTTP port; 0 = disabled. Metrics carry tenant names and
    # are not authenticated: loopback unless metrics_host opens them (then restrict who
    # reaches the port, e.g. a Kubernetes NetworkPolicy for Prometheus only).
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    # Seconds in-flight calls get to finish on SIGTERM.
    grace_s: float = 30.0
    # On SIGTERM, health says NOT_SERVING this long before new calls are refused, so that
    # balancers (the gateway's health checks, Kubernetes readiness) move away first.
    shutdown_delay_s: float = 2.0
    tls_cert: str = ""
    tls_key: str = ""
    # When set, clients must present a certificate signed by this CA (mTLS).
    tls_client_ca: str = ""
    # A backend honours x-parlons-tenant only from the gateway: its client certificate's
    # CN/SAN is one of these (mTLS), or it sends this secret (x-parlons-gateway-secret).
    # require_gateway: refuse every other caller (UNAUTHENTICATED). See gateway_trust.py.
    trusted_gateway_identities: list[str] = field(default_factory=list)
    gateway_secret: str = ""
    require_gateway: bool = False
    log_level: str = "INFO"
    log_json: bool = True
    # Every client stream (live audio, live translation, uploads): closed with
    # OUT_OF_RANGE after this long without a message, or this long open (0 = no bound).
    stream_idle_timeout_s: float = 60.0
    stream_max_duration_s: float = 4 * 3600.0
    # gRPC server reflection (grpcurl, buf curl list every service without the protos). It
    # answers without a key: unset, on only when `host` is loopback; true/false to choose.
    reflection: bool | None = None


@dataclass
class TranscriptionSettings:
    enabled: bool = True
    # Catalog name or model directory; "auto": multilingual `base` on a CPU,
    # `large-v3-turbo` on a GPU when it is installed (else `base`). French first: an
    # English-only model (tiny.en) is used only when named.
    model: str = "auto"
    device: str = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 0
    # Parallel decodes inside CTranslate2 (one model copy).
    num_workers: int = 1
    # Requests decoded at once; more wait in the queue.
    max_concurrent: int = 1
    # Requests waiting beyond the running ones before RESOURCE_EXHAUSTED.
    max_queued: int = 8
    # Longest audio accepted in one request, in seconds.
    max_audio_s: float = 4 * 3600.0
    # Decoded samples one request may hold (float32, all kept channels), in MiB.
    max_decoded_mb: int = 1024
    # Largest client-streamed upload (Upload RPCs), in MiB: 4 h of 16-bit stereo WAV is 920.
    max_upload_mb: int = 1024
    # Live streams served at once; more are refused with RESOURCE_EXHAUSTED and
    # RetryInfo (the gateway opens them on another replica). 0: derived from the
    # model and device (docs/benchmarks.md, bench_capacity.py).
    max_streams: int = 0
    # Every live session's decodes go through one scheduler that batches them across
    # sessions (finals first, oldest first); off: each session calls the model alone.
    live_batching: bool = True
    # Most decodes in one model call, and how long the scheduler waits for more once
    # one is ready (milliseconds).
    live_batch_max: int = 8
    live_batch_wait_ms: float = 5.0
    # Live finals, overriding StreamingConfig's defaults (streaming.py, where each is
    # explained; None keeps them): the early final decode starts after
    # `live_early_final_ms` of pause (`live_early_final_busy_ms` while the scheduler is
    # congested); semantic end-pointing after `live_sentence_end_ms` (0: off); no
    # interim once the pause has lasted `live_interim_pause_ms` (0: off).
    live_early_final_ms: int | None = None
    live_early_final_busy_ms: int | None = None
    live_sentence_end_ms: int | None = None
    live_interim_pause_ms: int | None = None
    # Batched pipeline: "auto" (GPU only), "on", "off".
    batched: str = "auto"
    batch_size: int = 8
    # Silero VAD before decoding when a request does not say (see docs/transcription.md).
    vad_filter_default: bool = True
    # Dynamic audio context: clips under 30 s encoded in a window cut to their length
    # plus `window_pad_s`, never below `window_floor_s` (docs/transcription.md).
    dynamic_context: bool = True
    window_floor_s: float = 3.0
    window_pad_s: float = 0.5
    # Language identification runs in a window of at least this (it needs more context).
    window_language_floor_s: float = 15.0
    # Live finals in the cut window too. Off by default: on the phone dialogue of
    # docs/benchmarks.md cut-window finals come 1 s sooner but lose 4 words of 81 that
    # the full window gets right; interims always use the cut window.
    dynamic_finals: bool = False


@dataclass
class DiarizationSettings:
    enabled: bool = True
    # Pipeline config file; empty = the packaged default.
    pipeline_config: str = ""
    device: str = "auto"
    max_concurrent: int = 1
    max_queued: int = 8
    max_audio_s: float = 4 * 3600.0
    # Decoded samples one request may hold (float32, all kept channels), in MiB.
    max_decoded_mb: int = 1024
    # Largest client-streamed upload (Upload RPCs), in MiB: 4 h of 16-bit stereo WAV is 920.
    max_upload_mb: int = 1024


@dataclass
class TranslationSettings:
    enabled: bool = True
    # Model directories or catalog names, one per pair or multilingual.
    models: list[str] = field(default_factory=list)
    device: str = "auto"
    compute_type: str = "auto"
    # Micro-batching window and size.
    batch_wait_ms: float = 5.0
    max_batch_tokens: int = 4096
    max_chars_per_request: int = 100_000
    max_document_mb: int = 20
    max_pdf_pages: int = 200
    max_document_chars: int = 1_000_000
    # Reading one document (before translating it): time budget, and how many at once.
    document_time_budget_s: float = 60.0
    max_concurrent_documents: int = 2
    max_queued_documents: int = 8
    beam_size: int = 2
    # CTranslate2 threads: translations run in parallel x threads each.
    inter_threads: int = 1
    intra_threads: int = 0
    # Sentences waiting in the micro-batcher before RESOURCE_EXHAUSTED.
    max_pending_sentences: int = 20_000
    # Tenant glossaries: <dir>/<tenant>/<name>.json (tenant from x-parlons-tenant).
    glossaries_dir: str = ""
    detect_language: bool = True
    pivot_language: str = "en"
    max_streams: int = 64
    max_stream_in_flight: int = 32
    # Glossary entries one request may carry: as many as a tenant glossary, which the
    # gateway sends inline (its own clients are held to gateway.max_request_glossary_entries).
    max_request_glossary_entries: int = 10_000


@dataclass
class AnonymizationSettings:
    enabled: bool = True
    # "lang=model" pairs: the spaCy pipeline (catalog name or directory) that finds person
    # names in that language. Other languages get the rule recognisers only, and the
    # response says names were not checked.
    ner_models: list[str] = field(default_factory=lambda: ["fr=spacy-fr-core-news-md"])
    # One request: characters over all its texts, and how many texts.
    max_chars_per_request: int = 200_000
    max_texts: int = 10_000
    # Seconds one request (or document) may take once it runs; INVALID_ARGUMENT beyond.
    time_budget_s: float = 60.0
    max_concurrent: int = 2
    max_queued: int = 16
    # Server-wide terms always masked / never masked (a request adds its own).
    always_mask: list[str] = field(default_factory=list)
    never_mask: list[str] = field(default_factory=list)


@dataclass
class GatewaySettings:
    """The gateway: backends, tenants, REST facade (see docs/gateway.md)."""

    enabled: bool = True
    # Backend replicas per service: "host:port" entries (one replica each; names are
    # resolved at start), or one gRPC target such as "dns:///transcription:50051" whose
    # records are the replicas. Empty = the services running in this process.
    transcription: list[str] = field(default_factory=list)
    diarization: list[str] = field(default_factory=list)
    translation: list[str] = field(default_factory=list)
    anonymization: list[str] = field(default_factory=list)
    # TLS towards the backends: CA that signed their certificates (empty = plaintext),
    # and a client certificate/key when they require mTLS.
    backend_ca: str = ""
    backend_cert: str = ""
    backend_key: str = ""
    # Sent to the backends (x-parlons-gateway-secret) when they trust the gateway by a
    # shared secret rather than by its client certificate.
    backend_secret: str = ""
    # Attempts for an idempotent call, each on the next healthy replica.
    backend_attempts: int = 3
    # Deadline for backend calls when the client sets none (0 = none).
    backend_timeout_s: float = 0.0
    # "auto": API keys when tenants_path is set, none when it is not and every listener
    # is on loopback; "api_key": keys (and mTLS identities) required; "none": no auth.
    auth: str = "auto"
    # Tenants file (TOML) or directory of *.toml files; reloaded when they change.
    tenants_path: str = ""
    tenants_reload_s: float = 2.0
    # Largest upload the gateway buffers (client-streamed RPCs), in MiB.
    max_upload_mb: int = 1024
    # Quota buckets shared by every gateway replica (redis://host:6379/0; empty = this
    # process only); Redis unreachable: "closed" refuses (UNAVAILABLE), "open" serves.
    quota_redis_url: str = ""
    quota_redis_failure: str = "closed"
    quota_redis_timeout_s: float = 0.5
    # What one client request may ask: target languages (TranscribeConversation) and
    # glossary entries of its own (tenant glossaries, named, are not counted).
    max_target_languages: int = 8
    max_request_glossary_entries: int = 1000
    # OpenAI-compatible REST facade (same process, own port; 0 = any free port).
    rest_enabled: bool = True
    rest_host: str = ""
    rest_port: int = 8080
    rest_max_upload_mb: int = 512
    # Longest recording (s, from its header) the REST facade takes; 0 = no limit. Behind
    # Albert API, whose provider timeout (300 s by default) would cut a long job with a
    # 504, a clear 400 pointing to the batch path is better (docs/gateway.md).
    rest_max_audio_s: float = 0.0
    # Extra model ids the REST facade answers to (OpenAI clients default to whisper-1).
    rest_model_aliases: list[str] = field(default_factory=lambda: ["whisper-1"])


@dataclass
class ParlonsConfig:
    server: ServerSettings = field(default_factory=ServerSettings)
    transcription: TranscriptionSettings = field(default_factory=TranscriptionSettings)
    diarization: DiarizationSettings = field(default_factory=DiarizationSettings)
    translation: TranslationSettings = field(default_factory=TranslationSettings)
    anonymization: AnonymizationSettings = field(default_factory=AnonymizationSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> ParlonsConfig:
    """Defaults, then the TOML file (if any), then PARLONS_* environment variables."""
    config = ParlonsConfig()
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidArgument(f"cannot read config file {path}: {exc}") from exc
        _apply_mapping(config, data, origin=str(path))
    _apply_environment(config, os.environ if environ is None else environ)
    return config


def _sections(config: ParlonsConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def _apply_mapping(config: ParlonsConfig, data: Mapping[str, Any], origin: str) -> None:
    sections = _sections(config)
    for section_name, values in data.items():
        section = sections.get(section_name)
        if section is None or not isinstance(values, Mapping):
            raise InvalidArgument(f"{origin}: unknown section [{section_name}]")
        for key, value in values.items():
            _set_field(section, key, value, f"{origin}: [{section_name}] {key}")


def _apply_environment(config: ParlonsConfig, environ: Mapping[str, str]) -> None:
    for section_name, section in _sections(config).items():
        for f in dataclasses.fields(section):
            name = f"PARLONS_{section_name}_{f.name}".upper()
            if name in environ:
                _set_field(section, f.name, environ[name], name)


def _set_field(section: Any, key: str, value: Any, where: str) -> None:
    hints = typing.get_type_hints(type(section))
    if key not in hints:
        raise InvalidArgument(f"{where}: unknown setting")
    setattr(section, key, _coerce(value, hints[key], where))


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """Turn a TOML or environment value into the field's type, with a clear error.
    `T | None`: an empty value is None (the default of whoever reads it)."""
    options = typing.get_args(kind)
    if type(None) in options and len(options) == 2:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        kind = next(option for option in options if option is not type(None))
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if kind is int:
            if isinstance(value, bool):
                raise ValueError("boolean given")
            return int(value)
        if kind is float:
            return float(value)
        if kind is str:
            return str(value)
        if typing.get_origin(kind) is list:
            if isinstance(value, str):
                return [item.strip() for item in value.split(",") if item.strip()]
            return [str(item) for item in value]
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{where}: {exc}") from exc
    raise InvalidArgument(f"{where}: unsupported setting type {kind}")
