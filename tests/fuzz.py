"""A fuzzing harness for every RPC and REST endpoint of a running parlons server.

Inputs come from Hypothesis strategies built from the protos' own descriptors, so a new
field or RPC is fuzzed without touching this file:
* messages with every field drawn at random, extreme values included (the ends of each
  integer range, NaN and infinities, empty and 10,000-character strings, unknown enum
  numbers), bytes fields from random bytes or from real seeds (a short WAV, a DOCX)
  mutated;
* raw bytes that are no protobuf at all, and real messages with bytes flipped, cut or
  spliced;
* for streams, 0 to 5 messages in any order (configs twice, audio first, oneofs unset).
A call passes when the server answers within its deadline with a status a client can act
on: never UNKNOWN or INTERNAL (a bug), never a hang; afterwards the server must still
answer its health check. Used by tests/test_fuzz.py (a bounded run in CI) and
benchmarks/bench_fuzz.py (>= 1000 inputs per entry point).
"""

from __future__ import annotations

import io
import time
import urllib.parse
import wave
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from collections.abc import Callable, Iterator

import grpc
import numpy as np
from google.protobuf import descriptor as pbd
from google.protobuf import message_factory
from hypothesis import strategies as st

from parlons.v1 import anonymization_pb2, diarization_pb2, gateway_pb2, transcription_pb2, translation_pb2

FILES = (transcription_pb2, diarization_pb2, translation_pb2, gateway_pb2, anonymization_pb2)
BAD_CODES = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
CALL_DEADLINE_S = 30.0
FieldD: TypeAlias = pbd.FieldDescriptor


def _seed_wav() -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes((rng.normal(0, 0.05, 8000) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def _seed_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph("Bonjour, votre dossier est prêt.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


SEEDS: tuple[bytes, ...] = (_seed_wav(), _seed_docx(), b"Bonjour.\n", b"1\n00:00:01,000 --> 00:00:02,000\nSalut\n")

_INT_RANGES = {
    FieldD.TYPE_INT32: (-(2**31), 2**31 - 1), FieldD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldD.TYPE_SFIXED32: (-(2**31), 2**31 - 1), FieldD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldD.TYPE_SINT64: (-(2**63), 2**63 - 1), FieldD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldD.TYPE_UINT32: (0, 2**32 - 1), FieldD.TYPE_FIXED32: (0, 2**32 - 1),
    FieldD.TYPE_UINT64: (0, 2**64 - 1), FieldD.TYPE_FIXED64: (0, 2**64 - 1),
}


def mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """`data` with a few bytes flipped, a piece cut out, or cut short."""
    def mutate(draw: Callable[..., Any]) -> bytes:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            if not out:
                break
            kind = draw(st.sampled_from(["flip", "cut", "truncate", "splice"]))
            at = draw(st.integers(0, len(out) - 1))
            if kind == "flip":
                out[at] ^= draw(st.integers(1, 255))
            elif kind == "cut":
                del out[at : at + draw(st.integers(1, 64))]
            elif kind == "truncate":
                del out[at:]
            else:
                out[at:at] = draw(st.binary(min_size=1, max_size=32))
        return bytes(out)

    return st.composite(lambda draw: mutate(draw))()


def _scalar(field_d: FieldD) -> st.SearchStrategy[Any]:
    kind = field_d.type
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return st.one_of(st.integers(low, high), st.sampled_from([0, 1, -1 if low < 0 else 2, low, high]),
                         st.integers(0, 64))
    if kind == FieldD.TYPE_FLOAT:
        return st.floats(width=32, allow_nan=True, allow_infinity=True)
    if kind == FieldD.TYPE_DOUBLE:
        return st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 100))
    if kind == FieldD.TYPE_BOOL:
        return st.booleans()
    if kind == FieldD.TYPE_STRING:
        return st.one_of(st.text(max_size=40), st.sampled_from(["", "fr", "en", "detect", "agent", "x" * 10_000,
                                                                 "fr-FR", "base", "tiny.en", "é\u202e\u0000",
                                                                 # the anonymiser's pathological shapes
                                                                 "1 non 1 non " * 300, "cinquante huit 1 " * 200,
                                                                 "double ſept", "Né" + "A" * 5000,
                                                                 "Mme Benali, 06 12 34 56 78, NIR 1 84 12 75 "]))
    if kind == FieldD.TYPE_BYTES:
        return st.one_of(st.binary(max_size=256), st.sampled_from(SEEDS), st.sampled_from(SEEDS).flatmap(mutated))
    if kind == FieldD.TYPE_ENUM:
        numbers = [v.number for v in field_d.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(-5, 1000))
    raise TypeError(f"no strategy for field type {kind}")


def message_strategy(descriptor: pbd.Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """Messages of this type with any subset of fields set to random or extreme values."""
    cls = message_factory.GetMessageClass(descriptor)
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field_d in descriptor.fields:
        if field_d.type == FieldD.TYPE_MESSAGE:
            if depth >= 3 or field_d.message_type.GetOptions().map_entry:
                continue
            value = message_strategy(field_d.message_type, depth + 1)
        else:
            value = _scalar(field_d)
        if field_d.is_repeated:
            value = st.lists(value, max_size=4 if field_d.type == FieldD.TYPE_MESSAGE else 8)
        optional[field_d.name] = value

    def build(values: dict[str, Any]) -> Any:
        message = cls()
        for name, value in values.items():
            field_d = descriptor.fields_by_name[name]
            try:
                if field_d.is_repeated:
                    if field_d.type == FieldD.TYPE_MESSAGE:
                        for item in value:
                            getattr(message, name).add().CopyFrom(item)
                    else:
                        getattr(message, name).extend(value)
                elif field_d.type == FieldD.TYPE_MESSAGE:
                    getattr(message, name).CopyFrom(value)
                else:
                    setattr(message, name, value)
            except (ValueError, TypeError):
                pass  # a value the Python runtime itself refuses (e.g. an enum it cannot hold)
        return message

    return st.fixed_dictionaries({}, optional=optional).map(build)


def payload(descriptor: pbd.Descriptor) -> st.SearchStrategy[bytes]:
    """What goes on the wire for one message: a random message, a broken one, or noise."""
    valid = message_strategy(descriptor).map(lambda m: m.SerializeToString())
    return st.one_of(valid, valid.flatmap(mutated), st.binary(max_size=512))


def tolerate_lazy_modules() -> None:
    """Hypothesis reads `__file__` of every loaded module to collect constants; the lazy
    modules SpeechBrain registers raise ImportError there (k2 is not installed), which
    would fail every example. Mark those modules as already seen. Call after the server
    (and so the diarisation pipeline) is loaded."""
    import sys

    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:
        return
    seen = getattr(providers, "_seen_modules", None)
    if seen is None:
        return
    for module in list(sys.modules.values()):
        try:
            getattr(module, "__file__", None)
        except Exception:
            seen.add(id(module))


@dataclass(frozen=True)
class EntryPoint:
    path: str  # /parlons.v1.Service/Method
    request: pbd.Descriptor
    client_streaming: bool
    server_streaming: bool

    def inputs(self) -> st.SearchStrategy[list[bytes]]:
        if self.client_streaming:
            return st.lists(payload(self.request), max_size=5)
        return payload(self.request).map(lambda p: [p])


def entry_points() -> list[EntryPoint]:
    points = []
    for module in FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                points.append(EntryPoint(f"/{service.full_name}/{method.name}", method.input_type,
                                         method.client_streaming, method.server_streaming))
    return points


@dataclass
class Outcome:
    code: grpc.StatusCode
    details: str
    seconds: float


@dataclass
class Tally:
    """What one entry point answered over a run."""

    calls: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)  # (code, details)
    slowest_s: float = 0.0
    codes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        self.calls += 1
        self.slowest_s = max(self.slowest_s, outcome.seconds)
        self.codes[outcome.code.name] = self.codes.get(outcome.code.name, 0) + 1
        if outcome.code in BAD_CODES or outcome.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            self.bad.append((outcome.code.name, outcome.details[:200]))


def call(channel: grpc.Channel, point: EntryPoint, messages: list[bytes]) -> Outcome:
    """Send raw serialized messages; the answer's status (responses are drained and dropped)."""
    identity = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)
    started = time.monotonic()

    def requests() -> Iterator[bytes]:
        yield from messages

    try:
        if point.client_streaming and point.server_streaming:
            for _ in channel.stream_stream(point.path, **identity)(requests(), timeout=CALL_DEADLINE_S):
                pass
        elif point.client_streaming:
            channel.stream_unary(point.path, **identity)(requests(), timeout=CALL_DEADLINE_S)
        elif point.server_streaming:
            for _ in channel.unary_stream(point.path, **identity)(messages[0], timeout=CALL_DEADLINE_S):
                pass
        else:
            channel.unary_unary(point.path, **identity)(messages[0], timeout=CALL_DEADLINE_S)
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details() or ""
    return Outcome(code, details, time.monotonic() - started)


