"""Transaction pool rules (geth's txpool is the model), each pinned by one test."""
import pytest

from fee_plugin.node import PoolConfig, TxRejected

from .support.chain import ETHER, GWEI, OPERATOR_KEY, USER_KEYS, VAULT, address, calldata, sign
from .support.nodes import clocked_node, deposit, transfer

ALICE, BOB, CAROL = USER_KEYS[:3]


@pytest.fixture
def funded():
    node, clock = clocked_node()
    for key in (ALICE, BOB):
        deposit(node, clock, key)
    return node, clock


def test_future_nonce_waits_in_the_queue_and_is_promoted_when_the_gap_fills(funded):
    node, clock = funded
    node.send_transaction(transfer(node, ALICE, nonce=2))
    assert node.pool.stats() == (0, 1)
    node.send_transaction(transfer(node, ALICE, nonce=1))
    assert node.pool.stats() == (2, 0)  # the gap filled: both are executable
    clock.advance(1)
    block = node.produce()
    assert [tx.nonce for tx in block.transactions] == [1, 2]
    assert node.pool.stats() == (0, 0)


def test_identical_resend_is_already_known(funded):
    node, _ = funded
    tx = transfer(node, ALICE, nonce=1)
    node.send_transaction(tx)
    with pytest.raises(TxRejected, match="^already known$"):
        node.send_transaction(tx)


