"""Every committed block, applied in order from etcd: what a node that does not produce runs.

Blocks come from `BlockLog.watch` (committed blocks only, each linked to the one before, no
gap or repeat across etcd member failures) and are re-executed and verified by
`Node.import_block`. The rules:
- a block stamped more than FUTURE_BLOCK_SECONDS ahead of this node's clock waits, logged,
  until the clock catches up (geth queues such blocks): a fast producer clock delays a
  follower, it never forks it. A timestamp not above the parent's is refused (importer).
- a block that does not verify, or a block log that is not one chain, halts the node: it
  applies nothing more and keeps serving reads at the last block it could reproduce.
- blocks older than etcd keeps come from a peer, checked by hash and re-execution (sync.py).
The producer runs this too: its own blocks come back from etcd and are skipped as held.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..importer import BlockRejected
from ..node import Node
from .blocklog import BlockLog, BlockLogCorrupt, BlocksPruned, LoggedBlock
from .client import EtcdError
from .sync import PeerSync, SyncFailed

log = logging.getLogger(__name__)

FUTURE_BLOCK_SECONDS = 15  # geth's allowance for a block ahead of the local clock
CLOCK_POLL_SECONDS = 0.25
RETRY_PAUSE_SECONDS = 0.5
SYNC_RETRY_PAUSE_SECONDS = 2.0


class Follower:
    """Applies committed blocks from etcd in a thread of its own; `halt` on any it cannot."""

    def __init__(self, node: Node, blocks: BlockLog, history: PeerSync,
                 halt: Callable[[str], None]) -> None:
        self.node = node
        self.blocks = blocks
        self.history = history
        self.halt = halt
        self.state = "starting"
        self.applied = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._watch = None

    def stop(self) -> None:
        self._stop.set()
        self.history.stop.set()
        watch = self._watch
        if watch is not None:
            watch.close()

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                self._round()
        except (BlockRejected, BlockLogCorrupt) as exc:
            self.state = "halted"
            self.halt(str(exc))

    def _round(self) -> None:
        """One watch from the local head, until it breaks; then history or a pause."""
        head = self.node.builder.head()
        watch = self.blocks.watch(head.block_number + 1, parent_hash=head.hash)
        self._watch = watch
        if self._stop.is_set():
            watch.close()
        pruned = None
        try:
            self.state = "following"
            for logged in watch:
                self._apply(logged)
                if self._stop.is_set():
                    break
        except BlocksPruned as exc:
            pruned = exc
        except BlockLogCorrupt:
            raise
        except EtcdError as exc:
            self.last_error = str(exc)
            log.warning("block watch: %s", exc)
            self._stop.wait(RETRY_PAUSE_SECONDS)
        finally:
            watch.close()
            self._watch = None
        if pruned is not None:
            self._history(pruned)

    def _apply(self, logged: LoggedBlock) -> None:
        number, _, block_hash = logged.identity()
        head = self.node.builder.head()
        held = (number <= head.block_number
                and self.node.chain.get_canonical_block_hash(number) == block_hash)
        if held:  # this node produced it, or applied it before a restart
            return
        block = self.node.decode_block(logged.data)
        self._wait_for_clock(number, block.header.timestamp)
        if self._stop.is_set():
            return
        if self.node.import_block(block, logged.data) is not None:
            self.applied += 1

    def _wait_for_clock(self, number: int, timestamp: int) -> None:
        ahead = timestamp - self.node.clock.now()
        if ahead <= FUTURE_BLOCK_SECONDS:
            return
        log.warning("block %d is stamped %.1f s ahead of this node's clock (allowed %d s): "
                    "waiting for the clock", number, ahead, FUTURE_BLOCK_SECONDS)
        self.state = f"waiting for the clock: block {number} is {ahead:.1f} s ahead"
        while ahead > FUTURE_BLOCK_SECONDS and not self._stop.is_set():
            self._stop.wait(min(ahead - FUTURE_BLOCK_SECONDS, CLOCK_POLL_SECONDS))
            ahead = timestamp - self.node.clock.now()
        log.info("block %d: clock caught up (%.1f s ahead)", number, ahead)
        self.state = "following"

    def _history(self, pruned: BlocksPruned) -> None:
        """Blocks before etcd's oldest, from a peer, linked to that oldest block's parent."""
        oldest = self.blocks.get(pruned.oldest) if pruned.oldest is not None else None
        if oldest is None:  # pruned further meanwhile: look again
            return
        _, anchor_hash, _ = oldest.identity()
        self.state = f"fetching blocks up to {oldest.number - 1} from peers"
        log.info("blocks %d..%d are no longer in etcd: fetching them from peers",
                 pruned.number, oldest.number - 1)
        try:
            self.history.sync(oldest.number - 1, anchor_hash)
        except SyncFailed as exc:
            self.last_error = str(exc)
            log.warning("%s; trying again", exc)
            self._stop.wait(SYNC_RETRY_PAUSE_SECONDS)
        except EtcdError as exc:
            self.last_error = str(exc)
            self._stop.wait(RETRY_PAUSE_SECONDS)
