"""FeeVault's lot chains on stock py-evm (tests/support/vault_harness.py): sweeps, the spent chain,
views over time, the accounting identity, and what an update costs in gas."""
import random

import pytest
from eth_utils import to_canonical_address, to_checksum_address
from vyper.compiler import compile_code

from fee_plugin.layout import FLAG_OPENED, Head, Totals, account_base_slot, lot_slot
from fee_plugin.lots import Consumption, Line, Lot, Status

from .support.vault_contract import (
    ALICE, ALICE_KEY, BOB, BOB_KEY, CAROL, CAROL_KEY, MIN_DEPOSIT, OPERATOR, T0, VALIDITY, assert_identity,
    hexaddr,
)
from .support.vault_harness import ETHER, OPERATOR_KEY, TREASURY, VAULT, VaultHarness, address, calldata

VAULT_CHECKSUM = to_checksum_address(VAULT)
ALICE_CHECKSUM = to_checksum_address(ALICE)


@pytest.fixture
def h():
    return VaultHarness(lot_validity=VALIDITY, min_deposit=MIN_DEPOSIT)


def written(h, t):
    """Alice as the hook could have left her at t − 1: an expiring lot, a lot used up
    (on the spent chain, expired now), and a live lot with 0.005 ether available at t."""
    state = h.state_at(t)
    charge = (Lot(0, ETHER, 3 * 10**17, t - 1000, t),  # 10**15 wei/s; expired at t, 0.7 ether left
              Lot(5, ETHER, 495 * 10**15, t - 500, t + 500))  # 10**15 wei/s; 0.5 released at t
    spent = (Lot(2, 5 * 10**17, 5 * 10**17, t - 10, t - 1),)  # upfront-like: used up, expired at t
    line = Line(999 * 10**15 - 3 * 10**17 + 499 * 10**15 - 495 * 10**15, 2 * 10**15, t - 1)
    totals = Totals(deposited=25 * 10**17, expired=0, last_expiry=t + 500)
    h.write_account(state, ALICE, Head(line=line, status=Status.ACTIVE, flags=FLAG_OPENED), totals, charge, spent)
    state.set_balance(VAULT, sum(lot.remaining for lot in charge + spent))
    return state, charge, spent


def test_sweep_moves_exactly_the_unused_remainder_to_the_treasury_and_drops_spent_lots(h):
    t = h.now + 10
    state, charge, spent = written(h, t)
    treasury_before = state.get_balance(TREASURY)
    out = h.execute(state, calldata("sweepExpired", ALICE), sender=BOB)
    assert out.success and int.from_bytes(out.output, "big") == 7 * 10**17
    assert [(e.name, e.args) for e in out.events] == [
        ("LotExpired", {"owner": hexaddr(ALICE), "lot": 0, "remainder": 7 * 10**17}),
        ("LotExpired", {"owner": hexaddr(ALICE), "lot": 2, "remainder": 0}),
        ("StatusChanged", {"owner": hexaddr(ALICE), "old": Status.ACTIVE, "new": Status.LOW}),
    ]
    assert state.get_balance(TREASURY) == treasury_before + 7 * 10**17
    assert state.get_balance(VAULT) == charge[1].remaining
    stored = h.stored(ALICE, state)
    assert (stored.charge_lots, stored.spent_lots) == ((charge[1],), ())
    base = account_base_slot(ALICE)
    assert state.get_storage(VAULT, lot_slot(base, 0)) == state.get_storage(VAULT, lot_slot(base, 2)) == 0
    assert stored.head.line == Line(5 * 10**15, 10**15, t) and stored.head.status == Status.LOW
    assert stored.totals == Totals(25 * 10**17, 7 * 10**17, t + 500)
    assert stored.charged_wei == 3 * 10**17 + 5 * 10**17 + 495 * 10**15


