"""The desk's web server without a browser: what bad or hostile input gets.

A real aiohttp server on a loopback port, real WebSocket clients; the gateway is either
absent (an address nothing listens on) or, for the conversation tests, the embedded one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from desk_helpers import free_port
from parlons.clients.desk.app import CLOSE_BAD_KEY, CLOSE_BAD_MESSAGE, CLOSE_TAKEN_OVER, MAX_FRAME_BYTES, Desk, build_app
from parlons.clients.desk.bridge import GatewayConnection


async def _serve(desk: Desk) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(build_app(desk))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"127.0.0.1:{port}"


@pytest.fixture
async def desk_url() -> AsyncIterator[str]:
    nowhere = f"127.0.0.1:{free_port()}"  # no gateway there
    runner, host = await _serve(Desk(GatewayConnection(nowhere)))
    yield host
    await runner.cleanup()


@pytest.fixture
async def keyed_desk_url() -> AsyncIterator[str]:
    runner, host = await _serve(Desk(GatewayConnection(f"127.0.0.1:{free_port()}"), desk_key="s3cret-poste"))
    yield host
    await runner.cleanup()


def _origin(host: str) -> dict[str, str]:
    return {"Origin": f"http://{host}"}


async def test_page_and_static_files_are_served_with_a_strict_policy(desk_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{desk_url}/") as response:
            assert response.status == 200
            page = await response.text()
            assert 'lang="fr"' in page and "Nouvel usager" in page and "Démarrer" in page
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
            assert response.headers["Cache-Control"] == "no-store"
        for name in ("desk.js", "desk.css", "pcm-worklet.js"):
            async with session.get(f"http://{desk_url}/static/{name}") as response:
                assert response.status == 200, name
        async with session.get(f"http://{desk_url}/static/../app.py") as response:
            assert response.status in (403, 404)


async def test_malformed_and_oversized_frames_close_with_a_reason(desk_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"http://{desk_url}/ws", headers=_origin(desk_url)) as ws:
            await ws.send_str("{not json")
            told = await ws.receive_json(timeout=10)  # the page is told why, then closed
            assert told["type"] == "error" and "illisible" in told["message"]
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.CLOSE and ws.close_code == CLOSE_BAD_MESSAGE
        async with session.ws_connect(f"http://{desk_url}/ws", headers=_origin(desk_url)) as ws:
            await ws.send_str(json.dumps({"type": "launch-missiles"}))
            assert (await ws.receive_json(timeout=10))["type"] == "error"
            await ws.receive()
            assert ws.close_code == CLOSE_BAD_MESSAGE
        async with session.ws_connect(f"http://{desk_url}/ws", headers=_origin(desk_url),
                                      max_msg_size=0) as ws:
            await ws.send_bytes(b"\0" * (MAX_FRAME_BYTES + 2))
            await ws.receive()
            assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        # The server carries on.
        async with session.get(f"http://{desk_url}/sante") as response:
            assert (await response.json()) == {"status": "ok"}


async def test_bad_start_settings_get_a_french_message(desk_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"http://{desk_url}/ws", headers=_origin(desk_url)) as ws:
            await ws.send_str(json.dumps({"type": "start", "visitor": "ar", "microphones": 3}))
            reply = await ws.receive_json(timeout=10)
            assert reply == {"type": "error", "retry": False, "message": "Nombre de microphones invalide : 1 (partagé) ou 2."}
            await ws.send_str(json.dumps({"type": "start", "visitor": "<script>"}))
            reply = await ws.receive_json(timeout=10)
            assert reply["type"] == "error" and reply["message"].startswith("Langue invalide")


async def test_unreachable_gateway_says_so_in_french_and_asks_to_retry(desk_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"http://{desk_url}/ws", headers=_origin(desk_url)) as ws:
            await ws.send_str(json.dumps({"type": "start", "visitor": "en", "microphones": 1}))
            assert (await ws.receive_json(timeout=10))["type"] == "ready"
            await ws.send_bytes(b"\0\0" * 1600)
            reply = await ws.receive_json(timeout=30)
            assert reply["type"] == "error" and reply["retry"] is True
            assert "injoignable" in reply["message"]


async def test_other_origins_and_wrong_keys_are_refused(keyed_desk_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"http://{keyed_desk_url}/ws", headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
        async with session.ws_connect(f"http://{keyed_desk_url}/ws?cle=wrong", headers=_origin(keyed_desk_url)) as ws:
            reply = await ws.receive_json(timeout=10)
            assert reply["type"] == "error" and "Clé du poste" in reply["message"]
            await ws.receive()
            assert ws.close_code == CLOSE_BAD_KEY
        async with session.ws_connect(f"http://{keyed_desk_url}/ws?cle=s3cret-poste",
                                      headers=_origin(keyed_desk_url)) as ws:
            await ws.send_str(json.dumps({"type": "new"}))
            assert (await ws.receive_json(timeout=10)) == {"type": "cleared"}


async def test_a_second_tab_takes_over_and_the_first_is_told(desk_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        first = await session.ws_connect(f"http://{desk_url}/ws", headers=_origin(desk_url))
        second = await session.ws_connect(f"http://{desk_url}/ws", headers=_origin(desk_url))
        told = await first.receive_json(timeout=10)
        assert told["type"] == "error" and "autre onglet" in told["message"]
        await first.receive()
        assert first.close_code == CLOSE_TAKEN_OVER
        await second.send_str(json.dumps({"type": "new"}))
        assert (await second.receive_json(timeout=10)) == {"type": "cleared"}
        await second.close()
        await asyncio.sleep(0)


def test_off_loopback_needs_https_and_a_desk_key(capsys: pytest.CaptureFixture[str]) -> None:
    from parlons.cli import main

    assert main(["desk", "--host", "0.0.0.0", "--server", "127.0.0.1:1"]) == 2
    assert "HTTPS" in capsys.readouterr().err
