"""Back-pressure: the chain does not run away from the nodes that verify it.

Every follower re-executes every block. When the producer makes blocks faster than a follower
can re-execute them (a slower machine, or nodes sharing cores), that follower falls behind
without bound. So, with a limit of L blocks:
- the producer seals its next block only once every live follower holds all but at most L-1
  of its blocks (`wait_followers`), so no follower is more than L behind;
- a node admitting a transaction first waits while it is more than L behind:
- any node: behind etcd's head (sampled every SAMPLE_SECONDS);
- the producer: also behind it is the slowest *live* follower (each peer's `eth_blockNumber`,
  polled while producing; a peer that does not answer within PEER_TIMEOUT_SECONDS is left
  out, so a dead or paused node never throttles the chain, and so is one more than
  SYNCING_LAG_BLOCKS behind: it is catching up from a restart, not keeping up).
Every wait is bounded (`wait_seconds`); after it the block is sealed or the transaction
admitted anyway: a slow follower stretches latency, it never stops the chain. `limit_blocks`
0 turns all of this off.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..node import Node
from .blocklog import BlockLog
from .client import EtcdError
from .peer import PeerError, PeerRpc

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 0.25
STALE_SECONDS = 2.0  # a sample older than this says nothing
PEER_TIMEOUT_SECONDS = 0.5
PEERS_REFRESH_SECONDS = 2.0
SYNCING_LAG_BLOCKS = 8


class Backpressure:
    def __init__(self, node: Node, blocks: BlockLog, peers: Callable[[], dict[str, str]],
                 is_producer: Callable[[], bool], *, limit_blocks: int,
                 wait_seconds: float) -> None:
        self.node = node
        self.blocks = blocks
        self.peers = peers
        self.is_producer = is_producer
        self.limit_blocks = limit_blocks
        self.wait_seconds = wait_seconds
        self.waits = 0  # admissions that had to wait
        self.seal_waits = 0  # blocks whose sealing had to wait for a follower
        self._etcd_head: tuple[int, float] | None = None  # (number, sampled at)
        self._peer_heads: dict[str, tuple[int, float]] = {}
        self._rpcs: dict[str, PeerRpc] = {}
        self._progress = threading.Condition()

    def followers_lag_blocks(self) -> int | None:
        """On the producer: blocks the slowest live, keeping-up follower lacks (None: unknown)."""
        if not self.is_producer():
            return None
        now = time.monotonic()
        local = self.node.builder.head().block_number
        lags = [local - head for head, at in self._peer_heads.values()
                if now - at <= STALE_SECONDS and local - head <= SYNCING_LAG_BLOCKS]
        return max(lags) if lags else None

    def lag_blocks(self) -> int | None:
        """How far this node (and, on the producer, the slowest live follower) is behind."""
        lags = []
        sample = self._etcd_head
        if sample is not None and time.monotonic() - sample[1] <= STALE_SECONDS:
            lags.append(sample[0] - self.node.builder.head().block_number)
        followers = self.followers_lag_blocks()
        if followers is not None:
            lags.append(followers)
        return max(lags) if lags else None

    def wait(self) -> None:
        """Before admitting a transaction: wait while more than the limit behind."""
        if self._wait_while(lambda: self.lag_blocks(), self.limit_blocks):
            self.waits += 1

    def wait_followers(self) -> None:
        """Before sealing a block: wait while a follower would end up more than the limit behind."""
        if self._wait_while(self.followers_lag_blocks, self.limit_blocks - 1):
            self.seal_waits += 1

    def _wait_while(self, lag: Callable[[], int | None], allowed: int) -> bool:
        """Wait (bounded) while `lag()` > `allowed`; whether it waited at all."""
        if not self.limit_blocks:
            return False
        deadline = time.monotonic() + self.wait_seconds
        waited = False
        with self._progress:
            while (behind := lag()) is not None and behind > allowed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                waited = True
                self._progress.wait(min(remaining, SAMPLE_SECONDS))
        return waited

    def notify(self, *_) -> None:
        """A block was applied or produced (a node listener)."""
        with self._progress:
            self._progress.notify_all()

    def run(self, stop: threading.Event) -> None:
        """Sample etcd's head and, while producing, the followers' heads (its own thread)."""
        peers: dict[str, str] = {}
        peers_at = float("-inf")
        while not stop.wait(SAMPLE_SECONDS):
            if not self.limit_blocks:
                return
            try:
                self._etcd_head = (self.blocks.head().number, time.monotonic())
            except EtcdError:
                pass
            if self.is_producer():
                if time.monotonic() - peers_at > PEERS_REFRESH_SECONDS:
                    try:
                        peers, peers_at = self.peers(), time.monotonic()
                    except EtcdError:
                        pass
                self._poll(peers)
            self.notify()
        for rpc in self._rpcs.values():
            rpc.close()

    def _poll(self, peers: dict[str, str]) -> None:
        for node_id, url in peers.items():
            rpc = self._rpcs.get(node_id)
            if rpc is None or rpc.url != url:
                rpc = self._rpcs[node_id] = PeerRpc(url, PEER_TIMEOUT_SECONDS)
            try:
                head = int(rpc.call("eth_blockNumber"), 16)
            except (PeerError, ValueError, TypeError):
                rpc.close()
                continue
            self._peer_heads[node_id] = (head, time.monotonic())
