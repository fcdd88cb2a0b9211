"""The desk's web server: the page (static files, no build step, nothing from outside)
and one WebSocket per open tab, bridged to LiveConversation.

One conversation per desk: a second tab takes over (the first is told and closed), so
two tabs never mix their audio. Frames are bounded (`MAX_FRAME_BYTES`; a command also
in length and nesting, checked before it is parsed): a larger or malformed one gets an
error message and closes the WebSocket with a reason, the server carries on.

The desk answers only to its own origins (`Origins`): its listening address (and the
loopback names when that is loopback) and its host names, on the port the connection
came in on, plus origins configured for a reverse proxy. The Host header is checked on
every route and the Origin header on the WebSocket, against that list and never against
each other: a DNS-rebound name (evil.example resolving to 127.0.0.1) sends the same
Host and Origin, and is refused. A desk key, when one is set, is compared as bytes, and
wrong keys are limited per client address (`KeyAttempts`, then 429).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import math
import re
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from parlons.clients.desk.bridge import Conversation, DeskError, DeskStart, GatewayConnection

log = logging.getLogger("parlons.desk")

STATIC = Path(__file__).resolve().parent / "static"
# 100 ms of two-channel 16-bit audio is 6.4 KB; a text message is a few hundred bytes.
MAX_FRAME_BYTES = 64 * 1024
# A command ({"type": "start", ...}) is a flat object of a few dozen characters; json.loads
# recurses once per level of nesting, so both are bounded before it runs.
MAX_COMMAND_CHARS = 4096
MAX_JSON_DEPTH = 4
# Wrong desk keys one client address may try in a window, before 429.
MAX_WRONG_KEYS = 5
WRONG_KEYS_WINDOW_S = 60.0
MAX_TRACKED_ADDRESSES = 4096
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
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


def _host_literal(host: str) -> str:
    """A host as it appears in Host and Origin headers: lower case, IPv6 in brackets."""
    host = host.strip().lower()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _authorities(host: str, port: int, scheme: str) -> set[str]:
    """`host:port`, and the bare host when the port is the scheme's default (browsers
    leave it out)."""
    out = {f"{host}:{port}"}
    if _DEFAULT_PORTS.get(scheme) == port:
        out.add(host)
    return out


def normalise_origin(origin: str) -> str:
    """`scheme://host[:port]`, lower case, default port left out; ValueError (naming
    --allowed-origin) for anything else: a path, a wildcard, another scheme."""
    try:
        parts = urllib.parse.urlsplit(origin.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"--allowed-origin {origin!r}: {exc}") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username is not None or "*" in parts.hostname:
        raise ValueError(f"--allowed-origin {origin!r}: expected scheme://host[:port] "
                         "(http or https, no path), e.g. https://accueil.prefecture.example")
    host = _host_literal(parts.hostname)
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


@dataclass(frozen=True)
class Origins:
    """Where this desk may be reached from: its own names on the port a connection came
    in on (read from the socket, so a desk on a free port needs no setting), plus the
    `extra` origins configured for a reverse proxy. Never the request's own Host."""

    names: frozenset[str] = frozenset()  # the desk's host names besides its listening address
    extra: frozenset[str] = frozenset()  # normalised origins, scheme://host[:port]

    @classmethod
    def build(cls, names: Iterable[str] = (), extra: Iterable[str] = ()) -> Origins:
        return cls(frozenset(_host_literal(n) for n in names if n.strip()),
                   frozenset(normalise_origin(o) for o in extra))

    def _own(self, request: web.Request) -> set[str]:
        """The authorities (host[:port]) of this desk for the connection `request` came on."""
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if not isinstance(sockname, tuple) or len(sockname) < 2:
            return set()
        try:
            address = ipaddress.ip_address(str(sockname[0]).split("%")[0])
        except ValueError:
            return set()
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        hosts = {_host_literal(str(address)), *self.names}
        if address.is_loopback:
            hosts |= LOOPBACK_NAMES
        port = int(sockname[1])
        return {authority for host in hosts for authority in _authorities(host, port, request.scheme)}

    def host_allowed(self, request: web.Request) -> bool:
        host = request.headers.get("Host")
        if host is None:
            return True  # no browser sends a request without Host: not a rebinding
        host = host.strip().lower()
        return host in self._own(request) or host in {urllib.parse.urlsplit(o).netloc for o in self.extra}

    def origin_allowed(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser: the desk key is what keeps it out
        try:
            origin = normalise_origin(origin)
        except ValueError:
            return False
        return origin in self.extra or origin in {f"{request.scheme}://{a}" for a in self._own(request)}


class KeyAttempts:
    """Wrong desk keys per client address: `limit` in `window_s`, then refused until the
    oldest leaves the window. The table is bounded (oldest addresses dropped first), so a
    spray of addresses costs no memory; a 16-character key is not found at 5 a minute."""

    def __init__(self, limit: int = MAX_WRONG_KEYS, window_s: float = WRONG_KEYS_WINDOW_S,
                 max_tracked: int = MAX_TRACKED_ADDRESSES, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.max_tracked, self.clock = limit, window_s, max_tracked, clock
        self._failures: dict[str, deque[float]] = {}  # by last failure, oldest first

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, address: str) -> float:
        """Seconds before `address` may try a key again; 0 when it may now."""
        failures = self._failures.get(address)
        if failures is None or len(failures) < self.limit:
            return 0.0
        return max(0.0, failures[0] + self.window_s - self.clock())

    def failed(self, address: str) -> None:
        now = self.clock()
        failures = self._failures.pop(address, None) or deque(maxlen=self.limit)
        failures.append(now)
        self._failures[address] = failures
        self._prune(now)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def _prune(self, now: float) -> None:
        while self._failures:
            oldest = next(iter(self._failures))
            if len(self._failures) <= self.max_tracked and self._failures[oldest][-1] + self.window_s > now:
                return
            del self._failures[oldest]


def client_address(remote: str | None) -> str:
    """Whom wrong keys are counted against: the IPv4 address, or the IPv6 /64 (one
    machine usually holds a whole /64, and would otherwise have 2**64 tries)."""
    try:
        address = ipaddress.ip_address((remote or "").split("%")[0])
    except ValueError:
        return remote or ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else address)


