"""The block log on real etcd members: fenced appends, ordered reads and watches, bounded history."""
from __future__ import annotations

import signal
import threading

import pytest

from fee_plugin.node.cluster import (
    AppendStatus,
    BlockLog,
    BlockLogCorrupt,
    BlocksPruned,
    BlockTooLarge,
    Election,
    EtcdClient,
    EtcdCompacted,
    Head,
    Session,
    block_identity,
)
from fee_plugin.node.cluster.blocklog import TXN_OVERHEAD_BYTES
from tests.support.blocks import make_block, make_chain
from tests.support.etcd import leader_member, wait_until


@pytest.fixture
def producer(etcd_devnet, chain_keys):
    session = Session(EtcdClient(etcd_devnet.client_urls)).start()
    election = Election(session, chain_keys.election, "producer", "http://p:8545").start()
    assert election.wait_until_leader(5)
    yield election
    election.close()
    session.close()


def append_chain(log, chain, fence):
    for number, parent, block_hash, data in chain:
        result = log.append(number, parent, block_hash, data, fence)
        assert result.committed, (number, result)


def test_append_commits_in_order_and_reads_back(etcd_devnet, chain_keys, producer):
    log = BlockLog(EtcdClient(etcd_devnet.client_urls), chain_keys)
    assert log.head() == Head(0, chain_keys.genesis_hash)
    assert log.oldest() is None
    chain = make_chain(chain_keys.genesis_hash, 5)
    append_chain(log, chain, producer.fence)
    assert log.head() == Head(5, chain[-1][2])
    assert log.get(3).data == chain[2][3]
    assert log.get(3).identity() == (3, chain[1][2], chain[2][2])
    assert log.get(6) is None
    assert [b.number for b in log.get_range(2, 9)] == [2, 3, 4, 5]
    assert [b.data for b in log.get_range(1, 5)] == [c[3] for c in chain]
    assert log.oldest() == 1


def test_get_range_is_bounded(etcd_devnet, chain_keys):
    log = BlockLog(EtcdClient(etcd_devnet.client_urls), chain_keys, range_blocks_max=10)
    with pytest.raises(ValueError, match="range 1..11 is 11 blocks"):
        log.get_range(1, 11)


def test_append_on_a_stale_parent_reports_head_moved(etcd_devnet, chain_keys, producer):
    log = BlockLog(EtcdClient(etcd_devnet.client_urls), chain_keys)
    append_chain(log, make_chain(chain_keys.genesis_hash, 2), producer.fence)
    rival, rival_hash = make_block(2, log.get(1).identity()[2], payload=b"rival")
    result = log.append(2, log.get(1).identity()[2], rival_hash, rival, producer.fence)
    assert result.status is AppendStatus.HEAD_MOVED
    assert result.head == log.head() != Head(2, rival_hash)


def test_append_again_after_a_lost_reply_reports_committed_once(etcd_devnet, chain_keys,
                                                               producer):
    log = BlockLog(EtcdClient(etcd_devnet.client_urls), chain_keys)
    (number, parent, block_hash, data), = make_chain(chain_keys.genesis_hash, 1)
    first = log.append(number, parent, block_hash, data, producer.fence)
    again = log.append(number, parent, block_hash, data, producer.fence)
    assert first.committed and again.committed
    assert again.revision == first.revision
    assert log.head() == Head(1, block_hash)


def test_deposed_producer_is_fenced_even_where_the_head_compare_passes(etcd_devnet, chain_keys):
    sessions = [Session(EtcdClient(etcd_devnet.client_urls)).start() for _ in range(2)]
    old = Election(sessions[0], chain_keys.election, "old", "http://old:8545").start()
    assert old.wait_until_leader(5)
    new = Election(sessions[1], chain_keys.election, "new", "http://new:8545").start()
    try:
        assert new.wait_for(lambda e: e.leader_id == "old", 5)
        stale_fence = old.fence
        log = BlockLog(sessions[0].client, chain_keys)
        append_chain(log, make_chain(chain_keys.genesis_hash, 3), stale_fence)
        sessions[0].client.lease_revoke(stale_fence.lease_id)  # the old producer's lease ends
        assert new.wait_until_leader(2)
        head = log.head()
        data, block_hash = make_block(4, head.hash)
        result = log.append(4, head.hash, block_hash, data, stale_fence)
        assert result.status is AppendStatus.FENCED
        assert log.head() == head
        assert log.append(4, head.hash, block_hash, data, new.fence).committed
    finally:
        for election in (old, new):
            election.close()
        for session in sessions:
            session.close()


