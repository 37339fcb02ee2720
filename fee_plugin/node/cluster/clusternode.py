"""A fee node in a consortium cluster: a Node whose chain is the one etcd orders.

Configured at construction, nothing checked on the hot path: the builder's commit hook is
the fenced etcd append (a block is written to LevelDB, and answered as mined, only after
etcd committed it), `run_producer` produces only while this node holds the producer's fence
and has applied every committed block, a Follower applies the blocks others commit, and
`submit` forwards what this node accepts to the producer. A block this node cannot
reproduce halts it (`halted`): it applies and produces nothing more and keeps serving reads.

Producer terms: elected (lease-bound key in etcd) -> read etcd's head -> apply up to it ->
produce (Node.run_producer) until the fence is lost, a commit does not land, or the node
stops. A commit that does not land steps the producer down (ClusterMember.commit); it then
re-applies from etcd and campaigns again once it holds every committed block.
"""
from __future__ import annotations

import logging
import threading
import time

from ...genesis import Genesis
from ..admission import TxRejected
from ..builder import BuiltBlock
from ..node import Node
from .blocklog import BlockTooLarge
from .client import EtcdError, EtcdUnavailable
from .config import ClusterConfig
from .election import Fence, Leader
from .follower import Follower
from .forward import Forwarder
from .member import ClusterMember, NotProducer
from .peer import PeerRpc
from .pressure import Backpressure
from .sync import PeerSync

log = logging.getLogger(__name__)

CATCH_UP_SECONDS = 5.0  # a new producer that cannot apply etcd's head in this time resigns
POLL_SECONDS = 0.02
ELECTION_POLL_SECONDS = 0.2
JOIN_RETRY_SECONDS = 1.0
JOIN_TIMEOUT_SECONDS = 60.0  # how long a starting node waits for etcd
THREAD_JOIN_SECONDS = 2.0  # then go on: the producer lock keeps the database safe
CLOSE_ETCD_TIMEOUT_SECONDS = 1.0  # etcd calls while stopping: a dead etcd must not hold it up
COMPACT_EVERY_MAX = 1000
ADMISSION_WAIT_SECONDS = 2.0  # back-pressure: the longest an admission waits (pressure.py)


