"""One shape for every service module (issue 10): UNAVAILABLE with RetryInfo while a model
loads, in every service; `google.rpc` details beside every refusal's message (BadRequest
naming the field, RetryInfo on overload and quotas), passed on by the gateway."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc import aio
from grpc_status import rpc_status

from gateway_helpers import gateway_config, make_tenants, start_embedded
from parlons.serve import build_modules
from parlons.services.common.config import ParlonsConfig
from parlons.services.common.server import start_server
from parlons.v1 import (
    audio_pb2,
    diarization_pb2,
    diarization_pb2_grpc,
    transcription_pb2,
    transcription_pb2_grpc,
    translation_pb2,
    translation_pb2_grpc,
)
from speech import AUDIO


def _detail(status: object, kind: type[Message]) -> object | None:
    for detail in status.details:  # type: ignore[attr-defined]
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            return message
    return None


def _status_of(error: grpc.RpcError | aio.AioRpcError):  # type: ignore[no-untyped-def]
    if isinstance(error, aio.AioRpcError):
        from parlons.services.common.status_details import details_of

        return details_of(error.trailing_metadata())
    return rpc_status.from_call(error)


async def test_every_service_says_unavailable_with_a_retry_delay_while_its_model_loads() -> None:
    config = ParlonsConfig()
    config.server.port = 0
    services = ["transcription", "translation", "diarization"]
    running = await start_server(config.server, build_modules(config, services), load=False)
    calls = {
        "transcription": lambda ch: transcription_pb2_grpc.TranscriptionServiceStub(ch).Transcribe(
            transcription_pb2.TranscribeRequest(audio=audio_pb2.Audio(content=b"RIFF")), timeout=10),
        "translation": lambda ch: translation_pb2_grpc.TranslationServiceStub(ch).ListLanguages(
            translation_pb2.ListLanguagesRequest(), timeout=10),
        "diarization": lambda ch: diarization_pb2_grpc.DiarizationServiceStub(ch).Diarize(
            diarization_pb2.DiarizeRequest(audio=audio_pb2.Audio(content=(AUDIO / "english.wav").read_bytes())),
            timeout=10),
    }
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            for name, call in calls.items():
                with pytest.raises(aio.AioRpcError) as info:
                    await call(channel)
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE, (name, info.value)
                assert "still loading" in (info.value.details() or ""), (name, info.value.details())
                retry = _detail(_status_of(info.value), error_details_pb2.RetryInfo)
                assert retry is not None and retry.retry_delay.seconds >= 1, name  # type: ignore[attr-defined]
    finally:
        await running.stop(0)


@pytest.mark.slow
def test_refusals_carry_the_field_at_fault_and_quotas_carry_their_retry_delay(tmp_path: Path) -> None:
    tenants = make_tenants(tmp_path / "tenants.toml")
    gateway = start_embedded(gateway_config(tenants, None), ["transcription"])
    channel = grpc.insecure_channel(gateway.address)
    stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
    wav = (AUDIO / "english.wav").read_bytes()
    try:
        cases = {
            "audio": transcription_pb2.TranscribeRequest(audio=audio_pb2.Audio(content=b"not audio at all")),
            "options.beam_size": transcription_pb2.TranscribeRequest(
                audio=audio_pb2.Audio(content=wav), options=transcription_pb2.TranscriptionOptions(beam_size=-3)),
        }
        for field, request in cases.items():
            # Checked by the transcription service, relayed by the gateway: the field travels on.
            with pytest.raises(grpc.RpcError) as info:
                stub.Transcribe(request, metadata=tenants.metadata("a"), timeout=60)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            status = rpc_status.from_call(info.value)
            assert status is not None and status.message == info.value.details()
            bad = _detail(status, error_details_pb2.BadRequest)
            assert bad is not None and bad.field_violations[0].field == field, (field, status)  # type: ignore[attr-defined]
            assert bad.field_violations[0].description  # type: ignore[attr-defined]

        # A tenant over its audio quota (5 s per minute): RetryInfo says how long to wait.
        refused = None
        for _ in range(5):
            try:
                stub.Transcribe(transcription_pb2.TranscribeRequest(audio=audio_pb2.Audio(content=wav)),
                                metadata=tenants.metadata("small"), timeout=60)
            except grpc.RpcError as exc:
                refused = exc
                break
        assert refused is not None and refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        retry = _detail(rpc_status.from_call(refused), error_details_pb2.RetryInfo)
        assert retry is not None and retry.retry_delay.ToMilliseconds() > 0  # type: ignore[attr-defined]
        assert dict(refused.trailing_metadata())["retry-after-ms"] == str(retry.retry_delay.ToMilliseconds())  # type: ignore[attr-defined]
    finally:
        channel.close()
        gateway.stop()
