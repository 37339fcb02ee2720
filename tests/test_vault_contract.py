"""FeeVault behaviour on stock py-evm (tests/support/vault_harness.py): deposits, grants, limits,
operator functions, freezes, and that there is no other way in or out. One behaviour per
test. Storage is also read word by word and decoded with fee_plugin.layout, which pins the
consensus layout of contracts/LAYOUT.md (v3) to what the contract really writes.
"""
import pytest

from fee_plugin.artifact import vault_abi
from fee_plugin.layout import (
    FLAG_FROZEN,
    FLAG_OPENED,
    Head,
    LotWord,
    Totals,
    account_base_slot,
    head0_slot,
    head1_slot,
    link,
    lot_slot,
    pack_head,
    pack_lot,
    pack_totals,
)
from fee_plugin.lots import Consumption, Line, Lot, Status

from .support.vault_harness import ETHER, OPERATOR_KEY, RICH_KEY, VAULT, VaultHarness, address, calldata
from .support.vault_contract import ALICE, ALICE_KEY, BOB, BOB_KEY, MIN_DEPOSIT, OPERATOR, T0, VALIDITY, hexaddr


@pytest.fixture
def h():
    return VaultHarness(lot_validity=VALIDITY, min_deposit=MIN_DEPOSIT)


# -- deposits -------------------------------------------------------------------------------

def test_first_deposit_stores_one_packed_lot_and_emits_opened_deposited_status(h):
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    assert out.success
    assert [e.name for e in out.events] == ["AccountOpened", "LotDeposited", "StatusChanged"]
    assert all(e.address == VAULT for e in out.events)
    assert out.events[1].args == {
        "owner": hexaddr(ALICE), "lot": 0, "amount": ETHER, "start": T0, "expiry": T0 + VALIDITY,
    }
    # Uniform release with 0 bps: 10**15 wei a second, nothing at t = start.
    assert out.events[2].args == {"owner": hexaddr(ALICE), "old": Status.NONE, "new": Status.EXHAUSTED}

    # The exact consensus words (LAYOUT.md), read raw from storage.
    state, base = h.state, account_base_slot(ALICE)
    lot = Lot(0, ETHER, 0, T0, T0 + VALIDITY)
    head = Head(line=Line(0, 10**15, T0), first=link(0), status=Status.EXHAUSTED, flags=FLAG_OPENED)
    assert state.get_storage(VAULT, lot_slot(base, 0)) == pack_lot(LotWord(lot)) == (
        (ETHER << 172) | (T0 << 48) | ((T0 + VALIDITY) << 8))
    assert state.get_storage(VAULT, head0_slot(base)) == pack_head(head) == (
        (10**15 << 76) | (T0 << 36) | (1 << 28) | (3 << 12) | (1 << 4))
    assert state.get_storage(VAULT, head1_slot(base)) == pack_totals(Totals(ETHER, 0, T0 + VALIDITY)) == (
        (ETHER << 160) | ((T0 + VALIDITY) << 24))
    assert all(state.get_storage(VAULT, lot_slot(base, i)) == 0 for i in range(1, 64))
    stored = h.stored(ALICE)
    assert (stored.head, stored.charge_lots, stored.spent_lots) == (head, (lot,), ())
    assert h.balance(VAULT) == ETHER


