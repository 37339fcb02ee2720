"""FeeVault behaviour on stock py-evm (tests/vault_harness.py): one behaviour per test.

Storage is also read word by word and decoded with fee_plugin.layout, which pins the
consensus layout of contracts/LAYOUT.md to what the contract really writes.
"""
import random

import pytest
from eth_utils import to_canonical_address, to_checksum_address
from vyper.compiler import compile_code

from fee_plugin.layout import (
    FLAG_FROZEN,
    FLAG_OPENED,
    Header,
    Lot,
    account_base_slot,
    head0_slot,
    head1_slot,
    lot_slot,
    pack_head0,
    pack_head1,
    pack_lot,
)
from fee_plugin.lots import Consumption, ReleasePolicy, Status, account_available, account_status
from fee_plugin.artifact import vault_abi

from .vault_harness import (
    ETHER,
    GENESIS_TIME,
    OPERATOR_KEY,
    RICH_KEY,
    TREASURY,
    USER_KEYS,
    VAULT,
    VaultHarness,
    address,
    calldata,
)

ALICE_KEY, BOB_KEY, CAROL_KEY = USER_KEYS[:3]
ALICE, BOB, CAROL = (address(k) for k in (ALICE_KEY, BOB_KEY, CAROL_KEY))
OPERATOR = address(OPERATOR_KEY)
T0 = GENESIS_TIME + 100
VALIDITY = 1000
MIN_DEPOSIT = 10**15
VAULT_CHECKSUM = to_checksum_address(VAULT)
ALICE_CHECKSUM = to_checksum_address(ALICE)


def hexaddr(addr: bytes) -> str:
    return "0x" + addr.hex()


@pytest.fixture
def h():
    return VaultHarness(lot_validity=VALIDITY, min_deposit=MIN_DEPOSIT)


def assert_identity(h, owners):
    """deposited = charged + expired + Σ(A−u) per account; vault balance = ΣΣ(A−u)."""
    held = 0
    for owner in owners:
        header, lots = h.stored(owner)
        remaining = sum(lot.remaining for lot in lots)
        assert header.deposited == header.charged + header.expired + remaining, (owner, header)
        held += remaining
    assert h.balance(VAULT) == held


# -- deposits -------------------------------------------------------------------------------

def test_first_deposit_stores_one_packed_lot_and_emits_opened_deposited_status(h):
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    assert out.success
    assert [e.name for e in out.events] == ["AccountOpened", "LotDeposited", "StatusChanged"]
    assert all(e.address == VAULT for e in out.events)
    assert out.events[0].args == {"owner": hexaddr(ALICE)}
    assert out.events[1].args == {
        "owner": hexaddr(ALICE), "lot": 0, "amount": ETHER, "start": T0, "expiry": T0 + VALIDITY,
    }
    # Uniform release with 0 bps: nothing is released at t = start.
    assert out.events[2].args == {"owner": hexaddr(ALICE), "old": Status.NONE, "new": Status.EXHAUSTED}

    # The exact consensus words (LAYOUT.md), read raw from storage.
    state = h.state
    base = account_base_slot(ALICE)
    lot = Lot(0, ETHER, 0, T0, T0 + VALIDITY)
    header = Header(deposited=ETHER, live_mask=1, status=Status.EXHAUSTED, flags=FLAG_OPENED)
    assert state.get_storage(VAULT, lot_slot(base, 0)) == pack_lot(lot) == (ETHER << 168) | (T0 << 40) | (T0 + VALIDITY)
    assert state.get_storage(VAULT, head0_slot(base)) == pack_head0(header) == 1
    assert state.get_storage(VAULT, head1_slot(base)) == pack_head1(header) == (
        (ETHER << 160) | (3 << 56) | (1 << 48)
    )
    assert all(state.get_storage(VAULT, lot_slot(base, i)) == 0 for i in range(1, 64))
    assert h.stored(ALICE) == (header, (lot,))
    assert h.balance(VAULT) == ETHER