def test_replacement_needs_both_fee_caps_raised_by_ten_percent(funded):
    node, clock = funded
    node.send_transaction(transfer(node, ALICE, nonce=1, max_fee=2 * GWEI, tip=GWEI))
    with pytest.raises(TxRejected, match="replacement transaction underpriced"):
        node.send_transaction(transfer(node, ALICE, nonce=1, value=2, max_fee=3 * GWEI, tip=GWEI))
    with pytest.raises(TxRejected, match="replacement transaction underpriced"):
        node.send_transaction(transfer(node, ALICE, nonce=1, value=2, max_fee=2 * GWEI + 1, tip=GWEI * 11 // 10))
    better = transfer(node, ALICE, nonce=1, value=3, max_fee=2 * GWEI * 11 // 10, tip=GWEI * 11 // 10)
    node.send_transaction(better)
    assert node.pool.stats() == (1, 0)
    clock.advance(1)
    assert [tx.hash for tx in node.produce().transactions] == [better.hash]


def test_nonce_below_the_account_nonce_is_too_low(funded):
    node, _ = funded
    with pytest.raises(TxRejected, match="nonce too low: next nonce 1, tx nonce 0"):
        node.send_transaction(transfer(node, ALICE, nonce=0))


def test_a_burst_of_64_from_one_sender_is_accepted_by_default(funded):
    node, clock = funded
    for nonce in range(1, 65):
        node.send_transaction(transfer(node, ALICE, nonce=nonce))
    assert node.pool.stats() == (64, 0)
    clock.advance(1)
    assert len(node.produce().transactions) == 64


def test_per_sender_limit_refuses_with_account_limit_exceeded():
    node, clock = clocked_node(PoolConfig(account_slots=3, account_queue=1))
    deposit(node, clock, ALICE)
    for nonce in (1, 2, 3):
        node.send_transaction(transfer(node, ALICE, nonce=nonce))
    with pytest.raises(TxRejected, match="account limit exceeded"):
        node.send_transaction(transfer(node, ALICE, nonce=4))
    node.send_transaction(transfer(node, ALICE, nonce=6))  # one queued slot
    with pytest.raises(TxRejected, match="account limit exceeded"):
        node.send_transaction(transfer(node, ALICE, nonce=7))


def test_full_pool_evicts_the_cheapest_and_refuses_a_cheaper_newcomer():
    node, clock = clocked_node(PoolConfig(global_slots=2, global_queue=0))
    for key in (ALICE, BOB, CAROL):
        deposit(node, clock, key)
    cheap = transfer(node, ALICE, nonce=1, tip=GWEI // 10)
    node.send_transaction(cheap)
    node.send_transaction(transfer(node, BOB, nonce=1, tip=GWEI // 2))
    with pytest.raises(TxRejected, match="txpool is full"):
        node.send_transaction(transfer(node, CAROL, nonce=1, tip=GWEI // 20))
    node.send_transaction(transfer(node, CAROL, nonce=1, tip=GWEI))
    assert node.pool.get(cheap.hash) is None and node.pool.stats() == (2, 0)


def test_pending_max_fees_must_fit_the_prepaid_balance_together():
    node, clock = clocked_node()
    deposit(node, clock, ALICE, value=10**15)  # 0.001 ETH of fee credit
    max_fee = 21_000 * 2 * GWEI  # 4.2e13 wei per transfer: 23 fit in 1e15
    for nonce in range(1, 24):
        node.send_transaction(transfer(node, ALICE, nonce=nonce))
    with pytest.raises(TxRejected, match="insufficient funds for gas") as refused:
        node.send_transaction(transfer(node, ALICE, nonce=24))
    assert refused.value.data == {"available": str(10**15), "required": str(24 * max_fee), "releasedAt": None}
    assert "reserved by 23 pending transactions" in refused.value.message
    clock.advance(1)
    assert len(node.produce().transactions) == 23  # the block never holds more than the lots pay


def test_refusal_says_when_enough_is_released():
    node, clock = clocked_node(consumption="uniform")
    deposit(node, clock, ALICE, value=10**15)
    with pytest.raises(TxRejected, match="insufficient funds for gas") as refused:
        node.send_transaction(transfer(node, ALICE, nonce=1))
    assert isinstance(refused.value.data["releasedAt"], int)
    assert refused.value.data["releasedAt"] > clock.now()


def test_sender_without_account_is_refused_but_its_bootstrap_deposit_pays_natively():
    node, clock = clocked_node()
    with pytest.raises(TxRejected, match="insufficient funds for gas.*no fee account"):
        node.send_transaction(transfer(node, CAROL, nonce=0))
    node.send_transaction(sign(node.chain, CAROL, VAULT, value=ETHER, data=calldata("deposit"), gas=300_000, nonce=0))
    assert node.pool.stats() == (1, 0)


def test_native_payer_is_checked_against_its_eth_balance():
    node, clock = clocked_node()
    with pytest.raises(TxRejected, match=r"insufficient funds for gas \* price \+ value"):
        node.send_transaction(sign(node.chain, CAROL, VAULT, value=100 * ETHER, data=calldata("deposit"),
                                   gas=300_000, nonce=0))


def test_lot_paid_value_must_fit_the_eth_balance(funded):
    node, _ = funded
    with pytest.raises(TxRejected, match="insufficient funds for transfer"):
        node.send_transaction(transfer(node, ALICE, nonce=1, value=1000 * ETHER))


@pytest.mark.parametrize("overrides, message", [
    ({"chain_id": 7}, "invalid chain id for signer: have 7 want 1337"),
    ({"gas": 20_000}, "intrinsic gas too low: gas 20000, minimum needed 21000"),
    ({"gas": 31_000_000}, "exceeds block gas limit"),
    ({"tip": 3 * GWEI, "max_fee": 2 * GWEI}, "max priority fee per gas higher than max fee per gas"),
    ({"max_fee": GWEI // 2, "tip": 1}, "max fee per gas less than block base fee"),
    ({"data": b"\x01" * 200_000, "gas": 10_000_000}, "oversized data"),
])
def test_static_checks_use_geths_messages(funded, overrides, message):
    node, _ = funded
    with pytest.raises(TxRejected, match=message):
        node.send_transaction(transfer(node, ALICE, nonce=1, **overrides))


def test_unprotected_legacy_transaction_is_refused(funded):
    node, _ = funded
    vm = node.chain.get_vm()
    tx = vm.create_unsigned_transaction(nonce=1, gas_price=2 * GWEI, gas=21_000, to=b"\x42" * 20,
                                        value=1, data=b"").as_signed_transaction(ALICE)
    with pytest.raises(TxRejected, match="replay-protected"):
        node.send_transaction(tx)


def test_garbage_bytes_are_not_a_transaction(funded):
    node, _ = funded
    with pytest.raises(TxRejected, match="cannot decode"):
        node.submit(b"\x02\xff\x00")


def test_a_transaction_invalid_at_build_time_is_skipped_and_dropped_with_its_reason(funded, caplog):
    node, clock = funded
    node.send_transaction(transfer(node, ALICE, nonce=1))
    node.send_transaction(transfer(node, BOB, nonce=1))
    freeze = sign(node.chain, OPERATOR_KEY, VAULT, data=calldata("freeze", address(ALICE)),
                  gas=300_000, nonce=0, tip=2 * GWEI, max_fee=3 * GWEI)
    node.send_transaction(freeze)  # the operator pays natively; highest tip: first in the block
    clock.advance(1)
    with caplog.at_level("INFO", logger="fee_plugin.node"):
        block = node.produce()
    assert [tx.hash for tx in block.transactions][0] == freeze.hash
    assert address(ALICE) not in {tx.sender for tx in block.transactions}
    assert address(BOB) in {tx.sender for tx in block.transactions}
    assert node.pool.stats() == (0, 0)
    assert "frozen" in caplog.text


def test_block_orders_by_effective_tip_then_nonce(funded):
    node, clock = funded
    node.send_transaction(transfer(node, ALICE, nonce=1, tip=GWEI // 10))
    node.send_transaction(transfer(node, ALICE, nonce=2, tip=GWEI))
    node.send_transaction(transfer(node, BOB, nonce=1, tip=GWEI // 2))
    clock.advance(1)
    order = [(tx.sender, tx.nonce) for tx in node.produce().transactions]
    assert order == [(address(BOB), 1), (address(ALICE), 1), (address(ALICE), 2)]


def test_block_respects_the_gas_limit_and_the_rest_waits(funded):
    node, clock = funded
    heavy = b"\x01" * 100_000  # calldata floor (EIP-7623): 4,021,000 gas used each
    for nonce in range(1, 9):
        node.send_transaction(transfer(node, ALICE, nonce=nonce, data=heavy, gas=4_100_000))
    clock.advance(1)
    block = node.produce()
    assert len(block.transactions) == 7 and block.header.gas_used == 7 * 4_021_000
    clock.advance(1)
    assert len(node.produce().transactions) == 1


def test_block_respects_the_byte_cap(funded):
    node, clock = funded
    node.builder.max_block_bytes = 2_000
    for nonce in range(1, 4):
        node.send_transaction(transfer(node, ALICE, nonce=nonce, data=b"\x01" * 500, gas=60_000))
    clock.advance(1)
    assert len(node.produce().transactions) == 2
