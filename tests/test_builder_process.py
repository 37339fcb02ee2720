"""The builder in its own process (node/builder_process.py) against the builder in a thread.

The thread builder is the oracle: the same pool must give the same blocks, byte for byte,
and the per-transaction design's replay (test_builder_oracle) must accept them. Then the
ways a second process can go wrong: it dies between blocks, in the middle of a block, or
after sending a block the node then writes; the commit hook refuses a block; the node
writes blocks the child did not build (imports). Each time the next blocks must be exactly
the thread builder's and no accepted transaction may be lost. (Each test starts a child
interpreter, ~1 s: one stays in the fast loop.)
"""
import os
import signal

import pytest
import rlp

import fee_plugin.node.builder_process as builder_process
from fee_plugin.node import ManualClock, Node
from fee_plugin.node.builder_process import BuilderProcessFailed, ProcessBlockBuilder

from .support.chain import ETHER, GENESIS_TIME, USER_KEYS, VAULT, calldata, make_genesis, sign
from .support.nodes import transfer
from .test_builder_oracle import GENESES, oracle_genesis, run

SENDERS = USER_KEYS[:4]


@pytest.mark.slow
def test_the_process_builder_builds_the_thread_builders_blocks():
    genesis = oracle_genesis(**GENESES["upfront"])
    stats, by_process = run(genesis, builder_class=ProcessBlockBuilder)  # replayed by the oracle
    _, by_thread = run(genesis)
    assert len(by_process) == len(by_thread) >= 16
    assert [b.encoded for b in by_process] == [b.encoded for b in by_thread]
    assert [[r.encode() for r in b.receipts] for b in by_process] == \
        [[r.encode() for r in b.receipts] for b in by_thread]
    assert [b.invalid for b in by_process] == [b.invalid for b in by_thread]
    assert any(b.invalid for b in by_process) and stats["lots"] >= 40 and stats["created"] >= 3, stats


class Twins:
    """A thread-builder node and a process-builder node fed the same transactions."""

    def __init__(self):
        genesis = make_genesis(consumption="upfront")
        self.clock = ManualClock(GENESIS_TIME + 10)
        self.thread = Node(genesis, clock=self.clock)
        self.process = Node(genesis, clock=self.clock, builder_class=ProcessBlockBuilder)
        self.nonces = {}
        for key in SENDERS:  # each sender's first deposit opens its fee account
            self.send(key, VAULT, value=ETHER, data=calldata("deposit"), gas=300_000)
        self.produce()

    def send(self, key, to=b"\x42" * 20, **kw):
        nonce = self.nonces.get(key, 0)
        self.nonces[key] = nonce + 1
        kw.setdefault("gas", 21_000)
        tx = sign(self.thread.chain, key, to, nonce=nonce, **kw)
        assert self.thread.send_transaction(tx) == self.process.send_transaction(tx)
        return tx.hash

    def transfers(self, count_each: int, fresh: int = 0):
        """Transfers from every sender (to `fresh` never-seen recipients as well)."""
        hashes = [self.send(key, value=1) for key in SENDERS for _ in range(count_each)]
        hashes += [self.send(SENDERS[0], to=bytes([0xA0 + i]) * 20, value=1) for i in range(fresh)]
        return hashes

    def produce(self):
        self.clock.advance(1)
        mine = self.thread.produce()
        theirs = self.process.produce()
        assert theirs is not None and mine is not None
        assert theirs.hash == mine.hash and theirs.header.state_root == mine.header.state_root
        return theirs

    def child(self):
        return self.process.builder._process

    def kill_child(self):
        child = self.child()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)

    def close(self):
        self.thread.close()
        self.process.close()


@pytest.fixture
def twins():
    pair = Twins()
    yield pair
    pair.close()


def test_a_child_killed_between_blocks_is_replaced(twins):
    twins.transfers(3)
    twins.produce()
    twins.kill_child()
    sent = twins.transfers(3, fresh=2)
    block = twins.produce()
    assert {tx.hash for tx in block.transactions} == set(sent)
    assert twins.process.builder.restarts == 1


