"""A fee-plugin node: pool, builder and storage wired together, with the producer loop.

Threads: RPC workers admit transactions into the pool and read committed state; one
producer thread seals blocks (the only writer of the database). Reads never take the
producer's lock: they build their own state on a committed header, and the database's
block overlay is private to the producer's thread.
"""
import logging
import threading
from pathlib import Path
from typing import Callable, List, Optional, Type

from eth.abc import AtomicDatabaseAPI, BlockAPI, SignedTransactionAPI

from ..chain import build_chain
from ..genesis import Genesis
from .admission import HeadContext, TxRejected, check_static
from .blockcache import BlockCache
from .builder import DEFAULT_MAX_BLOCK_BYTES, BlockBuilder, BuiltBlock, CommitRefused
from .clock import SystemClock, seal_timestamp, seconds_until_sealable
from .importer import BlockRejected, decode_block, import_block
from .journal import TxJournal
from .leveldb import MemoryDB
from .pool import PoolConfig, TxPool

log = logging.getLogger("fee_plugin.node")

IDLE_POLL_SECONDS = 0.5  # the producer re-checks its stop flag at least this often
# Automine seals this long after work appears, not at once: a burst lands in one block, and
# a client's `await tx.wait()` never returns within the 250 ms for which ethers v6 caches an
# identical request (its cached "pending" nonce would be stale: "nonce too low").
AUTOMINE_DELAY_SECONDS = 0.3
# Once the pool is idle again, automine seals one empty block this long after the last one.
# A client that starts watching for new blocks just after its transaction's block (ethers v6
# `tx.wait()` checks the receipt, then polls the block number, and looks again only when the
# number moves) would otherwise wait for somebody else's next transaction.
TRAILING_BLOCK_SECONDS = 1.0


