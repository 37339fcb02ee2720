"""What one fee node holds in a cluster: its lease, the election, its registry entry, the block log.

The node constructs one ClusterMember from its flags (`--etcd`, `--node-id`, its RPC URL, the
genesis) and asks it three things: am I the producer (`fence`), commit my block (`commit`),
and which blocks are committed (`blocks.watch`). The step-down rule lives here so every
producer follows it: a commit that does not land (fenced, head moved, or etcd unreachable until
the lease is no longer surely ours) resigns; the node re-imports from the log, then campaigns.
"""
from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable

from . import failpoints
from .blocklog import DEFAULT_MAX_REQUEST_BYTES, AppendResult, BlockLog, Head
from .client import EtcdClient, EtcdError, EtcdUnavailable
from .election import Election, Fence, Leader
from .keys import ChainKeys
from .registry import NodeRegistry
from .session import DEFAULT_TTL_SECONDS, Session

log = logging.getLogger(__name__)


class NotProducer(RuntimeError):
    """A commit was asked of a node that does not hold the producer's fence."""


class ClusterMember:
    def __init__(self, etcd: str | list[str], chain_id: int, genesis_hash: bytes, node_id: str,
                 rpc_url: str, *, lease_ttl_seconds: int = DEFAULT_TTL_SECONDS,
                 max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, candidate: bool = True,
                 on_producer_change: Callable[[Leader | None], None] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.keys = ChainKeys(chain_id, genesis_hash)
        self.client = EtcdClient(etcd, ssl_context=ssl_context)
        self.node_id = node_id
        self.session = Session(self.client, ttl_seconds=lease_ttl_seconds)
        self.election = Election(self.session, self.keys.election, node_id, rpc_url,
                                 candidate=candidate, on_change=on_producer_change)
        self.registry = NodeRegistry(self.session, self.keys, node_id, rpc_url)
        self.blocks = BlockLog(self.client, self.keys, max_request_bytes=max_request_bytes)

    def start(self) -> ClusterMember:
        """Take a lease, publish this node, start campaigning (raises EtcdError if unreachable)."""
        self.session.start()
        self.registry.publish()
        self.election.start()
        return self

    def close(self) -> None:
        """Resign and revoke the lease (the registry entry goes with it): others take over now."""
        self.election.close(resign=True)
        self.session.close(revoke=True)

    @property
    def fence(self) -> Fence | None:
        return self.election.fence

    @property
    def producer(self) -> Leader | None:
        return self.election.leader

    def commit(self, number: int, parent_hash: bytes, block_hash: bytes,
               block_bytes: bytes) -> AppendResult:
        """Commit our block; if it does not land, step down (the caller re-imports, campaigns).

        While etcd does not answer, the same append is retried (it is idempotent) for as long
        as our lease surely lasts; past that the outcome is unknown, we resign and re-raise
        EtcdUnavailable, and the block log tells later whether the block made it.
        """
        fence = self.election.fence
        if fence is None:
            raise NotProducer(f"node {self.node_id} is not the producer "
                              f"(producer: {self.election.leader_id})")
        failpoints.hit("before-append")  # tests only (FEE_FAILPOINTS): etcd's fence must refuse
        while True:
            try:
                result = self.blocks.append(number, parent_hash, block_hash, block_bytes, fence)
            except EtcdUnavailable:
                if self.election.fence == fence:
                    continue
                log.warning("block %d: etcd unreachable past our lease; stepping down", number)
                self.election.resign()
                raise
            if not result.committed:
                log.warning("block %d not committed (%s, head %d): stepping down", number,
                            result.status.value, result.head.number)
                self.election.resign()
            return result

    def status(self, local_head: int | None = None) -> dict:
        """For fee_clusterStatus: role, producer, etcd head, this node's lag, etcd round trip."""
        started = time.perf_counter()
        try:
            head: Head | None = self.blocks.head()
            rtt_ms = round((time.perf_counter() - started) * 1e3, 2)
        except EtcdError as exc:
            head, rtt_ms = None, None
            log.warning("cluster status: %s", exc)
        producer = self.election.leader
        return {
            "nodeId": self.node_id,
            "role": "producer" if self.election.is_leader else "follower",
            "producer": producer.node_id if producer else None,
            "producerUrl": producer.rpc_url if producer else None,
            "head": head.number if head else None,
            "lagBlocks": (head.number - local_head
                          if head is not None and local_head is not None else None),
            "etcdRoundTripMs": rtt_ms,
        }
