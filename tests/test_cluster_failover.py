"""A three-node cluster (three etcd members, three `fee-node run --etcd` processes) under
failures: kill -9 of the producer under load (checked with it still down, then restarted),
SIGSTOP past its lease (from outside, and mid-commit through the `before-append` failpoint so
that etcd's fence is what refuses the append), the whole cluster killed and restarted, a
wiped follower, a tampered block written straight into etcd."""
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
    MinedScan,
    cluster_genesis,
    measure_failover,
    senders,
    signed_transfer,
)
from .support.etcd import require_etcd, wait_until

pytestmark = pytest.mark.slow

SENDERS = senders(12)
LOAD_CLIENTS = 12  # four per node
LOAD_RATE_PER_CLIENT = 8.0  # transfers per second: 96 offered, about a quarter of what the cluster mines here


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


def _assert_mined_once(counts: collections.Counter, accepted: set[str], where: str) -> None:
    twice = [h for h, n in counts.items() if n > 1]
    assert not twice, f"{where}: {len(twice)} transactions mined twice: {twice[:3]}"
    missing = accepted - set(counts)
    assert not missing, f"{where}: {len(missing)} accepted transactions never mined: {sorted(missing)[:3]}"


def _own_clients_pending(cluster: Cluster, load: Load, index: int) -> bool:
    """Node `index`'s pool holds a transaction of a client that sends to it (not mined yet)."""
    content = cluster.rpc(index, "txpool_content")
    holders = {sender.lower() for part in content.values() for sender in part}
    return any(a.address.lower() in holders for n, a in enumerate(load.accounts) if load.home(n) == index)


def test_kill_9_of_the_producer_under_load_loses_nothing(make_cluster):
    """Clients send to all three nodes; the producer is killed (-9) while every node's pool holds
    transactions of its own clients. A survivor is elected within 3 s and commits within 5 s,
    the survivors' clients go on, and with the killed node still down every transaction a
    survivor returned a hash for is mined exactly once in both survivors' chains, including
    those the surviving follower had accepted (and forwarded) before the kill, which only a
    re-forward to the new producer can have mined. Restarted, the killed node reaches the same
    head and state root, and what only it had accepted (its journal) is mined exactly once."""
    cluster = make_cluster()
    scan = MinedScan(cluster)
    load = Load(cluster, SENDERS[:LOAD_CLIENTS], rate_per_client=LOAD_RATE_PER_CLIENT).start()
    try:
        wait_until(lambda: cluster.block_log().head().number >= 3 and load.count() >= 100, 30,
                   "blocks under load")
        producer = cluster.producer()
        survivors = [i for i in range(3) if i != producer]
        wait_until(lambda: all(_own_clients_pending(cluster, load, i) for i in range(3)), 20,
                   "every node holding its own clients' unmined transactions", 0.02)
        load.node_down(producer)  # its clients stop at their first failed send
        committed = cluster.block_log().head()
        killed_at = time.monotonic()
        cluster.devnet.kill_node(producer)
        failover = measure_failover(cluster, producer)
        assert failover["elected_seconds"] <= 3.0, failover
        assert failover["first_block_seconds"] <= 5.0, failover
        elected_revision = cluster.producer_revision()
        wait_until(lambda: all(len(load.returned_by([i], after=killed_at)) >= 60 for i in survivors), 30,
                   "the load going on at both survivors")
    finally:
        load.stop()
    new_producer = failover["producer"]
    assert new_producer in survivors and cluster.producer() == new_producer
    (follower,) = [i for i in survivors if i != new_producer]

    # The killed node still down: the survivors mined every hash they returned, once each.
    from_survivors = load.returned_by(survivors)
    wait_until(lambda: from_survivors <= scan.mined(new_producer), 60,
               "every transaction a survivor returned mined", 0.2)
    cluster.wait_converged(60, among=survivors)
    assert not cluster.devnet.is_running(producer)
    for index in survivors:
        _assert_mined_once(scan.counts(index), from_survivors, f"node {index} with node {producer} down")
    block = cluster.rpc(follower, "eth_getBlockByNumber", hex(committed.number), False)
    assert block["hash"] == "0x" + committed.hash.hex(), "a committed block was lost"
    first_new = cluster.first_block_after(elected_revision)
    assert first_new is not None and first_new > committed.number
    reforwarded = load.returned_by([follower], before=killed_at) & scan.mined_from(follower, first_new)
    assert reforwarded, "no transaction the follower accepted before the kill was mined by the new producer"
    assert cluster.status(follower)["forwarded"] > 0
    mined_while_down = scan.mined(new_producer)

    # The killed node comes back: same chain, and its journal's transactions mined once.
    cluster.devnet.start_node(producer)
    from_killed = load.returned_by([producer])
    only_in_journal = from_killed - mined_while_down
    wait_until(lambda: from_killed <= scan.mined(new_producer), 60,
               "every transaction the killed node returned mined", 0.2)
    head = cluster.wait_converged(60)
    assert head["localHead"] > committed.number
    for index in range(3):  # each node's chain, not only the head, is the same
        _assert_mined_once(scan.counts(index), set(load.accepted), f"node {index}")
    # mined only after it came back: what it alone held, resent from its journal
    assert only_in_journal, "the killed node held none of its clients' transactions alone"
    assert not cluster.status(producer)["halted"]
    before_kill = [at for _, _, at in load.records if at < killed_at]
    print(f"load: {len(before_kill) / (killed_at - min(before_kill)):.0f} tx/s accepted before the kill; "
          f"{load.count()} accepted ({len(load.stopped_clients)} clients stopped with node "
          f"{producer}); re-forwarded after the kill: {len(reforwarded)}; only in the killed "
          f"node's journal: {len(only_in_journal)}; failover: {failover}")


