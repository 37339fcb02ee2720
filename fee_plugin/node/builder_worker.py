"""The block builder's own process: the child side (builder_process.py is the parent's).

Why a process: block execution is pure Python and holds the GIL; in one process it takes
more than half of it, so RPC, admission and the builder share one core while the second
idles (benchmarks/README). Here the builder runs `BlockBuilder._execute` unchanged, on a
database that is a read-through cache of the parent's LevelDB:

- a read the cache cannot answer asks the parent over the pipe (the parent answers from
  disk: the last committed block; the parent never writes while a build is in flight);
- the block's writes are staged, sent back with the block, and enter the cache only when
  the parent says it wrote them ("Y"); on "N" (the commit hook refused) they are dropped;
- the parent's own writes (imported blocks) reach the child as keys to forget before the
  next build, so no cached value is ever older than the disk.

The parent recovered every sender when it admitted the transaction; they come with the raw
bytes, so the child does not recover them again. Nothing here touches the disk.
"""
import pickle
import signal
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Dict, List, Optional

import rlp

from .builder import BlockBuilder
from .leveldb import LevelDB
from .pool import PoolTx

_UNKNOWN = object()
ENTRY_OVERHEAD_BYTES = 100  # a dict slot and two bytes objects, roughly


class OutOfStep(Exception):
    """The child's head is not the parent's: its cache cannot be trusted."""


class RemoteBackend:
    """plyvel's part of the LevelDB API over the parent's database, with a bounded cache."""

    closed = False

    def __init__(self, conn, cache_bytes: int) -> None:
        self.conn = conn
        self.cache_bytes = cache_bytes
        self.cache: Dict[bytes, Optional[bytes]] = {}  # None: known to be missing
        self.size = 0
        self.staged: Optional[tuple] = None  # (puts, deletes) of the block awaiting its verdict

    def get(self, key: bytes) -> Optional[bytes]:
        value = self.cache.get(key, _UNKNOWN)
        if value is _UNKNOWN:
            self.conn.send_bytes(b"R" + key)
            reply = self.conn.recv_bytes()
            value = reply[1:] if reply[:1] == b"V" else None
            self._remember(key, value)
        return value

    def put(self, key: bytes, value: bytes, sync: bool = False) -> None:
        raise RuntimeError("the builder process writes whole blocks only")

    delete = put

    def stage(self, puts: list, deletes: list) -> None:
        if self.staged is not None:
            raise AssertionError("one block at a time")
        self.staged = (puts, deletes)

    def settle(self, written: bool) -> None:
        """The parent's verdict on the staged block: written to disk, or dropped."""
        staged, self.staged = self.staged, None
        if written and staged is not None:
            puts, deletes = staged
            for key in deletes:
                self._remember(key, None)
            for key, value in puts:
                self._remember(key, value)

    def forget(self, keys: Optional[List[bytes]]) -> None:
        """Drop `keys` (None: everything): the parent wrote them."""
        if keys is None:
            self.cache.clear()
            self.size = 0
            return
        for key in keys:
            value = self.cache.pop(key, _UNKNOWN)
            if value is not _UNKNOWN:
                self.size -= self._cost(key, value)

    @staticmethod
    def _cost(key: bytes, value: Optional[bytes]) -> int:
        return len(key) + (len(value) if value is not None else 0) + ENTRY_OVERHEAD_BYTES

    def _remember(self, key: bytes, value: Optional[bytes]) -> None:
        old = self.cache.pop(key, _UNKNOWN)
        if old is not _UNKNOWN:
            self.size -= self._cost(key, old)
        self.cache[key] = value
        self.size += self._cost(key, value)
        if self.size > self.cache_bytes:
            self._evict_oldest_half()

    def _evict_oldest_half(self) -> None:
        # Insertion order: the oldest entries go; the hot ones come back on their next read.
        target = self.cache_bytes // 2
        cache = self.cache
        for key in list(cache):
            if self.size <= target:
                break
            self.size -= self._cost(key, cache.pop(key))

    def close(self) -> None:
        self.closed = True


class RemoteDB(LevelDB):
    """LevelDB's block batches over a RemoteBackend: a block's one write is staged."""

    def __init__(self, backend: RemoteBackend) -> None:
        self._attach(Path("<builder process>"), backend)

    def __repr__(self) -> str:
        return "RemoteDB()"

    def write_items(self, puts: list, deletes: list) -> None:
        self._db.stage(puts, deletes)


def build_reply(builder: BlockBuilder, tx_builder, request: tuple) -> dict:
    """Execute one block request; its writes stay staged in the backend."""
    _, parent_hash, timestamp, wire_runs, max_block_bytes = request
    parent = builder.head()
    if parent.hash != parent_hash:
        raise OutOfStep(f"builder process head {parent.hash.hex()} is not the node's {parent_hash.hex()}")
    runs = {}
    for sender, entries in wire_runs:
        run = []
        for raw, seq in entries:
            tx = tx_builder.decode(raw)
            tx.__dict__["sender"] = sender  # recovered at admission (a cached property)
            run.append(PoolTx(tx, raw, seq, 0.0))
        runs[sender] = run
    builder.max_block_bytes = max_block_bytes
    with builder.db.block_batch():
        built = builder._execute(parent, runs, timestamp)
    block = built.block
    if block.withdrawals:
        raise AssertionError("the builder never includes withdrawals")
    puts, deletes = builder.db._db.staged
    return {
        "header": rlp.encode(block.header),
        "hashes": [tx.hash for tx in block.transactions],
        # The objects themselves: unpickling one costs ~5 us, decoding its RLP ~50 us, and
        # the node's interpreter is the one that pays (the oracle tests compare encodings).
        "receipts": built.receipts,
        "invalid": built.invalid,
        "encoded": built.encoded,
        "puts": puts,
        "deletes": deletes,
    }


def main(fd: int) -> None:
    """The child's loop: requests are pickles from our own parent over a private socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which stops us
    conn = Connection(fd)
    try:
        genesis, cache_bytes = pickle.loads(conn.recv_bytes())
        backend = RemoteBackend(conn, cache_bytes)
        builder = BlockBuilder(genesis, RemoteDB(backend))  # reads the head from the parent
        tx_builder = builder.chain.get_vm_class_for_block_number(0).get_transaction_builder()
        conn.send_bytes(b"S")  # started
        serve(conn, backend, builder, tx_builder)
    except (EOFError, OSError):  # the parent is gone (a SIGKILLed node): so are we
        return


def serve(conn, backend: RemoteBackend, builder: BlockBuilder, tx_builder) -> None:
    while True:
        request = pickle.loads(conn.recv_bytes())
        op = request[0]
        if op == "stop":
            return
        if op == "forget":
            backend.forget(request[1])
            continue
        try:
            reply = build_reply(builder, tx_builder, request)
        except (EOFError, OSError):
            raise
        except Exception as err:  # reported to the parent, which decides; we stay up
            backend.staged = None
            if isinstance(err, OutOfStep):
                backend.forget(None)
            conn.send_bytes(b"E" + pickle.dumps(f"{type(err).__name__}: {err}"))
            continue
        conn.send_bytes(b"B" + pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
        backend.settle(conn.recv_bytes() == b"Y")


if __name__ == "__main__":
    main(int(sys.argv[1]))