def test_second_deposit_opens_nothing_and_records_the_released_credit(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    out = h.transact(ALICE_KEY, "deposit", value=2 * ETHER, at=T0 + 600)
    assert [e.name for e in out.events] == ["LotDeposited", "StatusChanged"]
    assert out.named("StatusChanged") == [{"owner": hexaddr(ALICE), "old": Status.EXHAUSTED, "new": Status.ACTIVE}]
    header, lots = h.stored(ALICE)
    assert [lot.slot for lot in lots] == [0, 1]
    assert (header.deposited, header.available, header.status) == (3 * ETHER, ETHER * 6 // 10, Status.ACTIVE)
    assert h.view("recorded", ALICE) == (ETHER * 6 // 10, Status.ACTIVE)


def test_new_lots_take_the_lowest_free_slot(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)  # slot 0
    h.transact(OPERATOR_KEY, "grant", ALICE, 10, value=ETHER, at=T0 + 1)  # slot 1, expires T0+11
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + 2)  # slot 2
    h.transact(BOB_KEY, "sweepExpired", ALICE, at=T0 + 11)
    assert h.view("liveLots", ALICE) == (0, 2)
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + 12)
    assert out.named("LotDeposited")[0]["lot"] == 1
    assert h.view("liveLots", ALICE) == (0, 1, 2)
    assert h.view("lotCount", ALICE) == 3
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + 13)
    assert out.named("LotDeposited")[0]["lot"] == 3


def test_deposit_below_min_deposit_reverts_with_reason(h):
    out = h.transact(ALICE_KEY, "deposit", value=MIN_DEPOSIT - 1, at=T0)
    assert not out.success and out.reason == "deposit below minDeposit"
    assert h.transact(ALICE_KEY, "deposit", value=0).reason == "deposit below minDeposit"
    assert h.balance(VAULT) == 0 and h.stored(ALICE)[0] == Header()
    assert h.transact(ALICE_KEY, "deposit", value=MIN_DEPOSIT).success


def test_deposit_beyond_max_live_lots_reverts_until_a_lot_is_swept():
    h = VaultHarness(lot_validity=VALIDITY, max_live_lots=2)
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + 500)
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + VALIDITY)
    assert not out.success
    assert out.reason == "too many live lots: sweep expired lots first"
    h.transact(BOB_KEY, "sweepExpired", ALICE, at=T0 + VALIDITY + 1)
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + VALIDITY + 2)
    assert out.success and out.named("LotDeposited")[0]["lot"] == 0
    assert h.view("lotCount", ALICE) == 2


def test_lot_amount_must_stay_below_2_pow_88(h):
    out = h.call("deposit", sender=address(RICH_KEY), value=2**88)
    assert out.reason == "lot amount must be < 2**88 wei"
    assert h.call("deposit", sender=address(RICH_KEY), value=2**88 - 1).success


def test_lifetime_deposits_must_stay_below_2_pow_96(h):
    rich = address(RICH_KEY)
    state = h.state_at(T0)
    h.write_account(state, rich, Header(deposited=2**96 - ETHER, flags=FLAG_OPENED), ())
    snapshot = state.snapshot()
    out = h.execute(state, calldata("deposit"), sender=rich, value=ETHER)
    assert out.reason == "lifetime deposits must stay < 2**96 wei"
    state.revert(snapshot)
    assert h.execute(state, calldata("deposit"), sender=rich, value=ETHER - 1).success
    assert h.stored(rich, state)[0].deposited == 2**96 - 1


def test_lot_expiry_must_stay_below_2_pow_40(h):
    now = h.now + 1
    out = h.call("grant", ALICE, 2**40 - now, sender=OPERATOR, value=ETHER, at=now)
    assert out.reason == "lot expiry must be < 2**40"
    assert h.call("grant", ALICE, 2**40 - now - 1, sender=OPERATOR, value=ETHER, at=now).success
    assert h.call("grant", ALICE, 2**256 - 1, sender=OPERATOR, value=ETHER, at=now).reason == (
        "lot expiry must be < 2**40"
    )


def test_upfront_mode_makes_the_whole_lot_available_at_once():
    h = VaultHarness(lot_validity=VALIDITY, mode=int(Consumption.UPFRONT))
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    assert out.named("StatusChanged")[0]["new"] == Status.ACTIVE
    assert h.view("recorded", ALICE) == (ETHER, Status.ACTIVE)
    assert h.view("available", ALICE, at=T0 + VALIDITY - 1) == ETHER
    assert h.view("available", ALICE, at=T0 + VALIDITY) == 0