class ClusterNode(Node):
    def __init__(self, genesis: Genesis, db=None, *, cluster: ClusterConfig, **node_kwargs) -> None:
        super().__init__(genesis, db, **node_kwargs)
        self.cluster = cluster
        self.builder.max_block_bytes = min(self.builder.max_block_bytes, cluster.block_bytes_max)
        self.member: ClusterMember | None = None
        self.follower: Follower | None = None
        self.forwarder: Forwarder | None = None
        self.pressure: Backpressure | None = None
        self.halted: str | None = None
        self.terms = 0  # producer terms served since start
        # blocks built here whose commit failed, by reason: "lease" (refused here: the lease
        # not surely alive), "fenced" / "head moved" (refused by etcd's compares), "unknown"
        # (etcd unreachable past the lease: etcd's block log tells later), "too large"
        self.commits_failed: dict[str, int] = {}
        self.last_failed_commit: dict | None = None
        self._campaigning = False
        self._stop = threading.Event()
        self._term_stop = threading.Event()
        self._term_stop.set()
        self._threads: list[threading.Thread] = []
        self.commit_hook = self._commit
        self.listeners.append(self._compact)

    # -- joining --------------------------------------------------------------------------

    def join(self, rpc_url: str, timeout_seconds: float | None = None) -> None:
        """Take a lease, publish `rpc_url`, start following, forwarding and (once caught up)
        campaigning. Waits for etcd up to `timeout_seconds` (EtcdError after that)."""
        timeout_seconds = JOIN_TIMEOUT_SECONDS if timeout_seconds is None else timeout_seconds
        cluster = self.cluster
        genesis_hash = self.chain.get_canonical_block_header_by_number(0).hash
        member = ClusterMember(list(cluster.etcd), self.genesis.chain_id, genesis_hash,
                               cluster.node_id, rpc_url, lease_ttl_seconds=cluster.lease_ttl_seconds,
                               max_request_bytes=cluster.max_request_bytes, candidate=False,
                               on_producer_change=self._producer_changed,
                               ssl_context=cluster.ssl_context())
        deadline = time.monotonic() + timeout_seconds
        while True:
            remaining = max(0.1, min(member.client.timeout_seconds, deadline - time.monotonic()))
            try:
                member.client.get(member.keys.head, timeout_seconds=remaining)
                break
            except EtcdError as err:
                if time.monotonic() > deadline:
                    raise
                log.warning("etcd not reachable yet (%s); retrying", err)
                self._stop.wait(JOIN_RETRY_SECONDS)
        taken = member.registry.nodes().get(cluster.node_id)
        if taken is not None and taken != rpc_url:
            raise ValueError(f"node id {cluster.node_id} is in use by a live node at {taken}: "
                             f"every node needs its own --node-id")
        member.start()
        self.member = member
        history = PeerSync(self, member.registry.peers, pin=cluster.sync_pin, connect=PeerRpc)
        self.follower = Follower(self, member.blocks, history, self.halt)
        self.forwarder = Forwarder(self.pool, cluster.node_id, lambda: member.producer,
                                   lambda: member.fence is not None)
        self.pressure = Backpressure(self, member.blocks, member.registry.peers,
                                     lambda: member.fence is not None,
                                     limit_blocks=cluster.max_follower_lag,
                                     wait_seconds=ADMISSION_WAIT_SECONDS)
        self.listeners.append(self.pressure.notify)
        self._spawn("follower", self.follower.run)
        self._spawn("forwarder", self.forwarder.run, self._stop)
        self._spawn("backpressure", self.pressure.run, self._stop)

    def _spawn(self, name: str, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- transactions ---------------------------------------------------------------------

    def submit(self, raw: bytes) -> bytes:
        if self.halted is not None:
            raise TxRejected(f"this node has halted ({self.halted}); send to another node",
                             reason="halted")
        if self.pressure is not None:
            self.pressure.wait()
        tx_hash = super().submit(raw)
        if self.forwarder is not None:
            self.forwarder.submit(raw)
        return tx_hash

    # -- producing ------------------------------------------------------------------------

    def run_producer(self, stop: threading.Event) -> None:
        """Produce during each term this node is elected for; follow otherwise."""
        threading.Thread(target=self._end_terms_on, args=(stop,), daemon=True).start()
        while not (stop.is_set() or self._stop.is_set()):
            member = self.member
            if member is None or self.halted is not None:
                stop.wait(ELECTION_POLL_SECONDS)
                continue
            fence = member.fence
            if fence is None:
                self._campaign_when_caught_up()
                member.election.wait_for(lambda e: e.is_leader, ELECTION_POLL_SECONDS)
                continue
            if not self._caught_up(fence):
                continue
            term_stop = threading.Event()
            self._term_stop = term_stop
            if self._stop.is_set() or member.fence != fence:
                continue
            self.terms += 1
            log.warning("producing from block %d (elected at etcd revision %d)",
                        self.builder.head().block_number + 1, fence.revision)
            super().run_producer(term_stop)
            term_stop.set()
            log.warning("no longer producing")

    def produce(self, force_empty: bool = False):
        """Seal a block, once the followers hold enough of the last ones (pressure.py)."""
        if self.pressure is not None:
            self.pressure.wait_followers()
        return super().produce(force_empty)

    def _end_terms_on(self, stop: threading.Event) -> None:
        stop.wait()
        self._stop.set()
        self._term_stop.set()

    def _end_term(self, stepped_down: bool) -> None:
        if stepped_down:
            self._campaigning = False
        self._term_stop.set()

    def _resign(self) -> None:
        self._end_term(stepped_down=True)
        if self.member is not None:
            self.member.election.resign()

    def _etcd_head_check(self):
        """etcd's head if this node's chain is a prefix of etcd's; None if unknown (etcd
        unreachable). Halts if this node holds a block etcd does not."""
        try:
            head = self.member.blocks.head()
        except EtcdError as err:
            log.info("etcd head unknown: %s", err)
            return None
        local = self.builder.head()
        if local.block_number > head.number:
            self.halt(f"this node's head is block {local.block_number}, etcd's only "
                      f"{head.number}: etcd lost committed blocks (restore it from a backup)")
            return None
        if local.block_number == head.number and local.hash != head.hash:
            self.halt(f"block {head.number}: this node has 0x{local.hash.hex()}, etcd "
                      f"0x{head.hash.hex()}")
            return None
        return head

    def _campaign_when_caught_up(self) -> None:
        """Be a candidate again once this node holds every block etcd has committed."""
        if self._campaigning:
            return
        head = self._etcd_head_check()
        if head is not None and self.builder.head().block_number == head.number:
            self._campaigning = True
            self.member.election.campaign()

    def _caught_up(self, fence: Fence) -> bool:
        """A new term: apply etcd's head first (only we can move it now), else resign."""
        deadline = time.monotonic() + CATCH_UP_SECONDS
        head = self._etcd_head_check()
        while head is not None and self.builder.head().block_number < head.number:
            if self._stop.is_set() or self.halted is not None or self.member.fence != fence:
                return False
            if time.monotonic() > deadline:
                log.warning("elected but not holding etcd's head %d after %.0f s: resigning",
                            head.number, CATCH_UP_SECONDS)
                self._resign()
                return False
            self._stop.wait(POLL_SECONDS)
            head = self._etcd_head_check()
        return head is not None and self.builder.head().hash == head.hash

    def _commit(self, built: BuiltBlock) -> bool:
        """The builder's commit hook: the fenced etcd append; False leaves nothing written."""
        block = built.block
        try:
            result = self.member.commit(block.number, block.header.parent_hash, block.hash,
                                        built.encoded)
        except NotProducer:
            self._failed(built, "lease", "the producer's lease is not surely ours")
            self._end_term(stepped_down=False)
            return False
        except EtcdUnavailable as err:  # ClusterMember.commit resigned; etcd tells later
            self._failed(built, "unknown", f"outcome unknown, re-applying from etcd: {err}")
            self._end_term(stepped_down=True)
            return False
        except BlockTooLarge as err:
            log.error("%s", err)
            self._failed(built, "too large", str(err))
            self._resign()
            return False
        if not result.committed:  # ClusterMember.commit resigned
            self._failed(built, result.status.value,
                          f"etcd refused the append: {result.status.value}, etcd's head is "
                          f"{result.head.number} (0x{result.head.hash.hex()})")
            self._end_term(stepped_down=True)
        return result.committed

    def _failed(self, built: BuiltBlock, reason: str, why: str) -> None:
        """Count a block whose commit failed (nothing of it is written here) and say why."""
        block = built.block
        self.commits_failed[reason] = self.commits_failed.get(reason, 0) + 1
        self.last_failed_commit = {"number": block.number, "hash": "0x" + block.hash.hex(),
                                    "reason": reason}
        log.warning("block %d (0x%s) not committed: %s", block.number, block.hash.hex(), why)

    def _producer_changed(self, leader: Leader | None) -> None:
        if leader is None or leader.node_id != self.cluster.node_id:
            self._term_stop.set()
        if self.forwarder is not None:
            self.forwarder.producer_changed()

    def _compact(self, built: BuiltBlock) -> None:
        """The producer keeps etcd to the last --etcd-keep blocks (older ones: from peers)."""
        keep = self.cluster.keep_blocks
        every = max(1, min(COMPACT_EVERY_MAX, keep // 10))
        if not keep or built.block.number % every or self.member is None:
            return
        if self.member.fence is None:
            return
        try:
            result = self.member.blocks.keep(keep)
            if result.deleted:
                log.info("etcd keeps blocks from %s: %d deleted, history compacted at revision %s",
                         result.oldest, result.deleted, result.compact_revision)
        except EtcdError as err:
            log.warning("compacting etcd: %s", err)

    # -- health ---------------------------------------------------------------------------

    def halt(self, error: str) -> None:
        """Stop applying and producing blocks for good (reads go on); the error is kept."""
        if self.halted is not None:
            return
        self.halted = error
        log.error("HALTED at block %d, applying no more blocks: %s",
                  self.chain.get_canonical_head().block_number, error)
        self._resign()
        if self.follower is not None:
            self.follower.stop()

    def cluster_status(self) -> dict:
        """fee_clusterStatus: role, producer, etcd head, lag, etcd round trip, halted error."""
        local = self.chain.get_canonical_head()
        member = self.member
        if member is None:
            status = {"nodeId": self.cluster.node_id, "role": "starting", "producer": None,
                      "producerUrl": None, "head": None, "lagBlocks": None,
                      "etcdRoundTripMs": None}
        else:
            status = member.status(local_head=local.block_number)
        if self.halted is not None:
            status["role"] = "halted"
        follower, forwarder = self.follower, self.forwarder
        status.update({
            "localHead": local.block_number,
            "localHash": "0x" + local.hash.hex(),
            "stateRoot": "0x" + local.state_root.hex(),
            "halted": self.halted,
            "follower": follower.state if follower else None,
            "history": follower.history.progress if follower else None,
            "terms": self.terms,
            "commitsFailed": dict(self.commits_failed),
            "lastFailedCommit": self.last_failed_commit,
            "forwarded": forwarder.forwarded if forwarder else 0,
            "forwardError": forwarder.last_error if forwarder else None,
            "admissionWaits": self.pressure.waits if self.pressure else 0,
            "sealWaits": self.pressure.seal_waits if self.pressure else 0,
            "etcdKeepBlocks": self.cluster.keep_blocks,
        })
        return status

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop following and forwarding, resign and revoke the lease (others take over at
        once), then close the node."""
        self._stop.set()
        self._term_stop.set()
        if self.member is not None:
            self.member.client.timeout_seconds = CLOSE_ETCD_TIMEOUT_SECONDS
        if self.follower is not None:
            self.follower.stop()
        for thread in self._threads:
            thread.join(THREAD_JOIN_SECONDS)
        if self.member is not None:
            self.member.close()
        super().close()
