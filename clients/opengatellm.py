"""OpenGateLLM's side of the door: what the State's AI gateway does with a speech provider.

OpenGateLLM (etalab-ia/OpenGateLLM, ex albert-api) declares a provider under an
`automatic-speech-recognition` router, probes it once, then forwards its users'
`POST /v1/audio/transcriptions` to it. This module does the same requests and reads the
answers by the same rules, written from reading its code (not copied), newest versions
read 2026-12-07 (the commits are those of the store the files were read from):

- probe, `api/use_cases/services/_providercapabilitiesprobe.py` @0e812c66 and the models
  adapters `api/infrastructure/http/adapters/models/...` @233255516f93 (albert, openai)
  and @1481fd2a (vllm): `GET {url}/v1/models` with `Authorization: Bearer` when a key is
  set; the *first* entry whose `id` equals the name or whose `aliases` hold it;
  albert/openai read `id`, `aliases` (a list), `created` (int), `owned_by` (str),
  `max_context_length` (int or null); vllm reads `id`, `created`, `owned_by` and
  `max_model_len` (all four keys required) and no aliases;
- HTTP client, `api/infrastructure/http/_httpproviderclient.py` @1481fd2a: an answer is
  parsed as JSON only when its Content-Type is exactly `application/json`; a non-2xx
  status reaches OpenGateLLM's user with the same status and `{"detail": X}`, X being the
  body's top-level `message` when it has one, else the whole JSON body, else the text;
  the provider's headers (Retry-After) are dropped; a timeout or refused connection is
  answered 503 "Model is too busy, please try again later.";
- audio, `api/infrastructure/http/adapters/audio/_audiotranscriptionsadapter.py`
  @2764b7b3, `api/domain/audio/entities.py` and `api/infrastructure/fastapi/schemas/audio.py`
  @233255516f93: the form holds `model` (the provider's model name), `prompt` (always,
  "" by default), `response_format`, `temperature` (0 to 1) and `language` only when the
  user gave one (a lower-case code or English name from Whisper's table, as written);
  no `timestamp_granularities`, no `stream`; a JSON answer is validated with `id` and
  `model` set by OpenGateLLM (`text` a string, `usage` an object of numbers, later
  replaced by its own token count) and then re-validated for its user: `segments`
  null or a list whose items have an integer `id` ("3" passes, "seg_3" does not), a
  string `text`, numeric `start` and `end`, a string or null `speaker`; a validation
  failure there is an unhandled error, HTTP 500 for the user.

`parlons check-gateway` runs these against a parlons facade; tests/test_opengatellm_contract.py
runs them (and independent pydantic models of the same schema) in CI.
"""

from __future__ import annotations

import ast
import json
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

#: Provider types OpenGateLLM accepts under an automatic-speech-recognition router that
#: send the audio as parlons takes it (mistral sends it to /v1/chat/completions instead).
PROVIDER_TYPES = ("albert", "openai", "vllm")
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json")
JSON_FORMATS = ("json", "verbose_json", "diarized_json")
DEFAULT_TIMEOUT_S = 300  # a provider's `timeout` when the admin gives none
TOO_BUSY = "Model is too busy, please try again later."


class GatewayError(Exception):
    """What OpenGateLLM answers its user (FastAPI's HTTPException: status and `detail`)."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class ProbeError(Exception):
    """The probe failed: `kind` says how OpenGateLLM's admin API would answer.

    not_reachable (424), not_found (404), invalid_response (424), crash (500, "An
    unexpected error occurred", and a bootstrap file then stops OpenGateLLM's start)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Provider:
    """A provider row of OpenGateLLM: its type, root URL (no /v1), key, timeout, model name."""

    url: str
    key: str
    model_name: str
    type: str = "openai"
    timeout: float = DEFAULT_TIMEOUT_S

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def endpoint(self, path: str) -> str:
        return self.url.rstrip("/") + "/" + path.lstrip("/")


@dataclass
class ModelEntry:
    id: str
    aliases: list[str] = field(default_factory=list)
    created: int = 0
    owned_by: str = "unknown"
    max_context_length: int | None = None


@dataclass
class Answer:
    """A provider answer as OpenGateLLM's client reads it: JSON data or text."""

    status: int
    content_type: str
    data: Any = None
    text: str | None = None


def send(provider: Provider, method: str, path: str, *, client: httpx.Client,
         files: dict[str, tuple[str, bytes, str]] | None = None, form: dict[str, str] | None = None) -> Answer:
    """One request, read as OpenGateLLM's HTTP client reads it (GatewayError on failure)."""
    try:
        response = client.request(method, provider.endpoint(path), headers=provider.headers, files=files,
                                  data=form, timeout=provider.timeout)
    except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ConnectError):
        raise GatewayError(503, TOO_BUSY) from None
    except httpx.HTTPError as exc:
        raise GatewayError(500, str(exc) or type(exc).__name__) from None
    if not response.is_success:
        raise GatewayError(response.status_code, _error_detail(response.text))
    content_type = response.headers.get("Content-Type", "")
    if content_type == "application/json":
        return Answer(response.status_code, content_type, data=response.json())
    return Answer(response.status_code, content_type, text=response.text)


def _error_detail(body: str) -> Any:
    try:
        message = json.loads(body)
    except json.JSONDecodeError:
        return body
    if isinstance(message, dict) and "message" in message:
        try:
            return ast.literal_eval(message["message"])
        except Exception:
            return message["message"]
    return message


