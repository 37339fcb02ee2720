"""Polling filters (eth_newFilter, eth_newBlockFilter, eth_newPendingTransactionFilter,
eth_getFilterChanges, eth_getFilterLogs, eth_uninstallFilter) with geth's rules.

A filter not polled for 5 minutes is removed (geth's deadline). Log and block filters are
cursors over the committed chain (reth's way): each poll answers what was committed since
the last one, from the blocks themselves, so nothing is buffered and nothing is lost; a
poll scans at most `log_range_blocks` blocks and stops at a block boundary once
`log_results` logs are gathered, the next poll going on from there. Pending-transaction
filters buffer the accepted transactions, at most `filter_items` each (the oldest are
dropped first). At most `max_filters` filters exist at once.
"""
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Set

from eth.abc import SignedTransactionAPI
from eth_utils import encode_hex

from .errors import INVALID_PARAMS, LIMIT_EXCEEDED, SERVER_ERROR, RpcError
from .events import BlockEvent, EventHub
from .log_methods import LogMethods
from .params import hash32, positional, quantity
from .shapes import transaction_json

log = logging.getLogger("fee_plugin.node.rpc.filters")

FILTER_TIMEOUT_SECONDS = 300.0  # geth: a filter not polled within 5 minutes is removed
LATEST_TAGS = (None, "latest", "safe", "finalized")


def new_id() -> str:
    """geth's identifier shape: 0x and 128 random bits in hex, leading zeros trimmed."""
    return "0x" + (secrets.token_hex(16).lstrip("0") or "0")


@dataclass(frozen=True)
class LogCriteria:
    """A log filter: addresses (any of), topics per position (any of; empty = wildcard),
    and a block range (None: the head when asked) or one block by hash."""

    addresses: Set[bytes]
    topics: List[Set[int]]
    from_block: Optional[int] = None
    to_block: Optional[int] = None
    block_hash: Optional[bytes] = None

    def matches(self, entry) -> bool:
        if self.addresses and entry.address not in self.addresses:
            return False
        return not any(options and (i >= len(entry.topics) or entry.topics[i] not in options)
                       for i, options in enumerate(self.topics))


def block_tag(value: Any, name: str) -> Optional[int]:
    """A filter bound: None for the moving head, else a block number."""
    if value in LATEST_TAGS:
        return None
    if value == "earliest":
        return 0
    if value == "pending":
        raise RpcError(INVALID_PARAMS, "pending logs are not supported")
    return quantity(value, name)


@dataclass(eq=False)
class Filter:
    kind: str  # "logs", "blocks" or "transactions"
    deadline: float
    criteria: Optional[LogCriteria] = None
    cursor: int = 0  # the next block this filter has not answered yet
    full_tx: bool = False
    pending: Deque[SignedTransactionAPI] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FilterRegistry:
    """The installed filters: bounded in number, expired when idle; thread-safe."""

    def __init__(self, max_filters: int, max_items: int,
                 timeout_seconds: float = FILTER_TIMEOUT_SECONDS,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.max_filters = max_filters
        self.max_items = max_items
        self.timeout_seconds = timeout_seconds
        self._now = now
        self._lock = threading.Lock()
        self._filters: Dict[str, Filter] = {}

    def install(self, kind: str, **fields) -> str:
        with self._lock:
            self._expire()
            if len(self._filters) >= self.max_filters:
                raise RpcError(LIMIT_EXCEEDED, f"too many filters: at most {self.max_filters} "
                               "installed; uninstall unused ones (idle ones expire after "
                               f"{self.timeout_seconds:g} s)")
            pending: Deque = deque(maxlen=self.max_items)
            entry = Filter(kind, self._now() + self.timeout_seconds, pending=pending, **fields)
            filter_id = new_id()
            self._filters[filter_id] = entry
            return filter_id

    def poll(self, filter_id: Any) -> Filter:
        """The filter, its idle deadline pushed back; geth's error if there is none."""
        with self._lock:
            self._expire()
            entry = self._filters.get(filter_id) if isinstance(filter_id, str) else None
            if entry is None:
                raise RpcError(SERVER_ERROR, "filter not found")
            entry.deadline = self._now() + self.timeout_seconds
            return entry

    def uninstall(self, filter_id: Any) -> bool:
        with self._lock:
            return isinstance(filter_id, str) and self._filters.pop(filter_id, None) is not None

    def has_pending_filters(self) -> bool:
        with self._lock:
            return any(f.kind == "transactions" for f in self._filters.values())

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._filters)

    def _expire(self) -> None:
        now = self._now()
        for filter_id in [i for i, f in self._filters.items() if f.deadline < now]:
            del self._filters[filter_id]

    # -- EventHub listener (dispatcher thread) --------------------------------------------

    def on_block(self, event: BlockEvent) -> None:
        """Log and block filters read the chain when polled."""

    def on_transaction(self, tx: SignedTransactionAPI) -> None:
        with self._lock:
            targets = [f for f in self._filters.values() if f.kind == "transactions"]
        for entry in targets:
            with entry.lock:
                entry.pending.append(tx)  # a full buffer drops its oldest entry


