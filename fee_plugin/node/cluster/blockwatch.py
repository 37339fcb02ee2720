"""Committed blocks delivered in order from etcd, across member failures (see BlockWatch)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .blocktypes import BlockLogCorrupt, BlocksPruned, Head, LoggedBlock
from .client import EtcdCompacted, EtcdError, EtcdUnavailable, WatchStream, range_op

if TYPE_CHECKING:
    from .blocklog import BlockLog

log = logging.getLogger(__name__)

WATCH_RETRY_PAUSE_SECONDS = 0.05


class BlockWatch:
    """Iterate to get committed blocks in order; close() from any thread ends the iteration.

    Only committed blocks are delivered: when catching up, the head and the blocks up to it
    read in one transaction at revision R (bounded batches); then, watching blocks and head from
    R + 1, a block whose put came with the head's in one revision (the append transaction). A
    block key written without the head (not an append) is never delivered. After any break
    (member killed, stream idle, history compacted) it catches up again from the next number:
    reads see everything up to R, the watch everything after, and the next number is tracked,
    so failover never loses or repeats a block. Each block must link to the one before (the
    first to `parent_hash`, if given) and the head block hash to the head, else BlockLogCorrupt;
    BlocksPruned when the next block is older than what etcd keeps.
    """

    def __init__(self, blocks: BlockLog, from_number: int, *, parent_hash: bytes | None = None,
                 idle_timeout_seconds: float) -> None:
        assert from_number >= 1, f"watch from block {from_number} < 1"
        self.blocks = blocks
        self.next_number = from_number
        self.idle_timeout_seconds = idle_timeout_seconds
        self.resumptions = 0
        self._last_hash = (blocks.keys.genesis_hash if from_number == 1 and parent_hash is None
                           else parent_hash)
        self._closed = threading.Event()
        self._stream: WatchStream | None = None

    def close(self) -> None:
        self._closed.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    @property
    def endpoint(self) -> str | None:
        """The member the live watch stream is connected to."""
        stream = self._stream
        return stream.endpoint if stream is not None else None

    def _deliver(self, number: int, data: bytes, revision: int, head: Head) -> LoggedBlock:
        """The next block, checked to be block `number` linked to the one delivered before."""
        assert number == self.next_number <= head.number
        block = LoggedBlock(number, data, revision)
        try:
            stated, parent, block_hash = block.identity()
        except ValueError as exc:
            raise BlockLogCorrupt(f"block {number} in etcd is not a block: {exc}") from exc
        if stated != number:
            raise BlockLogCorrupt(f"etcd's block {number} says it is block {stated}")
        if self._last_hash is not None and parent != self._last_hash:
            raise BlockLogCorrupt(f"block {number}'s parent hash 0x{parent.hex()} is not block "
                                  f"{number - 1}'s hash 0x{self._last_hash.hex()}")
        if head.number == number and head.hash != block_hash:
            raise BlockLogCorrupt(f"block {number} hashes to 0x{block_hash.hex()}, the head "
                                  f"says 0x{head.hash.hex()}")
        self._last_hash = block_hash
        self.next_number += 1
        return block

    def _missing(self) -> EtcdError:
        oldest = self.blocks.oldest()
        if oldest is not None and oldest > self.next_number:
            return BlocksPruned(self.next_number, oldest)
        return BlockLogCorrupt(f"block {self.next_number} is missing below the head "
                               f"(oldest kept: {oldest})")

    def _catch_up(self) -> Iterator[LoggedBlock | int]:
        """Committed blocks from next_number, by reads; finally the revision to watch after."""
        keys = self.blocks.keys
        batch = self.blocks.range_blocks_max
        while True:
            first = self.next_number
            read = self.blocks.client.txn(
                [], [range_op(keys.head), range_op(keys.block(first), keys.block(first + batch))],
                **self.blocks.bulk_timeouts(batch * self.blocks.max_block_bytes))
            heads = read.range(0).kvs
            head = Head.decode(heads[0].value) if heads else self.blocks.genesis
            if head.number < first:
                yield read.revision
                return
            committed = [kv for kv in read.range(1).kvs
                         if keys.block_number(kv.key) <= head.number]
            for kv in committed:
                if keys.block_number(kv.key) != self.next_number:
                    raise self._missing()
                yield self._deliver(self.next_number, kv.value, kv.mod_revision, head)
            if self.next_number == first:
                raise self._missing()

    def _tail(self, revision: int) -> Iterator[LoggedBlock]:
        keys = self.blocks.keys
        stream = self.blocks.client.watch(keys.blocks_prefix, keys.log_end, revision + 1,
                                          idle_timeout_seconds=self.idle_timeout_seconds)
        self._stream = stream
        if self._closed.is_set():
            stream.close()
        for batch in stream:
            puts = [event.kv for event in batch.events if event.kind == "PUT"]
            blocks = {kv.mod_revision: kv for kv in puts if kv.key != keys.head}
            for kv in puts:
                if kv.key != keys.head:
                    continue
                head = Head.decode(kv.value)
                block = blocks.pop(kv.mod_revision, None)
                if head.number < self.next_number:
                    continue
                if (block is None or head.number != self.next_number
                        or keys.block_number(block.key) != head.number):
                    log.info("block watch: head %d at revision %d while expecting block %d; "
                             "re-reading", head.number, kv.mod_revision, self.next_number)
                    return
                yield self._deliver(head.number, block.value, block.mod_revision, head)
            for stray in blocks.values():
                log.warning("%r put at revision %d without the head: not an append, ignored",
                            stray.key, stray.mod_revision)

    def __iter__(self) -> Iterator[LoggedBlock]:
        while not self._closed.is_set():
            try:
                revision = None
                for item in self._catch_up():
                    if isinstance(item, int):
                        revision = item
                    else:
                        yield item
                    if self._closed.is_set():
                        return
                yield from self._tail(revision)
            except (EtcdUnavailable, EtcdCompacted) as exc:
                if self._closed.is_set():
                    return
                self.resumptions += 1
                log.info("block watch resumes from block %d: %s", self.next_number, exc)
                self._closed.wait(WATCH_RETRY_PAUSE_SECONDS)
            finally:
                self._stream = None
