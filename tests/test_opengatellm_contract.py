"""OpenGateLLM (the State's AI gateway, ex Albert API) declares parlons and forwards its
users' transcriptions to it (issue 24), against a real `parlons serve` with tenants.

Covers OpenGateLLM as its code stood in September 2026 (read 2026-12-07; commits in
clients/opengatellm.py's docstring). Two readers of each answer, written apart:
`clients/opengatellm.py` (what `parlons check-gateway` runs: OpenGateLLM's requests, its
exact content-type rule, its lookup by id or alias, its error passing) and the pydantic
models below, which state the field types of OpenGateLLM's response models
(`api/domain/audio/entities.py`, `api/infrastructure/fastapi/schemas/audio.py`,
`api/domain/model/entities.py`, `api/domain/usage/entities.py`) and are checked on the
raw bytes the facade sends. OpenAI's own SDK types are checked on the same answers, for
the clients that call the facade directly. tests/test_albert_contract.py keeps the older
albert-api (up to its August 2025 releases), which administrations may still run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from aiohttp import web
from faster_whisper.tokenizer import _LANGUAGE_CODES
from openai.types.audio import Transcription, TranscriptionDiarized, TranscriptionVerbose
from pydantic import BaseModel, ConfigDict, Field

from desk_helpers import free_port
from gateway_helpers import Tenants, make_tenants
from parlons.clients import check_gateway_cli, opengatellm as ogl
from parlons.services.common.audio import decode_audio
from parlons.language_names import ALIASES, NAMES
from speech import AUDIO, DATA, normalise, opus_bytes

pytestmark = pytest.mark.slow

FLEURS = DATA / "fleurs"
TIMEOUT_S = 300


# --------------------------------------------------------------- OpenGateLLM's models


class _Allow(BaseModel):
    model_config = ConfigDict(extra="allow")  # api/domain/__init__.py: BaseModel


class OglModel(_Allow):  # api/domain/model/entities.py Model (what the probe builds)
    id: str
    aliases: list[str] = []
    created: datetime
    owned_by: str
    max_context_length: int | None = None


class OglUsage(_Allow):  # api/domain/usage/entities.py Usage
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float = 0.0


class OglAudioTranscriptions(_Allow):  # api/domain/audio/entities.py AudioTranscriptions
    id: str
    model: str
    text: str
    usage: OglUsage = Field(default_factory=OglUsage)


class OglSegment(_Allow):  # api/infrastructure/fastapi/schemas/audio.py Segment
    id: int
    type: str = "transcript.text.segment"
    text: str
    start: float
    end: float
    speaker: str | None = None


class OglAudioTranscriptionsResponse(_Allow):  # same file: what OpenGateLLM's user receives
    id: str
    text: str
    model: str
    segments: list[OglSegment] | None = None
    usage: OglUsage


def ogl_reads(data: dict[str, Any]) -> OglAudioTranscriptionsResponse:
    """OpenGateLLM's two validations of a provider's JSON transcription."""
    parsed = OglAudioTranscriptions.model_validate({**data, "id": uuid.uuid4().hex, "model": "parlons"})
    return OglAudioTranscriptionsResponse.model_validate(parsed.model_dump())


# --------------------------------------------------------------- a real `parlons serve`


@dataclass
class Served:
    url: str
    tenants: Tenants
    process: subprocess.Popen[bytes]
    metrics_url: str

    def count(self, method: str, code: str) -> int:
        """Calls of a gRPC method that ended with `code` (the server's Prometheus counter,
        gateway and backend together in this embedded layout)."""
        text = httpx.get(self.metrics_url, timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("parlons_requests_total{") and f'code="{code}"' in line and f"/{method}\"" in line:
                total += float(line.rsplit(" ", 1)[1])
        return int(total)

    def provider(self, model_name: str = "whisper-1", provider_type: str = "openai", tenant: str = "a") -> ogl.Provider:
        return ogl.Provider(self.url, self.tenants.keys[tenant], model_name, provider_type, TIMEOUT_S)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve")
    tenants = make_tenants(root / "tenants.toml")
    port, rest_port, metrics_port = free_port(), free_port(), free_port()
    config = root / "parlons.toml"
    config.write_text(
        f'[server]\nport = {port}\nmetrics_port = {metrics_port}\n[transcription]\nmodel = "base"\n'
        f'[gateway]\ntenants_path = "{tenants.path}"\nrest_port = {rest_port}\nrest_max_upload_mb = 1\n'
    )
    log = (root / "serve.log").open("wb")
    env = {**os.environ, "PYANNOTE_METRICS_ENABLED": "0"}
    process = subprocess.Popen([sys.executable, "-m", "parlons.cli", "serve", "--config", str(config)],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{rest_port}"
    deadline = time.monotonic() + 600
    while True:
        assert process.poll() is None, (root / "serve.log").read_text()[-3000:]
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "parlons serve did not start"
        time.sleep(0.5)
    yield Served(url, tenants, process, f"http://127.0.0.1:{metrics_port}/metrics")
    process.terminate()
    process.wait(30)
    log.close()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT_S) as c:
        yield c


def fleurs(name: str) -> tuple[bytes, str]:
    return (FLEURS / f"{name}.ogg").read_bytes(), (FLEURS / f"{name}.txt").read_text().strip()


def words_found(reference: str, text: str) -> float:
    wanted = normalise(reference).split()
    got = set(normalise(text).split())
    return sum(w in got for w in wanted) / len(wanted)


def post_as_ogl(client: httpx.Client, served: Served, audio: bytes, *, tenant: str = "a", model_name: str = "whisper-1",
                language: str | None = "fr", response_format: str = "json", filename: str = "guichet.ogg",
                content_type: str = "audio/ogg") -> httpx.Response:
    """The raw request OpenGateLLM's audio adapter sends (prompt always, temperature as
    a number, language only when its user gave one)."""
    form = {"prompt": "", "response_format": response_format, "temperature": "0.0", "model": model_name}
    if language is not None:
        form["language"] = language
    return client.post(f"{served.url}/v1/audio/transcriptions", data=form,
                       files={"file": (filename, audio, content_type)},
                       headers={"Authorization": f"Bearer {served.tenants.keys[tenant]}"})


# --------------------------------------------------------------- declaring parlons


def test_registration_by_alias_and_by_id_for_every_provider_type(served: Served, client: httpx.Client) -> None:
    raw = client.get(f"{served.url}/v1/models", headers={"Authorization": f"Bearer {served.tenants.keys['a']}"})
    assert raw.headers["Content-Type"] == "application/json"
    entries = raw.json()["data"]
    for entry in entries:  # what the albert/openai adapters build, and vLLM's required keys
        OglModel.model_validate({**entry, "aliases": entry.get("aliases", [])})
        assert {"id", "created", "owned_by", "max_model_len"} <= entry.keys()
    default = entries[0]["id"]
    assert default == "base" and "whisper-1" in entries[0]["aliases"]
    for provider_type in ("albert", "openai"):
        for name in ("whisper-1", "base"):
            assert ogl.probe(served.provider(name, provider_type), client=client).id == "base"
    assert ogl.probe(served.provider("base", "vllm"), client=client).id == "base"
    with pytest.raises(ogl.ProbeError) as info:  # vLLM's adapter reads no aliases
        ogl.probe(served.provider("whisper-1", "vllm"), client=client)
    assert info.value.kind == "not_found"


def test_an_unknown_name_or_key_is_refused_as_opengatellm_expects(served: Served, client: httpx.Client) -> None:
    with pytest.raises(ogl.ProbeError) as info:
        ogl.probe(served.provider("large-v3"), client=client)
    assert info.value.kind == "not_found" and "large-v3" in str(info.value)  # its admin API: 404
    wrong = ogl.Provider(served.url, "prl_000000000000_" + "x" * 43, "whisper-1")
    with pytest.raises(ogl.ProbeError) as info:
        ogl.probe(wrong, client=client)
    assert info.value.kind == "not_reachable" and "(401)" in str(info.value)  # its admin API: 424


# --------------------------------------------------------------- French transcriptions


@pytest.mark.parametrize("response_format", ogl.RESPONSE_FORMATS)
def test_a_french_transcription_in_every_format(served: Served, client: httpx.Client, response_format: str) -> None:
    audio, reference = fleurs("fleurs-fr-001")  # not the clip `check-gateway` sends
    raw = post_as_ogl(client, served, audio, response_format=response_format)
    assert raw.status_code == 200, raw.text
    if response_format in ogl.JSON_FORMATS:
        assert raw.headers["Content-Type"] == "application/json"
        data = raw.json()
        read = ogl_reads(data)
        text = read.text
        if response_format == "json":
            Transcription.model_validate(data)
        elif response_format == "verbose_json":
            TranscriptionVerbose.model_validate(data)
            assert data["language"] == "french" and read.segments and len(read.segments) == len(data["segments"])
        else:
            TranscriptionDiarized.model_validate(data)
            assert read.segments and all(s.speaker for s in read.segments)
    else:
        assert not raw.headers["Content-Type"].startswith("application/json")
        text = raw.text
        if response_format in ("srt", "vtt"):
            assert "-->" in text and (response_format == "srt" or text.startswith("WEBVTT"))
    # base on FLEURS French: about 80 % of a sentence's words; half is the floor of "French"
    assert words_found(reference, text) >= 0.5, text
    forwarded = ogl.transcribe(served.provider(), audio, client=client, filename="guichet.ogg",
                               content_type="audio/ogg", language="fr", response_format=response_format)
    assert isinstance(forwarded, dict) == (response_format in ogl.JSON_FORMATS)


def test_language_values_are_opengatellms_list_and_parlons_takes_them_all(served: Served, client: httpx.Client) -> None:
    codes = set(_LANGUAGE_CODES)  # faster-whisper's own table of Whisper's codes
    names = set(NAMES.values()) | set(ALIASES)
    values = sorted(codes | names)
    assert (len(codes), len(names), len(values)) == (100, 112, 212)  # OpenGateLLM: 100 codes + 112 names
    refused = set()
    for value in values:  # bytes that are not audio: refused for the file, unless for the language
        raw = post_as_ogl(client, served, b"not audio at all", language=value)
        assert raw.status_code == 400, (value, raw.text)
        error = raw.json()["error"]
        assert error["param"] in ("file", "language"), (value, raw.text)
        if error["param"] == "language":
            refused.add(value)
            assert "cantonese" in error["message"] and "detected" in error["message"], error
    assert refused == {"yue", "cantonese"}  # Cantonese came with large-v3; base does not know it
    audio, reference = fleurs("fleurs-fr-002")
    for value in ("french", "fr"):
        result = ogl.transcribe(served.provider(), audio, client=client, language=value)
        assert isinstance(result, dict) and words_found(reference, result["text"]) >= 0.5, result
    javanese = ogl.transcribe(served.provider(), audio, client=client, language="jw", response_format="verbose_json")
    assert isinstance(javanese, dict) and javanese["language"] == "javanese"  # Whisper's jw is BCP-47 jv


def test_diarized_json_field_by_field(served: Served, client: httpx.Client) -> None:
    audio = (AUDIO / "sample.wav").read_bytes()  # two speakers on the phone, 30 s
    raw = post_as_ogl(client, served, audio, language="en", response_format="diarized_json", filename="sample.wav",
                      content_type="audio/wav")
    assert raw.status_code == 200 and raw.headers["Content-Type"] == "application/json", raw.text
    data = raw.json()
    assert set(data) == {"task", "duration", "text", "segments", "usage"}
    assert data["task"] == "transcribe" and 29.5 < data["duration"] < 30.5
    assert data["usage"] == {"type": "duration", "seconds": 30}
    OglUsage.model_validate(data["usage"])  # extra keys allowed; OpenGateLLM then counts tokens itself
    segments = data["segments"]
    assert len(segments) >= 4
    previous_end = 0.0
    for index, segment in enumerate(segments):
        assert set(segment) == {"type", "id", "start", "end", "text", "speaker"}
        assert segment["type"] == "transcript.text.segment"
        assert segment["id"] == str(index)  # a string (OpenAI) that reads as an integer (OpenGateLLM)
        assert isinstance(segment["start"], float | int) and isinstance(segment["end"], float | int)
        assert previous_end - 0.5 <= segment["start"] < segment["end"] <= data["duration"] + 0.01
        previous_end = segment["end"]
        assert isinstance(segment["text"], str) and segment["text"].strip()
        assert segment["speaker"] in ("A", "B")
    assert {s["speaker"] for s in segments} == {"A", "B"} and segments[0]["speaker"] == "A"
    assert data["text"] == " ".join(s["text"] for s in segments)
    read = ogl_reads(data)
    assert [s.id for s in read.segments or []] == list(range(len(segments)))
    assert [s.id for s in TranscriptionDiarized.model_validate(data).segments] == [str(i) for i in range(len(segments))]
    forwarded = ogl.transcribe(served.provider(), audio, client=client, filename="sample.wav", content_type="audio/wav",
                               language="en", response_format="diarized_json")
    assert isinstance(forwarded, dict) and [s["id"] for s in forwarded["segments"]] == list(range(len(segments)))


# --------------------------------------------------------------- errors, passed on


def _json_error(raw: httpx.Response) -> dict[str, Any]:
    assert raw.headers["Content-Type"] == "application/json", raw.headers
    error = raw.json()["error"]
    assert len(error["message"]) > 10
    return error


def test_errors_reach_opengatellms_users_with_their_status_and_message(served: Served, client: httpx.Client) -> None:
    audio, _ = fleurs("fleurs-fr-003")
    wrong_key = ogl.Provider(served.url, "prl_000000000000_" + "x" * 43, "whisper-1")
    cases: list[tuple[ogl.Provider, bytes, dict[str, Any], int, str | None]] = [
        (wrong_key, audio, {}, 401, None),
        (served.provider("large-v3"), audio, {}, 404, "model"),  # a model_name the admin mistyped
        (served.provider(), b"\x00", {}, 400, "file"),  # a 1-byte file
        (served.provider(), audio, {"language": "klingon"}, 400, "language"),  # had it passed OpenGateLLM
        (served.provider(), os.urandom(1_200_000), {}, 413, None),  # over rest_max_upload_mb = 1
    ]
    for provider, data, extra, status, param in cases:
        with pytest.raises(ogl.GatewayError) as info:
            ogl.transcribe(provider, data, client=client, filename="a.ogg", content_type="audio/ogg", **extra)
        assert info.value.status == status, info.value
        error = info.value.detail["error"]  # OpenGateLLM nests the body whole under `detail`
        assert len(error["message"]) > 10 and error["param"] == param, error
    # The raw answers themselves are JSON that OpenGateLLM's client parses.
    _json_error(client.get(f"{served.url}/v1/models"))
    _json_error(client.get(f"{served.url}/v1/no-such-route"))
    _json_error(post_as_ogl(client, served, b"\x00"))


def test_a_429_keeps_its_delay_in_the_body(served: Served, client: httpx.Client) -> None:
    audio, _ = fleurs("fleurs-fr-000")  # 10 s, and tenant "small" has 5 audio seconds a minute
    first = post_as_ogl(client, served, audio, tenant="small")
    assert first.status_code == 200, first.text  # admitted, the tenant now owes 5 s
    provider = served.provider(tenant="small")
    with pytest.raises(ogl.GatewayError) as info:
        ogl.transcribe(provider, audio, client=client, filename="a.ogg", content_type="audio/ogg", language="fr")
    assert info.value.status == 429
    error = info.value.detail["error"]
    assert error["code"] == "rate_limit_exceeded" and error["retry_after_s"] >= 1
    assert "retry in" in error["message"]
    raw = post_as_ogl(client, served, audio, tenant="small")  # direct clients also get the header
    assert raw.status_code == 429 and int(raw.headers["Retry-After"]) == _json_error(raw)["retry_after_s"]


def test_a_provider_timeout_is_too_busy_and_stops_the_work(served: Served, client: httpx.Client) -> None:
    """OpenGateLLM cuts a provider call at its `timeout` and answers its user 503 "too
    busy"; parlons, its connection closed, cancels the transcription instead of finishing it."""
    # Three minutes of speech (Opus, under the 1 MB upload bound): more work than any
    # machine, GPU included, does within the timeout, so the cut always comes first.
    audio = opus_bytes(np.tile(decode_audio((AUDIO / "sample.wav").read_bytes()).mono(), 6))
    before = served.count("Transcribe", "CANCELLED")
    impatient = ogl.Provider(served.url, served.tenants.keys["a"], "whisper-1", "openai", timeout=0.3)
    with pytest.raises(ogl.GatewayError) as info:
        ogl.transcribe(impatient, audio, client=client, filename="sample.ogg", content_type="audio/ogg")
    assert (info.value.status, info.value.detail) == (503, ogl.TOO_BUSY)
    deadline = time.monotonic() + 60
    while served.count("Transcribe", "CANCELLED") == before:
        assert time.monotonic() < deadline, "the transcription was not cancelled"
        time.sleep(0.2)


