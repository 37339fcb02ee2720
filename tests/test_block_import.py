"""Node.import_block: a block made elsewhere is re-executed and must equal what this node
computes; a block that does not is refused naming the block and the field, nothing written."""
import pytest
import rlp

from fee_plugin import executor as executor_module
from fee_plugin.node import ManualClock, Node
from fee_plugin.node.importer import BlockRejected, check_body

from .support.chain import (
    ETHER,
    GENESIS_TIME,
    USER_KEYS,
    VAULT,
    address,
    calldata,
    make_genesis,
    sign,
)
from .support.nodes import transfer

SINK = b"\x42" * 20


@pytest.fixture
def pair():
    """A producer and an importer on the same genesis; the producer has mined a deposit."""
    genesis = make_genesis(consumption="upfront")
    clock = ManualClock(GENESIS_TIME + 10)
    producer, importer = Node(genesis, clock=clock), Node(genesis, clock=clock)
    producer.send_transaction(sign(producer.chain, USER_KEYS[0], VAULT, value=ETHER,
                                   data=calldata("deposit"), gas=300_000, nonce=0))
    clock.advance(1)
    deposit = producer.produce()
    assert importer.import_block(deposit, rlp.encode(deposit)) is not None
    return producer, importer, clock


def _next_block(producer, clock, count=2):
    for nonce in range(1, 1 + count):
        producer.send_transaction(transfer(producer, USER_KEYS[0], nonce, to=SINK))
    clock.advance(1)
    return producer.produce()


def _assert_unchanged(importer, head):
    assert importer.chain.get_canonical_head() == head
    assert importer.builder.head() == head


def test_imported_block_equals_the_producers_and_is_applied_once(pair):
    producer, importer, clock = pair
    block = _next_block(producer, clock)
    built = importer.import_block(importer.decode_block(rlp.encode(block)), rlp.encode(block))
    assert built.block.header == block.header
    assert len(built.receipts) == 2 and importer.blocks.get(block.hash) is not None
    assert importer.import_block(block, rlp.encode(block)) is None  # already held
    assert importer.chain.get_canonical_head().state_root == producer.chain.get_canonical_head().state_root


@pytest.mark.parametrize("field, value", [("state_root", b"\x11" * 32),
                                          ("receipt_root", b"\x22" * 32),
                                          ("gas_used", 21_001)])
def test_a_header_field_that_does_not_match_execution_is_named(pair, field, value):
    producer, importer, clock = pair
    block = _next_block(producer, clock)
    head = importer.chain.get_canonical_head()
    forged = block.copy(header=block.header.copy(**{field: value}))
    with pytest.raises(BlockRejected, match=rf"block 2 \(0x[0-9a-f]{{64}}\) rejected: header\.{field} computed "):
        importer.import_block(forged, rlp.encode(forged))
    _assert_unchanged(importer, head)
    assert importer.import_block(block, rlp.encode(block)) is not None  # the honest one still imports


def _drop_a_fee_log(patch):
    original = executor_module.charge_logs
    patch.setattr(executor_module, "charge_logs", lambda *args: original(*args)[:-1])


def _charge_one_wei_more(patch):
    plan = executor_module.plan_charge
    patch.setattr(executor_module, "plan_charge", lambda account, fee, *a: plan(account, fee + 1, *a))


@pytest.mark.parametrize("tamper, field", [(_drop_a_fee_log, "receipt_root"),
                                           (_charge_one_wei_more, "state_root")],
                         ids=["a fee log dropped", "a charge one wei more"])
def test_a_producer_with_other_fee_rules_is_refused(pair, monkeypatch, tamper, field):
    producer, importer, clock = pair
    head = importer.chain.get_canonical_head()
    with monkeypatch.context() as patch:
        tamper(patch)
        forged = _next_block(producer, clock, count=1)
    assert len(forged.transactions) == 1
    with pytest.raises(BlockRejected, match=rf"block 2 .* rejected: header\.{field} computed "):
        importer.import_block(forged, rlp.encode(forged))
    _assert_unchanged(importer, head)


def test_a_block_not_later_than_its_parent_is_refused(pair):
    producer, importer, clock = pair
    block = _next_block(producer, clock)
    parent = importer.chain.get_canonical_head()
    forged = block.copy(header=block.header.copy(timestamp=parent.timestamp))
    with pytest.raises(BlockRejected, match=rf"rejected: timestamp {parent.timestamp} is not above "
                                            rf"its parent's {parent.timestamp}"):
        importer.import_block(forged, rlp.encode(forged))
    _assert_unchanged(importer, parent)


def test_a_block_at_a_held_number_with_another_hash_is_refused(pair):
    producer, importer, clock = pair
    held = importer.chain.get_canonical_head()
    other = Node(producer.genesis, clock=clock)
    other.send_transaction(sign(other.chain, USER_KEYS[1], VAULT, value=ETHER,
                                data=calldata("deposit"), gas=300_000, nonce=0))
    fork = other.produce()
    assert fork.number == held.block_number and fork.hash != held.hash
    with pytest.raises(BlockRejected, match=r"block 1 .* rejected: hash differs from this node's block 1 0x"):
        importer.import_block(fork, rlp.encode(fork))
    _assert_unchanged(importer, held)


def test_bytes_that_are_not_a_block_are_refused(pair):
    _, importer, _ = pair
    with pytest.raises(BlockRejected, match="block 2 .* rejected: rlp: not a block"):
        importer.decode_block(b"\xc3\x01\x02\x03")


def test_an_imported_block_updates_the_pool(pair):
    producer, importer, clock = pair
    tx = transfer(importer, USER_KEYS[0], 1, to=SINK)
    importer.send_transaction(tx)
    producer.send_transaction(tx)
    clock.advance(1)
    block = producer.produce()
    assert importer.pool.get(tx.hash) is not None
    importer.import_block(block, rlp.encode(block))
    assert importer.pool.get(tx.hash) is None
    assert importer.pool.next_nonce(address(USER_KEYS[0])) == 2


def test_a_body_that_is_not_the_headers_is_refused(pair):
    producer, importer, clock = pair
    block = _next_block(producer, clock)
    head = importer.chain.get_canonical_head()
    swapped = block.copy(transactions=block.transactions[:1])
    with pytest.raises(BlockRejected, match=r"block 2 .* rejected: header\.transaction_root computed "
                                            r"0x[0-9a-f]{64} from the block's body, block says"):
        check_body(swapped)  # what history sync asks before running anything
    with pytest.raises(BlockRejected, match=r"header\.transaction_root computed ") as refused:
        importer.import_block(swapped, rlp.encode(swapped))
    assert "header.transaction_root" in refused.value.fields
    _assert_unchanged(importer, head)