def test_second_deposit_opens_nothing_and_records_the_line(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    out = h.transact(ALICE_KEY, "deposit", value=2 * ETHER, at=T0 + 600)
    assert [e.name for e in out.events] == ["LotDeposited", "StatusChanged"]
    assert out.named("StatusChanged") == [{"owner": hexaddr(ALICE), "old": Status.EXHAUSTED, "new": Status.ACTIVE}]
    stored = h.stored(ALICE)
    assert [lot.slot for lot in stored.charge_lots] == [0, 1]
    assert stored.head.line == Line(ETHER * 6 // 10, 3 * 10**15, T0 + 600)
    assert stored.totals.deposited == 3 * ETHER and stored.head.status == Status.ACTIVE
    assert h.view("recorded", ALICE) == (ETHER * 6 // 10, Status.ACTIVE, T0 + 600)
    assert h.view("available", ALICE, at=T0 + 700) == ETHER * 6 // 10 + 300 * 10**15


def test_new_lots_take_the_lowest_free_slot_and_their_place_in_charge_order(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)  # slot 0, expires T0 + 1000
    h.transact(OPERATOR_KEY, "grant", ALICE, 10, value=ETHER, at=T0 + 1)  # slot 1, T0 + 11: first
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + 2)  # slot 2, T0 + 1002: last
    assert h.view("liveLots", ALICE) == (1, 0, 2)
    h.transact(BOB_KEY, "sweepExpired", ALICE, at=T0 + 11)
    assert h.view("liveLots", ALICE) == (0, 2)
    out = h.transact(OPERATOR_KEY, "grant", ALICE, 995, value=ETHER, at=T0 + 12)  # T0 + 1007
    assert out.named("LotDeposited")[0]["lot"] == 1
    assert h.view("liveLots", ALICE) == (0, 2, 1)
    out = h.transact(OPERATOR_KEY, "grant", ALICE, 990, value=ETHER, at=T0 + 12 + 1)  # T0 + 1003
    assert out.named("LotDeposited")[0]["lot"] == 3
    assert h.view("liveLots", ALICE) == (0, 2, 3, 1) and h.view("lotCount", ALICE) == 4


def test_lots_with_the_same_expiry_keep_deposit_order(h):
    h.transact(OPERATOR_KEY, "grant", ALICE, 100, value=ETHER, at=T0)  # slot 0, T0 + 100
    h.transact(OPERATOR_KEY, "grant", ALICE, 99, value=ETHER, at=T0 + 1)  # slot 1, T0 + 100
    h.transact(OPERATOR_KEY, "grant", ALICE, 98, value=ETHER, at=T0 + 2)  # slot 2, T0 + 100
    assert h.view("liveLots", ALICE) == (0, 1, 2)  # oldest start first: deposit order


def test_deposit_below_min_deposit_reverts_with_reason(h):
    out = h.transact(ALICE_KEY, "deposit", value=MIN_DEPOSIT - 1, at=T0)
    assert not out.success and out.reason == "deposit below minDeposit"
    assert h.transact(ALICE_KEY, "deposit", value=0).reason == "deposit below minDeposit"
    assert h.balance(VAULT) == 0 and h.stored(ALICE).head == Head()
    assert h.transact(ALICE_KEY, "deposit", value=MIN_DEPOSIT).success


def test_deposit_beyond_max_live_lots_reverts_but_expired_lots_make_room_by_themselves():
    h = VaultHarness(lot_validity=VALIDITY, max_live_lots=2)
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + 500)
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + VALIDITY - 1)
    assert not out.success and out.reason == "too many live lots (maxLiveLots)"
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + VALIDITY)  # the first lot expired
    assert out.success
    assert [(e.name, e.args.get("lot")) for e in out.events][:2] == [("LotExpired", 0), ("LotDeposited", 0)]
    assert h.view("lotCount", ALICE) == 2 and h.view("totals", ALICE)[2] == ETHER


def test_lot_amount_must_stay_below_2_pow_84(h):
    out = h.call("deposit", sender=address(RICH_KEY), value=2**84)
    assert out.reason == "lot amount must be < 2**84 wei"
    assert h.call("deposit", sender=address(RICH_KEY), value=2**84 - 1).success


def test_lifetime_deposits_must_stay_below_2_pow_96(h):
    rich = address(RICH_KEY)
    state = h.state_at(T0)
    h.write_account(state, rich, Head(line=Line(0, 0, T0), flags=FLAG_OPENED), Totals(2**96 - ETHER, 2**96 - ETHER), ())
    snapshot = state.snapshot()
    out = h.execute(state, calldata("deposit"), sender=rich, value=ETHER)
    assert out.reason == "lifetime deposits must stay < 2**96 wei"
    state.revert(snapshot)
    assert h.execute(state, calldata("deposit"), sender=rich, value=ETHER - 1).success
    assert h.stored(rich, state).totals.deposited == 2**96 - 1


def test_lot_expiry_must_stay_below_2_pow_40(h):
    now = h.now + 1
    out = h.call("grant", ALICE, 2**40 - now, sender=OPERATOR, value=ETHER, at=now)
    assert out.reason == "lot expiry must be < 2**40"
    assert h.call("grant", ALICE, 2**40 - now - 1, sender=OPERATOR, value=ETHER, at=now).success
    assert h.call("grant", ALICE, 2**256 - 1, sender=OPERATOR, value=ETHER, at=now).reason == (
        "lot expiry must be < 2**40")


def test_upfront_mode_makes_the_whole_lot_available_at_once():
    h = VaultHarness(lot_validity=VALIDITY, mode=int(Consumption.UPFRONT))
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    assert out.named("StatusChanged")[0]["new"] == Status.ACTIVE
    assert h.view("recorded", ALICE) == (ETHER, Status.ACTIVE, T0)
    assert h.view("available", ALICE, at=T0 + VALIDITY - 1) == ETHER
    assert h.view("available", ALICE, at=T0 + VALIDITY) == 0