class Node:
    def __init__(
        self,
        genesis: Genesis,
        db: Optional[AtomicDatabaseAPI] = None,
        clock=None,
        block_time: Optional[float] = None,
        pool_config: PoolConfig = PoolConfig(),
        journal_path: Optional[Path] = None,
        max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES,
        automine_delay: float = AUTOMINE_DELAY_SECONDS,
        builder_class: Type[BlockBuilder] = BlockBuilder,
    ) -> None:
        self.genesis = genesis
        self.db = MemoryDB() if db is None else db
        self.clock = SystemClock() if clock is None else clock
        self.block_time = block_time  # None: automine (seal when there is work)
        self.automine_delay = automine_delay
        self.builder = builder_class(genesis, self.db, max_block_bytes)
        self.chain = build_chain(genesis, self.db)  # reads: the per-transaction design
        self._tx_builder = self.chain.get_vm_class_for_block_number(0).get_transaction_builder()
        self.journal = TxJournal(journal_path) if journal_path is not None else None
        self.pool = TxPool(pool_config, self._context(), self.journal, now=self.clock.now)
        self.blocks = BlockCache()  # recent blocks and receipts, for the RPC
        self.listeners: List[Callable[[BuiltBlock], None]] = []  # called after each block
        self.tx_listeners: List[Callable[[SignedTransactionAPI], None]] = []  # after each accepted tx
        self.commit_hook: Optional[Callable[[BuiltBlock], bool]] = None
        self._produce_lock = threading.Lock()
        if self.journal is not None:
            kept = self.pool.restore(self.journal.load(), self.decode_transaction)
            if kept:
                log.info("restored %d pending transactions from the journal", kept)

    def _context(self) -> HeadContext:
        return HeadContext(self.chain, self.chain.get_canonical_head(), self.genesis, self.clock.now)

    # -- transactions ---------------------------------------------------------------------

    def decode_transaction(self, raw: bytes) -> SignedTransactionAPI:
        try:
            tx = self._tx_builder.decode(raw)
            tx.sender  # recover the signature now: a bad one is a bad transaction
        except Exception as err:  # rlp and eth-keys raise many kinds; all mean "invalid"
            raise TxRejected(f"invalid transaction: cannot decode or recover the sender: {err}",
                             reason="decode") from None
        return tx

    def submit(self, raw: bytes) -> bytes:
        """eth_sendRawTransaction: admit into the pool; the hash once it is journaled."""
        try:
            if len(raw) > self.pool.config.max_tx_bytes:
                raise TxRejected(f"oversized data: transaction of {len(raw)} bytes, limit "
                                 f"{self.pool.config.max_tx_bytes}", reason="size")
            tx = self.decode_transaction(raw)
            check_static(tx, len(raw), self.pool.config.max_tx_bytes, self.pool.context)
        except TxRejected as err:
            self.pool.count_rejection(err)
            raise
        tx_hash = self.pool.add(tx, raw)
        for listener in list(self.tx_listeners):
            try:
                listener(tx)
            except Exception:  # a broken subscriber must not refuse the transaction
                log.exception("transaction listener failed")
        return tx_hash

    def send_transaction(self, tx: SignedTransactionAPI) -> bytes:
        return self.submit(tx.encode())

    # -- blocks ---------------------------------------------------------------------------

    def produce(self, force_empty: bool = False) -> Optional[BlockAPI]:
        """Seal one block now, if the clock allows (never ahead of wall time) and there is
        work or `force_empty`. Returns the block, or None."""
        with self._produce_lock:
            parent = self.builder.head()
            timestamp = seal_timestamp(parent.timestamp, self.clock.now())
            if timestamp is None:
                return None
            runs = self.pool.candidates()
            if not runs and not force_empty:
                return None
            try:
                built = self.builder.build(runs, timestamp, self.commit_hook)
            except CommitRefused as err:
                log.warning("%s", err)
                self.pool.work.set()
                return None
            except BaseException:
                self.pool.work.set()  # the transactions are still pending: try again
                raise
            self._committed(built)
            return built.block

    def decode_block(self, data: bytes) -> BlockAPI:
        """A block's RLP bytes -> the block (BlockRejected if they are not one)."""
        return decode_block(self.builder, data)

    def import_block(self, block: BlockAPI, encoded: bytes) -> Optional[BuiltBlock]:
        """Apply a block made elsewhere, re-executed and verified (importer.py); None if the
        chain already holds it. BlockRejected if it does not verify: nothing is written."""
        with self._produce_lock:
            head = self.builder.head()
            if block.number <= head.block_number:
                local = self.builder.chain.get_canonical_block_hash(block.number)
                if local == block.hash:
                    return None
                raise BlockRejected(block.number, block.hash, ("hash",),
                                    f"hash differs from this node's block {block.number} "
                                    f"0x{local.hex()}")
            built = import_block(self.builder, block, encoded)
            self._committed(built)
            return built

    def _committed(self, built: BuiltBlock) -> None:
        block = built.block
        self.blocks.put(block, built.receipts)
        self.pool.set_head(self._context(), (tx.hash for tx in block.transactions), built.invalid)
        log.info("block %d: %d transactions, %d gas, t=%d", block.number, len(block.transactions),
                 block.header.gas_used, block.header.timestamp)
        for listener in list(self.listeners):
            try:
                listener(built)
            except Exception:  # a broken subscriber must not stop the chain
                log.exception("block listener failed")

    def run_producer(self, stop: threading.Event) -> None:
        """The producer loop: automine seals `automine_delay` after work appears (at most one
        block a second), then one empty trailing block once the pool is idle; with
        `block_time` N it seals every N seconds, empty blocks included."""
        head = self.builder.head()
        ahead = head.timestamp - self.clock.now()
        if ahead > 0:
            log.warning("the head block is %.0f s ahead of this clock: no block until then", ahead)
        work_since = trailing_due = None
        while not stop.is_set():
            parent = self.builder.head()
            now = self.clock.now()
            if self.block_time is None:
                if self.pool.work.is_set():
                    work_since = now if work_since is None else work_since
                    due, force = work_since + self.automine_delay, False
                elif trailing_due is not None:
                    work_since = None
                    due, force = trailing_due, True
                else:
                    work_since = None
                    self.clock.wait(self.pool.work, IDLE_POLL_SECONDS)
                    continue
                delay = max(seconds_until_sealable(parent.timestamp, now), due - now)
            else:
                due = max(parent.timestamp + self.block_time, parent.timestamp + 1)
                delay = max(0.0, due - now)
                force = True
            if delay > 0:
                stop.wait(min(delay, IDLE_POLL_SECONDS))
                continue
            try:
                work_since = None
                block = self.produce(force_empty=force)
                if self.block_time is None and block is not None:
                    trailing_due = now + TRAILING_BLOCK_SECONDS if block.transactions else None
            except Exception:
                log.exception("block production failed; retrying")
                stop.wait(IDLE_POLL_SECONDS)

    def close(self) -> None:
        with self._produce_lock:
            self.builder.close()
            if self.journal is not None:
                self.journal.close()
            close = getattr(self.db, "close", None)
            if close is not None:
                close()
