"""A three-node cluster (three etcd members, three `fee-node run --etcd` processes) under
failures: kill -9 of the producer under load, SIGSTOP past its lease, the whole cluster
killed and restarted, a wiped follower, a tampered block written straight into etcd."""
from __future__ import annotations

import collections
import signal
import time
import urllib.request

import pytest
import rlp

from fee_plugin.node import ManualClock, Node
from fee_plugin.node.cluster import Head
from fee_plugin.node.cluster.client import compare_value, put_op

from .support.cluster import (
    Cluster,
    Load,
    cluster_genesis,
    measure_failover,
    senders,
    signed_transfer,
)
from .support.etcd import require_etcd, wait_until

pytestmark = pytest.mark.slow

SENDERS = senders(6)


@pytest.fixture
def make_cluster(tmp_path):
    require_etcd()
    started = []

    def make(extra_args=(), directory="cluster"):
        genesis = cluster_genesis(tmp_path / "genesis.json", SENDERS)
        cluster = Cluster(tmp_path / directory, genesis, 3, extra_args).start()
        started.append(cluster)
        return cluster

    yield make
    for cluster in started:
        cluster.devnet.stop(signal.SIGKILL)


def _assert_mined_once(cluster: Cluster, accepted: list[str], index: int) -> None:
    mined = collections.Counter(cluster.mined_hashes(index))
    assert not [h for h, n in mined.items() if n > 1], "a transaction mined twice"
    missing = [h for h in accepted if h not in mined]
    assert not missing, f"{len(missing)} accepted transactions never mined: {missing[:3]}"


def test_kill_9_of_the_producer_under_load_loses_nothing(make_cluster):
    cluster = make_cluster()
    load = Load(cluster, SENDERS, rate_per_client=6).start()
    try:
        wait_until(lambda: cluster.block_log().head().number >= 3 and load.count() >= 60, 30,
                   "blocks under load")
        producer = cluster.producer()
        committed = cluster.block_log().head()
        cluster.devnet.kill_node(producer)
        failover = measure_failover(cluster, producer)
        assert failover["elected_seconds"] <= 3.0, failover
        assert failover["first_block_seconds"] <= 5.0, failover
        before = load.count()
        wait_until(lambda: load.count() >= before + 60, 30, "the load going on after the kill")
    finally:
        load.stop()
    cluster.devnet.start_node(producer)  # its journal holds what only it had accepted
    wait_until(lambda: set(load.accepted) <= set(cluster.mined_hashes(0)), 60,
               "every accepted transaction mined", 0.5)
    head = cluster.wait_converged(60)
    assert head["localHead"] > committed.number
    block = cluster.rpc(0, "eth_getBlockByNumber", hex(committed.number), False)
    assert block["hash"] == "0x" + committed.hash.hex(), "a committed block was lost"
    for index in range(3):  # each node's chain, not only the head, is the same
        _assert_mined_once(cluster, load.accepted, index)
    assert not cluster.status(producer)["halted"]


def test_a_producer_stopped_past_its_lease_cannot_append_and_catches_up(make_cluster):
    cluster = make_cluster(["--block-time", "1"])
    wait_until(lambda: cluster.block_log().head().number >= 2, 20, "blocks")
    producer = cluster.producer()
    cluster.devnet.pause_node(producer)
    paused_at = cluster.block_log().head().number
    try:
        survivors = [i for i in range(3) if i != producer]
        successor = cluster.producer(10, among=survivors)
        wait_until(lambda: cluster.block_log().head().number >= paused_at + 3, 20,
                   "blocks of the successor")
    finally:
        cluster.devnet.resume_node(producer)
    successor_id = cluster.devnet.specs[successor].node_id
    # its view of the election may lag its own step-down by a watch event: wait for both
    wait_until(lambda: (s := cluster.status(producer))["role"] == "follower" and s["producer"] == successor_id,
               10, "the old producer stepping down and following the successor")
    cluster.wait_converged(20)
    assert cluster.producer() == successor
    log = cluster.log(producer)
    assert "no longer producing" in log
    assert "HALTED" not in log


