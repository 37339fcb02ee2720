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

from .blocktypes import (  # noqa: F401 - the block log's types are part of its API
    DEFAULT_MAX_REQUEST_BYTES,
    TXN_OVERHEAD_BYTES,
    AppendResult,
    AppendStatus,
    BlockLogCorrupt,
    BlocksPruned,
    BlockTooLarge,
    Head,
    KeepResult,
    LoggedBlock,
    block_identity,
)
from .blockwatch import BlockWatch
from .client import (
    EtcdClient,
    RangeResult,
    compare_create_revision,
    compare_value,
    put_op,
    range_op,
)
from .election import Fence
from .keys import ChainKeys

# One range read holds at most this many blocks, and at most RANGE_BYTES_MAX of blocks at the
# byte cap (10 blocks at the default cap; more when the cap is lowered).
RANGE_BLOCKS_MAX = 256
RANGE_BYTES_MAX = 16 * 1024 * 1024
# Floor on the gateway's transfer rate for sizing one attempt's timeout on bulk calls
# (measured here: a 1.5 MiB append ~160 ms, a 15 MiB range ~540 ms).
TRANSFER_BYTES_PER_SECOND_MIN = 4 * 1024 * 1024


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


def _show(identity: tuple[int, bytes, bytes]) -> str:
    number, parent, block_hash = identity
    return f"({number}, 0x{parent.hex()[:16]}…, 0x{block_hash.hex()[:16]}…)"
