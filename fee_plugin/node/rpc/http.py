"""HTTP transport for the JSON-RPC API, on aiohttp.

aiohttp (maintained, asyncio, HTTP/1.1 keep-alive with TCP_NODELAY and one write per
response, and WebSocket on the same port) accepts connections on one event loop thread;
request bodies are handed to a bounded pool of worker threads, because py-evm reads are
blocking Python. When every worker is busy and the backlog is full, a request is answered
at once with a "busy" error instead of queueing without bound. WebSocket upgrades of GET /
are served by ws.py (also on `ws_port` when given); cors.py checks hosts and origins.
"""
import asyncio
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from aiohttp import web

from .api import RpcApi
from .cors import AccessRules, access_middleware, is_websocket_upgrade
from .errors import INVALID_REQUEST, LIMIT_EXCEEDED, RpcError, error_response
from .ws import WsEndpoint

log = logging.getLogger("fee_plugin.node.rpc.http")

BACKLOG_PER_WORKER = 32  # requests waiting for a worker, per worker, before "busy"
START_TIMEOUT_SECONDS = 10.0


def _json_body(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class HttpServer:
    def __init__(self, api: RpcApi, host: str = "127.0.0.1", port: int = 8545, routes=(),
                 serve_rpc: bool = True, *, access: AccessRules = AccessRules(),
                 ws_port: Optional[int] = None) -> None:
        """`routes`: more (method, path, handler) for the same server (metrics, console);
        a handler is `async def handler(request, server)`. Without `serve_rpc` only the
        routes are served (e.g. metrics on their own port). `access`: CORS, virtual hosts
        and WebSocket origins of the RPC (cors.py); `ws_port`: a second port for it."""
        self.api = api
        self.routes = list(routes)
        self.serve_rpc = serve_rpc
        self.host, self.port = host, port
        self.access, self.ws_port = access, ws_port
        limits = api.limits
        self._executor = ThreadPoolExecutor(limits.workers, thread_name_prefix="rpc")
        self.websockets = WsEndpoint(api, self._executor)
        self._max_in_flight = limits.workers * BACKLOG_PER_WORKER
        self._in_flight = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port or self.port}"

    # -- handlers ---------------------------------------------------------------------------

    async def _post(self, request: web.Request) -> web.Response:
        limit = self.api.limits.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return self._error_reply(413, RpcError(INVALID_REQUEST, f"request body larger than {limit} bytes"))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._error_reply(413, RpcError(INVALID_REQUEST, f"request body larger than {limit} bytes"))
        if self._in_flight >= self._max_in_flight:
            return self._error_reply(503, RpcError(LIMIT_EXCEEDED, "busy: too many requests in flight"))
        self._in_flight += 1
        try:
            reply = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.api.handle_body, body)
        finally:
            self._in_flight -= 1
        return web.Response(body=reply or b"", content_type="application/json")

    async def _get(self, request: web.Request) -> web.StreamResponse:
        if is_websocket_upgrade(request):
            return await self.websockets.handle(request)
        return web.json_response({"error": "use POST with a JSON-RPC body"}, status=405)

    def _error_reply(self, status: int, error: RpcError) -> web.Response:
        return web.Response(status=status, body=_json_body(error_response(None, error)),
                            content_type="application/json")

    async def run_blocking(self, fn, *args):
        """Run blocking work (py-evm reads) on the worker pool, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def make_app(self) -> web.Application:
        middlewares = [access_middleware(self.access)] if self.serve_rpc else []
        app = web.Application(client_max_size=self.api.limits.max_body_bytes, middlewares=middlewares)
        if self.serve_rpc:
            app.router.add_post("/", self._post)
            app.router.add_get("/", self._get)
            app.router.add_route("OPTIONS", "/", self._get)  # answered by the CORS middleware
        for method, path, handler in self.routes:
            app.router.add_route(method, path, self._bound(handler))
        return app

    def _bound(self, handler):
        """`handler(request, server)` as an aiohttp handler (a coroutine function: aiohttp
        deprecates plain functions returning awaitables)."""
        async def route(request: web.Request) -> web.StreamResponse:
            return await handler(request, self)

        return route

    # -- lifetime ---------------------------------------------------------------------------

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
            self.port = runner.addresses[0][1]
            if self.ws_port is not None:
                bound = set(runner.addresses)
                await web.TCPSite(runner, self.host, self.ws_port, reuse_address=True).start()
                self.ws_port = [a for a in runner.addresses if a not in bound][0][1]
        except BaseException as err:
            self._error = err
            self._ready.set()
            await runner.cleanup()
            raise
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.websockets.close_all()
            await runner.cleanup()

    def serve_forever(self) -> None:
        """Serve in this thread until `stop()` (from any thread)."""
        try:
            asyncio.run(self._main())
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def start(self) -> "HttpServer":
        """Serve on a background thread; returns once listening (raises if it cannot)."""
        self._thread = threading.Thread(target=self._serve_quietly, name="http", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError("the HTTP server did not start")
        if self._error is not None:
            raise self._error
        return self

    def _serve_quietly(self) -> None:
        try:
            self.serve_forever()
        except BaseException:
            if not self._ready.is_set() or self._error is None:
                log.exception("HTTP server stopped")

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        if not self._ready.wait(timeout):
            raise RuntimeError("the HTTP server did not start")
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(START_TIMEOUT_SECONDS)