class FilterMethods(LogMethods):
    """The eth_*Filter* methods over a FilterRegistry; pending transactions come from the
    EventHub, which this group owns (subscriptions use it too)."""

    def __init__(self, node, limits) -> None:
        super().__init__(node, limits)
        self.events = EventHub(node)
        self.filters = FilterRegistry(limits.max_filters, limits.filter_items)

    def log_criteria(self, flt: Any) -> LogCriteria:
        addresses, topics = self.parse_filter(flt)
        if flt.get("blockHash") is not None:
            if flt.get("fromBlock") is not None or flt.get("toBlock") is not None:
                raise RpcError(INVALID_PARAMS, "cannot specify both BlockHash and "
                               "FromBlock/ToBlock, choose one or the other")
            return LogCriteria(addresses, topics, block_hash=hash32(flt["blockHash"], "blockHash"))
        start = block_tag(flt.get("fromBlock"), "fromBlock")
        end = block_tag(flt.get("toBlock"), "toBlock")
        if start is not None and end is not None and start > end:
            raise RpcError(INVALID_PARAMS, "invalid block range params")
        return LogCriteria(addresses, topics, start, end)

    def rpc_eth_newFilter(self, params):
        (flt,) = positional(params, 1, 1)
        criteria = self.log_criteria(flt)
        return self.filters.install("logs", criteria=criteria, cursor=self.head().block_number + 1)

    def rpc_eth_newBlockFilter(self, params):
        positional(params, 0, 0)
        return self.filters.install("blocks", cursor=self.head().block_number + 1)

    def rpc_eth_newPendingTransactionFilter(self, params):
        (full_tx,) = positional(params, 0, 1)
        self.events.add(self.filters)
        return self.filters.install("transactions", full_tx=bool(full_tx))

    def rpc_eth_uninstallFilter(self, params):
        (filter_id,) = positional(params, 1, 1)
        return self.filters.uninstall(filter_id)

    def rpc_eth_getFilterChanges(self, params):
        (filter_id,) = positional(params, 1, 1)
        entry = self.filters.poll(filter_id)
        with entry.lock:
            if entry.kind == "transactions":
                txs, entry.pending = list(entry.pending), deque(maxlen=self.filters.max_items)
                return [transaction_json(tx, None, None) if entry.full_tx else encode_hex(tx.hash)
                        for tx in txs]
            if entry.kind == "blocks":
                return self._new_block_hashes(entry)
            return self._new_logs(entry)

    def rpc_eth_getFilterLogs(self, params):
        (filter_id,) = positional(params, 1, 1)
        entry = self.filters.poll(filter_id)
        if entry.kind != "logs":
            raise RpcError(SERVER_ERROR, "filter not found")
        criteria = entry.criteria
        if criteria.block_hash is not None:
            numbers = [self.header_by_hash(criteria.block_hash).block_number]
        else:
            start, end = self.block_range(
                "latest" if criteria.from_block is None else hex(criteria.from_block),
                "latest" if criteria.to_block is None else hex(criteria.to_block))
            numbers = range(start, end + 1)
        return self.matching_logs(numbers, criteria.addresses, criteria.topics)

    # -- cursors ----------------------------------------------------------------------------

    def _new_block_hashes(self, entry: Filter) -> List[str]:
        head = self.head().block_number
        end = min(head, entry.cursor + self.limits.log_range_blocks - 1)
        hashes = [encode_hex(self.chain.get_canonical_block_hash(n)) for n in range(entry.cursor, end + 1)]
        entry.cursor = max(entry.cursor, end + 1)
        return hashes

    def _new_logs(self, entry: Filter) -> List[Dict[str, Any]]:
        criteria = entry.criteria
        head = self.head().block_number
        if criteria.block_hash is not None:  # one block, answered by getFilterLogs only
            entry.cursor = head + 1
            return []
        start = max(entry.cursor, criteria.from_block or 0)
        end = head if criteria.to_block is None else min(head, criteria.to_block)
        end = min(end, start + self.limits.log_range_blocks - 1)
        out: List[Dict[str, Any]] = []
        number = start
        while number <= end and len(out) < self.limits.log_results:
            out.extend(self.matching_logs([number], criteria.addresses, criteria.topics,
                                          limit=2**63))
            number += 1
        entry.cursor = max(entry.cursor, number)
        return out
