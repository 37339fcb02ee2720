"""History from peers (PeerSync) and the follower's rules (Follower), without etcd: peers and
the block log are stand-ins serving real blocks of a real chain."""
from __future__ import annotations

import threading
import time

import pytest
import rlp

from fee_plugin.node import ManualClock, Node
from fee_plugin.node.cluster.blocklog import LoggedBlock
from fee_plugin.node.cluster.follower import FUTURE_BLOCK_SECONDS, Follower
from fee_plugin.node.cluster.peer import PeerError
from fee_plugin.node.cluster.sync import PeerSync, Pin, SyncFailed

from .support.chain import (
    ETHER,
    GENESIS_TIME,
    USER_KEYS,
    VAULT,
    calldata,
    make_genesis,
    sign,
)
from .support.etcd import wait_until
from .support.nodes import transfer

GENESIS = make_genesis(consumption="upfront")
SINK = b"\x42" * 20


def chain_of(count: int, sender: int = 0, start: float = GENESIS_TIME + 10) -> Node:
    """A node whose chain has `count` blocks: a deposit, then one transfer per block."""
    clock = ManualClock(start)
    node = Node(GENESIS, clock=clock)
    key = USER_KEYS[sender]
    node.send_transaction(sign(node.chain, key, VAULT, value=ETHER, data=calldata("deposit"),
                               gas=300_000, nonce=0))
    for nonce in range(1, count + 1):
        clock.advance(1)
        assert node.produce() is not None
        if nonce < count:
            node.send_transaction(transfer(node, key, nonce, to=SINK))
    return node


def raw_block(node: Node, number: int) -> bytes:
    return rlp.encode(node.chain.get_canonical_block_by_number(number))


class ChainPeer:
    """Answers debug_getRawHeader / debug_getRawBlock batches from a node's chain, as PeerRpc."""

    def __init__(self, node: Node, url: str, swap_body_of: int | None = None,
                 body_source: Node | None = None) -> None:
        self.node, self.url = node, url
        self.swap_body_of, self.body_source = swap_body_of, body_source
        self.closed = False

    def batch(self, method, params_list):
        replies = []
        for (number_hex,) in params_list:
            number = int(number_hex, 16)
            if number > self.node.chain.get_canonical_head().block_number:
                replies.append({"error": {"message": f"block {number} not found"}})
                continue
            block = self.node.chain.get_canonical_block_by_number(number)
            if method == "debug_getRawHeader":
                data = rlp.encode(block.header)
            elif number == self.swap_body_of:
                other = self.body_source.chain.get_canonical_block_by_number(number)
                data = rlp.encode(block.copy(transactions=other.transactions))
            else:
                data = rlp.encode(block)
            replies.append({"result": "0x" + data.hex()})
        return replies

    def close(self):
        self.closed = True


def syncer(target: Node, peers: dict[str, ChainPeer], pin: Pin | None = None) -> PeerSync:
    return PeerSync(target, lambda: {name: name for name in peers}, pin=pin,
                    connect=lambda url: peers[url])


def test_history_from_a_peer_is_applied_up_to_the_anchor():
    source, target = chain_of(6), Node(GENESIS)
    anchor = source.chain.get_canonical_block_hash(5)
    assert syncer(target, {"a": ChainPeer(source, "a")}).sync(5, anchor) == 5
    assert target.chain.get_canonical_head() == source.chain.get_canonical_block_header_by_number(5)


def test_a_peer_with_another_history_is_dropped_and_nothing_it_sent_is_applied():
    source, liar, target = chain_of(6), chain_of(6, sender=1), Node(GENESIS)
    anchor = source.chain.get_canonical_block_hash(5)
    with pytest.raises(SyncFailed, match="a-liar: .* header 5 hashes to 0x"):
        syncer(target, {"a-liar": ChainPeer(liar, "a-liar")}).sync(5, anchor)
    assert target.chain.get_canonical_head().block_number == 0
    peers = {"a-liar": ChainPeer(liar, "a-liar"), "b": ChainPeer(source, "b")}
    assert syncer(target, peers).sync(5, anchor) == 5  # the next peer serves it
    assert target.chain.get_canonical_block_hash(5) == anchor


def test_a_peer_that_swaps_a_body_under_a_true_header_is_dropped():
    source, other, target = chain_of(6), chain_of(6, sender=1), Node(GENESIS)
    anchor = source.chain.get_canonical_block_hash(5)
    liar = ChainPeer(source, "a-liar", swap_body_of=3, body_source=other)
    with pytest.raises(SyncFailed, match="block 3's body does not match its header"):
        syncer(target, {"a-liar": liar}).sync(5, anchor)
    assert target.chain.get_canonical_head().block_number == 2  # verified blocks only
    assert syncer(target, {"b": ChainPeer(source, "b")}).sync(5, anchor) == 3


def test_an_operator_pin_the_history_does_not_contain_is_refused():
    source, target = chain_of(6), Node(GENESIS)
    anchor = source.chain.get_canonical_block_hash(5)
    pin = Pin.parse(f"3:0x{'ab' * 32}")
    with pytest.raises(SyncFailed, match="block 3 is 0x[0-9a-f]+, pinned 0xabab"):
        syncer(target, {"a": ChainPeer(source, "a")}, pin).sync(5, anchor)
    good = Pin(3, source.chain.get_canonical_block_hash(3))
    assert syncer(target, {"a": ChainPeer(source, "a")}, good).sync(5, anchor) == 5