def test_the_whole_cluster_killed_and_restarted_comes_back_at_the_same_head(make_cluster):
    cluster = make_cluster()
    hashes = [cluster.rpc(i % 3, "eth_sendRawTransaction", signed_transfer(SENDERS[0], i))
              for i in range(6)]
    wait_until(lambda: all(cluster.rpc(2, "eth_getTransactionReceipt", h) for h in hashes), 20,
               "the transfers mined")
    before = cluster.wait_converged()
    cluster.devnet.stop(signal.SIGKILL)  # every node and every etcd member
    cluster = make_cluster()  # the same directory: the members' and nodes' data
    after = cluster.wait_converged(30)
    assert (after["localHead"], after["localHash"], after["stateRoot"]) == \
        (before["localHead"], before["localHash"], before["stateRoot"])
    tx_hash = cluster.rpc(1, "eth_sendRawTransaction", signed_transfer(SENDERS[0], 6))
    wait_until(lambda: cluster.rpc(0, "eth_getTransactionReceipt", tx_hash), 20, "a new block")


def test_a_wiped_follower_resyncs_from_peers_and_etcd_to_the_same_root(make_cluster):
    cluster = make_cluster(["--etcd-keep", "3", "-v"])
    for nonce in range(8):  # one block per second: 8 blocks, etcd keeps the last 3
        cluster.rpc(nonce % 3, "eth_sendRawTransaction", signed_transfer(SENDERS[1], nonce))
        time.sleep(1.0)
    wait_until(lambda: cluster.block_log().head().number >= 6, 20, "blocks")
    producer = cluster.producer()
    follower = (producer + 1) % 3
    cluster.devnet.stop_node(follower)
    cluster.devnet.wipe_node(follower)
    oldest = wait_until(lambda: (o := cluster.block_log().oldest()) and o > 2 and o, 10,
                        "etcd compacted")
    cluster.devnet.start_node(follower)
    cluster.wait_converged(30)
    assert "from peers" in cluster.log(follower)
    assert cluster.block_log().oldest() >= oldest
    assert cluster.status(follower)["localHead"] >= 6


def test_a_tampered_block_in_etcd_halts_every_follower_and_nothing_is_applied(make_cluster):
    cluster = make_cluster()
    hashes = [cluster.rpc(0, "eth_sendRawTransaction", signed_transfer(SENDERS[2], nonce))
              for nonce in range(2)]
    wait_until(lambda: all(cluster.rpc(1, "eth_getTransactionReceipt", h) for h in hashes), 20,
               "the transfers mined")
    before = cluster.wait_converged()
    head = before["localHead"]
    forged = _forged_next_block(cluster, head)
    blocks = cluster.block_log()
    parent = blocks.head()
    forged_head = Head(head + 1, forged.hash)
    result = blocks.client.txn([compare_value(blocks.keys.head, parent.encode())],
                               [put_op(blocks.keys.block(head + 1), rlp.encode(forged)),
                                put_op(blocks.keys.head, forged_head.encode())])
    assert result.succeeded
    for index in range(3):
        status = wait_until(lambda i=index: (s := cluster.status(i))["halted"] and s, 20,
                            f"node {index} halting")
        assert status["role"] == "halted"
        assert f"block {head + 1} (0x{forged.hash.hex()}) rejected: header.state_root computed" \
            in status["halted"]
        assert (status["localHead"], status["localHash"], status["stateRoot"]) == \
            (head, before["localHash"], before["stateRoot"])
    with pytest.raises(Exception, match="halted"):
        cluster.rpc(1, "eth_sendRawTransaction", signed_transfer(SENDERS[3], 0))
    with urllib.request.urlopen(cluster.devnet.urls[1] + "/metrics", timeout=10) as response:
        assert "fee_node_cluster_halted 1.0" in response.read().decode()


def _forged_next_block(cluster: Cluster, head: int):
    """A block on top of the cluster's head whose state root is not what it executes to."""
    clock = ManualClock(time.time())
    node = Node(cluster.genesis, clock=clock)
    for number in range(1, head + 1):
        data = bytes.fromhex(cluster.rpc(0, "debug_getRawBlock", hex(number))[2:])
        node.import_block(node.decode_block(data), data)
    node.submit(bytes.fromhex(signed_transfer(SENDERS[2], 2)[2:]))
    clock.set(max(time.time(), node.chain.get_canonical_head().timestamp + 1))
    honest = node.produce()
    return honest.copy(header=honest.header.copy(state_root=b"\x11" * 32))