def key_matches(given: str, key: str) -> bool:
    """Constant-time comparison of the UTF-8 bytes (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), key.encode("utf-8", "surrogatepass"))


LANGUAGES_CACHE_S = 60.0


class Desk:
    """The desk's state: its gateway connection, the tab that holds the conversation, who
    may reach it (origins, key, wrong-key limits)."""

    def __init__(self, gateway: GatewayConnection, *, desk_key: str = "", allowed_origins: Iterable[str] = (),
                 host_names: Iterable[str] = (), key_attempts: KeyAttempts | None = None) -> None:
        self.gateway = gateway
        self.desk_key = desk_key
        self.origins = Origins.build(host_names, allowed_origins)
        self.key_attempts = key_attempts or KeyAttempts()
        self.active: web.WebSocketResponse | None = None
        self.conversations = 0  # counters only: nothing of what is said
        self._languages: tuple[float, list[dict[str, object]]] | None = None
        self._languages_lock = asyncio.Lock()

    async def languages(self) -> list[dict[str, object]]:
        """The visitor languages the gateway's installed models serve both ways with
        French, asked once a minute at most (each page load would otherwise cost two calls)."""
        async with self._languages_lock:
            now = time.monotonic()
            if self._languages is None or now - self._languages[0] > LANGUAGES_CACHE_S:
                offers = await self.gateway.visitor_languages("fr")
                self._languages = (now, [offer.to_json() for offer in offers])
            return self._languages[1]

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


@web.middleware
async def own_host_only(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every route: a Host that is not one of the desk's own is a rebound name."""
    if not request.app[DESK].origins.host_allowed(request):
        log.warning("desk: request for another host refused (%.100r); see --allowed-origin",
                    request.headers.get("Host"))
        raise web.HTTPForbidden(text="hôte refusé")
    return await handler(request)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def websocket(request: web.Request) -> web.WebSocketResponse:
    desk: Desk = request.app[DESK]
    if not desk.origins.origin_allowed(request):
        log.warning("desk: WebSocket from another origin refused (%.100r); see --allowed-origin",
                    request.headers.get("Origin"))
        raise web.HTTPForbidden(text="origine refusée")
    key_ok = True
    if desk.desk_key:
        # Checked and counted before any await, so a burst of handshakes cannot all pass.
        client = client_address(request.remote)
        wait_s = desk.key_attempts.retry_after(client)
        if wait_s > 0:
            raise web.HTTPTooManyRequests(headers={"Retry-After": str(math.ceil(wait_s))},
                                          text=f"trop de clés incorrectes : réessayez dans {math.ceil(wait_s)} s")
        key_ok = key_matches(request.query.get("cle", ""), desk.desk_key)
        if key_ok:
            desk.key_attempts.succeeded(client)
        else:
            desk.key_attempts.failed(client)
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=20.0)
    await ws.prepare(request)
    if not key_ok:
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
        """Tell the page why (an error message), then close with the reason."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_json({"type": "error", "retry": False, "message": f"Message refusé : {reason}."})
        await self.ws.close(code=CLOSE_BAD_MESSAGE, message=reason.encode())
        return False

    async def _command(self, data: str) -> bool:
        try:
            message = read_command(data)
        except ValueError as exc:
            return await self._close(str(exc))
        kind = message["type"]
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


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether `text` nests arrays/objects deeper than `limit` (strings skipped), in one
    linear pass and without recursion: json.loads would recurse once per level."""
    depth = 0
    for bracket in _JSON_BRACKET.finditer(_JSON_STRING.sub('""', text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > limit:
            return True
    return False


def read_command(data: str) -> dict[str, Any]:
    """The page's JSON command, bounded in length and nesting before it is parsed;
    ValueError with a French reason otherwise."""
    if len(data) > MAX_COMMAND_CHARS:
        raise ValueError("message trop long")
    if json_depth_exceeds(data, MAX_JSON_DEPTH):
        raise ValueError("message trop imbriqué")
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        raise ValueError("message illisible") from None
    if not isinstance(message, dict) or "type" not in message:
        raise ValueError("message illisible")
    return message


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def languages(request: web.Request) -> web.Response:
    """The languages the page may offer the visitor (codes; the page names them)."""
    desk: Desk = request.app[DESK]
    try:
        offers = await desk.languages()
    except Exception as exc:  # the gateway unreachable or refusing: the page says so
        log.warning("desk: languages unavailable (%s)", type(exc).__name__)
        return web.json_response({"erreur": "passerelle injoignable : liste des langues indisponible"}, status=503)
    return web.json_response({"agent": "fr", "langues": offers})


def build_app(desk: Desk) -> web.Application:
    app = web.Application(middlewares=[security_headers, own_host_only], client_max_size=MAX_FRAME_BYTES)
    app[DESK] = desk
    app.router.add_get("/", index)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/sante", health)
    app.router.add_get("/langues", languages)
    app.router.add_static("/static/", STATIC, show_index=False)

    async def close_gateway(app: web.Application) -> None:
        await desk.gateway.close()

    app.on_cleanup.append(close_gateway)
    return app
