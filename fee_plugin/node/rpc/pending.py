"""The "pending" block: what the producer would seal next, built from the pool on demand.

geth's choice, kept: "pending" is the block the pool's pending transactions would make on
top of the head at the current time (same ordering, gas and byte caps, same skipping of
invalid transactions as the producer). It is built with the producer's own builder on a
throw-away overlay of the database (nothing reaches storage, the producer never waits),
at most once per (head, pool change), the build capped in time
(`RpcLimits.pending_build_seconds`; what does not fit waits, as in a real block), and
concurrent askers share one build. eth_getTransactionCount at "pending" stays the pool's
next nonce, as in geth (it counts queued runs the block may not include).
"""
import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from eth.abc import BlockAPI, BlockHeaderAPI
from eth.db.atomic import AtomicDB
from eth.db.batch import BatchDB

from ...chain import fee_chain_class
from ..builder import BlockBuilder, order_candidates


@dataclass(frozen=True)
class PendingBlock:
    block: BlockAPI
    receipts: Tuple[Any, ...]
    chain: Any  # a chain over the overlay holding the block's state
    key: Tuple[bytes, int]

    @property
    def header(self) -> BlockHeaderAPI:
        return self.block.header

    @property
    def db(self):
        return self.chain.chaindb.db

    def state(self):
        vm = self.chain.get_vm(self.header)
        return vm.build_state(self.db, self.header, vm.chain_context, vm.previous_hashes)


class TimedBuilder(BlockBuilder):
    """The producer's builder on another chain object, offering no candidate past `deadline`."""

    def __init__(self, chain, genesis, max_block_bytes: int, deadline: float) -> None:
        self.genesis, self.chain, self.db = genesis, chain, chain.chaindb.db
        self.max_block_bytes = max_block_bytes
        self.deadline = deadline

    def order_candidates(self, runs, base_fee_wei: int):
        order = order_candidates(runs, base_fee_wei)
        keep = None
        while time.monotonic() < self.deadline:
            try:
                entry = order.send(keep)
            except StopIteration:
                return
            keep = yield entry


class PendingBlocks:
    def __init__(self, node, build_seconds: float) -> None:
        self.node = node
        self.build_seconds = build_seconds
        self._chain_class = fee_chain_class(node.genesis, write_back=True)
        self._changes = itertools.count()
        self._version = next(self._changes)
        self._lock = threading.Lock()
        self._cached: Optional[PendingBlock] = None
        node.tx_listeners.append(self._pool_changed)

    def _pool_changed(self, tx) -> None:
        self._version = next(self._changes)

    def get(self) -> PendingBlock:
        with self._lock:
            head = self.node.chain.get_canonical_head()
            key = (head.hash, self._version)
            if self._cached is None or self._cached.key != key:
                self._cached = self._build(head, key)
            return self._cached

    def _build(self, head: BlockHeaderAPI, key) -> PendingBlock:
        chain = self._chain_class(AtomicDB(BatchDB(self.node.db)))
        pending, _ = self.node.pool.content()
        builder = TimedBuilder(chain, self.node.genesis, self.node.builder.max_block_bytes,
                               time.monotonic() + self.build_seconds)
        timestamp = max(head.timestamp + 1, int(self.node.clock.now()))
        built = builder._execute(head, pending, timestamp)
        return PendingBlock(built.block, built.receipts, chain, key)
