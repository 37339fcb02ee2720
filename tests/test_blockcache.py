"""The RPC's recent-block cache stays bounded in blocks and in transactions."""
from types import SimpleNamespace

from fee_plugin.node.blockcache import BlockCache


def block(n: int, txs: int):
    return SimpleNamespace(hash=n.to_bytes(32, "big"), transactions=(None,) * txs)


def test_evicts_the_oldest_beyond_the_block_count():
    cache = BlockCache(size=3, max_transactions=10**6)
    for n in range(5):
        cache.put(block(n, 1), ())
    assert [cache.get(block(n, 1).hash) is not None for n in range(5)] == [False, False, True, True, True]


def test_evicts_the_oldest_beyond_the_transaction_count_but_keeps_the_newest_block():
    cache = BlockCache(size=128, max_transactions=1000)
    for n in range(4):
        cache.put(block(n, 400), ())  # 1,600 transactions offered: two blocks fit
    assert [cache.get(block(n, 400).hash) is not None for n in range(4)] == [False, False, True, True]
    cache.put(block(9, 5000), ())  # bigger than the bound on its own: kept alone
    assert cache.get(block(9, 5000).hash) is not None and cache.get(block(3, 400).hash) is None


def test_putting_a_block_again_counts_it_once():
    cache = BlockCache(size=128, max_transactions=1000)
    for _ in range(5):
        cache.put(block(1, 400), ())
    cache.put(block(2, 400), ())
    assert cache.get(block(1, 400).hash) is not None and cache.get(block(2, 400).hash) is not None