def test_initial_release_bps_is_available_at_the_deposit_time_then_a_wei_rate():
    h = VaultHarness(lot_validity=VALIDITY, bps=2500)
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    assert h.view("recorded", ALICE) == (ETHER // 4, Status.ACTIVE, T0)
    # Then the other 75 % at 7.5 * 10**14 wei a second: at half time 25 % + 37.5 %.
    assert h.view("available", ALICE, at=T0 + 500) == ETHER // 4 + ETHER * 3 // 8


def test_the_rounding_remainder_is_released_at_the_start():
    h = VaultHarness(lot_validity=7)
    h.transact(ALICE_KEY, "deposit", value=10**15 + 5, at=T0)  # 142857142857143 wei/s, 4 wei left
    rate = (10**15 + 5) // 7
    assert h.view("available", ALICE) == 10**15 + 5 - 7 * rate
    assert [h.view("available", ALICE, at=T0 + s) for s in (1, 6)] == [
        10**15 + 5 - 6 * rate, 10**15 + 5 - rate]


# -- grant and operator settings -----------------------------------------------------------

def test_grant_is_operator_only(h):
    out = h.transact(ALICE_KEY, "grant", BOB, 50, value=ETHER, at=T0)
    assert not out.success and out.reason == "only the operator"
    assert h.stored(BOB).head == Head() and h.balance(VAULT) == 0


def test_grant_opens_the_account_with_its_own_validity(h):
    out = h.transact(OPERATOR_KEY, "grant", BOB, 50, value=ETHER, at=T0)
    assert [e.name for e in out.events] == ["AccountOpened", "LotDeposited", "StatusChanged"]
    assert out.named("LotDeposited") == [{"owner": hexaddr(BOB), "lot": 0, "amount": ETHER, "start": T0,
                                          "expiry": T0 + 50}]
    stored = h.stored(BOB)
    assert stored.lots == (Lot(0, ETHER, 0, T0, T0 + 50),) and stored.totals.deposited == ETHER
    assert h.stored(OPERATOR).head == Head()  # the operator pays; the lot is Bob's
    assert h.view("available", BOB, at=T0 + 25) == ETHER // 2


def test_grant_rejects_zero_validity_and_amounts_below_min_deposit(h):
    assert h.call("grant", BOB, 0, sender=OPERATOR, value=ETHER).reason == "validity must be > 0"
    assert h.call("grant", BOB, 10, sender=OPERATOR, value=MIN_DEPOSIT - 1).reason == "deposit below minDeposit"


def test_set_lot_validity_affects_only_new_lots(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    out = h.transact(OPERATOR_KEY, "setLotValidity", 77, at=T0 + 1)
    assert out.named("LotValidityChanged") == [{"old": VALIDITY, "new": 77}]
    assert h.view("lotValidity") == 77
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + 2)
    # The new, shorter lot expires first: it is drawn first.
    assert [(lot.start, lot.expiry) for lot in h.stored(ALICE).lots] == [(T0 + 2, T0 + 79), (T0, T0 + VALIDITY)]
    assert h.transact(OPERATOR_KEY, "setLotValidity", 0).reason == "validity must be > 0"
    too_long = "validity too large: expiry must stay < 2**40"
    assert h.call("setLotValidity", 2**40 - h.now, sender=OPERATOR).reason == too_long
    assert h.call("setLotValidity", 2**256 - 1, sender=OPERATOR).reason == too_long
    assert h.transact(ALICE_KEY, "setLotValidity", 5).reason == "only the operator"
    assert h.view("lotValidity") == 77


def test_set_min_deposit_applies_to_later_deposits(h):
    out = h.transact(OPERATOR_KEY, "setMinDeposit", ETHER, at=T0)
    assert out.named("MinDepositChanged") == [{"old": MIN_DEPOSIT, "new": ETHER}]
    assert h.view("minDeposit") == ETHER
    assert h.transact(ALICE_KEY, "deposit", value=ETHER - 1).reason == "deposit below minDeposit"
    assert h.transact(ALICE_KEY, "deposit", value=ETHER).success
    assert h.transact(OPERATOR_KEY, "setMinDeposit", 0).reason == "minDeposit must be in [1, 2**84)"
    assert h.call("setMinDeposit", 2**84, sender=OPERATOR).reason == "minDeposit must be in [1, 2**84)"
    assert h.transact(ALICE_KEY, "setMinDeposit", 1).reason == "only the operator"


@pytest.mark.parametrize("function, args", [("grant", (ALICE, 10)), ("setLotValidity", (10,)),
                                            ("setMinDeposit", (1,)), ("freeze", (ALICE,)), ("unfreeze", (ALICE,))])
def test_operator_functions_reject_everyone_else(h, function, args):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    value = ETHER if function == "grant" else 0
    for key in (ALICE_KEY, BOB_KEY):
        assert h.call(function, *args, sender=address(key), value=value).reason == "only the operator"
    assert h.call(function, *args, sender=OPERATOR, value=value).success


# -- freeze ----------------------------------------------------------------------------------

def test_freeze_of_a_never_opened_account_reverts(h):
    assert h.transact(OPERATOR_KEY, "freeze", BOB).reason == "no such fee account"
    assert h.transact(OPERATOR_KEY, "unfreeze", BOB).reason == "no such fee account"


def test_freeze_and_unfreeze_drive_the_frozen_status(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    out = h.transact(OPERATOR_KEY, "freeze", ALICE, at=T0 + 100)
    assert out.named("StatusChanged") == [{"owner": hexaddr(ALICE), "old": Status.EXHAUSTED, "new": Status.FROZEN}]
    head = h.stored(ALICE).head
    assert head.flags == FLAG_OPENED | FLAG_FROZEN and head.status == Status.FROZEN
    assert head.line == Line(10**17, 10**15, T0 + 100)  # re-anchored at the update
    assert h.view("status", ALICE) == Status.FROZEN and h.view("isFrozen", ALICE) is True
    # Still FROZEN at any time, even after expiry; the credit is kept.
    assert h.view("status", ALICE, at=T0 + 5 * VALIDITY) == Status.FROZEN
    assert h.view("available", ALICE, at=T0 + 500) == ETHER // 2
    out = h.transact(OPERATOR_KEY, "unfreeze", ALICE, at=T0 + 600)
    assert out.named("StatusChanged") == [{"owner": hexaddr(ALICE), "old": Status.FROZEN, "new": Status.ACTIVE}]
    assert h.stored(ALICE).head.flags == FLAG_OPENED
    assert h.view("isFrozen", ALICE) is False and h.view("status", ALICE) == Status.ACTIVE


def test_deposit_into_a_frozen_account_is_kept_but_not_usable(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    h.transact(OPERATOR_KEY, "freeze", ALICE, at=T0 + 1)
    out = h.transact(ALICE_KEY, "deposit", value=2 * ETHER, at=T0 + 2)
    assert out.success and out.named("StatusChanged") == []
    stored = h.stored(ALICE)
    assert stored.totals.deposited == 3 * ETHER and len(stored.lots) == 2 and stored.head.status == Status.FROZEN
    assert h.balance(VAULT) == 3 * ETHER


# -- no other way in or out -------------------------------------------------------------------

def test_plain_eth_send_to_the_vault_reverts(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    for data, value in ((b"", 1), (b"", 0), (b"\xde\xad\xbe\xef", 1)):
        assert not h.send(ALICE_KEY, data, value=value).success
    assert h.balance(VAULT) == ETHER and h.stored(ALICE).totals.deposited == ETHER


def test_abi_has_no_function_that_moves_credit_between_users_or_withdraws():
    functions = {e["name"]: e for e in vault_abi() if e["type"] == "function"}
    assert sorted(functions) == sorted([
        "deposit", "sweepExpired",  # users
        "grant", "setLotValidity", "setMinDeposit", "freeze", "unfreeze",  # operator
        "available", "status", "lotCount", "liveLots", "lot", "totals", "recorded", "isFrozen",  # views
        "operator", "treasury", "lotValidity", "minDeposit", "maxLiveLots", "lowBalance",
        "consumptionMode", "initialReleaseBps",
    ])
    mutability = {name: e["stateMutability"] for name, e in functions.items()}
    assert sorted(n for n, m in mutability.items() if m == "payable") == ["deposit", "grant"]
    assert sorted(n for n, m in mutability.items() if m == "nonpayable") == [
        "freeze", "setLotValidity", "setMinDeposit", "sweepExpired", "unfreeze"]
    assert not any(e["type"] in ("fallback", "receive") for e in vault_abi())
    events = sorted(e["name"] for e in vault_abi() if e["type"] == "event")
    assert events == sorted(["AccountOpened", "LotDeposited", "LotExpired", "StatusChanged", "FeeCharged",
                             "LotCharged", "LotValidityChanged", "MinDepositChanged"])

