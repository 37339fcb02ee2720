"""Transactions sent to any node reach the producer; none accepted is lost at a failover.

A node admits a transaction into its own pool first (journaled: durable before its hash is
returned), then this forwarder sends it to the current producer's RPC URL (from the election
key). The pool keeps it until a block this node applies mines it (or makes it invalid), so
the forwarder can always send again: the whole pool when the producer changes (a new
producer may never have seen it) and after a failed send, and periodically whatever has
waited longer than `resend_after_seconds`. The producer answers "already known" or "nonce
too low" for what it holds or has mined; both are expected.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from ..pool import TxPool
from .election import Leader
from .peer import PeerError, PeerRpc

log = logging.getLogger(__name__)

BATCH_TXS_MAX = 200
BATCH_BYTES_MAX = 2 * 1024 * 1024  # well under the RPC body limit (5 MiB)
QUEUE_TXS_MAX = 65_536  # beyond this the queue is dropped: the pool resend covers it
RESEND_AFTER_SECONDS = 10.0
RETRY_PAUSE_SECONDS = 0.2
IDLE_WAKE_SECONDS = 1.0
SEND_TIMEOUT_SECONDS = 5.0
EXPECTED_REFUSALS = ("already known", "nonce too low")


class Forwarder:
    """Sends this node's accepted transactions to the producer, in arrival order, in batches."""

    def __init__(self, pool: TxPool, node_id: str, producer: Callable[[], Leader | None],
                 is_producer: Callable[[], bool], *,
                 resend_after_seconds: float = RESEND_AFTER_SECONDS) -> None:
        self.pool = pool
        self.node_id = node_id
        self.producer = producer
        self.is_producer = is_producer
        self.resend_after_seconds = resend_after_seconds
        self._lock = threading.Lock()
        self._queue: collections.deque[bytes] = collections.deque()
        self._resend_all = True  # at start: the journal may hold transactions never forwarded
        self._wake = threading.Event()
        self._rpc: PeerRpc | None = None
        self.forwarded = 0
        self.refused = 0
        self.last_error: str | None = None

    def submit(self, raw: bytes) -> None:
        """Forward a transaction this node just accepted (asynchronously)."""
        with self._lock:
            if len(self._queue) >= QUEUE_TXS_MAX:
                self._queue.clear()
                self._resend_all = True
            self._queue.append(raw)
        self._wake.set()

    def producer_changed(self) -> None:
        """A new producer may not hold what the last one had: send the whole pool again."""
        with self._lock:
            self._resend_all = True
        rpc = self._rpc
        if rpc is not None:  # a send to a stopped producer would wait for its timeout
            rpc.abort()
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        rpc: PeerRpc | None = None
        next_resend = time.monotonic() + self.resend_after_seconds
        while not stop.is_set():
            self._wake.wait(IDLE_WAKE_SECONDS)
            self._wake.clear()
            if self.is_producer():  # our pool is the producer's pool
                with self._lock:
                    self._queue.clear()
                    self._resend_all = False
                continue
            leader = self.producer()
            # No producer, or the key of this node's previous run (it expires with its lease).
            if leader is None or leader.node_id == self.node_id:
                continue
            if rpc is None or rpc.url != leader.rpc_url:
                if rpc is not None:
                    rpc.close()
                rpc = self._rpc = PeerRpc(leader.rpc_url, SEND_TIMEOUT_SECONDS)
            now = time.monotonic()
            raws = self._take(periodic=now >= next_resend)
            if now >= next_resend:
                next_resend = now + self.resend_after_seconds
            if not raws:
                continue
            try:
                self._send(rpc, raws)
                self.last_error = None
            except PeerError as err:
                first_failure = self.last_error is None
                self.last_error = str(err)
                (log.warning if first_failure else log.debug)(
                    "forwarding %d transactions to %s failed (sent again later): %s",
                    len(raws), leader.node_id, err)
                with self._lock:
                    self._resend_all = True
                rpc.close()
                stop.wait(RETRY_PAUSE_SECONDS)
                self._wake.set()

    def _take(self, periodic: bool) -> list[bytes]:
        """What to send now: the queue, or (resend) the pool's transactions in arrival order."""
        with self._lock:
            resend_all, self._resend_all = self._resend_all, False
            queued = list(self._queue)
            self._queue.clear()
        if not (resend_all or periodic):
            return queued
        pending, waiting = self.pool.content()
        entries = [e for run in (*pending.values(), *waiting.values()) for e in run]
        if not resend_all:
            oldest = time.time() - self.resend_after_seconds
            entries = [e for e in entries if e.added_at < oldest]
        entries.sort(key=lambda e: e.seq)
        return [e.raw for e in entries] + (queued if not resend_all else [])

    def _send(self, rpc: PeerRpc, raws: list[bytes]) -> None:
        start = 0
        while start < len(raws):
            end, size = start, 0
            while end < len(raws) and end - start < BATCH_TXS_MAX and size < BATCH_BYTES_MAX:
                size += len(raws[end])
                end += 1
            replies = rpc.batch("eth_sendRawTransaction",
                                [["0x" + raw.hex()] for raw in raws[start:end]])
            for reply in replies:
                error = reply.get("error")
                if error is None:
                    self.forwarded += 1
                elif not str(error.get("message", "")).startswith(EXPECTED_REFUSALS):
                    self.refused += 1
                    log.info("the producer refused a forwarded transaction: %s",
                             error.get("message"))
            start = end