# --------------------------------------------------------------- the operator's check


def test_check_gateway_passes_against_parlons_serve(served: Served) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "parlons.cli", "check-gateway", served.url, "--key", served.tenants.keys["a"],
         "--model", "base"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("PASS") for line in lines[:-1]), result.stdout
    assert lines[-1] == f"{len(lines) - 1}/{len(lines) - 1} checks pass"
    for fmt in ogl.RESPONSE_FORMATS:
        assert any(f"response_format={fmt}" in line for line in lines), fmt


async def _old_facade(request: web.Request) -> web.Response:
    """The facade before issue 24: a charset in its JSON content type, `seg_` ids."""
    if request.path == "/v1/models":
        return web.json_response({"object": "list", "data": [{"id": "base", "object": "model", "created": 0,
                                                                "owned_by": "parlons", "aliases": ["whisper-1"]}]})
    form = await request.post()
    fmt = str(form.get("response_format", "json"))
    samples = decode_audio(form["file"].file.read()).mono()  # type: ignore[union-attr]
    text = "le même mois un autre avion de ligne a fait une sortie de piste" if samples.size else ""
    if fmt == "text":
        return web.Response(text=text)
    return web.json_response({"text": text, "segments": [{"id": "seg_000", "start": 0.0, "end": 1.0, "text": text,
                                                          "speaker": "A", "type": "transcript.text.segment"}]})


