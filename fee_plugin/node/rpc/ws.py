"""JSON-RPC over WebSocket on the HTTP server's port (an upgrade of GET /).

Every method works as over HTTP, with the same limits (message size = body size, nesting,
batch size, time budgets), plus eth_subscribe/eth_unsubscribe. Per connection: at most
`ws_requests_in_flight` requests execute at once (further messages wait unread: TCP
pushes back on the client), and at most `ws_send_queue` messages wait to be sent; a
client that reads slower than its subscriptions produce overflows it and is disconnected
(close code 1008, or the connection cut if the close frame cannot get through), so a slow
subscriber never holds memory or slows anyone else. One
writer task per connection sends in order; notifications arrive from other threads
through `loop.call_soon_threadsafe`.
"""
import asyncio
import logging
from collections import deque
from typing import Deque, Optional, Set

from aiohttp import WSMsgType, web

from .subscriptions import Subscriber, serving

log = logging.getLogger("fee_plugin.node.rpc.ws")

HEARTBEAT_SECONDS = 30.0  # ping idle peers (geth: 30 s); a peer that never answers is dropped
CLOSE_POLICY = 1008  # RFC 6455: policy violation
CLOSE_GRACE_SECONDS = 1.0  # how long a dropped peer gets to take the close frame


class WsConnection:
    def __init__(self, endpoint: "WsEndpoint", ws: web.WebSocketResponse, peer: str, transport) -> None:
        self.endpoint = endpoint
        self.ws = ws
        self.peer = peer
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        limits = endpoint.api.limits
        self.max_queued = limits.ws_send_queue
        self.slots = asyncio.Semaphore(limits.ws_requests_in_flight)
        self.subscriber = Subscriber(self.send_threadsafe, limits.ws_subscriptions)
        self._queue: Deque[str] = deque()
        self._ready = asyncio.Event()
        self._tasks: Set[asyncio.Task] = set()
        self.closed = False

    # -- sending --------------------------------------------------------------------------

    def send_threadsafe(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.loop.call_soon_threadsafe(self.enqueue, text)
        except RuntimeError:  # the loop is gone: the server stopped
            self.closed = True

    def enqueue(self, text: str) -> None:
        """On the loop: queue one message, or drop a connection that cannot keep up."""
        if self.closed:
            return
        if len(self._queue) >= self.max_queued:
            log.warning("WebSocket client %s dropped: %d messages waiting to be sent",
                        self.peer, len(self._queue))
            self._shut(f"send queue full: more than {self.max_queued} messages waiting")
            return
        self._queue.append(text)
        self._ready.set()

    async def _writer(self) -> None:
        while not self.closed:
            await self._ready.wait()
            self._ready.clear()
            while self._queue and not self.closed:
                try:
                    await self.ws.send_str(self._queue.popleft())
                except (ConnectionError, RuntimeError):  # the peer went away
                    self.closed = True

    def _shut(self, reason: str) -> None:
        self.closed = True
        self._queue.clear()
        self._ready.set()
        self._spawn(self._close_or_abort(reason))

    async def _close_or_abort(self, reason: str) -> None:
        """Close with 1008 if the close frame gets through at once; a peer that reads
        nothing would hold a graceful close open, so the connection is then cut. Cut also
        when aiohttp gave up and only *closed* the transport: a close waits for the unsent
        buffer to drain, which a peer that reads nothing never lets happen."""
        closed = False
        try:
            await asyncio.wait_for(self.ws.close(code=CLOSE_POLICY, message=reason.encode()[:120]),
                                   CLOSE_GRACE_SECONDS)
            closed = True
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            transport = self.transport
            if transport is not None and (not closed or transport.get_write_buffer_size()):
                transport.abort()

    # -- receiving ------------------------------------------------------------------------

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def serve(self) -> None:
        writer = self._spawn(self._writer())
        try:
            async for message in self.ws:
                if message.type == WSMsgType.TEXT:
                    body = message.data.encode()
                elif message.type == WSMsgType.BINARY:
                    body = message.data
                else:
                    break
                await self.slots.acquire()
                if self.closed:
                    break
                self._spawn(self._answer(body))
        finally:
            self.closed = True
            writer.cancel()
            for task in list(self._tasks):
                task.cancel()

    async def _answer(self, body: bytes) -> None:
        try:
            reply = await self.loop.run_in_executor(self.endpoint.executor, self._handle, body)
            if reply:
                self.enqueue(reply.decode())
            self.subscriber.activate()
        finally:
            self.slots.release()

    def _handle(self, body: bytes) -> Optional[bytes]:
        with serving(self.subscriber):
            return self.endpoint.api.handle_body(body)


class WsEndpoint:
    """Upgrades GET / and serves each connection until it closes."""

    def __init__(self, api, executor) -> None:
        self.api = api
        self.executor = executor
        self.connections: Set[WsConnection] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if len(self.connections) >= self.api.limits.ws_connections:
            return web.Response(status=503, text=f"too many WebSocket connections (at most "
                                f"{self.api.limits.ws_connections})\n")
        ws = web.WebSocketResponse(max_msg_size=self.api.limits.max_body_bytes,
                                   heartbeat=HEARTBEAT_SECONDS)
        await ws.prepare(request)
        connection = WsConnection(self, ws, str(request.remote), request.transport)
        self.connections.add(connection)
        self.api.subscriptions.attach(connection.subscriber)
        try:
            await connection.serve()
        finally:
            self.api.subscriptions.detach(connection.subscriber)
            self.connections.discard(connection)
            if not ws.closed:
                await ws.close()
        return ws

    async def close_all(self) -> None:
        for connection in list(self.connections):
            connection.closed = True
            await connection.ws.close(code=1001, message=b"server shutting down")
