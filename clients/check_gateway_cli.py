"""`parlons check-gateway URL --key K`: can OpenGateLLM use this parlons facade?

Registers nothing. Does against a running REST facade what OpenGateLLM does when an
administrator declares parlons as a speech provider (its capability probe, for each
provider type) and when one of its users asks for a transcription (its form, its reading
of the answer, in every response format), with a French recording, and prints one line
per check: PASS, WARN (works, with a limit worth knowing) or FAIL, and why. Exit status
1 when a check fails. The rules are those of clients/opengatellm.py.

    parlons check-gateway https://parlons.example.gouv.fr:8080 --key "$PARLONS_API_KEY"
    parlons check-gateway http://127.0.0.1:8080 --model whisper-1 --timeout 900
"""

from __future__ import annotations

import argparse
import os
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import srt
from rich.console import Console

from parlons.clients import opengatellm as ogl
from parlons.clients.connection import API_KEY_ENV

console = Console(highlight=False, soft_wrap=True)

#: FLEURS (Google, CC BY 4.0), French read speech, 8.3 s: the recording every check sends.
SAMPLE = "fleurs-fr-004.ogg"
SAMPLE_TEXT = ("le même mois un autre avion de ligne a fait une sortie de piste à mashhad et a heurté un mur "
               "tuant ainsi dix-sept personnes")
UNKNOWN_MODEL = "parlons-check-no-such-model"
MIN_WORDS_FOUND = 0.5  # share of the reference's words a French transcript must hold


@dataclass
class Check:
    name: str
    verdict: str  # PASS, WARN, FAIL
    why: str


@dataclass
class Door:
    """The facade under test and what every check sends it."""

    provider: ogl.Provider
    client: httpx.Client
    audio: bytes
    filename: str
    content_type: str
    reference: str

    def as_type(self, provider_type: str, model_name: str | None = None) -> ogl.Provider:
        p = self.provider
        return ogl.Provider(p.url, p.key, model_name or p.model_name, provider_type, p.timeout)

    def transcribe(self, response_format: str, language: str | None = "fr",
                   provider: ogl.Provider | None = None, audio: bytes | None = None) -> dict[str, Any] | str:
        return ogl.transcribe(provider or self.provider, self.audio if audio is None else audio, client=self.client,
                              filename=self.filename, content_type=self.content_type, language=language,
                              response_format=response_format)


def run_checks(door: Door) -> list[Check]:
    checks: list[Check] = [_models_content_type(door)]
    checks += [_probe(door, t) for t in ogl.PROVIDER_TYPES]
    checks.append(_unknown_model(door))
    checks.append(_wrong_key(door))
    for fmt, language in (("json", "fr"), ("json", "french"), ("text", None), ("verbose_json", "fr"),
                          ("srt", "fr"), ("vtt", "fr"), ("diarized_json", "fr")):
        checks.append(_transcription(door, fmt, language))
    checks.append(_bad_audio(door))
    return checks


def _guard(name: str, body: Callable[[], Check]) -> Check:
    try:
        return body()
    except ogl.GatewayError as exc:
        return Check(name, "FAIL", f"an OpenGateLLM user would get {exc.status}: {_short(exc.detail)}")
    except ogl.ProbeError as exc:
        return Check(name, "FAIL", f"{exc.kind}: {exc}")


def _models_content_type(door: Door) -> Check:
    name = "GET /v1/models answers JSON as OpenGateLLM reads it"

    def body() -> Check:
        answer = ogl.send(door.provider, "GET", "/v1/models", client=door.client)
        if answer.data is None:
            return Check(name, "FAIL", f"Content-Type is {answer.content_type!r}: OpenGateLLM parses JSON only "
                                       "when it is exactly 'application/json'")
        return Check(name, "PASS", "200, Content-Type application/json")
    return _guard(name, body)


def _probe(door: Door, provider_type: str) -> Check:
    provider = door.as_type(provider_type)
    name = f"declared as a provider of type {provider_type!r} for model {provider.model_name!r}"

    def body() -> Check:
        try:
            entry = ogl.probe(provider, client=door.client)
        except ogl.ProbeError as exc:
            if exc.kind != "not_found" or provider_type != "vllm":
                raise
            # vLLM's adapter reads no aliases: is the name an alias the facade knows?
            entry = ogl.probe(door.as_type("openai"), client=door.client)
            ogl.probe(door.as_type("vllm", entry.id), client=door.client)
            return Check(name, "WARN", f"a vllm provider ignores aliases: declare model_name {entry.id!r} "
                                       "(found so), or use type openai")
        found = "its id" if entry.id == provider.model_name else f"an alias of {entry.id!r}"
        return Check(name, "PASS", f"found as {found}")
    return _guard(name, body)


def _unknown_model(door: Door) -> Check:
    name = "an unknown model name is refused at declaration"
    try:
        ogl.probe(door.as_type("openai", UNKNOWN_MODEL), client=door.client)
    except ogl.ProbeError as exc:
        if exc.kind == "not_found":
            return Check(name, "PASS", f"404 {exc}")
        return Check(name, "FAIL", f"{exc.kind}: {exc}")
    return Check(name, "FAIL", f"{UNKNOWN_MODEL!r} was accepted")


def _wrong_key(door: Door) -> Check:
    name = "a wrong key is refused (401) with a message"
    provider = door.provider
    wrong = ogl.Provider(provider.url, "prl_000000000000_" + "x" * 43, provider.model_name, "openai", provider.timeout)
    try:
        door.transcribe("json", provider=wrong)
    except ogl.GatewayError as exc:
        if exc.status == 401 and _message(exc.detail):
            return Check(name, "PASS", f"401: {_short(_message(exc.detail))}")
        return Check(name, "FAIL", f"{exc.status}: {_short(exc.detail)}")
    if not provider.key:
        return Check(name, "WARN", "this facade runs without authentication (auth = none): any caller may use it")
    return Check(name, "FAIL", "a made-up key was served")


