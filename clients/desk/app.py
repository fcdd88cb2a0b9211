"""The desk's web server: the page (static files, no build step, nothing from outside)
and one WebSocket per open tab, bridged to LiveConversation.

One conversation per desk: a second tab takes over (the first is told and closed), so
two tabs never mix their audio. Frames are bounded (`MAX_FRAME_BYTES`): a larger or
malformed one closes the WebSocket with a reason, the server carries on. The WebSocket
only accepts pages served by this server (Origin check: another site open in the
agent's browser cannot reach the microphone's stream), and a desk key when one is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from parlons.clients.desk.bridge import Conversation, DeskError, DeskStart, GatewayConnection

log = logging.getLogger("parlons.desk")

STATIC = Path(__file__).resolve().parent / "static"
# 100 ms of two-channel 16-bit audio is 6.4 KB; a text message is a few hundred bytes.
MAX_FRAME_BYTES = 64 * 1024
CLOSE_TAKEN_OVER = 4001
CLOSE_BAD_KEY = 4003
CLOSE_BAD_MESSAGE = 4400
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Permissions-Policy": "microphone=(self)",
}


class Desk:
    """The desk's state: its gateway connection and the tab that holds the conversation."""

    def __init__(self, gateway: GatewayConnection, *, desk_key: str = "") -> None:
        self.gateway = gateway
        self.desk_key = desk_key
        self.active: web.WebSocketResponse | None = None
        self.conversations = 0  # counters only: nothing of what is said

    async def take_over(self, ws: web.WebSocketResponse) -> None:
        previous, self.active = self.active, ws
        if previous is not None and not previous.closed:
            await previous.send_json({"type": "error", "retry": False,
                                      "message": "La conversation a été reprise dans un autre onglet."})
            await previous.close(code=CLOSE_TAKEN_OVER, message=b"repris dans un autre onglet")


DESK = web.AppKey("desk", Desk)


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    response.headers.update(_SECURITY_HEADERS)
    return response


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


async def websocket(request: web.Request) -> web.WebSocketResponse:
    desk: Desk = request.app[DESK]
    if not _same_origin(request):
        raise web.HTTPForbidden(text="origine refusée")
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=20.0)
    await ws.prepare(request)
    if desk.desk_key and not hmac.compare_digest(request.query.get("cle", ""), desk.desk_key):
        await ws.send_json({"type": "error", "retry": False, "message": "Clé du poste absente ou incorrecte."})
        await ws.close(code=CLOSE_BAD_KEY, message=b"cle du poste requise")
        return ws
    await desk.take_over(ws)
    session = _Session(desk, ws)
    try:
        await session.run()
    finally:
        session.end()  # closing the tab ends the conversation on the server
        if desk.active is ws:
            desk.active = None
    return ws


class _Session:
    """One tab: its messages in, the current conversation's results out."""

    def __init__(self, desk: Desk, ws: web.WebSocketResponse) -> None:
        self.desk = desk
        self.ws = ws
        self.conversation: Conversation | None = None
        self.relay: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async for message in self.ws:
            if message.type == WSMsgType.TEXT:
                if not await self._command(message.data):
                    return
            elif message.type == WSMsgType.BINARY:
                if not await self._audio(message.data):
                    return
            elif message.type == WSMsgType.ERROR:
                return

    async def _close(self, reason: str) -> bool:
        await self.ws.close(code=CLOSE_BAD_MESSAGE, message=reason.encode())
        return False

    async def _command(self, data: str) -> bool:
        try:
            message = json.loads(data)
            kind = message["type"]
        except (ValueError, KeyError, TypeError):
            return await self._close("message illisible")
        if kind == "start":
            try:
                start = DeskStart.parse(message)
            except DeskError as exc:
                await self.ws.send_json({"type": "error", "retry": False, "message": exc.message})
                return True
            self.end()
            self.conversation = self.desk.gateway.open(start)
            self.desk.conversations += 1
            self.relay = asyncio.create_task(self._relay(self.conversation))
            await self.ws.send_json({"type": "ready", "microphones": start.microphones})
        elif kind == "new":  # Nouvel usager: nothing of this conversation stays anywhere
            self.end()
            await self.ws.send_json({"type": "cleared"})
        elif kind == "stop":
            if self.conversation is not None:
                await self.conversation.finish()
        else:
            return await self._close("type de message inconnu")
        return True

    async def _audio(self, data: bytes) -> bool:
        conversation = self.conversation
        if conversation is None:
            return True  # between two conversations (reconnecting): the audio is dropped
        if len(data) % (2 * conversation.start.microphones):
            return await self._close("trame audio invalide")
        await conversation.send(data)
        return True

    async def _relay(self, conversation: Conversation) -> None:
        try:
            async for message in conversation.responses():
                await self.ws.send_json(message)
            await self.ws.send_json({"type": "ended"})
        except DeskError as exc:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_json({"type": "error", "retry": exc.retry, "message": exc.message})
        except (ConnectionError, RuntimeError):
            pass  # the tab is gone
        finally:
            conversation.cancel()
            if self.conversation is conversation:
                self.conversation = None

    def end(self) -> None:
        if self.conversation is not None:
            self.conversation.cancel()
            self.conversation = None
        if self.relay is not None:
            self.relay.cancel()
            self.relay = None


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def build_app(desk: Desk) -> web.Application:
    app = web.Application(middlewares=[security_headers], client_max_size=MAX_FRAME_BYTES)
    app[DESK] = desk
    app.router.add_get("/", index)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/sante", health)
    app.router.add_static("/static/", STATIC, show_index=False)

    async def close_gateway(app: web.Application) -> None:
        await desk.gateway.close()

    app.on_cleanup.append(close_gateway)
    return app
