"""Node block production: automine, interval blocks, strictly increasing timestamps."""
import pytest

from fee_plugin.node import Node, TransactionRejected

from .chain_helpers import ETHER, GENESIS_TIME, USER_KEYS, VAULT, calldata, make_genesis, sign

ALICE, BOB = USER_KEYS[:2]


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def test_automine_makes_one_block_per_transaction_with_increasing_timestamps():
    clock = Clock(GENESIS_TIME - 100)  # a producer clock behind the chain still moves forward
    node = Node(make_genesis(consumption="upfront"), clock=clock)
    for key in (ALICE, BOB):
        node.send_transaction(sign(node.chain, key, VAULT, value=ETHER, data=calldata("deposit"), gas=300_000))
    head = node.chain.get_canonical_head()
    assert head.block_number == 2
    first = node.chain.get_canonical_block_header_by_number(1)
    assert (first.timestamp, head.timestamp) == (GENESIS_TIME + 1, GENESIS_TIME + 2)


def test_interval_mode_seals_pending_transactions_together():
    clock = Clock(GENESIS_TIME + 50)
    node = Node(make_genesis(consumption="upfront"), clock=clock, block_time=1.0)
    for key in (ALICE, BOB):
        node.send_transaction(sign(node.chain, key, VAULT, value=ETHER, data=calldata("deposit"), gas=300_000))
    assert node.chain.get_canonical_head().block_number == 0
    assert len(node.pending_transactions) == 2
    block = node.mine_pending()
    assert block.number == 1 and len(block.transactions) == 2
    assert block.header.timestamp == GENESIS_TIME + 50
    assert node.mine_pending() is None and node.pending_transactions == []


def test_rejected_transaction_leaves_the_node_unchanged():
    node = Node(make_genesis(), clock=Clock(GENESIS_TIME + 5))
    head = node.chain.get_canonical_head()
    with pytest.raises(TransactionRejected, match="no fee account"):
        node.send_transaction(sign(node.chain, ALICE, b"\x42" * 20, value=1, gas=21_000))
    assert node.chain.get_canonical_head() == head


def test_garbage_bytes_are_not_a_transaction():
    node = Node(make_genesis(), clock=Clock(GENESIS_TIME + 5))
    with pytest.raises(TransactionRejected, match="cannot decode"):
        node.decode_transaction(b"\x02\xff\x00")