def test_a_pin_must_be_number_and_hash():
    for text in ("3", "x:0x" + "ab" * 32, "3:0xabcd"):
        with pytest.raises(ValueError, match="NUMBER:0x<32-byte hash>"):
            Pin.parse(text)


class ListLog:
    """A block log stand-in: `watch` yields the given blocks, then waits until closed."""

    def __init__(self, blocks: list[bytes]) -> None:
        self.blocks = blocks
        self.closed = threading.Event()

    def watch(self, first: int, parent_hash: bytes | None = None):
        log = self

        class Watch:
            def __iter__(self):
                for data in log.blocks[first - 1:]:
                    yield LoggedBlock(first, data, first)
                log.closed.wait()

            def close(self):
                log.closed.set()

        return Watch()


class OffsetClock:
    def __init__(self, offset_seconds: float) -> None:
        self.offset_seconds = offset_seconds

    def now(self) -> float:
        return time.time() + self.offset_seconds


def follow(node: Node, blocks: list[bytes]):
    halts: list[str] = []
    follower = Follower(node, ListLog(blocks), PeerSync(node, dict), halts.append)
    thread = threading.Thread(target=follower.run, daemon=True)
    thread.start()
    return follower, thread, halts


def test_a_block_ahead_of_the_clock_waits_for_it_and_is_then_applied():
    now = time.time()
    source = chain_of(1, start=now + FUTURE_BLOCK_SECONDS + 5)  # stamped ~20 s ahead
    node = Node(GENESIS, clock=OffsetClock(0))
    follower, thread, halts = follow(node, [raw_block(source, 1)])
    try:
        wait_until(lambda: follower.state.startswith("waiting for the clock: block 1"), 5,
                   "the follower waiting")
        time.sleep(0.3)
        assert node.chain.get_canonical_head().block_number == 0
        node.clock.offset_seconds = 10  # now the block is ~10 s ahead: within the allowance
        wait_until(lambda: node.chain.get_canonical_head().block_number == 1, 5, "block 1")
        assert follower.state == "following" and not halts
    finally:
        follower.stop()
        thread.join(5)


def test_a_block_that_does_not_verify_halts_the_follower_before_anything_is_applied():
    source = chain_of(3)
    forged = source.chain.get_canonical_block_by_number(2)
    forged = forged.copy(header=forged.header.copy(gas_used=forged.header.gas_used + 1))
    blocks = [raw_block(source, 1), rlp.encode(forged), raw_block(source, 3)]
    node = Node(GENESIS, clock=ManualClock(GENESIS_TIME + 100))
    follower, thread, halts = follow(node, blocks)
    thread.join(10)
    assert not thread.is_alive() and follower.state == "halted"
    assert len(halts) == 1 and halts[0].startswith(f"block 2 (0x{forged.hash.hex()}) rejected: "
                                                   f"header.gas_used computed")
    assert node.chain.get_canonical_head().block_number == 1


def test_blocks_the_node_already_holds_are_skipped():
    source = chain_of(3)
    node = Node(GENESIS, clock=ManualClock(GENESIS_TIME + 100))
    node.import_block(node.decode_block(raw_block(source, 1)), raw_block(source, 1))
    log = ListLog([raw_block(source, n) for n in (1, 2, 3)])
    follower = Follower(node, log, PeerSync(node, dict), [].append)
    for number in (1, 2, 3):  # as the watch would deliver them from block 1
        follower._apply(LoggedBlock(number, log.blocks[number - 1], number))
    assert follower.applied == 2
    assert node.chain.get_canonical_head() == source.chain.get_canonical_head()


def test_peer_error_names_the_peer():
    assert "http://x" in str(PeerError("http://x: refused"))


def test_back_pressure_counts_live_keeping_up_followers_and_waits_bounded():
    from fee_plugin.node.cluster import pressure

    node = chain_of(10)  # head 10
    bp = pressure.Backpressure(node, None, dict, lambda: True, limit_blocks=2, wait_seconds=0.3)
    now = time.monotonic()
    bp._peer_heads = {"slow": (8, now), "dead": (1, now - 10), "syncing": (0, now)}
    assert bp.followers_lag_blocks() == 2  # dead: stale sample; syncing: too far to count
    started = time.monotonic()
    bp.wait_followers()  # sealing block 11 would leave "slow" 3 behind: waits, bounded
    assert 0.25 <= time.monotonic() - started < 2 and bp.seal_waits == 1
    bp._peer_heads["slow"] = (9, time.monotonic())
    started = time.monotonic()
    bp.wait_followers()
    assert time.monotonic() - started < 0.1 and bp.seal_waits == 1
    off = pressure.Backpressure(node, None, dict, lambda: True, limit_blocks=0, wait_seconds=5)
    off._peer_heads = {"slow": (0, time.monotonic())}
    started = time.monotonic()
    off.wait()
    off.wait_followers()
    assert time.monotonic() - started < 0.1
