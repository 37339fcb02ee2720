"""A watch held open on one etcd member, read as a stream of JSON lines (see WatchStream)."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .etcd_wire import (
    REQUEST_HEADERS,
    EtcdCompacted,
    EtcdUnavailable,
    KeyValue,
    WatchBatch,
    WatchEvent,
    b64,
)

if TYPE_CHECKING:
    from .client import EtcdClient

WATCH_IDLE_TIMEOUT_SECONDS = 5.0
WATCH_LINE_BYTES_MAX = 64 * 1024 * 1024


class WatchStream:
    """One watch request held open on one member; iterate for batches, close() from any thread.

    Iteration ends quietly after close(); it raises EtcdCompacted when `start_revision` is older
    than etcd's history, and EtcdUnavailable when the stream breaks (member gone, no data for
    `idle_timeout_seconds`, member lost its leader). Resume with a new watch from the revision
    after the last batch seen: nothing is lost or repeated.
    """

    def __init__(self, client: EtcdClient, key: bytes, range_end: bytes | None,
                 start_revision: int, *, idle_timeout_seconds: float) -> None:
        assert start_revision >= 1, f"watch start revision {start_revision} < 1"
        self.client = client
        self.start_revision = start_revision
        self.idle_timeout_seconds = idle_timeout_seconds
        self._create = {"key": b64(key), "start_revision": str(start_revision),
                        "progress_notify": True}
        if range_end is not None:
            self._create["range_end"] = b64(range_end)
        self._closed = threading.Event()
        self._conn: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None
        self.endpoint: str | None = None

    def close(self) -> None:
        """End the iteration, waking a reader blocked on the socket."""
        self._closed.set()
        conn = self._conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def _open(self) -> None:
        """Send the watch request to the first member that confirms it, within the deadline."""
        client = self.client
        deadline = time.monotonic() + client.timeout_seconds
        payload = json.dumps({"create_request": self._create}).encode()
        failures = []
        index = client._preferred
        for _ in range(len(client.endpoints)):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                break
            conn = client.connect(index, min(remaining, client.attempt_timeout_seconds))
            self._conn = conn
            try:
                conn.request("POST", "/v3/watch", payload, REQUEST_HEADERS)
                response = conn.getresponse()
                if response.status != 200:
                    raise http.client.HTTPException(f"HTTP {response.status}: "
                                                    f"{response.read(200)!r}")
                self._response = response
                self.endpoint = client.endpoints[index].url
                return
            except (OSError, http.client.HTTPException) as exc:
                failures.append(f"{client.endpoints[index].url}: {exc!r}")
                conn.close()
                index = (index + 1) % len(client.endpoints)
        if self.closed:
            return
        raise EtcdUnavailable(f"etcd watch: no member took it ({'; '.join(failures)})")

    def _lines(self) -> Iterator[bytes]:
        buffer = b""
        response = self._response
        assert response is not None
        while True:
            newline = buffer.find(b"\n")
            if newline >= 0:
                line, buffer = buffer[:newline], buffer[newline + 1:]
                if line.strip():
                    yield line
                continue
            if len(buffer) > WATCH_LINE_BYTES_MAX:
                raise EtcdUnavailable(f"etcd watch: message over {WATCH_LINE_BYTES_MAX} bytes")
            chunk = response.read1(1 << 16)
            if not chunk:
                raise EtcdUnavailable(f"etcd watch: stream from {self.endpoint} ended")
            buffer += chunk

    def __iter__(self) -> Iterator[WatchBatch]:
        try:
            self._open()
            if self.closed:
                return
            self._conn.sock.settimeout(self.idle_timeout_seconds)
            for line in self._lines():
                message = json.loads(line)
                if "error" in message:
                    error = message["error"]
                    raise EtcdUnavailable(f"etcd watch on {self.endpoint}: "
                                          f"{error.get('message', error)}")
                result = message["result"]
                compact_revision = int(result.get("compact_revision", 0))
                if compact_revision:
                    raise EtcdCompacted(self.start_revision, compact_revision)
                if result.get("canceled"):
                    raise EtcdUnavailable(f"etcd watch on {self.endpoint} canceled: "
                                          f"{result.get('cancel_reason', '')}")
                if result.get("created"):
                    continue
                events = tuple(WatchEvent(e.get("type", "PUT"), KeyValue.from_json(e["kv"]))
                               for e in result.get("events", ()))
                yield WatchBatch(int(result["header"]["revision"]), events)
        except EtcdUnavailable:
            if not self.closed:
                raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if not self.closed:
                raise EtcdUnavailable(f"etcd watch on {self.endpoint} broke: {exc!r}") from exc
        finally:
            if self._conn is not None:
                self._conn.close()
