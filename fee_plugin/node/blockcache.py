"""The most recent blocks and their receipts, kept as the producer (or importer) made them.

Clients poll the newest blocks and receipts all the time; reading them back from the
database walks the block's transaction and receipt tries node by node. Blocks are
immutable once committed, so a bounded cache keyed by hash is always exact.
"""
import threading
from collections import OrderedDict
from typing import Optional, Tuple

from eth.abc import BlockAPI, ReceiptAPI

DEFAULT_BLOCKS = 128
DEFAULT_TRANSACTIONS = 16_384  # a few KB each with its receipt: tens of MB, whatever the block size


class BlockCache:
    """Bounded in blocks and in transactions: 128 full blocks of a busy chain would hold
    ~200 MB of Python objects (measured in the 10-minute node run)."""

    def __init__(self, size: int = DEFAULT_BLOCKS, max_transactions: int = DEFAULT_TRANSACTIONS) -> None:
        self.size = size
        self.max_transactions = max_transactions
        self._lock = threading.Lock()
        self._entries: "OrderedDict[bytes, Tuple[BlockAPI, Tuple[ReceiptAPI, ...]]]" = OrderedDict()
        self._transactions = 0

    def put(self, block: BlockAPI, receipts: Tuple[ReceiptAPI, ...]) -> None:
        with self._lock:
            old = self._entries.pop(block.hash, None)
            if old is not None:
                self._transactions -= len(old[0].transactions)
            self._entries[block.hash] = (block, tuple(receipts))
            self._transactions += len(block.transactions)
            while len(self._entries) > 1 and (len(self._entries) > self.size
                                              or self._transactions > self.max_transactions):
                _, (evicted, _) = self._entries.popitem(last=False)
                self._transactions -= len(evicted.transactions)

    def get(self, block_hash: bytes) -> Optional[Tuple[BlockAPI, Tuple[ReceiptAPI, ...]]]:
        with self._lock:
            return self._entries.get(block_hash)
