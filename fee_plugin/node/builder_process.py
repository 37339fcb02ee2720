"""The block builder in its own process: the parent side (builder_worker.py is the child's).

`ProcessBlockBuilder` is a `BlockBuilder` whose `build` sends the pool's runs to a child
process that executes the block (the same `_execute`) and answers its database reads from
this process's LevelDB. The parent keeps the chain for everything else (head, imports,
decoding), writes the block's one LevelDB batch itself after the commit hook agreed, and
only then tells the child to keep the block's writes in its cache. So the database has one
writer, the disk is the only truth, and a child that dies costs its cache, never a block:
the next build starts a new one (a block in flight is not written; its transactions stay
pending). Measured against the thread builder in benchmarks/README.
"""
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable, Dict, List, Optional

import rlp
from eth_utils import encode_hex

from ..genesis import Genesis
from . import builder_worker
from .builder import DEFAULT_MAX_BLOCK_BYTES, BlockBuilder, BuiltBlock, CommitRefused
from .pool import PoolTx

log = logging.getLogger("fee_plugin.node.builder_process")

CACHE_BYTES = 32 * 1024 * 1024  # the child's read cache: a few blocks' writes (the hot state is rewritten each block)
FORGET_KEYS_MAX = 100_000  # more keys written here than this: the child drops its whole cache
START_TIMEOUT_SECONDS = 60.0  # the child imports py-evm
# No block takes this long (a 1 MB block builds in well under a second); past it the child
# is taken for hung, killed, and the block is not written.
BUILD_TIMEOUT_SECONDS = 120.0


class BuilderProcessFailed(Exception):
    """The builder process died, hung or failed the block: nothing was written."""


class ProcessBlockBuilder(BlockBuilder):
    def __init__(self, genesis: Genesis, db, max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES,
                 cache_bytes: int = CACHE_BYTES) -> None:
        super().__init__(genesis, db, max_block_bytes)  # writes the genesis if it is new
        self.cache_bytes = cache_bytes
        self._forget_lock = threading.Lock()
        self._forget: Optional[List[bytes]] = []  # keys the child must drop; None: everything
        self._process = None
        self._conn = None
        self.restarts = -1  # child processes started after the first
        db.on_write = self._parent_wrote
        self._start()

    # -- the child's lifetime ---------------------------------------------------------------

    def _start(self) -> None:
        # A plain subprocess on a socket pair, not multiprocessing: spawn would re-import the
        # caller's __main__ (a script without a main guard would start a second node), and
        # fork is unsafe in a process that runs threads.
        mine, theirs = socket.socketpair()
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "fee_plugin.node.builder_worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self._conn = Connection(mine.detach())
        self._conn.send_bytes(pickle.dumps((self.genesis, self.cache_bytes)))
        self._ready = False
        self.restarts += 1
        with self._forget_lock:
            self._forget = []  # a new child has an empty cache

    def _connection(self):
        if self._process is None or self._process.poll() is not None:
            if self._process is not None:
                log.warning("builder process exited (code %s): starting a new one",
                            self._process.returncode)
            self._kill()
            self._start()
        if not self._ready:  # it reads the chain's head while it starts
            self._serve_reads(self._conn, START_TIMEOUT_SECONDS, until=b"S")
            self._ready = True
        return self._conn

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait(5)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            try:
                self._conn.send_bytes(pickle.dumps(("stop",)))
                self._process.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()

    # -- keeping the child's cache true -----------------------------------------------------

    def _parent_wrote(self, puts: list, deletes: list) -> None:
        """LevelDB.on_write: this process wrote (an import); the child must forget the keys."""
        with self._forget_lock:
            if self._forget is None:
                return
            self._forget.extend(key for key, _ in puts)
            self._forget.extend(deletes)
            if len(self._forget) > FORGET_KEYS_MAX:
                self._forget = None

    def _send_forgets(self, conn) -> None:
        with self._forget_lock:
            keys, self._forget = self._forget, []
        if keys is None or keys:
            conn.send_bytes(pickle.dumps(("forget", keys)))

    # -- building ---------------------------------------------------------------------------

    def build(self, runs: Dict[bytes, List[PoolTx]], timestamp: int,
              commit_hook: Optional[Callable[[BuiltBlock], bool]] = None) -> BuiltBlock:
        parent = self.head()
        if timestamp <= parent.timestamp:
            raise ValueError(f"block time {timestamp} not after its parent's {parent.timestamp}")
        started = time.perf_counter()
        by_hash = {}
        wire = []
        for sender, run in runs.items():
            wire.append((sender, [(entry.raw, entry.seq) for entry in run]))
            for entry in run:
                by_hash[entry.hash] = entry.tx
        try:
            conn = self._connection()
            self._send_forgets(conn)
            conn.send_bytes(pickle.dumps(("build", parent.hash, timestamp, wire, self.max_block_bytes),
                                         protocol=pickle.HIGHEST_PROTOCOL))
            reply = self._serve_reads(conn)
        except (OSError, EOFError) as err:
            self._kill()
            raise BuilderProcessFailed(f"the builder process failed: {err!r}") from None
        verdict = b"N"
        try:
            built = self._built(parent.block_number + 1, reply, by_hash, time.perf_counter() - started)
            if commit_hook is not None and not commit_hook(built):
                raise CommitRefused(f"block {built.block.number} refused by the commit hook")
            self.db.write_items(reply["puts"], reply["deletes"])
            verdict = b"Y"
        finally:
            self._tell(conn, verdict)
        return built

    def _serve_reads(self, conn, timeout: float = BUILD_TIMEOUT_SECONDS, until: bytes = b"B"):
        """Answer the child's reads until it sends `until` (the block, or "started") or an error."""
        committed = self.db.committed
        deadline = time.monotonic() + timeout
        while True:
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                raise OSError(f"no answer from the builder process after {timeout:g} s")
            message = conn.recv_bytes()
            kind = message[:1]
            if kind == b"R":
                value = committed(message[1:])
                conn.send_bytes(b"M" if value is None else b"V" + value)
            elif kind == until:
                return pickle.loads(message[1:]) if len(message) > 1 else None
            elif kind == b"E":
                raise BuilderProcessFailed(pickle.loads(message[1:]))
            else:
                raise OSError(f"unexpected message {kind!r} from the builder process")

    def _built(self, number: int, reply: dict, by_hash: dict, seconds: float) -> BuiltBlock:
        """The block object from the child's header and the pool's own transactions (their
        senders already recovered), and the child's receipts."""
        block_class = self.chain.get_vm_class_for_block_number(number).get_block_class()
        meta = block_class._meta  # pyrlp's field table: the block's header sedes
        header = rlp.decode(reply["header"], sedes=meta.sedes[meta.field_names.index("header")])
        block = block_class(header, [by_hash[tx_hash] for tx_hash in reply["hashes"]], [], [])
        receipts = tuple(reply["receipts"])
        for tx_hash, why in reply["invalid"].items():
            log.info("skipped transaction %s: %s", encode_hex(tx_hash), why)
        return BuiltBlock(block, receipts, reply["invalid"], reply["encoded"], seconds=seconds)

    def _tell(self, conn, verdict: bytes) -> None:
        try:
            conn.send_bytes(verdict)
        except OSError:  # the child died after sending the block: the next build restarts it
            self._kill()