def probe(provider: Provider, *, client: httpx.Client) -> ModelEntry:
    """The capability probe of a provider being declared (ProbeError when it fails)."""
    try:
        answer = send(provider, "GET", "/v1/models", client=client)
    except GatewayError as exc:
        raise ProbeError("not_reachable", f"provider not reachable ({exc.status}): {exc.detail}") from None
    if answer.data is None:
        raise ProbeError("crash", f"GET /v1/models answered Content-Type {answer.content_type!r}, not exactly "
                                  "'application/json': OpenGateLLM reads the list as text and fails (TypeError)")
    entries = _models(provider.type, answer.data)
    for entry in entries:
        if entry.id == provider.model_name or provider.model_name in entry.aliases:
            return entry
    raise ProbeError("not_found", f"Model {provider.model_name} not found.")


def _models(provider_type: str, data: Any) -> list[ModelEntry]:
    try:
        if provider_type == "vllm":
            rows = data.get("data", [])
            return [_entry(m["id"], [], m["created"], m["owned_by"], m["max_model_len"]) for m in rows]
        return [_entry(m["id"], m.get("aliases", []), m.get("created", 0), m.get("owned_by", "unknown"),
                       m.get("max_context_length")) for m in data["data"]]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ProbeError("crash", f"the {provider_type} models adapter fails on this list: "
                                  f"{type(exc).__name__} {exc}") from None


def _entry(model_id: Any, aliases: Any, created: Any, owned_by: Any, context: Any) -> ModelEntry:
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise TypeError(f"aliases must be a list of strings, got {aliases!r}")
    return ModelEntry(
        id=_as_str(model_id, "id"), aliases=aliases, created=_as_int(created, "created"),
        owned_by=_as_str(owned_by, "owned_by"),
        max_context_length=None if context is None else _as_int(context, "max_context_length"),
    )


def transcribe(provider: Provider, audio: bytes, *, client: httpx.Client, filename: str = "audio.wav",
               content_type: str = "audio/wav", language: str | None = None, prompt: str = "",
               response_format: str = "json", temperature: float = 0.0, user_model: str = "") -> dict[str, Any] | str:
    """A user's transcription forwarded and read back as OpenGateLLM does: the JSON body
    its user receives (with its own `id`, `model` and token usage) or the text."""
    if response_format not in RESPONSE_FORMATS:
        raise GatewayError(422, f"response_format: {response_format!r} is not one of {RESPONSE_FORMATS}")
    if not 0.0 <= temperature <= 1.0:
        raise GatewayError(422, "temperature: must be between 0 and 1")
    form = {"prompt": prompt, "response_format": response_format, "temperature": str(temperature),
            "model": provider.model_name}
    if language is not None:
        form["language"] = language
    answer = send(provider, "POST", "/v1/audio/transcriptions", client=client,
                  files={"file": (filename, audio, content_type)}, form=form)
    if answer.data is None:
        return answer.text or ""
    return read_transcription(answer.data, user_model or provider.model_name)


def read_transcription(data: Any, model: str) -> dict[str, Any]:
    """OpenGateLLM's two validations of a JSON transcription: its 422 for a body that does
    not fit its AudioTranscriptions, its unhandled 500 for segments that do not fit."""
    if not isinstance(data, dict):
        raise GatewayError(422, f"the provider's JSON is a {type(data).__name__}, not an object")
    errors = []
    if not isinstance(data.get("text"), str):
        errors.append(f"text: a string is required, got {data.get('text')!r}")
    usage = data.get("usage", {})
    if not isinstance(usage, dict):
        errors.append(f"usage: an object is required, got {usage!r}")
    else:
        for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
            if name in usage and not _fits_int(usage[name]):
                errors.append(f"usage.{name}: an integer is required, got {usage[name]!r}")
        if "cost" in usage and not _fits_float(usage["cost"]):
            errors.append(f"usage.cost: a number is required, got {usage['cost']!r}")
    if errors:
        raise GatewayError(422, errors)
    body = {**data, "id": uuid.uuid4().hex, "model": model}
    body["usage"] = {"prompt_tokens": 0, "completion_tokens": len(data["text"].split()),
                     "total_tokens": len(data["text"].split()), "cost": 0.0}
    segments = body.get("segments")
    if segments is not None:
        if not isinstance(segments, list):
            raise GatewayError(500, f"segments: a list is required, got {type(segments).__name__}")
        body["segments"] = [_segment(i, s) for i, s in enumerate(segments)]
    else:
        body["segments"] = None
    return body


def _segment(index: int, segment: Any) -> dict[str, Any]:
    if not isinstance(segment, dict):
        raise GatewayError(500, f"segments.{index}: an object is required")
    problems = []
    if "id" not in segment or not _fits_int(segment["id"]):
        problems.append(f"segments.{index}.id: an integer is required, got {segment.get('id')!r}")
    if not isinstance(segment.get("text"), str):
        problems.append(f"segments.{index}.text: a string is required")
    for name in ("start", "end"):
        if not _fits_float(segment.get(name)):
            problems.append(f"segments.{index}.{name}: a number is required, got {segment.get(name)!r}")
    if segment.get("speaker") is not None and not isinstance(segment["speaker"], str):
        problems.append(f"segments.{index}.speaker: a string or null is required")
    if problems:
        raise GatewayError(500, problems)  # raised outside OpenGateLLM's handlers: a bare 500
    return {**segment, "id": int(segment["id"]), "start": float(segment["start"]), "end": float(segment["end"])}


def _fits_int(value: Any) -> bool:
    """What pydantic's lax mode takes for an int: an int, an integral float, a numeric string."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer()
    if isinstance(value, str):
        try:
            int(value.strip())
        except ValueError:
            return False
        return True
    return False


def _fits_float(value: Any) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _as_int(value: Any, name: str) -> int:
    if not _fits_int(value):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _as_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {value!r}")
    return value


__all__ = ["GatewayError", "ModelEntry", "Provider", "ProbeError", "probe", "read_transcription", "send", "transcribe"]