def test_check_gateway_fails_on_what_opengatellm_cannot_read(tmp_path: Path) -> None:
    """The check can fail: against a facade with the defects OpenGateLLM found, it names them."""
    import asyncio
    import threading

    port = free_port()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _old_facade)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with httpx.Client() as client:
            audio, filename, content_type = check_gateway_cli.load_sample(None)
            door = check_gateway_cli.Door(ogl.Provider(f"http://127.0.0.1:{port}", "k", "whisper-1"), client, audio,
                                          filename, content_type, check_gateway_cli.SAMPLE_TEXT)
            checks = {c.name: c for c in check_gateway_cli.run_checks(door)}
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    failed = {name for name, c in checks.items() if c.verdict == "FAIL"}
    assert "GET /v1/models answers JSON as OpenGateLLM reads it" in failed
    assert "Content-Type" in checks["GET /v1/models answers JSON as OpenGateLLM reads it"].why
    assert "declared as a provider of type 'openai' for model 'whisper-1'" in failed
    assert "French transcription, response_format=json, language=fr" in failed  # answered as text
    assert "French transcription, response_format=text" not in failed
    assert "a wrong key is refused (401) with a message" in failed
    assert np.abs(decode_audio(audio).mono()).max() > 0.1  # the bundled clip holds sound