def test_a_used_up_lot_keeps_the_account_exhausted_not_expired_until_its_own_expiry():
    h = VaultHarness(lot_validity=VALIDITY, mode=int(Consumption.UPFRONT))
    t = h.now + 10
    state = h.state_at(t)
    spent = (Lot(1, ETHER, ETHER, t - 10, t + 100),)
    h.write_account(state, ALICE, Head(line=Line(0, 0, t - 1), status=Status.EXHAUSTED, flags=FLAG_OPENED),
                    Totals(ETHER, 0, t + 100), (), spent)
    assert h.view_in(state, "status", ALICE) == Status.EXHAUSTED
    assert h.view_in(state, "liveLots", ALICE) == (1,) and h.view_in(state, "available", ALICE) == 0
    assert h.view_in(state, "totals", ALICE) == (ETHER, ETHER, 0)
    later = h.state_at(t + 100)
    h.write_account(later, ALICE, Head(line=Line(0, 0, t - 1), status=Status.EXHAUSTED, flags=FLAG_OPENED),
                    Totals(ETHER, 0, t + 100), (), spent)
    assert h.view_in(later, "status", ALICE) == Status.EXPIRED


def test_a_used_up_front_lot_moves_to_the_spent_chain_at_the_next_update():
    h = VaultHarness(lot_validity=VALIDITY, mode=int(Consumption.UPFRONT), max_live_lots=3)
    t = h.now + 10
    state = h.state_at(t)
    charge = (Lot(0, ETHER, ETHER, t - 10, t + 50), Lot(1, ETHER, 10**17, t - 5, t + 90))
    h.write_account(state, ALICE, Head(line=Line(9 * 10**17, 0, t - 1), status=Status.ACTIVE, flags=FLAG_OPENED),
                    Totals(2 * ETHER, 0, t + 90), charge)
    state.set_balance(VAULT, 9 * 10**17)
    state.set_balance(ALICE, 2 * ETHER)
    out = h.execute(state, calldata("deposit"), sender=ALICE, value=ETHER)
    assert out.success and out.named("LotDeposited")[0]["lot"] == 2  # slot 0 stays taken
    stored = h.stored(ALICE, state)
    assert [lot.slot for lot in stored.charge_lots] == [1, 2] and stored.spent_lots == (charge[0],)
    assert stored.head.line == Line(19 * 10**17, 0, t)
    out = h.execute(state, calldata("deposit"), sender=ALICE, value=MIN_DEPOSIT)
    assert out.reason == "too many live lots (maxLiveLots)"  # a used-up lot still holds its slot


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
    assert h.balance(TREASURY) == treasury + ETHER and h.balance(VAULT) == 2 * ETHER
    assert bob > h.balance(BOB) > bob - 10**16  # Bob paid gas, received nothing
    assert h.view("totals", ALICE) == (3 * ETHER, 0, ETHER)
    assert h.view("liveLots", ALICE) == (1,)
    assert h.view("available", ALICE) == 2 * 10**15 * (VALIDITY - 1)  # the line lost exactly lot 0
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + VALIDITY + 1)
    assert out.named("LotDeposited")[0]["lot"] == 0
    assert_identity(h, [ALICE])


def test_sweep_with_nothing_expired_writes_and_logs_nothing(h):
    h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    before = h.stored(ALICE), h.balance(TREASURY)
    out = h.transact(BOB_KEY, "sweepExpired", ALICE, at=T0 + VALIDITY - 1)
    assert out.success and out.events == [] and int.from_bytes(out.output, "big") == 0
    assert (h.stored(ALICE), h.balance(TREASURY)) == before  # not even the line's anchor moved
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
    assert h.call("lot", ALICE, 64).reason == "lot index out of range"
    assert h.view("totals", ALICE) == (ETHER, 0, 0)
    assert h.view("recorded", ALICE, at=T0 + 250) == (0, Status.EXHAUSTED, T0)  # as last written
    assert h.view("lotCount", ALICE) == 1 and h.view("liveLots", ALICE) == (0,)
    for fn, empty in (("available", 0), ("status", Status.NONE), ("lotCount", 0), ("liveLots", ()),
                      ("totals", (0, 0, 0)), ("recorded", (0, 0, 0)), ("isFrozen", False)):
        assert h.view(fn, BOB) == empty, fn


