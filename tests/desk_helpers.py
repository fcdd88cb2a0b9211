"""The desk's web server in a thread, for the browser tests and the desk benchmark."""

from __future__ import annotations

import asyncio
import socket
import threading


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DeskThread:
    """The desk's web server on its own event loop, as `parlons desk --server` runs it."""

    def __init__(self, gateway: str) -> None:
        from aiohttp import web

        from parlons.clients.desk.app import Desk, build_app
        from parlons.clients.desk.bridge import GatewayConnection

        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.desk: Desk | None = None
        ready = threading.Event()

        async def start() -> web.AppRunner:
            self.desk = Desk(GatewayConnection(gateway))
            runner = web.AppRunner(build_app(self.desk))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            return runner

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.runner = self.loop.run_until_complete(start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def reading_tasks(self) -> int:
        """gRPC tasks feeding a conversation's audio to the gateway, on the desk's loop."""
        async def count() -> int:
            return sum("_consume_request_iterator" in repr(t) for t in asyncio.all_tasks())
        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
