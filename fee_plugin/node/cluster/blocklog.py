"""The chain's committed blocks in etcd: one fenced transaction per block, read and watched in order.

`blocks/<number>` holds a block's RLP bytes and `head` its number and hash. A block is committed
when, and only when, one etcd transaction has compared that head is still its parent (number
and hash) and that the producer's election key still exists with the fence's create revision,
then put the block and the new head. etcd's Raft log orders the commits; a majority of members
has each one on disk before the answer. Nothing here executes blocks: the caller builds and
verifies them, this module only orders, stores and delivers their bytes.

History is bounded: `keep(K)` deletes blocks older than head - K + 1 and compacts etcd's history
(`oldest()` tells what is left); a node that needs older blocks fetches them from a peer.
"""
from __future__ import annotations

import enum
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import rlp
from eth_hash.auto import keccak
from rlp.codec import consume_length_prefix

from .client import (
    EtcdClient,
    EtcdCompacted,
    EtcdError,
    EtcdUnavailable,
    RangeResult,
    WatchStream,
    compare_create_revision,
    compare_value,
    put_op,
    range_op,
)
from .election import Fence
from .keys import ChainKeys

log = logging.getLogger(__name__)

# etcd's default --max-request-bytes; a block travels in one request with the head and compares.
DEFAULT_MAX_REQUEST_BYTES = 1_572_864
TXN_OVERHEAD_BYTES = 1024
# One range read holds at most this many blocks, and at most RANGE_BYTES_MAX of blocks at the
# byte cap (10 blocks at the default cap; more when the cap is lowered).
RANGE_BLOCKS_MAX = 256
RANGE_BYTES_MAX = 16 * 1024 * 1024
# Floor on the gateway's transfer rate for sizing one attempt's timeout on bulk calls
# (measured here: a 1.5 MiB append ~160 ms, a 15 MiB range ~540 ms).
TRANSFER_BYTES_PER_SECOND_MIN = 4 * 1024 * 1024
WATCH_RETRY_PAUSE_SECONDS = 0.05
HEADER_FIELDS_MIN = 9  # parent hash at 0, number at 8, in every fork's header


class BlockTooLarge(ValueError):
    """A block that cannot fit in one etcd request."""

    def __init__(self, number: int, size_bytes: int, max_block_bytes: int,
                 max_request_bytes: int) -> None:
        super().__init__(
            f"block {number} is {size_bytes} bytes > {max_block_bytes} bytes, the most one etcd "
            f"request carries (--max-request-bytes {max_request_bytes} minus "
            f"{TXN_OVERHEAD_BYTES} for the transaction): build smaller blocks or raise "
            f"--max-request-bytes on every member and here")
        self.number = number
        self.size_bytes = size_bytes
        self.max_block_bytes = max_block_bytes


class BlockLogCorrupt(EtcdError):
    """etcd holds, below the head, something no fenced append wrote: halt, do not import."""


class BlocksPruned(EtcdError):
    """A block below etcd's oldest kept block was asked for: fetch it from a peer."""

    def __init__(self, number: int, oldest: int | None) -> None:
        super().__init__(f"block {number} is no longer in etcd (oldest kept: {oldest}); "
                         f"fetch older blocks from another node")
        self.number = number
        self.oldest = oldest