def test_oversized_block_is_refused_before_etcd_and_the_cap_fits(etcd_devnet, chain_keys,
                                                                producer):
    log = BlockLog(EtcdClient(etcd_devnet.client_urls), chain_keys)
    padding = log.max_block_bytes
    for _ in range(3):  # RLP length prefixes grow with the payload: converge on the cap
        at_cap, at_cap_hash = make_block(1, chain_keys.genesis_hash, payload=b"x" * padding)
        padding -= len(at_cap) - log.max_block_bytes
    assert len(at_cap) == log.max_block_bytes == 1_572_864 - TXN_OVERHEAD_BYTES
    over, over_hash = make_block(1, chain_keys.genesis_hash, payload=b"x" * (padding + 1))
    with pytest.raises(BlockTooLarge, match=r"block 1 is 1571841 bytes > 1571840 bytes"):
        log.append(1, chain_keys.genesis_hash, over_hash, over, producer.fence)
    assert log.head().number == 0
    assert log.append(1, chain_keys.genesis_hash, at_cap_hash, at_cap, producer.fence).committed
    assert log.get(1).data == at_cap


def test_block_bytes_must_match_the_stated_number_parent_and_hash(etcd_devnet, chain_keys,
                                                                producer):
    log = BlockLog(EtcdClient(etcd_devnet.client_urls), chain_keys)
    data, block_hash = make_block(2, chain_keys.genesis_hash)
    with pytest.raises(ValueError, match="block bytes say"):
        log.append(1, chain_keys.genesis_hash, block_hash, data, producer.fence)
    data, block_hash = make_block(1, b"\x01" * 32)
    with pytest.raises(ValueError, match="is not this log's genesis"):
        log.append(1, b"\x01" * 32, block_hash, data, producer.fence)
    with pytest.raises(ValueError, match="not RLP|single RLP list"):
        block_identity(b"\xff\x00")


def test_keep_prunes_old_blocks_and_oldest_says_so(etcd_devnet, chain_keys, producer):
    client = EtcdClient(etcd_devnet.client_urls)
    log = BlockLog(client, chain_keys)
    append_chain(log, make_chain(chain_keys.genesis_hash, 20), producer.fence)
    kept = log.keep(5)
    assert (kept.oldest, kept.deleted) == (16, 15)
    assert log.oldest() == 16
    assert log.get(15) is None and log.get(16) is not None
    assert [b.number for b in log.get_range(11, 20)] == [16, 17, 18, 19, 20]
    assert log.get_range(10, 12) == []
    assert log.keep(5).deleted == 0
    with pytest.raises(BlocksPruned, match="block 3 is no longer in etcd .oldest kept: 16."):
        next(iter(log.watch(3)))
    narrow = BlockLog(client, chain_keys, range_blocks_max=4)  # the gap is wider than a read
    with pytest.raises(BlocksPruned, match="block 3 is no longer in etcd .oldest kept: 16."):
        next(iter(narrow.watch(3)))
    watch = log.watch(16)
    numbers = []
    for block in watch:
        numbers.append(block.number)
        if block.number == 20:
            watch.close()
    assert numbers == [16, 17, 18, 19, 20]
    with pytest.raises(EtcdCompacted):  # etcd's history before the delete is gone too
        client.range(chain_keys.block(2), revision=log.get(16).revision)


