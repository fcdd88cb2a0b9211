"""The desk offers only the languages the installed models serve both ways (issue 27)."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from desk_helpers import free_port
from gateway_helpers import gateway_config, start_embedded
from parlons.clients.desk.app import Desk, build_app
from parlons.clients.desk.bridge import GatewayConnection
from parlons.clients.desk.languages import Offer, Pair, offered
from parlons.services.common.server import BackgroundServer


def test_a_language_is_offered_only_when_heard_and_translated_both_ways() -> None:
    pairs = [
        Pair("en", "fr", False), Pair("fr", "en", False),  # direct both ways
        Pair("uk", "fr", True), Pair("fr", "uk", True),  # two OPUS-MT hops each way
        Pair("ar", "fr", False), Pair("fr", "ar", True),  # one way direct, back through English
        Pair("fr", "es", False),  # into Spanish only: a Spanish speaker could not be understood
        Pair("fa-AF", "fr", False), Pair("fr", "fa-AF", False),  # Dari, by a multilingual model
        Pair("ti", "fr", False), Pair("fr", "ti", False),  # Tigrinya: translated, never heard
    ]
    heard = ["en", "fr", "uk", "ar", "es", "fa"]
    assert offered(heard, pairs, "fr") == [
        Offer("ar", True), Offer("en", False), Offer("fa-AF", False), Offer("uk", True),
    ]
    assert offered(heard, [], "fr") == []


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    config = gateway_config(None, tmp_path_factory.mktemp("models"), transcription_model="base")  # fr<->en test models
    server = start_embedded(config, ["transcription", "translation"])
    yield server
    server.stop()


async def _languages(desk: Desk) -> tuple[int, dict[str, object]]:
    """GET /langues from a real desk server on a loopback port."""
    runner = web.AppRunner(build_app(desk))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/langues") as response:
            return response.status, await response.json()
    finally:
        await runner.cleanup()


@pytest.mark.slow
async def test_the_desk_lists_what_the_gateways_models_serve(gateway: BackgroundServer) -> None:
    status, body = await _languages(Desk(GatewayConnection(gateway.address)))
    assert (status, body) == (200, {"agent": "fr", "langues": [{"code": "en", "pivot": False}]})
    status, body = await _languages(Desk(GatewayConnection(f"127.0.0.1:{free_port()}")))  # no gateway there
    assert status == 503 and "passerelle" in str(body["erreur"])
