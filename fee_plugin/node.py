"""A single-producer private-chain node around a fee-plugin MiningChain.

Thread-safe (one lock around the chain), with two block production modes: automine (one
block per transaction, as dev chains do) and interval blocks of pending transactions. Block
timestamps come from the producer's clock, strictly increasing; execution itself only ever
reads the header's timestamp, so importing nodes reproduce every charge.
"""
import contextlib
import threading
import time
from typing import Callable, List, Optional

from eth.abc import AtomicDatabaseAPI, BlockAPI, SignedTransactionAPI
from eth_utils import ValidationError

from .chain import build_chain
from .genesis import Genesis

Clock = Callable[[], float]


class TransactionRejected(Exception):
    """eth_sendRawTransaction refused: the message says why (fee, nonce, signature...)."""


class Node:
    def __init__(
        self,
        genesis: Genesis,
        db: Optional[AtomicDatabaseAPI] = None,
        clock: Clock = time.time,
        block_time: Optional[float] = None,
    ) -> None:
        self.genesis = genesis
        self.db = db
        self.chain = build_chain(genesis, db)
        self.clock = clock
        self.block_time = block_time  # None: automine
        self.lock = threading.RLock()
        self._pending: List[SignedTransactionAPI] = []

    # -- block production --------------------------------------------------------------

    def _next_timestamp(self) -> int:
        return max(int(self.clock()), self.chain.get_canonical_head().timestamp + 1)

    def _block_batch(self):
        """One atomic write for the whole block when the database supports it."""
        batch = getattr(self.db, "block_batch", None)
        return batch() if batch is not None else contextlib.nullcontext()

    def send_transaction(self, tx: SignedTransactionAPI) -> bytes:
        """Validate and include `tx` (automine) or add it to the pending block."""
        with self.lock:
            if not self._pending:
                self.chain.set_header_timestamp(self._next_timestamp())
            try:
                with self._block_batch() if self.block_time is None else contextlib.nullcontext():
                    self.chain.apply_transaction(tx)
                    if self.block_time is None:
                        self.chain.mine_block()
            except ValidationError as err:
                # Raised before the pending header moved: the chain object is still exact.
                raise TransactionRejected(str(err)) from None
            except BaseException:
                self._reopen()
                raise
            if self.block_time is not None:
                self._pending.append(tx)
            return tx.hash

    def decode_transaction(self, raw: bytes) -> SignedTransactionAPI:
        builder = self.chain.get_vm().get_transaction_builder()
        try:
            return builder.decode(raw)
        except Exception as err:  # rlp raises many kinds; all mean "not a transaction"
            raise TransactionRejected(f"cannot decode the transaction: {err}") from None

    def mine_pending(self) -> Optional[BlockAPI]:
        """Seal the pending block (interval mode); None if nothing is pending."""
        with self.lock:
            if not self._pending:
                return None
            try:
                with self._block_batch():
                    block = self.chain.mine_block()
            except BaseException:
                self._reopen()
                raise
            self._pending.clear()
            return block

    def mine_empty_block(self, timestamp: Optional[int] = None) -> BlockAPI:
        """An empty block (lets simulated time pass on chain)."""
        with self.lock:
            assert not self._pending, "seal the pending block first"
            ts = self._next_timestamp() if timestamp is None else timestamp
            self.chain.set_header_timestamp(ts)
            try:
                with self._block_batch():
                    return self.chain.mine_block()
            except BaseException:
                self._reopen()
                raise

    def _reopen(self) -> None:
        """After a dropped block the in-memory chain may point at unwritten state:
        rebuild it from the database's last committed head (pending txs are lost)."""
        self._pending.clear()
        self.chain = build_chain(self.genesis, self.db)

    @property
    def pending_transactions(self) -> List[SignedTransactionAPI]:
        with self.lock:
            return list(self._pending)

    def run_block_timer(self, stop: threading.Event) -> None:
        """Interval mode loop: seal pending transactions every block_time seconds."""
        assert self.block_time is not None
        while not stop.wait(self.block_time):
            self.mine_pending()

    def close(self) -> None:
        with self.lock:
            close = getattr(self.db, "close", None)
            if close is not None:
                close()