def test_initial_release_bps_is_available_at_the_deposit_time():
    h = VaultHarness(lot_validity=VALIDITY, bps=2500)
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    assert h.view("recorded", ALICE) == (ETHER // 4, Status.ACTIVE)
    # Then the other 75 % is released linearly: at half time 25 % + 37.5 %.
    assert h.view("available", ALICE, at=T0 + 500) == ETHER // 4 + ETHER * 3 // 8


# -- grant and operator settings -----------------------------------------------------------

def test_grant_is_operator_only(h):
    out = h.transact(ALICE_KEY, "grant", BOB, 50, value=ETHER, at=T0)
    assert not out.success and out.reason == "only the operator"
    assert h.stored(BOB)[0] == Header() and h.balance(VAULT) == 0


def test_grant_opens_the_account_with_its_own_validity(h):
    out = h.transact(OPERATOR_KEY, "grant", BOB, 50, value=ETHER, at=T0)
    assert [e.name for e in out.events] == ["AccountOpened", "LotDeposited", "StatusChanged"]
    assert out.named("LotDeposited") == [
        {"owner": hexaddr(BOB), "lot": 0, "amount": ETHER, "start": T0, "expiry": T0 + 50}
    ]
    header, lots = h.stored(BOB)
    assert lots == (Lot(0, ETHER, 0, T0, T0 + 50),) and header.deposited == ETHER
    assert h.stored(OPERATOR)[0] == Header()  # the operator pays; the lot is Bob's
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
    _, lots = h.stored(ALICE)
    assert [(lot.start, lot.expiry) for lot in lots] == [(T0, T0 + VALIDITY), (T0 + 2, T0 + 79)]
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
    assert h.transact(OPERATOR_KEY, "setMinDeposit", 0).reason == "minDeposit must be in [1, 2**88)"
    assert h.call("setMinDeposit", 2**88, sender=OPERATOR).reason == "minDeposit must be in [1, 2**88)"
    assert h.transact(ALICE_KEY, "setMinDeposit", 1).reason == "only the operator"


@pytest.mark.parametrize(
    "function, args",
    [
        ("grant", (ALICE, 10)),
        ("setLotValidity", (10,)),
        ("setMinDeposit", (1,)),
        ("freeze", (ALICE,)),
        ("unfreeze", (ALICE,)),
    ],
)
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
    header, _ = h.stored(ALICE)
    assert header.flags == FLAG_OPENED | FLAG_FROZEN and header.status == Status.FROZEN
    assert h.view("status", ALICE) == Status.FROZEN and h.view("isFrozen", ALICE) is True
    # Still FROZEN at any time, even after expiry; the credit is kept.
    assert h.view("status", ALICE, at=T0 + 5 * VALIDITY) == Status.FROZEN
    assert h.view("available", ALICE, at=T0 + 500) == ETHER // 2
    out = h.transact(OPERATOR_KEY, "unfreeze", ALICE, at=T0 + 600)
    assert out.named("StatusChanged") == [{"owner": hexaddr(ALICE), "old": Status.FROZEN, "new": Status.ACTIVE}]
    assert h.stored(ALICE)[0].flags == FLAG_OPENED
    assert h.view("isFrozen", ALICE) is False and h.view("status", ALICE) == Status.ACTIVE


def test_deposit_into_a_frozen_account_is_kept_but_not_usable(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    h.transact(OPERATOR_KEY, "freeze", ALICE, at=T0 + 1)
    out = h.transact(ALICE_KEY, "deposit", value=2 * ETHER, at=T0 + 2)
    assert out.success and out.named("StatusChanged") == []
    header, lots = h.stored(ALICE)
    assert header.deposited == 3 * ETHER and len(lots) == 2 and header.status == Status.FROZEN
    assert h.balance(VAULT) == 3 * ETHER


# -- sweep ----------------------------------------------------------------------------------

def test_sweep_moves_exactly_the_unused_remainder_to_the_treasury(h):
    """Lots with charges (written like the hook writes them) swept at once, by anyone."""
    t = h.now + 10
    state = h.state_at(t)
    lots = (
        Lot(0, ETHER, 3 * 10**17, t - 1000, t),  # expired now, 0.7 ether left
        Lot(2, 5 * 10**17, 5 * 10**17, t - 10, t - 1),  # expired, used up
        Lot(5, 2 * ETHER, 195 * 10**15, t - 10, t + 90),  # live: 0.2 released, 0.005 left
    )
    remaining = sum(lot.remaining for lot in lots)
    header = Header(deposited=35 * 10**17, charged=995 * 10**15, live_mask=0b100101,
                    status=Status.ACTIVE, flags=FLAG_OPENED)
    h.write_account(state, ALICE, header, lots)
    state.set_balance(VAULT, remaining)
    treasury_before = state.get_balance(TREASURY)

    out = h.execute(state, calldata("sweepExpired", ALICE), sender=BOB)
    assert out.success and int.from_bytes(out.output, "big") == 7 * 10**17
    assert [(e.name, e.args) for e in out.events] == [
        ("LotExpired", {"owner": hexaddr(ALICE), "lot": 0, "remainder": 7 * 10**17}),
        ("LotExpired", {"owner": hexaddr(ALICE), "lot": 2, "remainder": 0}),
        ("StatusChanged", {"owner": hexaddr(ALICE), "old": Status.ACTIVE, "new": Status.LOW}),
    ]
    assert state.get_balance(TREASURY) == treasury_before + 7 * 10**17
    assert state.get_balance(VAULT) == remaining - 7 * 10**17
    new_header, new_lots = h.stored(ALICE, state)
    assert new_lots == (lots[2],)
    base = account_base_slot(ALICE)
    assert state.get_storage(VAULT, lot_slot(base, 0)) == state.get_storage(VAULT, lot_slot(base, 2)) == 0
    policy = ReleasePolicy()
    assert new_header == Header(
        deposited=header.deposited, charged=header.charged, live_mask=0b100000,
        expired=7 * 10**17, available=account_available(new_lots, t, policy),
        status=account_status(True, False, new_lots, t, policy, 10**16), flags=FLAG_OPENED,
    )
    assert new_header.available == 5 * 10**15 and new_header.status == Status.LOW
    assert new_header.deposited == new_header.charged + new_header.expired + lots[2].remaining


def test_sweep_by_anyone_pays_the_treasury_emits_and_frees_the_slot(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    h.transact(ALICE_KEY, "deposit", value=2 * ETHER, at=T0 + 1)  # recorded LOW: 0.001 released
    treasury, bob = h.balance(TREASURY), h.balance(BOB)
    out = h.transact(BOB_KEY, "sweepExpired", ALICE, at=T0 + VALIDITY)
    assert out.success and int.from_bytes(out.output, "big") == ETHER
    assert [(e.name, e.args) for e in out.events] == [
        ("LotExpired", {"owner": hexaddr(ALICE), "lot": 0, "remainder": ETHER}),
        ("StatusChanged", {"owner": hexaddr(ALICE), "old": Status.LOW, "new": Status.ACTIVE}),
    ]
    assert h.balance(TREASURY) == treasury + ETHER
    assert h.balance(VAULT) == 2 * ETHER
    assert bob > h.balance(BOB) > bob - 10**16  # Bob paid gas, received nothing
    assert h.view("totals", ALICE) == (3 * ETHER, 0, ETHER)
    assert h.view("liveLots", ALICE) == (1,)
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + VALIDITY + 1)
    assert out.named("LotDeposited")[0]["lot"] == 0
    assert_identity(h, [ALICE])


def test_sweep_of_unexpired_lots_changes_nothing(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    before = h.stored(ALICE), h.balance(TREASURY)
    out = h.transact(BOB_KEY, "sweepExpired", ALICE, at=T0 + VALIDITY - 1)
    assert out.success and out.events == [] and int.from_bytes(out.output, "big") == 0
    assert (h.stored(ALICE), h.balance(TREASURY)) == before
    assert h.transact(BOB_KEY, "sweepExpired", CAROL).success  # never opened: nothing


def test_sweep_cannot_be_reentered_from_the_treasury():
    """The treasury's fallback tries to call sweepExpired again; the lock refuses it."""
    source = f"""
# pragma version ~=0.4.3
# pragma evm-version cancun
reentered: public(bool)
attempts: public(uint256)

@external
@payable
def __default__():
    self.attempts += 1
    self.reentered = raw_call(
        {VAULT_CHECKSUM},
        concat(method_id("sweepExpired(address)"), convert({ALICE_CHECKSUM}, bytes32)),
        revert_on_failure=False,
    )
"""
    code = compile_code(source, output_formats=["bytecode_runtime"])["bytecode_runtime"]
    h = VaultHarness(lot_validity=VALIDITY, treasury_code=bytes.fromhex(code[2:]))
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + 1)
    out = h.transact(BOB_KEY, "sweepExpired", ALICE, at=T0 + VALIDITY)
    assert out.success and int.from_bytes(out.output, "big") == ETHER
    state = h.state
    assert state.get_storage(TREASURY, 1) == 1  # attempts: the fallback ran once
    assert state.get_storage(TREASURY, 0) == 0  # reentered: the inner call failed
    assert state.get_balance(TREASURY) == ETHER
    assert_identity(h, [ALICE])


# -- no other way in or out -------------------------------------------------------------------

def test_plain_eth_send_to_the_vault_reverts(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    for data, value in ((b"", 1), (b"", 0), (b"\xde\xad\xbe\xef", 1)):
        out = h.send(ALICE_KEY, data, value=value)
        assert not out.success
    assert h.balance(VAULT) == ETHER
    assert h.stored(ALICE)[0].deposited == ETHER


def test_abi_has_no_function_that_moves_credit_between_users_or_withdraws():
    functions = {e["name"]: e for e in vault_abi() if e["type"] == "function"}
    assert sorted(functions) == sorted([
        # users
        "deposit", "sweepExpired",
        # operator
        "grant", "setLotValidity", "setMinDeposit", "freeze", "unfreeze",
        # views
        "available", "status", "lotCount", "liveLots", "lot", "totals", "recorded", "isFrozen",
        "operator", "treasury", "lotValidity", "minDeposit", "maxLiveLots", "lowBalance",
        "consumptionMode", "initialReleaseBps",
    ])
    mutability = {name: e["stateMutability"] for name, e in functions.items()}
    assert sorted(n for n, m in mutability.items() if m == "payable") == ["deposit", "grant"]
    assert sorted(n for n, m in mutability.items() if m == "nonpayable") == [
        "freeze", "setLotValidity", "setMinDeposit", "sweepExpired", "unfreeze",
    ]
    assert not any(e["type"] in ("fallback", "receive") for e in vault_abi())
    events = sorted(e["name"] for e in vault_abi() if e["type"] == "event")
    assert events == sorted([
        "AccountOpened", "LotDeposited", "LotExpired", "StatusChanged", "FeeCharged", "LotCharged",
        "LotValidityChanged", "MinDepositChanged",
    ])


# -- views and time --------------------------------------------------------------------------

def test_config_getters_return_the_genesis_storage():
    h = VaultHarness(lot_validity=123, min_deposit=7, max_live_lots=5, low_balance=99, mode=1, bps=42)
    assert to_canonical_address(h.view("operator")) == OPERATOR
    assert to_canonical_address(h.view("treasury")) == TREASURY
    assert [h.view(n) for n in ("lotValidity", "minDeposit", "maxLiveLots", "lowBalance",
                                "consumptionMode", "initialReleaseBps")] == [123, 7, 5, 99, 1, 42]


def test_views_report_lots_totals_and_the_recorded_values(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    assert h.view("lot", ALICE, 0, at=T0 + 250) == (ETHER, 0, T0, T0 + VALIDITY, ETHER // 4)
    assert h.view("lot", ALICE, 0, at=T0 + VALIDITY) == (ETHER, 0, T0, T0 + VALIDITY, 0)
    assert h.view("lot", ALICE, 63) == (0, 0, 0, 0, 0)
    assert not h.call("lot", ALICE, 64).success
    assert h.call("lot", ALICE, 64).reason == "lot index out of range"
    assert h.view("totals", ALICE) == (ETHER, 0, 0)
    assert h.view("recorded", ALICE, at=T0 + 250) == (0, Status.EXHAUSTED)  # as last written
    assert h.view("lotCount", ALICE) == 1 and h.view("liveLots", ALICE) == (0,)
    for fn, empty in (("available", 0), ("status", Status.NONE), ("lotCount", 0), ("liveLots", ()),
                      ("totals", (0, 0, 0)), ("recorded", (0, 0)), ("isFrozen", False)):
        assert h.view(fn, BOB) == empty, fn


def test_status_moves_through_exhausted_low_active_expired_with_time():
    h = VaultHarness(lot_validity=VALIDITY, low_balance=ETHER // 2)
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    assert out.named("StatusChanged")[0]["new"] == Status.EXHAUSTED
    assert h.view("status", ALICE, at=T0 + 100) == Status.LOW  # 0.1 ether < 0.5
    assert h.view("status", ALICE, at=T0 + 500) == Status.ACTIVE  # 0.5 is not below 0.5
    assert h.view("status", ALICE, at=T0 + VALIDITY) == Status.EXPIRED
    assert h.view("available", ALICE, at=T0 + VALIDITY) == 0
    # Recorded status follows the account's updates, with a StatusChanged each move.
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + 600)
    assert out.named("StatusChanged")[0] == {"owner": hexaddr(ALICE), "old": Status.EXHAUSTED, "new": Status.ACTIVE}
    out = h.transact(BOB_KEY, "sweepExpired", ALICE, at=T0 + VALIDITY)
    assert out.named("StatusChanged")[0] == {"owner": hexaddr(ALICE), "old": Status.ACTIVE, "new": Status.LOW}
    assert h.view("recorded", ALICE) == (ETHER * 4 // 10, Status.LOW)
    out = h.transact(BOB_KEY, "sweepExpired", ALICE, at=T0 + 600 + VALIDITY)
    assert out.named("StatusChanged")[0] == {"owner": hexaddr(ALICE), "old": Status.LOW, "new": Status.EXPIRED}
    assert h.view("recorded", ALICE) == (0, Status.EXPIRED)
    assert h.view("lotCount", ALICE) == 0


def test_exhausted_when_everything_released_is_used(h):
    t = h.now + 1
    state = h.state_at(t)
    lot = Lot(0, ETHER, ETHER // 2, t - 500, t + 500)  # released 0.5, used 0.5
    h.write_account(state, ALICE, Header(deposited=ETHER, charged=ETHER // 2, live_mask=1,
                                         flags=FLAG_OPENED), (lot,))
    assert h.view_in(state, "available", ALICE) == 0
    assert h.view_in(state, "status", ALICE) == Status.EXHAUSTED
    assert h.view_in(state, "lot", ALICE, 0) == (ETHER, ETHER // 2, t - 500, t + 500, 0)


def test_accounting_identity_holds_after_a_sequence_of_operations():
    h = VaultHarness(lot_validity=300, max_live_lots=3, min_deposit=10**6)
    rng = random.Random(7)
    users = [ALICE_KEY, BOB_KEY, CAROL_KEY]
    owners = [address(k) for k in users]
    treasury_start = h.balance(TREASURY)
    t = T0
    for _ in range(30):
        t += rng.choice([1, 40, 150, 301])
        op = rng.random()
        who = rng.randrange(3)
        if op < 0.45:
            out = h.transact(users[who], "deposit", value=rng.randrange(10**6, 10**18), at=t)
        elif op < 0.6:
            out = h.transact(OPERATOR_KEY, "grant", owners[who], rng.randrange(1, 600),
                             value=rng.randrange(10**6, 10**18), at=t)
        elif op < 0.7:
            out = h.transact(OPERATOR_KEY, "freeze" if rng.random() < 0.5 else "unfreeze",
                             owners[who], at=t)
        else:
            out = h.transact(users[rng.randrange(3)], "sweepExpired", owners[who], at=t)
        assert_identity(h, owners)
        if out.success and out.events:  # the account was updated: recorded = views now
            assert h.view("recorded", owners[who]) == (
                h.view("available", owners[who]), h.view("status", owners[who])
            )
    expired = sum(h.stored(o)[0].expired for o in owners)
    assert expired > 0
    assert h.balance(TREASURY) == treasury_start + expired
    h.replay()  # every block the harness mined is valid and re-executes identically
