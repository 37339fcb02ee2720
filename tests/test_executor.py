"""The executor hook end to end: signed transactions through mined blocks."""
import pytest
from eth_utils import ValidationError

from fee_plugin import FeeValidationError, Status, build_chain, call_vault, fee_account
from fee_plugin.history import decode_vault_log

from .support.chain import (
    BASE_FEE,
    COINBASE,
    ETHER,
    GENESIS_TIME,
    GWEI,
    OPERATOR_KEY,
    TREASURY,
    USER_KEYS,
    VALIDITY,
    VAULT,
    address,
    calldata,
    mine,
    new_chain,
    sign,
    total_eth,
)

ALICE, BOB, CAROL = USER_KEYS[:3]
T0 = GENESIS_TIME + 10
RECIPIENT = b"\x42" * 20


def deposit(chain, key, value, timestamp, **kw):
    kw.setdefault("gas", 300_000)
    tx = sign(chain, key, VAULT, value=value, data=calldata("deposit"), **kw)
    return mine(chain, [tx], timestamp)


def decode_logs(receipt):
    """Vault logs decoded with the vault's own ABI: [(name, {field: value})]."""
    return [decode_vault_log(log) for log in receipt.logs if log.address == VAULT]


@pytest.fixture
def funded():
    """Alice has one 1-ether lot deposited at T0 (validity 1000 s, uniform)."""
    genesis, chain = new_chain()
    deposit(chain, ALICE, ETHER, T0)
    return genesis, chain


