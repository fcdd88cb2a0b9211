"""OpenAI-compatible REST facade, so OpenAI clients and Albert API can use parlons.

Same process as the gRPC gateway, its own port, the same tenants (bearer keys), quotas
and backends. Endpoints:

* `GET /v1/models`: the transcription models served (plus aliases such as whisper-1).
* `POST /v1/audio/transcriptions`: multipart (`file`, `model`, `language`, `prompt`,
  `response_format` = json | text | srt | vtt | verbose_json | diarized_json,
  `temperature`, `timestamp_granularities[]` = word | segment).
* `POST /v1/audio/translations`: speech to English text (OpenAI's meaning); parlons
  transcribes then translates with its translation service (whisper's own translate
  task when no translation service is configured). `target_language` (an extension)
  asks for another language.

Uploads are read into memory part by part (aiohttp's `request.post()` would spool files
to a temporary file on disk, which the privacy rules forbid), at most MAX_FORM_PARTS
parts, each option at most MAX_FIELD_BYTES; the key (and the tenant's audio debt) is
checked before the body is read. Errors have OpenAI's shape:
`{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import json
import logging
import math
import string
import time
from dataclasses import dataclass, field
from typing import Any, cast
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import BodyPartReader, MultipartReader, StreamReader, web

from parlons import transcripts
from parlons.services.common.audio_request import UploadBuffer
from parlons.services.common.config import GatewaySettings
from parlons.services.common.context import REQUEST_ID_HEADER, new_request_id, request_id_var, valid_request_id
from parlons.language_names import code_of, language_name
from parlons.languages import primary, tag_of_whisper
from parlons.errors import InvalidArgument, NotFound, ParlonsError, ResourceExhausted, Status
from parlons.services.gateway.auth import Authenticator, peercert_names
from parlons.services.gateway.core import Call, GatewayCore
from parlons.services.gateway.quotas import estimate_audio_seconds
from parlons.services.gateway.routing import CallOptions
from parlons import anonymized
from parlons.v1 import anonymization_pb2, audio_pb2, diarization_pb2, gateway_pb2, transcription_pb2

log = logging.getLogger("parlons.gateway.rest")

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json")
TRANSLATION_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
_MODELS_CACHE_S = 10.0
_PUNCTUATION = string.punctuation.replace("'", "") + "«»¿¡…“”„‘’"

_HTTP_STATUS = {
    Status.INVALID_ARGUMENT: (400, "invalid_request_error"),
    Status.NOT_FOUND: (404, "invalid_request_error"),
    Status.UNAUTHENTICATED: (401, "invalid_request_error"),
    Status.PERMISSION_DENIED: (403, "invalid_request_error"),
    Status.RESOURCE_EXHAUSTED: (429, "requests"),
    Status.FAILED_PRECONDITION: (400, "invalid_request_error"),
    Status.UNAVAILABLE: (503, "server_error"),
    Status.DEADLINE_EXCEEDED: (504, "server_error"),
    Status.CANCELLED: (499, "server_error"),
    Status.UNIMPLEMENTED: (501, "server_error"),
}
_CODES = {
    401: "invalid_api_key",
    404: "not_found",
    429: "rate_limit_exceeded",
}


def error_response(status: int, message: str, *, kind: str = "invalid_request_error",
                   param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None, retry_after_s: float | None = None) -> web.Response:
    """OpenAI's error shape. A refusal to retry later also carries its delay in the body
    (`retry_after_s`, and in the message): a gateway in front, OpenGateLLM among them,
    passes the body on but drops the `Retry-After` header."""
    error: dict[str, Any] = {"message": message, "type": kind, "param": param, "code": code or _CODES.get(status)}
    if retry_after_s is not None:
        seconds = max(1, math.ceil(retry_after_s))
        error["retry_after_s"] = seconds
        headers = {**(headers or {}), "Retry-After": str(seconds)}
        if "retry in" not in message:
            error["message"] = f"{message.rstrip('. ')}; retry in {seconds} s"
    return json_response({"error": error}, status=status, headers=headers)


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer whose Content-Type is exactly `application/json`: OpenGateLLM parses a
    provider's answer as JSON only on that exact string (a `; charset=utf-8` suffix, which
    aiohttp's json_response adds, makes it pass the body on as text). JSON is UTF-8 by
    definition (RFC 8259), so the parameter says nothing a reader needs."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return web.Response(body=data, status=status, headers=headers, content_type="application/json")


@dataclass(frozen=True)
class ServedModels:
    models: dict[str, list[str]]  # served model -> its aliases
    default: str
    languages: dict[str, frozenset[str]]  # model -> the BCP-47 tags it transcribes


@dataclass
class Form:
    """A parsed multipart body: the file, and every other field as strings."""

    file: bytes = b""
    filename: str = ""
    fields: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[-1] if values else default

    def get_all(self, name: str) -> list[str]:
        return self.fields.get(name, []) + self.fields.get(f"{name}[]", [])


# A transcription form is a file and a dozen options: more parts, or an option longer
# than a page, is not a client of this endpoint. aiohttp parses parts and header lines
# in Python on the event loop (400,000 empty fields, 22 MB, took 34 s of gateway CPU and
# every health check failed meanwhile), so what it parses per request is bounded.
MAX_FORM_PARTS = 64
MAX_FIELD_BYTES = 64 * 1024
MAX_PART_HEADERS = 32
# Lines read one by one (preamble, boundaries, part headers); file contents are read in
# chunks and do not count.
MAX_FORM_LINES = MAX_FORM_PARTS * (MAX_PART_HEADERS + 2) + 64


class _CountedLines:
    """The body stream, its line reads counted: each is a turn of aiohttp's parser in
    Python, and a preamble of millions of empty lines would hold the event loop."""

    def __init__(self, stream: StreamReader, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.lines = 0

    async def readline(self, *args: Any, **kwargs: Any) -> bytes:
        self.lines += 1
        if self.lines > self._limit:
            raise InvalidArgument(
                f"malformed multipart body: more than {self._limit} lines of preamble, boundaries "
                "and part headers; send the file and its options as form fields only")
        return await self._stream.readline(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


async def read_form(request: web.Request, max_bytes: int, *, max_parts: int = MAX_FORM_PARTS,
                    max_field_bytes: int = MAX_FIELD_BYTES) -> Form:
    """The multipart body, parts and option sizes bounded (see MAX_FORM_PARTS)."""
    if request.content_type != "multipart/form-data":
        raise InvalidArgument(
            f"expected a multipart/form-data body with a `file` field, got {request.content_type or 'no content type'}"
        )
    form = Form()
    total = 0
    parts = 0
    try:
        content = cast(StreamReader, _CountedLines(request.content, MAX_FORM_LINES))
        reader = MultipartReader(request.headers, content, max_headers=MAX_PART_HEADERS)
        while (part := await reader.next()) is not None:
            parts += 1
            if parts > max_parts:
                raise InvalidArgument(
                    f"the form has more than {max_parts} parts; this endpoint reads at most {max_parts} "
                    "(the file and its options)")
            if not isinstance(part, BodyPartReader):
                raise InvalidArgument("nested multipart bodies are not supported")
            name = part.name or ""
            limit = max_bytes - total if name == "file" else min(max_field_bytes, max_bytes - total)
            buffer = UploadBuffer(limit, _part_too_large(name, limit == max_field_bytes, max_bytes))
            while chunk := await part.read_chunk(1 << 16):
                buffer.append(chunk)
            total += len(buffer)
            data = buffer.take()
            if name == "file":
                form.file = data
                form.filename = part.filename or ""
            else:
                form.fields.setdefault(name, []).append(data.decode("utf-8", errors="replace"))
    except (ParlonsError, _TooLarge):
        raise
    except Exception as exc:
        raise InvalidArgument(f"malformed multipart body: {exc or type(exc).__name__}") from exc
    if not form.file:
        raise InvalidArgument("the `file` field is missing or empty: send the audio as multipart field `file`",
                              field="audio")
    return form


def _part_too_large(name: str, field_limit: bool, max_bytes: int) -> Callable[[int], Exception]:
    """The 413 for a part over its limit: an option's own (named), or the upload's."""

    def error(limit: int) -> Exception:
        if name != "file" and field_limit:
            return _TooLarge(f"the form field `{name[:64]}` is larger than {limit // 1024} KiB, "
                             "the limit of a field other than `file`", param=name[:64] or None)
        return _TooLarge(f"the upload is larger than {max_bytes // (1 << 20)} MiB")

    return error


class _TooLarge(Exception):
    """A body, or one of its fields, over its limit: 413 with this message."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RestFacade:
    def __init__(self, core: GatewayCore, auth: Authenticator, settings: GatewaySettings) -> None:
        self.core = core
        self.auth = auth
        self.settings = settings
        self.max_upload_bytes = settings.rest_max_upload_mb * 1024 * 1024
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._models: tuple[float, ServedModels] | None = None
        self.app = web.Application(middlewares=[self._middleware], client_max_size=self.max_upload_bytes)
        self.app.router.add_get("/v1/models", self.list_models)
        self.app.router.add_get("/v1/models/{model}", self.get_model)
        self.app.router.add_post("/v1/audio/transcriptions", self.transcriptions)
        self.app.router.add_post("/v1/audio/translations", self.translations)
        self.app.router.add_get("/health", self.health)

    async def start(self, host: str, port: int, *, ssl_context: Any = None) -> int:
        # handler_cancellation: a client that hangs up cancels its backend calls.
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context, reuse_port=False)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None)
        self.port = sockets[0].getsockname()[1] if sockets else port
        log.info("REST facade listening", extra={"fields": {"address": f"{host}:{self.port}", "tls": bool(ssl_context)}})
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ plumbing

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if valid_request_id(given) else new_request_id()
        request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
        except ParlonsError as exc:
            status, kind = _HTTP_STATUS.get(exc.code, (500, "server_error"))
            retry = None
            if isinstance(exc, ResourceExhausted) or exc.code is Status.RESOURCE_EXHAUSTED:
                retry = exc.retry_after_s or 1.0
            response = error_response(status, exc.message, kind=kind, retry_after_s=retry,
                                      param=_form_field(getattr(exc, "field", "")))
        except _TooLarge as exc:
            status = 413
            response = error_response(413, exc.message, param=exc.param)
        except web.HTTPException as exc:
            status = exc.status
            response = error_response(exc.status, _http_error_message(request, exc))
        except Exception:
            log.exception("REST internal error")
            response = error_response(500, f"internal error; request id {request_id}", kind="server_error")
        response.headers[REQUEST_ID_HEADER] = request_id
        log.info("http", extra={"fields": {
            "method": request.method, "path": request.path, "status": status,
            "duration_s": round(time.perf_counter() - started, 4),
        }})
        return response

    def _call(self, request: web.Request) -> Call:
        transport = request.transport
        peercert = transport.get_extra_info("peercert") if transport is not None else None
        tenant = self.auth.from_headers(request.headers, peercert_names(peercert))
        timeout = self.settings.backend_timeout_s
        return Call(tenant, CallOptions.from_context(None, tenant.name, timeout))

    async def _served_models(self, call: Call) -> ServedModels:
        """What the transcription service serves (cached briefly): each model with its
        aliases (the default model carries `rest_model_aliases`) and its languages."""
        now = time.monotonic()
        if self._models and now - self._models[0] < _MODELS_CACHE_S:
            return self._models[1]
        backend = self.core.router.get("transcription")
        response = await backend.unary(backend.stub.ListModels, transcription_pb2.ListModelsRequest(), call.options)
        served = [response.default_model] if response.default_model else []
        served += [m.name for m in response.models if m.loaded and m.name not in served]
        models: dict[str, list[str]] = {name: [] for name in served}
        if served:
            models[served[0]] = [a for a in self.settings.rest_model_aliases if a not in models]
        languages = {m.name: frozenset(m.languages) for m in response.models if m.name in models}
        result = ServedModels(models, response.default_model, languages)
        self._models = (now, result)
        return result

    async def _model_option(self, call: Call, requested: str) -> tuple[str, frozenset[str]]:
        """The transcription model for the request ("" for the default, which aliases
        name) and the languages it knows (empty: not listed, the service judges)."""
        served = await self._served_models(call)
        if not requested or requested in self.settings.rest_model_aliases or requested == served.default:
            return "", served.languages.get(served.default, frozenset())
        if requested not in served.models:
            raise NotFound(f"the model {requested!r} does not exist here; GET /v1/models lists: "
                           f"{', '.join(_ids(served.models))}", field="model")
        return requested, served.languages.get(requested, frozenset())

    def _check_duration(self, data: bytes) -> None:
        """Refuse at once a recording longer than `rest_max_audio_s` (its header says):
        behind a proxy with a timeout, a 400 that says where to go beats a 504 later."""
        limit = self.settings.rest_max_audio_s
        if limit <= 0:
            return
        seconds = estimate_audio_seconds(data, audio_pb2.AudioConfig())
        if seconds is not None and seconds > limit:
            raise InvalidArgument(
                f"the recording lasts {seconds / 60:.0f} min; this endpoint takes up to {limit / 60:g} min "
                "(rest_max_audio_s). Send longer recordings to parlons directly: `parlons transcribe "
                "--server …` or the gRPC TranscribeUpload, which have no such limit", field="audio")

    # ------------------------------------------------------------------ endpoints

    async def health(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def list_models(self, request: web.Request) -> web.Response:
        call = self._call(request)
        models = (await self._served_models(call)).models
        return json_response({"object": "list", "data": [_model_entry(m, a) for m, a in models.items()]})

    async def get_model(self, request: web.Request) -> web.Response:
        call = self._call(request)
        models = (await self._served_models(call)).models
        wanted = request.match_info["model"]
        for model, aliases in models.items():
            if wanted == model or wanted in aliases:
                return json_response(_model_entry(model, aliases))
        raise NotFound(f"the model {wanted!r} does not exist here")

    def _options(self, form: Form, model: tuple[str, frozenset[str]]) -> transcription_pb2.TranscriptionOptions:
        if _truthy(form.get("stream")):
            raise InvalidArgument(
                "stream=true is not served here: send the request without `stream` for the whole "
                "transcript at once, or use parlons' gRPC StreamingTranscribe for live audio",
                field="stream")
        language = code_of(form.get("language"))
        if language is None:
            raise InvalidArgument(
                f"language {form.get('language')!r} is neither a language code (fr, en, ar...) nor a "
                "language name (french, english, arabic...)", field="language")
        name, known = model
        tag = tag_of_whisper(primary(language))
        if language and known and tag not in known:
            raise InvalidArgument(
                f"language {form.get('language')!r} ({language_name(tag)}) is not one the model "
                f"{name or 'served by default'} transcribes; leave `language` out to have it detected, "
                "or see GET /v1/models for the models served", field="language")
        options = transcription_pb2.TranscriptionOptions(
            model=name, language=language, initial_prompt=form.get("prompt"),
        )
        temperature = form.get("temperature").strip()
        if temperature:
            try:
                value = float(temperature)
            except ValueError:
                raise InvalidArgument(f"temperature must be a number, got {temperature!r}",
                                      field="temperature") from None
            if not 0.0 <= value <= 1.0:
                raise InvalidArgument(f"temperature must be between 0 and 1, got {value:g}", field="temperature")
            if value > 0:
                options.temperatures.append(value)
        return options

    async def _admitted(self, request: web.Request) -> Call:
        """The caller, authenticated and not in audio debt, before its body is read."""
        call = self._call(request)
        await self.core.quotas.check_audio(call.tenant)
        return call

    async def transcriptions(self, request: web.Request) -> web.Response:
        call = await self._admitted(request)
        form = await read_form(request, self.max_upload_bytes)
        fmt = _response_format(form, RESPONSE_FORMATS)
        granularities = set(form.get_all("timestamp_granularities")) or {"segment"}
        unknown = granularities - {"word", "segment"}
        if unknown:
            raise InvalidArgument(f"timestamp_granularities takes word and/or segment, got {', '.join(sorted(unknown))}",
                                  field="timestamp_granularities")
        self._check_duration(form.file)
        options = self._options(form, await self._model_option(call, form.get("model").strip()))
        options.word_timestamps = "word" in granularities
        anonymization = _anonymization(form)
        if fmt == "diarized_json":
            return await self._diarized(call, form, options, anonymization)
        response = await self.core.transcribe(call, form.file, audio_pb2.AudioConfig(), options)
        if anonymization is not None:
            await self.core.anonymize_timed(call, response.segments, anonymization, response.language)
            response.text = anonymized.joined_text(response.segments)
        return _render(response, fmt, "transcribe", granularities)

    async def _diarized(self, call: Call, form: Form, options: transcription_pb2.TranscriptionOptions,
                        anonymization: anonymization_pb2.AnonymizationOptions | None) -> web.Response:
        diarization = diarization_pb2.DiarizationOptions(mode=diarization_pb2.NEURAL)
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            setattr(diarization, name, _speaker_count(form, name))
        request = gateway_pb2.TranscribeConversationRequest(transcription=options, diarization=diarization)
        if anonymization is not None:
            request.anonymization.CopyFrom(anonymization)
        conversation = await self.core.transcribe_conversation(call, request, form.file)
        labels: dict[str, str] = {}
        segments = []
        for i, turn in enumerate(conversation.turns):
            label = labels.setdefault(turn.speaker, _speaker_letter(len(labels)))
            segments.append({
                # The index written as a string: OpenAI's schema types `id` as a string,
                # OpenGateLLM's as an integer (its pydantic model reads "3" as 3).
                "type": "transcript.text.segment", "id": str(i), "start": round(turn.start_s, 3),
                "end": round(turn.end_s, 3), "text": turn.text, "speaker": label,
            })
        return json_response({
            "task": "transcribe",
            "duration": round(conversation.audio_duration_s, 3),
            "text": " ".join(t.text for t in conversation.turns),
            "segments": segments,
            "usage": _duration_usage(conversation.audio_duration_s),
        })

    async def translations(self, request: web.Request) -> web.Response:
        call = await self._admitted(request)
        form = await read_form(request, self.max_upload_bytes)
        fmt = _response_format(form, TRANSLATION_FORMATS)
        self._check_duration(form.file)
        options = self._options(form, await self._model_option(call, form.get("model").strip()))
        target = form.get("target_language", "en").strip() or "en"
        if not self.core.router.has("translation") and target == "en":
            options.task = transcription_pb2.TRANSLATE_TO_ENGLISH
            response = await self.core.transcribe(call, form.file, audio_pb2.AudioConfig(), options)
            response.language = "en"
            return _render(response, fmt, "translate", {"segment"})
        speech_request = gateway_pb2.TranslateSpeechRequest(transcription=options, target_language=target)
        anonymization = _anonymization(form)
        if anonymization is not None:
            speech_request.anonymization.CopyFrom(anonymization)
        speech = await self.core.translate_speech(call, speech_request, form.file)
        translated = transcription_pb2.TranscribeResponse(
            text=speech.translated_text, language=speech.target_language, audio_duration_s=speech.audio_duration_s
        )
        for segment, text in zip(speech.segments, speech.translated_segments):
            copy = translated.segments.add()
            copy.CopyFrom(segment)
            copy.text = text
            del copy.words[:]  # timings of source words do not fit the translation
        return _render(translated, fmt, "translate", {"segment"})


ANONYMIZATION_POLICIES = anonymized.POLICIES


def _anonymization(form: Form) -> anonymization_pb2.AnonymizationOptions | None:
    """parlons' extra form fields: `anonymize=true` masks personal data in the text
    returned (and before translation); `anonymize_policy` placeholder, redact or pseudonym."""
    policy = form.get("anonymize_policy").strip()
    flag = form.get("anonymize").strip().lower()
    if flag not in ("", "true", "1", "yes", "on", "false", "0", "no", "off"):
        raise InvalidArgument(f"anonymize must be true or false, got {flag!r}", field="anonymize")
    if not _truthy(flag) and not policy:
        return None
    if policy and policy not in ANONYMIZATION_POLICIES:
        raise InvalidArgument(f"anonymize_policy must be one of {', '.join(ANONYMIZATION_POLICIES)}, got {policy!r}",
                              field="anonymize_policy")
    return anonymization_pb2.AnonymizationOptions(policy=ANONYMIZATION_POLICIES[policy or "placeholder"])


def _http_error_message(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status in (404, 405):
        return (f"{request.method} {request.path} is not served here ({exc.reason}); this facade serves "
                "GET /v1/models, POST /v1/audio/transcriptions and POST /v1/audio/translations")
    return exc.reason or "error"


def _model_entry(model_id: str, aliases: list[str]) -> dict[str, Any]:
    """OpenAI's model object, with what OpenGateLLM's probe reads for each provider type
    (clients/opengatellm.py): `aliases` (albert, openai), `max_context_length` and vLLM's
    `max_model_len`, which it requires. Null: no token context applies to a speech route
    (Whisper keeps the end of a long prompt itself), so providers of one router agree."""
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "parlons",
            "type": "automatic-speech-recognition", "aliases": aliases, "max_context_length": None,
            "max_model_len": None}


def _ids(models: dict[str, list[str]]) -> list[str]:
    return [name for model, aliases in models.items() for name in (model, *aliases)]


def _response_format(form: Any, allowed: Sequence[str]) -> str:
    """The form's `response_format` (default json), one of `allowed`."""
    fmt: str = form.get("response_format", "json").strip() or "json"
    if fmt not in allowed:
        raise InvalidArgument(f"response_format must be one of {', '.join(allowed)}, got {fmt!r}",
                              field="response_format")
    return fmt


def _form_field(grpc_field: str) -> str | None:
    """The multipart field for a gRPC request field ("audio" is the `file`)."""
    if not grpc_field:
        return None
    name = grpc_field.removeprefix("options.").removeprefix("transcription.")
    return "file" if name == "audio" else name


# The most speakers a diarized_json request may name (a meeting, not a crowd).
MAX_SPEAKERS = 100


def _speaker_count(form: Form, name: str) -> int:
    """A speaker count field: ASCII digits from 0 to MAX_SPEAKERS (0 or absent: not set).
    str.isdigit alone accepts "²" (which int() refuses) and any length (which the
    proto's int32 refuses): both were a 500."""
    value = form.get(name).strip()
    if not value:
        return 0
    if not (value.isascii() and value.isdigit() and len(value) <= 3 and int(value) <= MAX_SPEAKERS):
        raise InvalidArgument(f"{name} must be a whole number from 0 to {MAX_SPEAKERS}, got {value[:20]!r}",
                              field=name)
    return int(value)


def _duration_usage(seconds: float) -> dict[str, Any]:
    """OpenAI's usage of a transcription billed by duration (whole seconds, rounded up)."""
    return {"type": "duration", "seconds": math.ceil(seconds)}


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "on")