def test_status_moves_through_exhausted_low_active_expired_with_time():
    h = VaultHarness(lot_validity=VALIDITY, low_balance=ETHER // 2)
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0)
    assert out.named("StatusChanged")[0]["new"] == Status.EXHAUSTED
    assert h.view("status", ALICE, at=T0 + 100) == Status.LOW  # 0.1 ether < 0.5
    assert h.view("status", ALICE, at=T0 + 500) == Status.ACTIVE  # 0.5 is not below 0.5
    assert h.view("status", ALICE, at=T0 + VALIDITY) == Status.EXPIRED
    assert h.view("available", ALICE, at=T0 + VALIDITY) == 0
    # The recorded status follows the account's updates, with a StatusChanged each move.
    out = h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + 600)
    assert out.named("StatusChanged")[0] == {"owner": hexaddr(ALICE), "old": Status.EXHAUSTED, "new": Status.ACTIVE}
    out = h.transact(BOB_KEY, "sweepExpired", ALICE, at=T0 + VALIDITY)
    assert out.named("StatusChanged")[0] == {"owner": hexaddr(ALICE), "old": Status.ACTIVE, "new": Status.LOW}
    assert h.view("recorded", ALICE) == (ETHER * 4 // 10, Status.LOW, T0 + VALIDITY)
    out = h.transact(BOB_KEY, "sweepExpired", ALICE, at=T0 + 600 + VALIDITY)
    assert out.named("StatusChanged")[0] == {"owner": hexaddr(ALICE), "old": Status.LOW, "new": Status.EXPIRED}
    assert h.view("recorded", ALICE) == (0, Status.EXPIRED, T0 + 600 + VALIDITY)
    assert h.view("lotCount", ALICE) == 0


def test_accounting_identity_holds_after_a_sequence_of_operations():
    h = VaultHarness(lot_validity=300, max_live_lots=3, min_deposit=10**6)
    rng = random.Random(7)
    users = [ALICE_KEY, BOB_KEY, CAROL_KEY]
    owners = [address(k) for k in users]
    treasury_start = h.balance(TREASURY)
    t = T0
    for _ in range(40):
        t += rng.choice([1, 40, 150, 301])
        op, who = rng.random(), rng.randrange(3)
        if op < 0.45:
            out = h.transact(users[who], "deposit", value=rng.randrange(10**6, 10**18), at=t)
        elif op < 0.6:
            out = h.transact(OPERATOR_KEY, "grant", owners[who], rng.randrange(1, 600),
                             value=rng.randrange(10**6, 10**18), at=t)
        elif op < 0.7:
            out = h.transact(OPERATOR_KEY, "freeze" if rng.random() < 0.5 else "unfreeze", owners[who], at=t)
        else:
            out = h.transact(users[rng.randrange(3)], "sweepExpired", owners[who], at=t)
        assert_identity(h, owners)
        if out.success and out.events:  # the account was updated: recorded = views now
            assert h.view("recorded", owners[who]) == (
                h.view("available", owners[who]), h.view("status", owners[who]), t)
    expired = sum(h.stored(o).totals.expired for o in owners)
    assert expired > 0 and h.balance(TREASURY) == treasury_start + expired
    h.replay()  # every block the harness mined is valid and re-executes identically


def test_a_deposit_next_to_a_full_account_stays_within_a_bounded_gas():
    """A deposit walks both chains (free slots, place in charge order): O(maxLiveLots)."""
    h = VaultHarness(lot_validity=VALIDITY, min_deposit=1, max_live_lots=64)
    gas = [h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + i).gas_used for i in range(64)]
    assert max(gas) < 260_000, max(gas)  # 64th lot: ~63 lot reads (2,100 gas each) + writes
    assert h.transact(ALICE_KEY, "deposit", value=ETHER, at=T0 + 64).reason == "too many live lots (maxLiveLots)"
