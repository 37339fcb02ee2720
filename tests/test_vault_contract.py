"""FeeVault contract behaviour on the real fee-plugin chain (predeployed by genesis)."""
import pytest
from eth_abi import decode

from fee_plugin import Status, call_latest, call_vault, fee_account
from fee_plugin.layout import (
    FLAG_OPENED,
    account_base_slot,
    head0_slot,
    head1_slot,
    lot_slot,
    unpack_header,
    unpack_lot,
)

from .chain_helpers import (
    ETHER,
    GENESIS_TIME,
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
)
from .test_executor import decode_logs

ALICE, BOB = USER_KEYS[:2]
T0 = GENESIS_TIME + 10
DEPOSIT_GAS = 300_000


def send(chain, key, data, value=0, at=None, gas=DEPOSIT_GAS):
    at = chain.header.timestamp if at is None else at
    _, (receipt,) = mine(chain, [sign(chain, key, VAULT, value=value, data=data, gas=gas)], at)
    return receipt


def revert_reason(chain, key, data, value=0):
    """The Error(string) a call would revert with at the head (eth_call style)."""
    computation = call_latest(chain, VAULT, data, sender=address(key), value=value)
    assert computation.is_error, "expected the call to revert"
    output = computation.output
    assert output[:4] == bytes.fromhex("08c379a0"), output
    return decode(["string"], output[4:])[0]


def stored(chain, owner):
    state = chain.get_vm().state
    base = account_base_slot(owner)
    header = unpack_header(state.get_storage(VAULT, head0_slot(base)), state.get_storage(VAULT, head1_slot(base)))
    lots = [unpack_lot(i, state.get_storage(VAULT, lot_slot(base, i))) for i in header.live_slots()]
    return header, lots


@pytest.fixture
def chain():
    return new_chain()[1]


def test_first_deposit_opens_the_account_and_stores_one_packed_lot(chain):
    receipt = send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0)
    events = decode_logs(receipt)
    assert [n for n, _ in events] == ["AccountOpened", "LotDeposited", "StatusChanged"]
    assert events[1][1] == {
        "owner": "0x" + address(ALICE).hex(), "lot": 0, "amount": ETHER, "start": T0, "expiry": T0 + VALIDITY,
    }
    header, lots = stored(chain, address(ALICE))
    assert header.flags == FLAG_OPENED and header.deposited == ETHER and header.live_mask == 1
    assert [(l.slot, l.amount, l.used, l.start, l.expiry) for l in lots] == [(0, ETHER, 0, T0, T0 + VALIDITY)]
    assert header.status == Status.EXHAUSTED  # uniform: nothing released at t = start


def test_second_deposit_takes_the_lowest_free_slot_and_only_opens_once(chain):
    send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0)
    receipt = send(chain, ALICE, calldata("deposit"), value=2 * ETHER, at=T0 + 1)
    assert [n for n, _ in decode_logs(receipt)][:1] == ["LotDeposited"]
    assert call_vault(chain, "liveLots", address(ALICE)) == (0, 1)
    assert call_vault(chain, "lotCount", address(ALICE)) == 2


def test_deposit_below_min_deposit_reverts_with_reason(chain):
    assert revert_reason(chain, ALICE, calldata("deposit"), value=10**15 - 1) == "deposit below minDeposit"


def test_deposit_beyond_max_live_lots_reverts_with_reason():
    _, chain = new_chain(maxLiveLots=2)
    send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0)
    send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0 + 1)
    reason = revert_reason(chain, ALICE, calldata("deposit"), value=ETHER)
    assert reason == "too many live lots: sweep expired lots first"


def test_plain_eth_transfer_to_the_vault_reverts(chain):
    send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0)
    receipt = send(chain, ALICE, b"", value=1, at=T0 + 500, gas=50_000)
    assert receipt.state_root == b""  # failed
    # Only the (lot-paid) fee left the vault; the 1 wei did not arrive.
    assert chain.get_vm().state.get_balance(VAULT) == fee_account(chain, address(ALICE)).remaining_wei


def test_grant_is_operator_only_and_has_its_own_validity(chain):
    assert revert_reason(chain, ALICE, calldata("grant", address(BOB), 50), value=ETHER) == "only the operator"
    receipt = send(chain, OPERATOR_KEY, calldata("grant", address(BOB), 50), value=ETHER, at=T0)
    lot = dict(decode_logs(receipt))["LotDeposited"]
    assert (lot["start"], lot["expiry"]) == (T0, T0 + 50)
    assert fee_account(chain, address(BOB)).deposited_wei == ETHER


@pytest.mark.parametrize(
    "function, args",
    [("setLotValidity", (10,)), ("setMinDeposit", (1,)), ("freeze", (b"\x01" * 20,)), ("unfreeze", (b"\x01" * 20,))],
)
def test_operator_functions_reject_everyone_else(chain, function, args):
    assert revert_reason(chain, ALICE, calldata(function, *args)) == "only the operator"


