"""ClusterMember: what a node holds in a cluster, and the producer's step-down rule."""
from __future__ import annotations

import pytest

from fee_plugin.node.cluster import AppendStatus, ClusterMember, NotProducer
from tests.support.blocks import make_block, make_chain


def members(devnet, keys, count):
    started = []
    for i in range(count):
        member = ClusterMember(devnet.client_urls, keys.chain_id, keys.genesis_hash, f"org{i}",
                               f"http://10.0.0.{i}:8545").start()
        assert member.election.wait_for_leader(5)
        started.append(member)
    return started


def test_producer_commits_and_followers_watch_the_same_blocks(etcd_devnet, chain_keys):
    producer, follower = members(etcd_devnet, chain_keys, 2)
    try:
        assert producer.fence is not None and follower.fence is None
        assert follower.producer.rpc_url == "http://10.0.0.0:8545"
        assert follower.registry.peers() == {"org0": "http://10.0.0.0:8545"}
        chain = make_chain(chain_keys.genesis_hash, 3)
        for number, parent, block_hash, data in chain:
            assert producer.commit(number, parent, block_hash, data).committed
        watched = []
        for block in (watch := follower.blocks.watch(1)):
            watched.append(block.data)
            if block.number == 3:
                watch.close()
        assert watched == [c[3] for c in chain]
        status = follower.status(local_head=1)
        assert status["role"] == "follower" and status["producer"] == "org0"
        assert (status["head"], status["lagBlocks"]) == (3, 2)
        assert status["etcdRoundTripMs"] > 0
        assert producer.status()["role"] == "producer"
        with pytest.raises(NotProducer, match="node org1 is not the producer .producer: org0."):
            follower.commit(*chain[0])
    finally:
        for member in (producer, follower):
            member.close()


def test_a_commit_that_does_not_land_steps_the_producer_down(etcd_devnet, chain_keys):
    producer, follower = members(etcd_devnet, chain_keys, 2)
    try:
        chain = make_chain(chain_keys.genesis_hash, 2)
        assert producer.commit(*chain[0]).committed
        stale, stale_hash = make_block(1, chain_keys.genesis_hash, payload=b"stale head")
        result = producer.commit(1, chain_keys.genesis_hash, stale_hash, stale)
        assert result.status is AppendStatus.HEAD_MOVED
        assert producer.fence is None
        assert follower.election.wait_until_leader(2)
        assert follower.commit(*chain[1]).committed
    finally:
        for member in (producer, follower):
            member.close()
