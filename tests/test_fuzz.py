"""Every RPC and REST endpoint fuzzed against one real server (issue 10): a bounded run
in CI (PARLONS_FUZZ_EXAMPLES inputs per entry point, 40 by default, the same ones each
run); benchmarks/bench_fuzz.py runs >= 1000 per entry point. See tests/fuzz.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz
from desk_helpers import free_port
from gateway_helpers import diarization_available, gateway_config, start_embedded
from parlons.clients.desk.app import read_command
from parlons.services.common.server import BackgroundServer

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("PARLONS_FUZZ_EXAMPLES", "40"))
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))


def fuzz_server(models: Path) -> tuple[BackgroundServer, int]:
    """The embedded layout: gateway on the public port (every service behind it), REST on."""
    config = gateway_config(None, models, transcription_model="tiny.en")
    config.transcription.max_audio_s = 60
    config.gateway.rest_port = free_port()
    services = ["transcription", "translation", "anonymization"] + (["diarization"] if diarization_available() else [])
    return start_embedded(config, services), config.gateway.rest_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, int]]:
    running, rest_port = fuzz_server(tmp_path_factory.mktemp("models"))
    fuzz.tolerate_lazy_modules()
    yield running, rest_port
    running.stop()


@pytest.fixture(scope="module")
def channel(server: tuple[BackgroundServer, int]) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server[0].address) as ch:
        yield ch


def _serving(channel: grpc.Channel) -> bool:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("point", fuzz.entry_points(), ids=lambda p: p.path.rsplit("/", 2)[-1])
def test_every_rpc_answers_fuzzed_input_with_a_status_a_client_can_act_on(
        channel: grpc.Channel, point: fuzz.EntryPoint) -> None:
    tally = fuzz.Tally()
    fuzz.tolerate_lazy_modules()

    @FUZZ_SETTINGS
    @given(point.inputs())
    def one(messages: list[bytes]) -> None:
        outcome = fuzz.call(channel, point, messages)
        tally.add(outcome)
        assert outcome.code not in fuzz.BAD_CODES, (outcome.code, outcome.details)
        assert outcome.code != grpc.StatusCode.DEADLINE_EXCEEDED, f"no answer within {fuzz.CALL_DEADLINE_S} s"

    one()
    assert tally.calls >= EXAMPLES
    assert _serving(channel)


def test_every_rest_endpoint_answers_fuzzed_input_without_a_server_error(server: tuple[BackgroundServer, int],
                                                                         channel: grpc.Channel) -> None:
    base = f"http://127.0.0.1:{server[1]}"

    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES * 4)
    @given(fuzz.rest_inputs())
    def one(item: fuzz.RestInput) -> None:
        status, seconds = fuzz.rest_call(base, item)
        assert status < 500, (status, item.method, item.path, item.fields)

    one()
    assert _serving(channel)


def test_the_desk_reads_every_frame_or_refuses_it_plainly() -> None:
    """The desk's entry point for a browser's frames: a command or ValueError, nothing else.
    (@given inside the test, as above: hypothesis' collection hook must not walk the lazy
    modules some libraries leave in sys.modules.)"""
    fuzz.tolerate_lazy_modules()
    frames = st.one_of(
        st.text(max_size=200),
        st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
                     lambda inner: st.one_of(st.lists(inner, max_size=4),
                                             st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                     max_leaves=30).map(json.dumps),
        st.integers(1, 20_000).map(lambda n: "[" * n),
        st.sampled_from(['{"type": "start", "agent": "fr", "visitor": "en", "microphones": 1}', '{"type": "stop"}']),
    )

    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES * 25)
    @given(frames)
    def one(frame: str) -> None:
        try:
            command = read_command(frame)
        except ValueError:
            return
        assert isinstance(command, dict)

    one()