def collect(watch, into, until_number):
    def run():
        for block in watch:
            into.append(block)
            if block.number == until_number:
                return
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_watch_delivers_every_block_once_in_order_across_kill_of_its_member(fresh_devnet,
                                                                          chain_keys):
    """The watcher's member (made etcd's leader too, the worst case) is killed mid-stream."""
    total = 60
    leader = leader_member(fresh_devnet)
    urls = fresh_devnet.client_urls
    watch_urls = [urls[leader]] + [u for i, u in enumerate(urls) if i != leader]
    session = Session(EtcdClient(urls)).start()
    election = Election(session, chain_keys.election, "p", "http://p:8545").start()
    try:
        assert election.wait_until_leader(5)
        log = BlockLog(EtcdClient(urls), chain_keys)
        watch = BlockLog(EtcdClient(watch_urls), chain_keys).watch(1)
        got = []
        reader = collect(watch, got, total)
        chain = make_chain(chain_keys.genesis_hash, total)
        append_chain(log, chain[:20], election.fence)
        wait_until(lambda: len(got) == 20 and watch.endpoint, 5, "the first 20 blocks watched")
        assert watch.endpoint == urls[leader]
        fresh_devnet.stop_member(leader, signal.SIGKILL)
        for number, parent, block_hash, data in chain[20:]:
            assert election.wait_until_leader(5)
            result = log.append(number, parent, block_hash, data, election.fence)
            assert result.committed, (number, result)
        reader.join(10)
        assert [b.number for b in got] == list(range(1, total + 1))
        assert [b.data for b in got] == [c[3] for c in chain]
        assert watch.resumptions >= 1
    finally:
        election.close()
        session.close()


@pytest.mark.slow
def test_full_restart_of_every_member_keeps_the_chain(fresh_devnet, chain_keys):
    urls = fresh_devnet.client_urls
    session = Session(EtcdClient(urls)).start()
    election = Election(session, chain_keys.election, "p", "http://p:8545").start()
    assert election.wait_until_leader(5)
    log = BlockLog(EtcdClient(urls), chain_keys)
    chain = make_chain(chain_keys.genesis_hash, 10)
    append_chain(log, chain, election.fence)
    election.close(resign=False)
    session.close(revoke=False)
    for index in range(3):
        fresh_devnet.stop_member(index, signal.SIGKILL)
    fresh_devnet.start()
    assert log.head() == Head(10, chain[-1][2])
    assert [b.data for b in log.get_range(1, 10)] == [c[3] for c in chain]
    session = Session(EtcdClient(urls)).start()
    election = Election(session, chain_keys.election, "p2", "http://p2:8545").start()
    try:
        assert election.wait_until_leader(5)
        (number, parent, block_hash, data), = make_chain(chain_keys.genesis_hash, 1, 11,
                                                         chain[-1][2])
        assert log.append(number, parent, block_hash, data, election.fence).committed
    finally:
        election.close()
        session.close()


def test_watch_delivers_only_appended_blocks_not_a_stray_block_key(etcd_devnet, chain_keys,
                                                                  producer):
    client = EtcdClient(etcd_devnet.client_urls)
    log = BlockLog(client, chain_keys)
    chain = make_chain(chain_keys.genesis_hash, 3)
    append_chain(log, chain[:1], producer.fence)
    watch = log.watch(1)
    got = []
    reader = collect(watch, got, 3)
    wait_until(lambda: len(got) == 1 and watch.endpoint, 5, "block 1 watched")
    stray, _ = make_block(2, chain[0][2], payload=b"not appended")
    client.put(chain_keys.block(2), stray)  # a write that is not a fenced append
    append_chain(log, chain[1:], producer.fence)
    reader.join(5)
    assert [b.data for b in got] == [c[3] for c in chain]


def test_watch_halts_on_a_rewritten_block_below_the_head(etcd_devnet, chain_keys, producer):
    client = EtcdClient(etcd_devnet.client_urls)
    log = BlockLog(client, chain_keys)
    chain = make_chain(chain_keys.genesis_hash, 4)
    append_chain(log, chain, producer.fence)
    forged, _ = make_block(3, b"\x0f" * 32, payload=b"forged")
    client.put(chain_keys.block(3), forged)
    watch = log.watch(1)
    numbers = []
    with pytest.raises(BlockLogCorrupt, match="block 3's parent hash 0x0f0f.* is not block 2's"):
        for block in watch:
            numbers.append(block.number)
    assert numbers == [1, 2]
    with pytest.raises(BlockLogCorrupt, match="block 1's parent hash .* is not block 0's"):
        next(iter(log.watch(1, parent_hash=b"\x01" * 32)))
