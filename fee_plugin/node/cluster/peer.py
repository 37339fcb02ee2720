"""JSON-RPC to another fee node: forwarding transactions to the producer, fetching history.

One keep-alive HTTP connection per peer (stdlib http.client, like the etcd client), a timeout
on every request, batches for bulk work. A peer is another organisation's node: its answers
are checked by the caller (hashes, re-execution), never trusted.
"""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.parse
from typing import Any

DEFAULT_TIMEOUT_SECONDS = 10.0
HEADERS = {"Content-Type": "application/json"}


class PeerError(Exception):
    """The peer did not answer, or answered with something that is not what was asked."""


class PeerRpc:
    """JSON-RPC over HTTP to one node; not thread-safe (one per thread)."""

    def __init__(self, url: str, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PeerError(f"peer URL {url!r} is not http(s)://host:port")
        self.url = url
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._path = parts.path or "/"
        self.timeout_seconds = timeout_seconds
        self._ssl_context = ssl_context
        self._conn: http.client.HTTPConnection | None = None
        self._aborted = False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def abort(self) -> None:
        """From another thread: cut a request in flight (it fails with PeerError)."""
        self._aborted = True
        conn = self._conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _connect(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout_seconds,
                                               context=self._ssl_context)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_seconds)

    def post(self, payload: Any) -> Any:
        """POST one JSON-RPC body; the decoded reply (reconnects once if the connection dropped)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        self._aborted = False
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self._connect()
            try:
                self._conn.request("POST", self._path, body, HEADERS)
                response = self._conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as err:
                self.close()
                dropped = isinstance(err, (http.client.RemoteDisconnected, ConnectionResetError,
                                           BrokenPipeError))
                if attempt == 2 or self._aborted or not dropped:
                    raise PeerError(f"{self.url}: {err!r}") from None
                continue
            try:
                return json.loads(data)
            except ValueError:
                raise PeerError(f"{self.url}: HTTP {response.status}, not JSON: "
                                f"{data[:120]!r}") from None
        raise AssertionError("unreachable")

    def call(self, method: str, *params: Any) -> Any:
        reply = self.post({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        if not isinstance(reply, dict):
            raise PeerError(f"{self.url} {method}: not a JSON-RPC reply: {str(reply)[:120]}")
        if "error" in reply:
            raise PeerError(f"{self.url} {method}: {reply['error'].get('message')}")
        return reply.get("result")

    def batch(self, method: str, params_list: list[list[Any]]) -> list[dict]:
        """One batch of `method` calls; each reply ({"result"} or {"error"}) in request order."""
        assert params_list, "an empty batch"
        payload = [{"jsonrpc": "2.0", "id": n, "method": method, "params": params}
                   for n, params in enumerate(params_list)]
        replies = self.post(payload)
        if not isinstance(replies, list):
            error = replies.get("error", replies) if isinstance(replies, dict) else replies
            raise PeerError(f"{self.url} {method} batch refused: {str(error)[:200]}")
        by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
        if set(by_id) != set(range(len(payload))):
            raise PeerError(f"{self.url} {method} batch: {len(by_id)} replies to "
                            f"{len(payload)} requests")
        return [by_id[n] for n in range(len(payload))]