def test_set_lot_validity_changes_only_new_lots(chain):
    send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0)
    send(chain, OPERATOR_KEY, calldata("setLotValidity", 77), at=T0 + 1)
    send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0 + 2)
    _, lots = stored(chain, address(ALICE))
    assert [(l.start, l.expiry) for l in lots] == [(T0, T0 + VALIDITY), (T0 + 2, T0 + 79)]
    assert call_vault(chain, "lotValidity") == 77
    assert revert_reason(chain, OPERATOR_KEY, calldata("setLotValidity", 0)) == "validity must be > 0"


def test_set_min_deposit_applies_to_later_deposits(chain):
    send(chain, OPERATOR_KEY, calldata("setMinDeposit", ETHER), at=T0)
    assert revert_reason(chain, ALICE, calldata("deposit"), value=ETHER - 1) == "deposit below minDeposit"
    send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0 + 1)
    assert call_vault(chain, "lotCount", address(ALICE)) == 1


def test_freeze_and_unfreeze_drive_the_frozen_status(chain):
    send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0)
    assert revert_reason(chain, OPERATOR_KEY, calldata("freeze", address(BOB))) == "no such fee account"
    receipt = send(chain, OPERATOR_KEY, calldata("freeze", address(ALICE)), at=T0 + 100)
    assert dict(decode_logs(receipt))["StatusChanged"]["new"] == Status.FROZEN
    assert call_vault(chain, "status", address(ALICE)) == Status.FROZEN
    assert call_vault(chain, "isFrozen", address(ALICE)) is True
    send(chain, OPERATOR_KEY, calldata("unfreeze", address(ALICE)), at=T0 + 200)
    assert call_vault(chain, "status", address(ALICE)) == Status.ACTIVE


def test_status_moves_with_block_time_through_low_and_expired():
    _, chain = new_chain(lowBalance=str(ETHER // 2))
    send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0)
    assert call_vault(chain, "status", address(ALICE)) == Status.EXHAUSTED
    mine(chain, [], T0 + 100)
    assert call_vault(chain, "status", address(ALICE)) == Status.LOW  # 0.1 ether < 0.5
    mine(chain, [], T0 + 600)
    assert call_vault(chain, "status", address(ALICE)) == Status.ACTIVE
    mine(chain, [], T0 + VALIDITY)
    assert call_vault(chain, "status", address(ALICE)) == Status.EXPIRED
    assert call_vault(chain, "available", address(ALICE)) == 0


def test_sweep_moves_exactly_the_unused_remainder_to_the_treasury(chain):
    send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0)
    # Alice spends from the lot, then the lot expires.
    mine(chain, [sign(chain, ALICE, b"\x42" * 20, value=1, gas=21_000)], T0 + 500)
    used = fee_account(chain, address(ALICE)).charged_wei
    treasury = chain.get_vm().state.get_balance(TREASURY)
    # Bob (no fee account, so the operator sweeps) cannot redirect the remainder anywhere.
    receipt = send(chain, OPERATOR_KEY, calldata("sweepExpired", address(ALICE)), at=T0 + VALIDITY)
    expired = dict(decode_logs(receipt))["LotExpired"]
    assert expired["remainder"] == ETHER - used
    state = chain.get_vm().state
    assert state.get_balance(TREASURY) == treasury + ETHER - used
    assert state.get_balance(VAULT) == 0
    acct = fee_account(chain, address(ALICE))
    assert (acct.deposited_wei, acct.charged_wei, acct.expired_wei, acct.lots) == (ETHER, used, ETHER - used, ())
    assert acct.status is Status.EXPIRED
    # The freed slot is reused by the next deposit.
    send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0 + VALIDITY + 1)
    assert call_vault(chain, "liveLots", address(ALICE)) == (0,)


def test_sweep_of_unexpired_lots_changes_nothing(chain):
    send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0)
    before = stored(chain, address(ALICE))
    receipt = send(chain, OPERATOR_KEY, calldata("sweepExpired", address(ALICE)), at=T0 + 5)
    assert decode_logs(receipt) == []
    assert stored(chain, address(ALICE)) == before


def test_views_report_lots_and_totals(chain):
    send(chain, ALICE, calldata("deposit"), value=ETHER, at=T0)
    mine(chain, [], T0 + 250)
    assert call_vault(chain, "lot", address(ALICE), 0) == (ETHER, 0, T0, T0 + VALIDITY, ETHER // 4)
    assert call_vault(chain, "lot", address(ALICE), 5) == (0, 0, 0, 0, 0)
    assert call_vault(chain, "totals", address(ALICE)) == (ETHER, 0, 0)
    assert call_vault(chain, "recorded", address(ALICE)) == (0, Status.EXHAUSTED)
    assert call_vault(chain, "available", address(BOB)) == 0
    assert call_vault(chain, "status", address(BOB)) == Status.NONE
