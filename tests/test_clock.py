"""The producer's clock rule: no block is ever stamped ahead of the producer's wall clock."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fee_plugin.node.clock import seal_timestamp, seconds_until_sealable

from .support.chain import USER_KEYS
from .support.nodes import clocked_node, deposit, transfer

KEYS = USER_KEYS[:4]


def test_a_block_waits_until_the_wall_clock_passes_its_parents_second():
    assert seal_timestamp(100, 100.999) is None
    assert seal_timestamp(100, 101.0) == 101
    assert seal_timestamp(100, 250.7) == 250
    assert seconds_until_sealable(100, 100.25) == 0.75
    assert seconds_until_sealable(100, 103.0) == 0.0


def test_no_block_while_the_clock_is_behind_the_head():
    node, clock = clocked_node()
    deposit(node, clock, KEYS[0])
    node.send_transaction(transfer(node, KEYS[0], nonce=1))
    head = node.chain.get_canonical_head()
    assert node.produce() is None  # same second as the head: not sealable yet
    clock.advance(0.999)
    assert node.produce() is None
    clock.advance(0.001)
    assert node.produce().header.timestamp == head.timestamp + 1


@pytest.mark.slow
@settings(max_examples=25)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40), st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0, 2.5, 60.0])),
                min_size=5, max_size=60))
def test_under_any_load_the_head_never_runs_ahead_of_the_clock(steps):
    """Bursts of transfers from several senders, arbitrary clock steps, production after
    each step: every block is stamped at most `now`, one per second at most, and every
    accepted transaction is eventually mined."""
    node, clock = clocked_node()
    for key in KEYS:
        deposit(node, clock, key)
    nonces = {key: 1 for key in KEYS}
    accepted = set()
    for sender, burst, step in steps:
        key = KEYS[sender]
        for _ in range(burst):
            accepted.add(node.send_transaction(transfer(node, key, nonce=nonces[key])))
            nonces[key] += 1
        clock.advance(step)
        block = node.produce()
        head = node.chain.get_canonical_head()
        assert head.timestamp <= clock.now()
        if block is not None:
            parent = node.chain.get_block_header_by_hash(head.parent_hash)
            assert head.timestamp >= parent.timestamp + 1
    while node.pool.stats() != (0, 0):
        clock.advance(1)
        node.produce()
        assert node.chain.get_canonical_head().timestamp <= clock.now()
    mined = set()
    for number in range(1, node.chain.get_canonical_head().block_number + 1):
        mined.update(tx.hash for tx in node.chain.get_canonical_block_by_number(number).transactions)
    assert accepted <= mined