# ------------------------------------------------------------------------------ REST


@dataclass(frozen=True)
class RestInput:
    method: str
    path: str
    fields: dict[str, str]
    file: bytes | None
    file_name: str


def rest_inputs() -> st.SearchStrategy[RestInput]:
    text = st.one_of(st.text(max_size=30), st.sampled_from(["", "json", "text", "srt", "vtt", "verbose_json",
                                                            "whisper-1", "base", "fr", "french", "0", "-1",
                                                            "1e309", "true", "x" * 5000]))
    form = st.dictionaries(st.sampled_from(["model", "language", "response_format", "temperature", "prompt",
                                            "stream", "timestamp_granularities[]", "junk"]), text, max_size=6)
    files = st.one_of(st.none(), st.binary(max_size=256), st.sampled_from(SEEDS), st.sampled_from(SEEDS).flatmap(mutated))
    posts = st.builds(RestInput, st.just("POST"), st.sampled_from(["/v1/audio/transcriptions", "/v1/audio/translations"]),
                      form, files, st.sampled_from(["a.wav", "", "../../etc/passwd", "x" * 300, "a.docx"]))
    gets = st.builds(RestInput, st.just("GET"), st.one_of(
        st.sampled_from(["/v1/models", "/health"]),
        st.text(min_size=1, max_size=40).map(lambda s: "/v1/models/" + urllib.parse.quote(s, safe=""))),
                     st.just({}), st.none(), st.just(""))
    return st.one_of(posts, gets)


def _multipart(fields: dict[str, str], file: bytes | None, file_name: str) -> tuple[bytes, str]:
    boundary = "parlonsfuzz7d1e"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                     + value.encode("utf-8", "surrogatepass") + b"\r\n")
    if file is not None:
        safe_name = file_name.replace('"', "")
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode("utf-8", "surrogatepass")
                     + file + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def rest_call(base_url: str, item: RestInput) -> tuple[int, float]:
    """(HTTP status, seconds); a 5xx or a hang is the fuzz target's failure (599)."""
    import urllib.error
    import urllib.request

    started = time.monotonic()
    if item.method == "GET":
        request = urllib.request.Request(base_url + item.path)
    else:
        body, content_type = _multipart(item.fields, item.file, item.file_name)
        request = urllib.request.Request(base_url + item.path, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=CALL_DEADLINE_S) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (TimeoutError, urllib.error.URLError):
        status = 599
    return status, time.monotonic() - started