def _not_in_any_chain(cluster: Cluster, number: int, block_hash: str) -> None:
    """Block `block_hash` (number `number`) is in no node's chain and not in etcd."""
    for index in range(cluster.count):
        assert cluster.rpc(index, "eth_getBlockByHash", block_hash, False) is None, index
        assert cluster.rpc(index, "eth_getBlockByNumber", hex(number), False)["hash"] != block_hash, index
    logged = cluster.block_log().get(number)
    assert logged is not None and "0x" + logged.identity()[2].hex() != block_hash


def test_a_producer_stopped_past_its_lease_mid_commit_is_refused_by_etcds_fence(
        make_cluster, tmp_path, monkeypatch):
    """The producer stops (SIGSTOP, by the `before-append` failpoint) after its own lease check
    passed and before its append reached etcd; a successor is elected and commits blocks; on
    SIGCONT the append goes out on the old fence and etcd's compare refuses it ("fenced"). The
    refused block is in nobody's chain, the old producer steps down and catches up."""
    trigger = tmp_path / "stop-before-append"
    monkeypatch.setenv("FEE_FAILPOINTS", f"before-append=sigstop-if:{trigger}")
    cluster = make_cluster(["--block-time", "1"])
    wait_until(lambda: cluster.block_log().head().number >= 2, 20, "blocks")
    producer = cluster.producer()
    trigger.touch()  # the next append, the producer's, stops it
    wait_until(lambda: _process_state(cluster.devnet.pid(producer)) == "T", 10,
               "the producer stopping itself before an append", 0.02)
    stopped_at = cluster.block_log().head().number
    try:
        survivors = [i for i in range(3) if i != producer]
        successor = cluster.producer(10, among=survivors)
        wait_until(lambda: cluster.block_log().head().number >= stopped_at + 3, 20,
                   "blocks of the successor")
    finally:
        (tmp_path / "stop-before-append.continued").touch()  # the failpoint lets it go on
        cluster.devnet.resume_node(producer)
    status = wait_until(lambda: (s := cluster.status(producer))["lastFailedCommit"] and s, 10,
                        "the resumed producer's append answered")
    refused = status["lastFailedCommit"]
    assert status["commitsFailed"] == {"fenced": 1}, status
    assert refused["reason"] == "fenced" and refused["number"] == stopped_at + 1, status
    log = cluster.log(producer)
    assert f"block {refused['number']} ({refused['hash']}) not committed: etcd refused the append: fenced" in log
    _assert_steps_down_and_catches_up(cluster, producer, successor)
    _not_in_any_chain(cluster, refused["number"], refused["hash"])
    with urllib.request.urlopen(cluster.devnet.urls[producer] + "/metrics", timeout=10) as response:
        assert 'fee_node_cluster_commits_failed_total{reason="fenced"} 1.0' in response.read().decode()


def test_a_producer_stopped_past_its_lease_cannot_append_and_catches_up(make_cluster):
    """SIGSTOP from outside, wherever the producer is: on SIGCONT nothing it built is
    committed (its lease check or etcd's fence refuses it), it steps down and catches up."""
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
    _assert_steps_down_and_catches_up(cluster, producer, successor)
    status = cluster.status(producer)
    assert set(status["commitsFailed"]) <= {"lease", "fenced"}, status
    if status["lastFailedCommit"] is not None:  # it built a block after waking (timing)
        failed = status["lastFailedCommit"]
        assert failed["number"] > paused_at
        _not_in_any_chain(cluster, failed["number"], failed["hash"])
    assert "no longer producing" in cluster.log(producer)


def _assert_steps_down_and_catches_up(cluster: Cluster, producer: int, successor: int) -> None:
    successor_id = cluster.devnet.specs[successor].node_id
    # its view of the election may lag its own step-down by a watch event: wait for both
    wait_until(lambda: (s := cluster.status(producer))["role"] == "follower" and s["producer"] == successor_id,
               10, "the old producer stepping down and following the successor")
    cluster.wait_converged(20)
    assert cluster.producer() == successor
    assert "HALTED" not in cluster.log(producer)


def _process_state(pid: int) -> str:
    """The state letter of /proc/<pid>/stat (R, S, T for stopped, ...)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


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
