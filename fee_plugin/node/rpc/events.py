"""Chain and pool events for filters and subscriptions, fanned out off the producer thread.

The producer calls `on_block` after each committed block and an RPC worker calls
`on_transaction` after the pool accepts one; both only put the event on a bounded queue
(nothing to do at all while nobody listens). One dispatcher thread computes what each
listener needs (block header JSON, the block's logs) once per event and hands it to the
listeners, which must be quick and never block: filters append to bounded buffers,
WebSocket connections pass notifications to the event loop thread-safely.
"""
import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol, Tuple

from eth.abc import BlockAPI, SignedTransactionAPI

from ..builder import BuiltBlock
from .shapes import block_logs, header_json, log_json

log = logging.getLogger("fee_plugin.node.rpc.events")

DEFAULT_QUEUE_EVENTS = 4096  # blocks and transactions waiting for the dispatcher


@dataclass
class BlockEvent:
    """A committed block, with its JSON computed once for every listener that wants it."""

    block: BlockAPI
    receipts: Tuple[Any, ...]
    _header: Optional[Dict[str, Any]] = field(default=None, repr=False)
    _logs: Optional[List[Tuple[Any, Dict[str, Any]]]] = field(default=None, repr=False)

    @property
    def header(self) -> Dict[str, Any]:
        if self._header is None:
            self._header = header_json(self.block.header)
        return self._header

    @property
    def logs(self) -> List[Tuple[Any, Dict[str, Any]]]:
        """(log, its JSON) for every log of the block, in order."""
        if self._logs is None:
            header = self.block.header
            self._logs = [
                (entry, log_json(entry, header, tx, tx_index, log_index))
                for tx_index, tx, _, logs in block_logs(self.block, self.receipts)
                for log_index, entry in logs
            ]
        return self._logs


class Listener(Protocol):
    def on_block(self, event: BlockEvent) -> None: ...

    def on_transaction(self, tx: SignedTransactionAPI) -> None: ...


class EventHub:
    """Registered as a node listener; delivers to `Listener`s on its dispatcher thread."""

    def __init__(self, node, max_queued_events: int = DEFAULT_QUEUE_EVENTS) -> None:
        self._queue: "queue.Queue" = queue.Queue(max_queued_events)
        self._listeners: List[Listener] = []
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._closed = False
        self.dropped_events = 0
        node.listeners.append(self._on_built)
        node.tx_listeners.append(self._on_tx)

    def add(self, listener: Listener) -> None:
        with self._lock:
            if listener not in self._listeners:
                self._listeners = self._listeners + [listener]
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="rpc-events", daemon=True)
                self._thread.start()

    def remove(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = [x for x in self._listeners if x is not listener]

    def close(self) -> None:
        self._closed = True
        if self._thread is not None:
            self._put(None)

    # -- producers (producer thread, RPC workers): never block ---------------------------

    def _on_built(self, built: BuiltBlock) -> None:
        if self._listeners:
            self._put(("block", built))

    def _on_tx(self, tx: SignedTransactionAPI) -> None:
        if self._listeners:
            self._put(("tx", tx))

    def _put(self, item) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped_events += 1
            log.warning("event queue full (%d): an event was dropped for filters and "
                        "subscriptions", self._queue.maxsize)

    # -- dispatcher thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, payload = item
            if kind == "block":
                event = BlockEvent(payload.block, payload.receipts)
                for listener in self._listeners:
                    self._deliver(listener.on_block, event)
            else:
                for listener in self._listeners:
                    self._deliver(listener.on_transaction, payload)

    @staticmethod
    def _deliver(method, arg) -> None:
        try:
            method(arg)
        except Exception:  # one broken listener must not starve the others
            log.exception("event listener failed")