@pytest.mark.slow
def test_a_child_killed_mid_block_writes_nothing_and_loses_nothing(twins, monkeypatch):
    twins.transfers(2)
    twins.produce()
    sent = twins.transfers(3, fresh=3)  # fresh recipients: the child must read them from us
    builder = twins.process.builder
    head = builder.head()
    committed = twins.process.db.committed

    def dying_read(key):
        twins.kill_child()  # the child is waiting for this answer
        return committed(key)

    monkeypatch.setattr(twins.process.db, "committed", dying_read)
    twins.clock.advance(1)
    with pytest.raises(BuilderProcessFailed):
        twins.process.produce()
    monkeypatch.undo()
    assert builder.head() == head and twins.process.chain.get_canonical_head() == head
    assert all(twins.process.pool.get(tx_hash) is not None for tx_hash in sent)
    mine = twins.thread.produce()
    theirs = twins.process.produce()  # same second: the block the dead child did not finish
    assert theirs.hash == mine.hash and {tx.hash for tx in theirs.transactions} == set(sent)
    assert builder.restarts == 1
    twins.transfers(2)
    twins.produce()


@pytest.mark.slow
def test_a_child_killed_after_sending_its_block_loses_only_its_cache(twins):
    twins.transfers(2)

    def hook(built):
        twins.kill_child()  # it waits for the verdict; the node writes the block regardless
        return True

    twins.process.commit_hook = hook
    twins.produce()
    twins.process.commit_hook = None
    twins.transfers(2, fresh=1)
    twins.produce()
    assert twins.process.builder.restarts == 1


@pytest.mark.slow
def test_a_refused_block_leaves_the_childs_cache_as_the_disk(twins):
    twins.transfers(2)
    twins.produce()
    sent = twins.transfers(3)
    head = twins.process.builder.head()
    twins.process.commit_hook = lambda built: False
    twins.clock.advance(1)
    assert twins.process.produce() is None  # refused: nothing written
    assert twins.process.builder.head() == head
    twins.process.commit_hook = None
    mine, theirs = twins.thread.produce(), twins.process.produce()
    assert theirs.hash == mine.hash and {tx.hash for tx in theirs.transactions} == set(sent)
    twins.transfers(2)
    twins.produce()
    assert twins.process.builder.restarts == 0


@pytest.mark.slow
@pytest.mark.parametrize("forget_limit", [builder_process.FORGET_KEYS_MAX, 1])
def test_blocks_written_by_the_node_reach_the_childs_cache(twins, monkeypatch, forget_limit):
    """The child built blocks 1-2 (its cache holds their state); blocks 3-4 are imported
    (a follower's path); block 5 must build on block 4's state, keys forgotten one by one
    or (past the limit) the whole cache dropped."""
    monkeypatch.setattr(builder_process, "FORGET_KEYS_MAX", forget_limit)
    twins.transfers(2)
    twins.produce()
    for _ in range(2):  # only the thread node sees these transactions: it produces, we import
        for key in SENDERS:
            nonce = twins.nonces[key]
            twins.nonces[key] = nonce + 1
            twins.thread.send_transaction(transfer(twins.thread, key, nonce))
        twins.clock.advance(1)
        block = twins.thread.produce()
        twins.process.import_block(block, rlp.encode(block))
    assert twins.process.builder.head() == twins.thread.builder.head()
    twins.transfers(3, fresh=1)
    twins.produce()
    assert twins.process.builder.restarts == 0


@pytest.mark.slow
def test_close_stops_the_child(twins):
    child = twins.child()
    twins.process.close()
    assert child.wait(10) == 0  # it stopped when asked, not killed


@pytest.mark.slow
def test_negative_control_a_child_that_missed_an_import_refuses_to_build(twins, monkeypatch):
    """Without the forgotten keys the child's cached head is stale: it must say so (and drop
    its cache) instead of building on the wrong parent."""
    monkeypatch.setattr(twins.process.builder, "_parent_wrote", lambda puts, deletes: None)
    twins.process.db.on_write = twins.process.builder._parent_wrote
    twins.transfers(1)
    twins.produce()
    twins.thread.send_transaction(transfer(twins.thread, SENDERS[0], twins.nonces[SENDERS[0]]))
    twins.nonces[SENDERS[0]] += 1
    twins.clock.advance(1)
    block = twins.thread.produce()
    twins.process.import_block(block, rlp.encode(block))
    twins.transfers(1)
    twins.clock.advance(1)
    with pytest.raises(BuilderProcessFailed, match="OutOfStep"):
        twins.process.produce()
    mine, theirs = twins.thread.produce(), twins.process.produce()  # its cache was dropped
    assert theirs.hash == mine.hash