@dataclass(frozen=True)
class Head:
    number: int
    hash: bytes

    def encode(self) -> bytes:
        return json.dumps({"number": self.number, "hash": "0x" + self.hash.hex()},
                          sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Head:
        value = json.loads(data)
        return cls(int(value["number"]), bytes.fromhex(value["hash"][2:]))


def block_identity(data: bytes) -> tuple[int, bytes, bytes]:
    """(number, parent hash, block hash) of an RLP block, from its header alone."""
    try:
        _, kind, length, start = consume_length_prefix(data, 0)
        if kind is not list or start + length != len(data):
            raise ValueError("not a single RLP list")
        _, kind, header_length, header_start = consume_length_prefix(data, start)
        if kind is not list:
            raise ValueError("first item is not a header list")
        header_rlp = data[start:header_start + header_length]
        fields = rlp.decode(header_rlp)
    except rlp.DecodingError as exc:
        raise ValueError(f"block bytes are not RLP: {exc}") from exc
    if len(fields) < HEADER_FIELDS_MIN:
        raise ValueError(f"header has {len(fields)} fields < {HEADER_FIELDS_MIN}")
    return int.from_bytes(fields[8], "big"), bytes(fields[0]), keccak(header_rlp)


@dataclass(frozen=True)
class LoggedBlock:
    """A committed block's bytes, with the etcd revision that committed it."""

    number: int
    data: bytes
    revision: int

    def identity(self) -> tuple[int, bytes, bytes]:
        return block_identity(self.data)


class AppendStatus(enum.Enum):
    COMMITTED = "committed"
    HEAD_MOVED = "head moved"  # head is no longer the parent: another block got there first
    FENCED = "fenced"  # the election key is gone or re-created: this producer was deposed


@dataclass(frozen=True)
class AppendResult:
    status: AppendStatus
    head: Head  # the head after the append (ours if committed, else the one that won)
    revision: int

    @property
    def committed(self) -> bool:
        return self.status is AppendStatus.COMMITTED


@dataclass(frozen=True)
class KeepResult:
    oldest: int | None
    deleted: int
    compact_revision: int | None


class BlockLog:
    """One chain's committed blocks in etcd (see module docstring)."""

    def __init__(self, client: EtcdClient, keys: ChainKeys, *,
                 max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
                 range_blocks_max: int | None = None) -> None:
        assert max_request_bytes > TXN_OVERHEAD_BYTES
        self.client = client
        self.keys = keys
        self.max_request_bytes = max_request_bytes
        by_bytes = max(1, RANGE_BYTES_MAX // self.max_block_bytes)
        self.range_blocks_max = (min(RANGE_BLOCKS_MAX, by_bytes) if range_blocks_max is None
                                 else range_blocks_max)
        assert self.range_blocks_max >= 1

    @property
    def genesis(self) -> Head:
        return Head(0, self.keys.genesis_hash)

    @property
    def max_block_bytes(self) -> int:
        """The largest block `append` takes: the builder's byte cap in cluster mode."""
        return self.max_request_bytes - TXN_OVERHEAD_BYTES

    def bulk_timeouts(self, size_bytes: int) -> dict:
        """Deadline and per-member attempt timeout for a call moving `size_bytes` of blocks."""
        attempt = (self.client.attempt_timeout_seconds
                   + size_bytes / TRANSFER_BYTES_PER_SECOND_MIN)
        return {"attempt_timeout_seconds": attempt,
                "timeout_seconds": max(self.client.timeout_seconds, 2 * attempt)}

    def read_range(self, first: int, count: int) -> RangeResult:
        """The blocks etcd holds among first .. first + count - 1, at one revision."""
        assert 1 <= count <= self.range_blocks_max, (
            f"{count} blocks not in 1..{self.range_blocks_max}")
        return self.client.range(self.keys.block(first), self.keys.block(first + count),
                                 **self.bulk_timeouts(count * self.max_block_bytes))

    # -- reads -----------------------------------------------------------------------------

    def head(self) -> Head:
        """The last committed block (the genesis while nothing is committed)."""
        kv = self.client.get(self.keys.head)
        return Head.decode(kv.value) if kv is not None else self.genesis

    def get(self, number: int) -> LoggedBlock | None:
        """Block `number` if etcd holds it (None if not committed yet, or pruned)."""
        kv = self.client.get(self.keys.block(number))
        return LoggedBlock(number, kv.value, kv.mod_revision) if kv is not None else None

    def get_range(self, first: int, last: int) -> list[LoggedBlock]:
        """Blocks first..last (inclusive) that etcd holds, in order; at most range_blocks_max."""
        count = last - first + 1
        if not 1 <= count <= self.range_blocks_max:
            raise ValueError(f"range {first}..{last} is {count} blocks, not in "
                             f"1..{self.range_blocks_max}")
        read = self.read_range(first, count)
        return [LoggedBlock(self.keys.block_number(kv.key), kv.value, kv.mod_revision)
                for kv in read.kvs]

    def oldest(self) -> int | None:
        """The lowest block number etcd still holds (None if it holds none)."""
        read = self.client.range(self.keys.blocks_prefix, self.keys.blocks_end, limit=1,
                                 keys_only=True)
        return self.keys.block_number(read.kvs[0].key) if read.kvs else None

    # -- the one write ---------------------------------------------------------------------

    def append(self, number: int, parent_hash: bytes, block_hash: bytes, block_bytes: bytes,
               fence: Fence) -> AppendResult:
        """Commit block `number` iff head is its parent and `fence` still holds: one etcd txn.

        Safe to call again after EtcdUnavailable (the outcome was unknown): a block already
        committed by the lost attempt is reported COMMITTED, never written twice.
        """
        if len(block_bytes) > self.max_block_bytes:
            raise BlockTooLarge(number, len(block_bytes), self.max_block_bytes,
                                self.max_request_bytes)
        stated = (number, parent_hash, block_hash)
        if block_identity(block_bytes) != stated:
            raise ValueError(f"block bytes say (number, parent, hash) = "
                             f"{_show(block_identity(block_bytes))}, append was given "
                             f"{_show(stated)}")
        assert number >= 1, f"block number {number} < 1: the genesis is never appended"
        if number == 1 and parent_hash != self.keys.genesis_hash:
            raise ValueError(f"block 1's parent 0x{parent_hash.hex()} is not this log's genesis "
                             f"0x{self.keys.genesis_hash.hex()}")
        parent_is_head = (compare_create_revision(self.keys.head, 0) if number == 1 else
                          compare_value(self.keys.head, Head(number - 1, parent_hash).encode()))
        ours = Head(number, block_hash)
        result = self.client.txn(
            [parent_is_head, compare_create_revision(fence.key, fence.revision)],
            [put_op(self.keys.block(number), block_bytes), put_op(self.keys.head, ours.encode())],
            [range_op(self.keys.head), range_op(fence.key)],
            **self.bulk_timeouts(len(block_bytes)))
        if result.succeeded:
            return AppendResult(AppendStatus.COMMITTED, ours, result.revision)
        heads = result.range(0).kvs
        head = Head.decode(heads[0].value) if heads else self.genesis
        if head == ours:
            return AppendResult(AppendStatus.COMMITTED, ours, heads[0].mod_revision)
        elected = result.range(1).kvs
        fenced = not elected or elected[0].create_revision != fence.revision
        status = AppendStatus.FENCED if fenced else AppendStatus.HEAD_MOVED
        return AppendResult(status, head, result.revision)

    # -- bounded history -------------------------------------------------------------------

    def keep(self, count: int) -> KeepResult:
        """Delete blocks older than the last `count` and compact etcd's history to that point.

        etcd keeps every old version of every key until compacted; compaction is cluster-wide
        (all keys, not only this chain's) and drops history before the delete's revision, so
        watches resuming from before it restart from a range read. The freed space returns to
        the filesystem only after `etcdctl defrag` on each member (it blocks that member while
        it runs: do it member by member, off peak).
        """
        assert count >= 1, f"keep {count} blocks: the head block is always kept"
        head = self.head()
        first_kept = head.number - count + 1
        if first_kept <= 1:
            return KeepResult(self.oldest(), 0, None)
        deleted, revision = self.client.delete_range(self.keys.block(0),
                                                     self.keys.block(first_kept))
        self.client.compact(revision)
        return KeepResult(first_kept, deleted, revision)

    def watch(self, from_number: int, *, parent_hash: bytes | None = None,
              idle_timeout_seconds: float = 5.0) -> BlockWatch:
        """Committed blocks from `from_number` on, in order, without gaps or repeats.

        `parent_hash`: the hash of block from_number - 1 as the caller has it (its local head),
        so the first block delivered must link to it (from block 1: the genesis, by default).
        """
        return BlockWatch(self, from_number, parent_hash=parent_hash,
                          idle_timeout_seconds=idle_timeout_seconds)


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


def _show(identity: tuple[int, bytes, bytes]) -> str:
    number, parent, block_hash = identity
    return f"({number}, 0x{parent.hex()[:16]}…, 0x{block_hash.hex()[:16]}…)"