def _transcription(door: Door, fmt: str, language: str | None) -> Check:
    name = f"French transcription, response_format={fmt}" + (f", language={language}" if language else "")

    def body() -> Check:
        started = time.monotonic()
        result = door.transcribe(fmt, language)
        elapsed = time.monotonic() - started
        problem = _format_problem(fmt, result)
        if problem:
            return Check(name, "FAIL", problem)
        text = result if isinstance(result, str) else result["text"]
        found = _words_found(door.reference, text)
        if found < MIN_WORDS_FOUND:
            return Check(name, "FAIL", f"only {found:.0%} of the reference words in {_short(text)!r}: "
                                       "is the default model multilingual?")
        return Check(name, "PASS", f"{elapsed:.1f} s, {found:.0%} of the reference words")

    try:
        return _guard(name, body)
    except Exception as exc:  # an answer the check cannot read is a failure, named
        return Check(name, "FAIL", f"unreadable answer: {type(exc).__name__} {exc}")


def _format_problem(fmt: str, result: dict[str, Any] | str) -> str:
    """Why the answer is not what this format's reader expects ("" when it is)."""
    if fmt in ogl.JSON_FORMATS:
        if isinstance(result, str):
            return "answered as text, not application/json: OpenGateLLM passes it on unparsed (no id, model, usage)"
        segments = result.get("segments")
        if fmt == "verbose_json" and not segments:
            return "verbose_json without segments"
        if fmt == "diarized_json" and (not segments or any(not s.get("speaker") for s in segments)):
            return "diarized_json without a speaker on every segment"
        return ""
    if not isinstance(result, str):
        return f"{fmt} answered as JSON"
    if fmt == "srt":
        cues = list(srt.parse(result))
        return "" if cues else "no subtitle in the SRT"
    if fmt == "vtt" and (not result.startswith("WEBVTT") or "-->" not in result):
        return "not a WebVTT file"
    return ""


def _bad_audio(door: Door) -> Check:
    name = "a file that is not audio is refused (400) naming the field"
    try:
        door.transcribe("json", audio=b"these bytes are not audio")
    except ogl.GatewayError as exc:
        error = exc.detail.get("error", {}) if isinstance(exc.detail, dict) else {}
        if exc.status == 400 and error.get("param") == "file":
            return Check(name, "PASS", f"400 param=file: {_short(error.get('message', ''))}")
        return Check(name, "FAIL", f"{exc.status}: {_short(exc.detail)}")
    return Check(name, "FAIL", "bytes that are not audio were transcribed")


def _message(detail: Any) -> str:
    if isinstance(detail, dict):
        error = detail.get("error")
        return str(error.get("message", "")) if isinstance(error, dict) else str(detail)
    return str(detail)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _words(text: str) -> list[str]:
    text = unicodedata.normalize("NFC", text.lower()).replace("’", "'")
    return re.findall(r"[\w'-]+", text)


def _words_found(reference: str, text: str) -> float:
    got = set(_words(text))
    wanted = _words(reference)
    return sum(w in got for w in wanted) / len(wanted) if wanted else 1.0


def load_sample(path: str | None) -> tuple[bytes, str, str]:
    """The recording to send: the given file, or the bundled French clip."""
    if path:
        file = Path(path)
        suffix = file.suffix.lower().lstrip(".")
        return file.read_bytes(), file.name, f"audio/{suffix or 'wav'}"
    data = resources.files("parlons.clients").joinpath("data", SAMPLE).read_bytes()
    return data, SAMPLE, "audio/ogg"


def run_check_gateway(args: argparse.Namespace) -> int:
    key = args.key if args.key is not None else os.environ.get(API_KEY_ENV, "")
    audio, filename, content_type = load_sample(args.audio)
    reference = args.reference if args.audio else SAMPLE_TEXT
    verify: Any = args.ca or True
    with httpx.Client(verify=verify) as client:
        door = Door(ogl.Provider(args.url, key, args.model, "openai", args.timeout), client, audio, filename,
                    content_type, reference or "")
        checks = run_checks(door)
    colours = {"PASS": "green", "WARN": "yellow", "FAIL": "red"}
    for check in checks:
        console.print(f"[{colours[check.verdict]}]{check.verdict}[/]  {check.name}: {check.why}")
    failed = sum(c.verdict == "FAIL" for c in checks)
    console.print(f"{len(checks) - failed}/{len(checks)} checks pass" + (f", {failed} fail" if failed else ""))
    return 1 if failed else 0


def add_check_gateway_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check-gateway", help="check that OpenGateLLM (Albert API) can use a parlons REST facade",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", help="the facade's root URL, without /v1 (as declared in OpenGateLLM)")
    parser.add_argument("--key", help=f"the API key OpenGateLLM will send (default ${API_KEY_ENV})")
    parser.add_argument("--model", default="whisper-1", help="the model_name to declare (default whisper-1)")
    parser.add_argument("--timeout", type=float, default=ogl.DEFAULT_TIMEOUT_S,
                        help="the provider timeout to declare, in seconds (OpenGateLLM's default: 300)")
    parser.add_argument("--audio", help="a recording to send instead of the bundled French clip")
    parser.add_argument("--reference", default="", help="what --audio says (its words are looked for)")
    parser.add_argument("--ca", help="CA certificate file when the facade's TLS certificate is private")
    parser.set_defaults(func=run_check_gateway)


__all__ = ["Check", "Door", "run_checks", "add_check_gateway_command"]