def test_first_deposit_is_bootstrapped_natively_with_base_fee_burned():
    genesis, chain = new_chain()
    everyone = [address(k) for k in USER_KEYS + (OPERATOR_KEY,)] + [VAULT, TREASURY, COINBASE]
    before = total_eth(chain, everyone)
    balance_before = chain.get_vm().state.get_balance(address(ALICE))
    _, (receipt,) = deposit(chain, ALICE, ETHER, T0)
    state = chain.get_vm().state
    gas_used = receipt.gas_used
    paid = gas_used * (BASE_FEE + GWEI // 2)
    assert state.get_balance(address(ALICE)) == balance_before - ETHER - paid
    assert state.get_balance(VAULT) == ETHER
    # Natively paid: the base fee is burned exactly as on Ethereum.
    assert total_eth(chain, everyone) == before - gas_used * BASE_FEE
    acct = fee_account(chain, address(ALICE))
    assert acct.status is Status.EXHAUSTED  # uniform: nothing released at t = start
    assert [(l.amount_wei, l.start, l.expiry) for l in acct.lots] == [(ETHER, T0, T0 + VALIDITY)]


@pytest.mark.parametrize("kind", ["legacy", "access_list", "dynamic"])
def test_fee_is_paid_from_lots_and_eth_balance_only_pays_value(funded, kind):
    _, chain = funded
    state = chain.get_vm().state
    alice_before = state.get_balance(address(ALICE))
    treasury_before = state.get_balance(TREASURY)
    coinbase_before = state.get_balance(COINBASE)
    tx = sign(chain, ALICE, RECIPIENT, value=12345, gas=50_000, kind=kind,
              access_list=((RECIPIENT, (1,)),) if kind != "legacy" else ())
    _, (receipt,) = mine(chain, [tx], T0 + 100)
    state = chain.get_vm().state
    price = 2 * GWEI if kind != "dynamic" else BASE_FEE + GWEI // 2
    fee = receipt.gas_used * price
    assert state.get_balance(address(ALICE)) == alice_before - 12345
    assert state.get_balance(RECIPIENT) == 12345
    assert state.get_balance(VAULT) == ETHER - fee
    assert state.get_balance(TREASURY) == treasury_before + receipt.gas_used * BASE_FEE
    assert state.get_balance(COINBASE) == coinbase_before + fee - receipt.gas_used * BASE_FEE
    acct = fee_account(chain, address(ALICE))
    assert acct.charged_wei == fee and acct.lots[0].used_wei == fee
    events = decode_logs(receipt)
    assert events[0] == ("LotCharged", {"payer": _checksum(ALICE), "lot": 0, "amount": fee})
    name, fee_charged = events[1]
    assert name == "FeeCharged"
    assert fee_charged["fee"] == fee and fee_charged["gasUsed"] == receipt.gas_used
    assert fee_charged["availableAfter"] == acct.available_wei
    # A fresh uniform lot has released nothing yet (EXHAUSTED); the first charge records
    # the account's new status and announces the move.
    assert events[2] == (
        "StatusChanged", {"owner": _checksum(ALICE), "old": Status.EXHAUSTED, "new": Status.ACTIVE}
    )


def _checksum(key):
    return key.public_key.to_checksum_address().lower()


def test_contract_creation_is_paid_from_lots(funded):
    _, chain = funded
    init_code = bytes.fromhex("600a600c600039600a6000f3602a60005260206000f3")
    tx = sign(chain, ALICE, None, data=init_code, gas=100_000)
    _, (receipt,) = mine(chain, [tx], T0 + 200)
    assert receipt.state_root == b"\x01"
    assert [n for n, _ in decode_logs(receipt)] == ["LotCharged", "FeeCharged", "StatusChanged"]
    assert fee_account(chain, address(ALICE)).charged_wei == receipt.gas_used * (BASE_FEE + GWEI // 2)


def test_reverted_transaction_still_pays_and_logs_the_charge(funded):
    _, chain = funded
    tx = sign(chain, ALICE, VAULT, data=b"\xde\xad\xbe\xef", gas=60_000)
    _, (receipt,) = mine(chain, [tx], T0 + 100)
    assert receipt.state_root == b""  # failure status
    names = [n for n, _ in decode_logs(receipt)]
    assert names == ["LotCharged", "FeeCharged", "StatusChanged"]
    assert fee_account(chain, address(ALICE)).charged_wei == receipt.gas_used * (BASE_FEE + GWEI // 2)


def test_invalid_transaction_changes_nothing():
    genesis, chain = new_chain()
    head_before = chain.header
    root_before = chain.get_vm().state.state_root
    tx = sign(chain, BOB, RECIPIENT, value=1)
    with pytest.raises(FeeValidationError, match="no fee account"):
        chain.apply_transaction(tx)
    assert chain.header == head_before
    assert chain.get_vm().state.state_root == root_before


def test_insufficient_available_says_required_and_release_time(funded):
    _, chain = funded
    chain.set_header_timestamp(T0 + 1)
    tx = sign(chain, ALICE, RECIPIENT, gas=1_000_000, max_fee=100 * GWEI)
    # 1 ether over 1000 s releases 1e15 wei/s; 1e17 required -> enough at T0 + 100.
    with pytest.raises(FeeValidationError) as err:
        chain.apply_transaction(tx)
    message = str(err.value)
    assert "available 1000000000000000 wei < required 100000000000000000 wei" in message
    assert f"released at block time {T0 + 100}" in message


def test_uniform_release_grows_linearly_with_block_time(funded):
    _, chain = funded
    seen = []
    for dt in (100, 250, 500):
        tx = sign(chain, ALICE, RECIPIENT, value=1, gas=21_000)
        mine(chain, [tx], T0 + dt)
        acct = fee_account(chain, address(ALICE))
        assert acct.lots[0].released_wei == ETHER * dt // VALIDITY
        seen.append(acct.available_wei + acct.charged_wei)
    assert seen == [ETHER * dt // VALIDITY for dt in (100, 250, 500)]


def test_charge_takes_earliest_expiry_first_then_sweeps_expired_lots():
    genesis, chain = new_chain()
    deposit(chain, ALICE, ETHER, T0)
    # The operator grants a short-lived lot (validity 300 s) that expires before the first.
    grant = sign(chain, OPERATOR_KEY, VAULT, value=ETHER // 2,
                 data=calldata("grant", address(ALICE), 300))
    mine(chain, [grant], T0 + 50)
    tx = sign(chain, ALICE, RECIPIENT, value=1, gas=21_000)
    _, (receipt,) = mine(chain, [tx], T0 + 200)
    charged = [v for n, v in decode_logs(receipt) if n == "LotCharged"]
    assert [c["lot"] for c in charged] == [1]  # the granted lot expires first
    treasury_before = chain.get_vm().state.get_balance(TREASURY)
    tx = sign(chain, ALICE, RECIPIENT, value=1, gas=21_000)
    _, (receipt,) = mine(chain, [tx], T0 + 400)  # past the grant's expiry (T0 + 350)
    events = decode_logs(receipt)
    expired = [v for n, v in events if n == "LotExpired"]
    acct = fee_account(chain, address(ALICE))
    assert len(expired) == 1 and expired[0]["lot"] == 1
    assert acct.expired_wei == expired[0]["remainder"] > 0
    assert [lot.slot for lot in acct.lots] == [0]
    fee = receipt.gas_used * (BASE_FEE + GWEI // 2)
    treasury_gain = chain.get_vm().state.get_balance(TREASURY) - treasury_before
    assert treasury_gain == expired[0]["remainder"] + receipt.gas_used * BASE_FEE
    assert acct.deposited_wei == acct.charged_wei + acct.expired_wei + acct.remaining_wei
    assert chain.get_vm().state.get_balance(VAULT) == acct.remaining_wei
    assert fee > 0


def test_status_changed_event_when_account_goes_low():
    genesis, chain = new_chain(lowBalance=str(ETHER))
    deposit(chain, ALICE, 2 * ETHER, T0)
    tx = sign(chain, ALICE, RECIPIENT, value=1, gas=21_000)
    _, (receipt,) = mine(chain, [tx], T0 + 100)  # released 0.2 ether < lowBalance 1 ether
    changes = [v for n, v in decode_logs(receipt) if n == "StatusChanged"]
    assert changes and changes[-1]["new"] == Status.LOW
    assert fee_account(chain, address(ALICE)).recorded_status is Status.LOW


def test_frozen_sender_is_rejected(funded):
    _, chain = funded
    mine(chain, [sign(chain, OPERATOR_KEY, VAULT, data=calldata("freeze", address(ALICE)))], T0 + 50)
    chain.set_header_timestamp(T0 + 100)
    with pytest.raises(FeeValidationError, match="frozen"):
        chain.apply_transaction(sign(chain, ALICE, RECIPIENT, value=1, gas=21_000))


def test_no_account_native_lets_accountless_senders_pay_the_standard_way():
    genesis, chain = new_chain(noAccount="native")
    before = chain.get_vm().state.get_balance(address(BOB))
    _, (receipt,) = mine(chain, [sign(chain, BOB, RECIPIENT, value=5, gas=21_000)], T0)
    after = chain.get_vm().state.get_balance(address(BOB))
    assert before - after == 5 + receipt.gas_used * (BASE_FEE + GWEI // 2)
    assert decode_logs(receipt) == []


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"chain_id": 99}, "chain id 99"),
        ({"gas": 20_000}, "intrinsic gas"),
        ({"nonce": 5}, "nonce 5, expected"),
        ({"max_fee": GWEI // 2, "tip": 0}, "< block base fee"),
        ({"max_fee": 2 * GWEI, "tip": 3 * GWEI}, "max priority fee"),
        ({"value": 10**30}, "ETH balance"),
    ],
)
def test_stock_validation_gaps_are_checked(funded, overrides, message):
    _, chain = funded
    chain.set_header_timestamp(T0 + 500)
    kw = {"value": 1, "gas": 21_000, **overrides}
    tx = sign(chain, ALICE, RECIPIENT, **kw)
    root = chain.get_vm().state.state_root
    with pytest.raises(ValidationError, match=message):
        chain.apply_transaction(tx)
    assert chain.get_vm().state.state_root == root


def test_total_eth_is_conserved_for_lot_paid_transactions(funded):
    _, chain = funded
    everyone = [address(k) for k in USER_KEYS + (OPERATOR_KEY,)] + [VAULT, TREASURY, COINBASE, RECIPIENT]
    before = total_eth(chain, everyone)
    for i, dt in enumerate((100, 200, 300)):
        txs = [sign(chain, ALICE, RECIPIENT, value=7, gas=30_000, nonce=None)]
        mine(chain, txs, T0 + dt)
        assert total_eth(chain, everyone) == before
    acct = fee_account(chain, address(ALICE))
    assert chain.get_vm().state.get_balance(VAULT) == acct.remaining_wei


def test_mined_blocks_import_identically_on_a_fresh_node(funded):
    genesis, chain = funded
    mine(chain, [sign(chain, ALICE, RECIPIENT, value=1, gas=21_000)], T0 + 100)
    mine(chain, [sign(chain, ALICE, VAULT, data=b"\x00", gas=50_000)], T0 + 200)
    importer = build_chain(genesis)
    head = chain.get_canonical_head().block_number
    for number in range(1, head + 1):
        block = chain.get_canonical_block_by_number(number)
        importer.import_block(block)
        assert importer.get_canonical_head() == block.header
    assert importer.get_vm().state.state_root == chain.get_vm().state.state_root


def test_eth_call_style_view_matches_fee_account_at_head(funded):
    _, chain = funded
    mine(chain, [sign(chain, ALICE, RECIPIENT, value=1, gas=21_000)], T0 + 321)
    acct = fee_account(chain, address(ALICE))
    assert call_vault(chain, "available", address(ALICE)) == acct.available_wei
    assert call_vault(chain, "status", address(ALICE)) == acct.status
    root = chain.get_vm().state.state_root
    call_vault(chain, "available", address(ALICE))
    assert chain.get_vm().state.state_root == root


def test_cancun_fork_pays_from_lots_too():
    genesis, chain = new_chain(fork="cancun")
    deposit(chain, ALICE, ETHER, T0)
    _, (receipt,) = mine(chain, [sign(chain, ALICE, RECIPIENT, value=1, gas=21_000)], T0 + 100)
    assert [n for n, _ in decode_logs(receipt)] == ["LotCharged", "FeeCharged", "StatusChanged"]


class _Computation:
    """Just the numbers finalize_gas_used reads."""

    def __init__(self, remaining, refund, floor):
        self.remaining, self.refund, self.data_floor_gas = remaining, refund, floor

    def get_gas_remaining(self):
        return self.remaining

    def get_gas_refund(self):
        return self.refund


def test_receipt_gas_equals_the_gas_the_executor_bills(funded):
    genesis, chain = funded
    from eth.vm.forks.prague import PragueVM

    class Tx:
        gas = 100_000

    # 60,000 used, refund capped at 60,000 // 5, plus a 5,000 EIP-7623 floor top-up.
    computation = _Computation(remaining=40_000, refund=20_000, floor=5_000)
    fee_vm = type(chain.get_vm())
    assert fee_vm.finalize_gas_used(Tx, computation) == 60_000 - 12_000 + 5_000
    # Stock py-evm caps the refund against 65,000 instead: one gas unit per 5 lower.
    assert PragueVM.finalize_gas_used(Tx, computation) == 65_000 - 13_000


def test_every_charge_logs_the_receipt_gas(funded):
    _, chain = funded
    big_calldata = b"\x01" * 2000  # the Prague calldata floor binds for this transfer
    tx = sign(chain, ALICE, RECIPIENT, value=1, data=big_calldata, gas=200_000)
    _, (receipt,) = mine(chain, [tx], T0 + 300)
    fee_charged = dict(decode_logs(receipt))["FeeCharged"]
    assert receipt.gas_used == 21_000 + 10 * 4 * 2000  # floor: 21000 + 10 per token
    assert fee_charged["gasUsed"] == receipt.gas_used
    assert fee_charged["fee"] == receipt.gas_used * (BASE_FEE + GWEI // 2)


def test_set_code_transaction_is_paid_from_lots(funded):
    import rlp

    _, chain = funded
    target = b"\x99" * 20
    signature = BOB.sign_msg(b"\x05" + rlp.encode([1337, target, 0]))
    y_parity, r, s = signature.vrs
    builder = chain.get_vm().get_transaction_builder()
    nonce = chain.get_vm().state.get_nonce(address(ALICE))
    tx = builder.new_unsigned_set_code_transaction(
        1337, nonce, GWEI // 2, 2 * GWEI, 100_000, RECIPIENT, 0, b"", (),
        [dict(chain_id=1337, address=target, nonce=0, y_parity=y_parity, r=r, s=s)],
    ).as_signed_transaction(ALICE)
    alice_eth = chain.get_vm().state.get_balance(address(ALICE))
    _, (receipt,) = mine(chain, [tx], T0 + 300)
    state = chain.get_vm().state
    assert state.get_code(address(BOB)) == b"\xef\x01\x00" + target
    assert state.get_balance(address(ALICE)) == alice_eth
    fee_charged = dict(decode_logs(receipt))["FeeCharged"]
    assert fee_charged["fee"] == receipt.gas_used * (BASE_FEE + GWEI // 2)


def test_blob_transactions_cannot_be_paid_from_lots(funded):
    _, chain = funded
    builder = chain.get_vm().get_transaction_builder()
    nonce = chain.get_vm().state.get_nonce(address(ALICE))
    tx = builder.new_unsigned_blob_transaction(
        1337, nonce, GWEI // 2, 2 * GWEI, 100_000, RECIPIENT, 0, b"", (), 10**9,
        (b"\x01" + b"\x00" * 31,),
    ).as_signed_transaction(ALICE)
    chain.set_header_timestamp(T0 + 300)
    with pytest.raises(FeeValidationError, match="blob transactions cannot be paid from fee lots"):
        chain.apply_transaction(tx)
