"""ClusterNode in process, on real etcd members: forwarding, "pending" on a follower, the
status it reports, and a graceful hand-over."""
from __future__ import annotations

import copy
import itertools
import threading
import time

import pytest

from fee_plugin.genesis import load_genesis
from fee_plugin.node.cluster.clusternode import ClusterNode
from fee_plugin.node.cluster.config import ClusterConfig
from fee_plugin.node.rpc import HttpServer, RpcApi

from .support.chain import ETHER, USER_KEYS, VAULT, address, calldata, genesis_dict, sign
from .support.etcd import wait_until

_chain_ids = itertools.count(7100)


class Member:
    """A ClusterNode with its RPC server and producer thread."""

    def __init__(self, genesis, urls, node_id) -> None:
        self.node = ClusterNode(genesis, cluster=ClusterConfig(etcd=tuple(urls), node_id=node_id))
        self.server = HttpServer(RpcApi(self.node), "127.0.0.1", 0).start()
        self.node.join(self.server.url)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.node.run_producer, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.server.stop()
        self.thread.join(10)
        self.node.close()


@pytest.fixture
def pair(etcd_devnet):
    raw = genesis_dict(consumption="upfront")
    raw["config"]["chainId"] = next(_chain_ids)
    genesis = load_genesis(copy.deepcopy(raw))
    members = [Member(genesis, etcd_devnet.client_urls, f"org{i}") for i in range(2)]
    try:
        wait_until(lambda: any(m.node.member.fence for m in members), 10, "a producer")
        producer = next(m for m in members if m.node.member.fence)
        follower = next(m for m in members if m is not producer)
        yield producer, follower
    finally:
        for member in members:
            member.close()


def _deposit(member, key, nonce=0):
    node = member.node
    return sign(node.chain, key, VAULT, value=ETHER, data=calldata("deposit"), gas=300_000,
                nonce=nonce, chain_id=node.genesis.chain_id)


def test_a_follower_forwards_to_the_producer_and_pending_is_its_own_pool(pair):
    producer, follower = pair
    tx = _deposit(follower, USER_KEYS[0])
    follower.node.send_transaction(tx)
    assert follower.node.pool.next_nonce(address(USER_KEYS[0])) == 1  # latest + its own pool
    wait_until(lambda: producer.node.pool.get(tx.hash) is not None
               or producer.node.chain.get_canonical_head().block_number > 0, 5, "forwarded")
    wait_until(lambda: follower.node.chain.get_canonical_head().block_number >= 1, 10, "mined")
    number, _ = follower.node.chain.chaindb.get_transaction_index(tx.hash)
    assert producer.node.chain.get_canonical_block_hash(number) == \
        follower.node.chain.get_canonical_block_hash(number)
    wait_until(lambda: follower.node.pool.get(tx.hash) is None, 5, "the mined one out of the pool")
    assert follower.node.forwarder.forwarded >= 1


def test_cluster_status_names_roles_producer_and_lag(pair):
    producer, follower = pair
    producer.node.send_transaction(_deposit(producer, USER_KEYS[1]))
    wait_until(lambda: follower.node.chain.get_canonical_head().block_number >= 1, 10, "a block")
    ours, theirs = producer.node.cluster_status(), follower.node.cluster_status()
    assert (ours["role"], theirs["role"]) == ("producer", "follower")
    assert ours["producer"] == theirs["producer"] == ours["nodeId"]
    assert theirs["producerUrl"] == producer.server.url
    assert theirs["lagBlocks"] == 0 and theirs["head"] == theirs["localHead"] >= 1
    assert theirs["etcdRoundTripMs"] > 0 and theirs["halted"] is None
    assert theirs["stateRoot"] == ours["stateRoot"]


def test_a_producer_that_stops_cleanly_hands_over_at_once(pair):
    producer, follower = pair
    started = time.monotonic()
    producer.close()  # resigns and revokes its lease: no waiting for the lease to expire
    wait_until(lambda: follower.node.member.fence is not None, 2, "the follower elected")
    assert time.monotonic() - started < 2
    follower.node.send_transaction(_deposit(follower, USER_KEYS[2]))
    wait_until(lambda: follower.node.chain.get_canonical_head().block_number >= 1, 10,
               "a block of the new producer")


def test_a_second_node_with_a_live_nodes_id_is_refused(pair, etcd_devnet):
    producer, _ = pair
    twin = ClusterNode(producer.node.genesis,
                       cluster=ClusterConfig(etcd=tuple(etcd_devnet.client_urls),
                                             node_id=producer.node.cluster.node_id))
    try:
        with pytest.raises(ValueError, match=f"node id {producer.node.cluster.node_id} is in use "
                                             f"by a live node at {producer.server.url}"):
            twin.join("http://127.0.0.1:1")
    finally:
        twin.close()


class _StubElection:
    def __init__(self) -> None:
        self.campaigns = 0

    def campaign(self) -> None:
        self.campaigns += 1

    def resign(self) -> None:
        pass


class _StubMember:
    """A member whose commits do not land (another block got there first)."""

    def __init__(self, head) -> None:
        self._head = head
        self.election = _StubElection()
        self.blocks = self
        self.fence = object()

    def head(self):
        return self._head

    def commit(self, number, parent_hash, block_hash, data):
        from fee_plugin.node.cluster import AppendResult, AppendStatus, Head

        return AppendResult(AppendStatus.HEAD_MOVED, Head(number, b"\x99" * 32), 7)


def test_a_commit_that_does_not_land_writes_nothing_ends_the_term_and_campaigns_once_caught_up():
    from fee_plugin.node.cluster import Head

    raw = genesis_dict(consumption="upfront")
    node = ClusterNode(load_genesis(copy.deepcopy(raw)),
                       cluster=ClusterConfig(etcd=("http://127.0.0.1:1",), node_id="a"))
    genesis = node.chain.get_canonical_head()
    node.member = _StubMember(Head(0, genesis.hash))
    node._campaigning, node._term_stop = True, threading.Event()
    tx = sign(node.chain, USER_KEYS[0], VAULT, value=ETHER, data=calldata("deposit"),
              gas=300_000, nonce=0, chain_id=node.genesis.chain_id)
    node.send_transaction(tx)
    assert node.produce() is None
    assert node.chain.get_canonical_head() == genesis  # the refused block left nothing
    assert node._term_stop.is_set() and not node._campaigning
    assert node.pool.get(tx.hash) is not None  # still pending, for the next producer
    assert node.commits_failed == {"head moved": 1}  # fee_clusterStatus's commitsFailed
    assert node.last_failed_commit["number"] == 1 and node.last_failed_commit["reason"] == "head moved"
    node._campaign_when_caught_up()  # holds etcd's head (the genesis here): campaigns again
    assert node.member.election.campaigns == 1
