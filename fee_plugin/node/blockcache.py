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


class BlockCache:
    def __init__(self, size: int = DEFAULT_BLOCKS) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: "OrderedDict[bytes, Tuple[BlockAPI, Tuple[ReceiptAPI, ...]]]" = OrderedDict()

    def put(self, block: BlockAPI, receipts: Tuple[ReceiptAPI, ...]) -> None:
        with self._lock:
            self._entries[block.hash] = (block, tuple(receipts))
            self._entries.move_to_end(block.hash)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def get(self, block_hash: bytes) -> Optional[Tuple[BlockAPI, Tuple[ReceiptAPI, ...]]]:
        with self._lock:
            return self._entries.get(block_hash)