def _speaker_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _render(response: transcription_pb2.TranscribeResponse, fmt: str, task: str, granularities: set[str]) -> web.Response:
    text = response.text.strip()
    if fmt == "text":
        return web.Response(text=text + "\n", content_type="text/plain")
    if fmt == "srt":
        return web.Response(text=transcripts.to_srt(transcripts.cues_from_segments(response.segments)), content_type="text/plain")
    if fmt == "vtt":
        return web.Response(text=transcripts.to_vtt(transcripts.cues_from_segments(response.segments)), content_type="text/vtt")
    usage = _duration_usage(response.audio_duration_s)
    if fmt == "json":
        return json_response({"text": text, "usage": usage})
    body: dict[str, Any] = {
        "task": task,
        "language": language_name(response.language),
        "duration": round(response.audio_duration_s, 3),
        "text": text,
        "usage": usage,
    }
    if "segment" in granularities:
        body["segments"] = [
            {
                "id": s.id, "seek": 0, "start": round(s.start_s, 3), "end": round(s.end_s, 3), "text": s.text,
                "tokens": [], "temperature": 0.0, "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio, "no_speech_prob": s.no_speech_prob,
            }
            for s in response.segments
        ]
    if "word" in granularities:
        # Like OpenAI's: words without the punctuation whisper attaches to them.
        body["words"] = [
            {"word": word, "start": round(w.start_s, 3), "end": round(w.end_s, 3)}
            for s in response.segments for w in s.words
            if (word := w.word.strip().strip(_PUNCTUATION))
        ]
    return json_response(body)


__all__ = ["RestFacade", "read_form", "error_response"]
